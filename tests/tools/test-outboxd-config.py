#!/usr/bin/env python3
"""test-outboxd-config.py - what the real outboxd does with a configuration at start.

Every rule the daemon applies at start is applied by --check-config (one function): each
case runs both `outboxd --check-config` and a real start, and expects the same exit status
and message, with nothing created in the store directory. Cases: no sink (refused unless
--allow-no-sinks), a sink URL with CR/LF (file:line:key path), a FIFO as a secret file
(a clear error at once, never a hang), a FIFO as the config file (SIGTERM still stops the
daemon while it waits: signals are blocked only after the config loaded), --listen, and
--config-keys (the schema table's reference).

usage: test-outboxd-config.py OUTBOXD   (stdlib only; every wait is bounded)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (the outboxd process helper shared with the e2e suites)

OUTBOXD = None


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="outboxd-config-")
        self.data = os.path.join(self.tmp, "data")
        self.cfg = os.path.join(self.tmp, "outboxd.yaml")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, text):
        with open(self.cfg, "w") as f:
            f.write(text)

    def run_daemon(self, *args, timeout=30):
        r = subprocess.run([OUTBOXD, "--config", self.cfg, "--data-dir", self.data,
                            "--listen", "127.0.0.1:0"] + list(args),
                           capture_output=True, timeout=timeout * harness.SLOW,
                           env=harness.sanitizer_env())
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def both_refuse(self, want, *extra):
        """--check-config and a start both exit 2 with `want` in the message."""
        for mode in (["--check-config"], []):
            rc, _, err = self.run_daemon(*(mode + list(extra)))
            self.assertEqual(rc, 2, (mode, err))
            self.assertIn(want, err, mode)
            self.assertFalse(os.path.exists(self.data), "store touched on a config error")


class TestNoSinks(Base):
    CONFIGS = ["", "~\n", "sinks: []\n", "sinks:\n",
               "audit:\n  sinks:\n    webhook:\n      enabled: false\n      url: http://x/\n"]

    def test_refused_without_flag(self):
        for text in self.CONFIGS:
            self.write(text)
            self.both_refuse("no sink is configured")
            rc, out, err = self.run_daemon("--check-config", "--allow-no-sinks")
            self.assertEqual(rc, 0, err)
            self.assertIn("configuration OK (0 sinks)", out)

    def test_allowed_with_flag_starts(self):
        self.write("")
        d = harness.Daemon(self.cfg, self.data, extra=["--allow-no-sinks"])
        try:
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
            warn = [r for r in d.logs() if r.get("msg", "").startswith("no sinks configured")]
            self.assertTrue(warn, d.stderr())
        finally:
            self.assertEqual(d.stop(), 0)


class TestStartRules(Base):
    def test_url_with_crlf(self):
        self.write("outbox:\n  path: ./unused\n"
                   "sinks:\n  - name: a\n    url: \"http://127.0.0.1:9/x\\r\\nX-Evil: 1\"\n")
        self.both_refuse("outboxd.yaml:5: sinks[0].url: url has a control character (0x0d)")

    def test_uppercase_scheme_accepted(self):
        self.write("sinks:\n  - name: a\n    url: HTTP://127.0.0.1:9/hook\n")
        rc, out, err = self.run_daemon("--check-config")
        self.assertEqual(rc, 0, err)

    def test_bad_listen_override(self):
        self.write("sinks:\n  - name: a\n    url: http://127.0.0.1:9/\n")
        for mode in (["--check-config"], []):
            r = subprocess.run([OUTBOXD, "--config", self.cfg, "--data-dir", self.data,
                                "--listen", "nonsense"] + mode, capture_output=True,
                               timeout=30 * harness.SLOW, env=harness.sanitizer_env())
            self.assertEqual(r.returncode, 2)
            self.assertIn('--listen: expected HOST:PORT, found "nonsense"', r.stderr.decode())
        self.assertFalse(os.path.exists(self.data))


class TestKeys(Base):
    def test_config_keys_lists_the_schema(self):
        r = subprocess.run([OUTBOXD, "--config-keys"], capture_output=True,
                           timeout=30 * harness.SLOW, env=harness.sanitizer_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        for key in ("outbox.path", "ingest.listen", "audit.sinks.webhook.url", "sinks[].url",
                    "sinks[].signing_secret_file"):
            self.assertIn(key, out)


class TestFifo(Base):
    def test_fifo_secret_file(self):
        fifo = os.path.join(self.tmp, "secret")
        os.mkfifo(fifo, 0o600)
        self.write("sinks:\n  - name: a\n    url: http://127.0.0.1:9/\n"
                   "    signing_secret_file: %s\n" % fifo)
        self.both_refuse("outboxd.yaml:4: sinks[0].signing_secret_file: %s is a FIFO" % fifo)
        self.write("ingest:\n  signing_secret_file: %s\n"
                   "sinks:\n  - name: a\n    url: http://127.0.0.1:9/\n" % fifo)
        self.both_refuse("outboxd.yaml:2: ingest.signing_secret_file: %s is a FIFO" % fifo)

    def test_sigterm_while_config_blocks(self):
        """A config file that blocks (a FIFO with no writer) leaves the daemon killable."""
        os.mkfifo(self.cfg, 0o600)
        p = subprocess.Popen([OUTBOXD, "--config", self.cfg, "--data-dir", self.data],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=harness.sanitizer_env())
        try:
            # wait (bounded) until it sleeps: the only place it can is opening the FIFO
            deadline = time.monotonic() + 20 * harness.SLOW
            state = "R"
            while time.monotonic() < deadline and p.poll() is None:
                with open("/proc/%d/stat" % p.pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                if state == "S":
                    break
                time.sleep(0.02)
            self.assertEqual(state, "S")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(20 * harness.SLOW), -signal.SIGTERM)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
        self.assertFalse(os.path.exists(self.data))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test-outboxd-config.py OUTBOXD")
    OUTBOXD = harness.OUTBOXD = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[2:])
