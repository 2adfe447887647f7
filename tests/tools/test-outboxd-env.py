#!/usr/bin/env python3
"""outboxd configured from the environment, with the real binary (stdlib only):
OUTBOXD_* variables stand for absent flags and flags win; bad values name the variable;
${NAME} in the file; --print-config prints the effective configuration with every secret
redacted (the secret string never reaches stdout or stderr) and its output loads again.
Usage: test-outboxd-env.py OUTBOXD"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

OUTBOXD = None
SECRET = "Sx9-env-secret-value-never-printed"
TOKEN = "tok-env-value-never-printed-7"


def run(args, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOXD_")}
    env.update(env_extra)
    return subprocess.run([OUTBOXD] + args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


class EnvTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg = os.path.join(self.dir, "outboxd.yaml")
        with open(self.cfg, "w") as f:
            f.write("outbox:\n  path: ${OBX_ENV_DIR}/store\n"
                    "ingest:\n  listen: 127.0.0.1:${OBX_ENV_PORT}\n"
                    "  signing_secret: ${OBX_ENV_SECRET}\n  tokens: [\"${OBX_ENV_TOKEN}\"]\n"
                    "sinks:\n  - name: s1\n    url: https://hooks.example/in?key=${OBX_ENV_TOKEN}\n"
                    "    headers: {Authorization: \"Bearer ${OBX_ENV_TOKEN}\", X-Cost: \"$$5\"}\n"
                    "    signing_secret_file: ${CREDENTIALS_DIRECTORY}/sink-secret\n")
        creds = os.path.join(self.dir, "creds")
        os.mkdir(creds, 0o700)
        with open(os.path.join(creds, "sink-secret"), "w") as f:
            f.write(SECRET + "-sink\n")
        self.env = {"OBX_ENV_DIR": self.dir, "OBX_ENV_PORT": "18555", "OBX_ENV_SECRET": SECRET,
                    "OBX_ENV_TOKEN": TOKEN, "CREDENTIALS_DIRECTORY": creds}

    def tearDown(self):
        self.tmp.cleanup()

    def assertNoSecret(self, r):
        for s in (SECRET, TOKEN):
            self.assertNotIn(s, r.stdout)
            self.assertNotIn(s, r.stderr)

    def test_print_config_redacts_and_expands(self):
        r = run(["--config", self.cfg, "--print-config"], self.env, self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNoSecret(r)
        out = r.stdout
        self.assertIn('path: "%s/store"' % self.dir, out)
        self.assertIn('listen: "127.0.0.1:18555"', out)
        self.assertIn('signing_secret: "<redacted>"', out)
        self.assertIn('tokens: ["<redacted>"]', out)
        self.assertIn('url: "https://hooks.example/in?<redacted>"', out)
        self.assertIn('"Authorization": "<redacted>"', out)
        self.assertIn('"X-Cost": "$5"', out)
        self.assertIn('signing_secrets: ["<redacted>"]', out)

    def test_print_config_output_loads_again(self):
        cfg = os.path.join(self.dir, "plain.yaml")
        with open(cfg, "w") as f:
            f.write("outbox:\n  max_size: 2MiB\n  durability: nometasync\n"
                    "sinks:\n  - name: a\n    url: http://127.0.0.1:1/x\n"
                    "    events: ['flag:*']\n    dead_letter_on: [410]\n    timeout: 1500ms\n")
        r = run(["--config", cfg, "--print-config"], {}, self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        again = os.path.join(self.dir, "again.yaml")
        with open(again, "w") as f:
            f.write(r.stdout)
        r2 = run(["--config", again, "--print-config"], {}, self.dir)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r.stdout.splitlines()[1:], r2.stdout.splitlines()[1:])
        self.assertIn("timeout: 1.5s", r.stdout)
        self.assertIn("durability: nometasync", r.stdout)
        # every default is printed with its value; a section with nothing set is left out
        for line in ("header_timeout: 10s", "body_timeout: 1m0s",
                     "idempotency_window: 24h0m0s"):
            self.assertIn("\n  %s\n" % line, r.stdout)
        self.assertNotIn("admin:", r.stdout)

    def test_env_vars_and_flags_precedence(self):
        env = dict(self.env, OUTBOXD_CONFIG=self.cfg, OUTBOXD_LISTEN="127.0.0.1:18601",
                   OUTBOXD_DATA_DIR=os.path.join(self.dir, "from-env"))
        r = run(["--print-config"], env, "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('listen: "127.0.0.1:18601"', r.stdout)
        self.assertIn('path: "%s/from-env"' % self.dir, r.stdout)
        r = run(["--print-config", "-l", "127.0.0.1:18602", "--data-dir", "/tmp/flag-dir"], env,
                "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('listen: "127.0.0.1:18602"', r.stdout)
        self.assertIn('path: "/tmp/flag-dir"', r.stdout)
        self.assertNoSecret(r)
        # --config wins over OUTBOXD_CONFIG
        other = os.path.join(self.dir, "other.yaml")
        with open(other, "w") as f:
            f.write("ingest:\n  listen: 127.0.0.1:18603\n")
        r = run(["--config", other, "--print-config", "--allow-no-sinks"],
                {k: v for k, v in env.items() if k != "OUTBOXD_LISTEN"}, "/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('listen: "127.0.0.1:18603"', r.stdout)

    def test_log_variables(self):
        bad = os.path.join(self.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("ingest:\n  listen: [1]\n")
        r = run(["--config", bad, "--check-config"], {"OUTBOXD_LOG_FORMAT": "json"}, self.dir)
        self.assertEqual(r.returncode, 2)
        line = json.loads(r.stderr.strip().splitlines()[-1])
        self.assertEqual(line["msg"], "invalid configuration")
        r = run(["--config", bad, "--check-config", "--log-format", "text"],
                {"OUTBOXD_LOG_FORMAT": "json"}, self.dir)
        self.assertEqual(r.returncode, 2)
        self.assertFalse(r.stderr.lstrip().startswith("{"), r.stderr)
        # OUTBOXD_LOG_LEVEL=error hides the info line a start would print; checked with a
        # warning: --allow-no-sinks warns at warn level
        empty = os.path.join(self.dir, "empty.yaml")
        with open(empty, "w") as f:
            f.write("ingest:\n  max_body: 1MiB\n")
        r = run(["--config", empty, "--check-config", "--allow-no-sinks"],
                {"OUTBOXD_LOG_LEVEL": "error"}, self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("no sinks configured", r.stderr)
        r = run(["--config", empty, "--check-config", "--allow-no-sinks", "--log-level", "warn"],
                {"OUTBOXD_LOG_LEVEL": "error"}, self.dir)
        self.assertIn("no sinks configured", r.stderr)

    def test_bad_values_name_the_variable(self):
        cases = [("OUTBOXD_LISTEN", "no-port"), ("OUTBOXD_LOG_FORMAT", "xml"),
                 ("OUTBOXD_LOG_LEVEL", "loud"), ("OUTBOXD_DATA_DIR", ""),
                 ("OUTBOXD_CONFIG", "")]
        for var, val in cases:
            r = run(["--print-config"] if var == "OUTBOXD_CONFIG" else
                    ["--config", self.cfg, "--print-config"], dict(self.env, **{var: val}),
                    self.dir)
            self.assertEqual(r.returncode, 2, (var, r.stderr))
            self.assertIn("outboxd: %s:" % var, r.stderr)
        r = run(["--print-config"], {}, self.dir)
        self.assertEqual(r.returncode, 2)
        self.assertIn("OUTBOXD_CONFIG", r.stderr)

    def test_unset_variable_is_a_config_error(self):
        env = dict(self.env)
        del env["OBX_ENV_PORT"]
        r = run(["--config", self.cfg, "--print-config"], env, self.dir)
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:4: ingest.listen: environment variable OBX_ENV_PORT is not set"
                      % self.cfg, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertNoSecret(r)


if __name__ == "__main__":
    OUTBOXD = os.path.abspath(sys.argv.pop(1))
    unittest.main()
