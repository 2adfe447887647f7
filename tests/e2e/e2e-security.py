#!/usr/bin/env python3
"""e2e-security.py - security properties of the real outboxd and outboxctl (suite 'security').

  - Ingest auth: missing/wrong bearer token, missing/bad/other-body Flipt signature -> 401
    with nothing stored; the right credentials -> 202.
  - TLS to receivers (certificates made with openssl at test time): a self-signed receiver
    fails verification (retried, then dead with a TLS reason); with its CA in ca_file it
    succeeds; mTLS with client_cert/client_key against a receiver that requires a client
    certificate works, and fails without one; insecure: true works and logs a warning.
  - Secrets (ingest tokens and signing secret, sink signing secrets, one read from the
    environment, a password and a token in a sink URL) never appear in daemon logs at debug
    level, /metrics, outboxctl output (stats, list, show, export, check) or error messages.
  - Store files are created 0600 in a 0700 directory, even with umask 000.
"""
import hashlib
import hmac
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SECRETS = {
    "token": "tok-E2Esecret-7f3a",
    "ingest": "ing-E2Esecret-91bc",
    "sink": "snk-E2Esecret-4d2e",
    "env": "env-E2Esecret-a8e1",
    "urlpass": "pw-E2Esecret-55c0",
    "urltoken": "qt-E2Esecret-0b9d",
}


class Base(h.Case):
    prefix = "obx-e2e-sec-"


class TestIngestAuth(Base):
    def test_token_and_signature(self):
        h.write_config(self.cfg, h.sink_yaml("webhook", self.rx.url()),
                       ingest_yaml="  tokens: [%s]\n  signing_secret: %s\n"
                                   % (SECRETS["token"], SECRETS["ingest"]))
        d = self.start()
        body = h.event("auth")
        good_sig = hmac.new(SECRETS["ingest"].encode(), body, hashlib.sha256).hexdigest()
        other_sig = hmac.new(SECRETS["ingest"].encode(), h.event("other"),
                             hashlib.sha256).hexdigest()
        bearer = {"Authorization": "Bearer " + SECRETS["token"]}
        cases = [
            ("no credentials", {}),
            ("wrong token", {"Authorization": "Bearer nope",
                             "X-Flipt-Webhook-Signature": good_sig}),
            ("token as basic", {"Authorization": "Basic " + SECRETS["token"],
                                "X-Flipt-Webhook-Signature": good_sig}),
            ("token, no signature", dict(bearer)),
            ("token, bad signature", dict(bearer, **{"X-Flipt-Webhook-Signature": "0" * 64})),
            ("token, signature of another body",
             dict(bearer, **{"X-Flipt-Webhook-Signature": other_sig})),
            ("signature, no token", {"X-Flipt-Webhook-Signature": good_sig}),
        ]
        for name, hd in cases:
            st, _, resp = d.post(body, headers=hd)
            self.assertEqual(st, 401, "%s: %s" % (name, resp))
            self.assertIn("error", h.json.loads(resp))
            for s in SECRETS.values():
                self.assertNotIn(s, resp.decode(), name)
        self.assertEqual(h.stats(self.data)["events"], 0, "a refused event was stored")
        self.assertEqual(self.rx.got(), [])
        st, _, resp = d.post(body, headers=dict(bearer, **{"X-Flipt-Webhook-Signature":
                                                           good_sig}))
        self.assertEqual(st, 202, resp)
        h.wait_for(lambda: self.rx.got(), 10, "delivery")
        self.assertEqual(h.stats(self.data)["events"], 1)
        self.assertEqual(
            d.metric('outbox_ingest_rejected_total{reason="unauthorized"}'), len(cases))
        self.assertEqual(d.stop(), 0)


class TestTLS(Base):
    def test_verification_ca_mtls_insecure(self):
        c = h.make_certs(self.td.path)
        selfsigned = h.Receiver(tls=h.server_tls(c["self.pem"], c["self.key"]))
        ca_signed = h.Receiver(tls=h.server_tls(c["srv.pem"], c["srv.key"]))
        mtls = h.Receiver(tls=h.server_tls(c["srv.pem"], c["srv.key"], client_ca=c["ca.pem"]))
        for r in (selfsigned, ca_signed, mtls):
            self.addCleanup(r.close)
        bound = "    max_backoff_duration: 1500ms\n"
        sinks = (h.sink_yaml("unverified", selfsigned.url("/unverified"), extra=bound) +
                 h.sink_yaml("withca", ca_signed.url("/withca"),
                             extra=bound + "    ca_file: %s\n" % c["ca.pem"]) +
                 h.sink_yaml("mtls", mtls.url("/mtls"),
                             extra=bound + "    ca_file: %s\n    client_cert: %s\n"
                             "    client_key: %s\n" % (c["ca.pem"], c["cli.pem"],
                                                      c["cli.key"])) +
                 h.sink_yaml("mtlsnocert", mtls.url("/mtlsnocert"),
                             extra=bound + "    ca_file: %s\n" % c["ca.pem"]) +
                 h.sink_yaml("insecure", selfsigned.url("/insecure"),
                             extra=bound + "    insecure: true\n"))
        h.write_config(self.cfg, sinks)
        d = self.start()
        warn = [r for r in d.logs() if r.get("level") == "warn" and
                "TLS verification disabled" in r.get("msg", "")]
        self.assertEqual(len(warn), 1, d.stderr())
        self.assertEqual(warn[0].get("sink"), "insecure", warn)
        st, _, resp = d.post(h.event("tls"))
        self.assertEqual(st, 202, resp)
        eid = h.json.loads(resp)["id"]

        def deliveries():
            return h.deliveries(self.data, eid)
        h.wait_for(lambda: all(x["state"] in ("dead", "delivered")
                               for x in deliveries().values()), 20, "TLS sinks to settle")
        dl = deliveries()
        for ok in ("withca", "mtls", "insecure"):
            self.assertEqual(dl[ok]["state"], "delivered", (ok, dl[ok]))
        self.assertEqual([r.path for r in ca_signed.got()], ["/withca"])
        self.assertEqual([r.path for r in mtls.got()], ["/mtls"])
        self.assertEqual([r.path for r in selfsigned.got()], ["/insecure"])
        for bad in ("unverified", "mtlsnocert"):
            self.assertEqual(dl[bad]["state"], "dead", (bad, dl[bad]))
            self.assertGreaterEqual(dl[bad]["attempts"], 2, "TLS failures are retried")
        self.assertRegex(dl["unverified"]["reason"].lower(), "ssl|tls|certificate")
        self.assertGreaterEqual(selfsigned.tls_failures, 2)
        self.assertGreaterEqual(mtls.tls_failures, 2)
        print("\n  unverified: %s\n  mtls without a client certificate: %s"
              % (dl["unverified"]["last_error"], dl["mtlsnocert"]["last_error"]))
        self.assertEqual(d.stop(), 0)


class TestSecretsAndFiles(Base):
    def test_secrets_never_printed(self):
        env = {"OBX_E2E_SECRET": SECRETS["env"]}
        bad_url = "http://user:%s@127.0.0.1:1/x?token=%s" % (SECRETS["urlpass"],
                                                             SECRETS["urltoken"])
        sinks = (h.sink_yaml("signed", self.rx.url("/signed"),
                             extra="    signing_secret: %s\n" % SECRETS["sink"]) +
                 h.sink_yaml("fromenv", self.rx.url("/fromenv"),
                             extra="    signing_secret: \"${OBX_E2E_SECRET}\"\n") +
                 h.sink_yaml("secreturl", bad_url,
                             extra="    max_backoff_duration: 500ms\n"))
        h.write_config(self.cfg, sinks,
                       ingest_yaml="  tokens: [%s]\n  signing_secret: %s\n"
                                   % (SECRETS["token"], SECRETS["ingest"]))
        d = self.start(env=env, log_level="debug")
        body = h.event("secret")
        sig = hmac.new(SECRETS["ingest"].encode(), body, hashlib.sha256).hexdigest()
        hd = {"Authorization": "Bearer " + SECRETS["token"], "X-Flipt-Webhook-Signature": sig}
        st, _, resp = d.post(body, headers=hd)
        self.assertEqual(st, 202, resp)
        eid = h.json.loads(resp)["id"]
        d.post(body, headers={"Authorization": "Bearer " + SECRETS["token"] + "x"})
        d.post(body, headers={"Authorization": "Bearer " + SECRETS["token"]})
        h.wait_for(lambda: len(self.rx.got()) >= 2, 10, "signed deliveries")
        got = {r.path: r for r in self.rx.got()}
        want = hmac.new(SECRETS["env"].encode(), body, hashlib.sha256).hexdigest()
        self.assertEqual(got["/fromenv"].headers.get("x-flipt-webhook-signature"), want,
                         "the secret from the environment is used to sign")
        h.wait_for(lambda: h.stats(self.data)["total"]["dead"] == 1, 15, "secreturl dead")
        d.metrics()
        for args in (["stats"], ["stats", "--json"], ["list", "--state", "all"],
                     ["list", "--state", "all", "--json"], ["show", str(eid)],
                     ["show", str(eid), "--json"], ["export"], ["check"]):
            r = h.ctl(self.data, *args)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
        # outboxctl with the config (secrets inside) and a failing command
        r = h.ctl(self.data, "show", "999999")
        self.assertEqual(r.returncode, 3, r.stderr)
        import subprocess
        r = subprocess.run([h.OUTBOXCTL, "--config", self.cfg, "stats"], capture_output=True,
                           timeout=30, env=dict(h.sanitizer_env(), **env))
        h.capture(r.stdout)
        h.capture(r.stderr)
        # A config error next to a secret names the key, not the secret.
        bad = self.td.join("bad.yaml")
        with open(bad, "w") as f:
            f.write("ingest:\n  tokens: %s\nsinks:\n  - name: a\n    url: http://x/\n"
                    "    signing_secret: %s\n    max_backoff_duration: never\n"
                    % (SECRETS["token"], SECRETS["sink"]))
        r = subprocess.run([h.OUTBOXD, "--config", bad, "--check-config"], capture_output=True,
                           timeout=30, env=h.sanitizer_env())
        self.assertEqual(r.returncode, 2)
        h.capture(r.stderr)
        h.capture(r.stdout)
        self.assertEqual(d.stop(), 0)
        everything = "\n".join(h.CAPTURED)
        self.assertGreater(len(everything), 2000)
        self.assertIn("secreturl", everything)  # the URL sink's failure was captured too
        self.assertIn("127.0.0.1", everything)
        leaks = [name for name, s in SECRETS.items() if s in everything]
        where = {}
        for name in leaks:
            for chunk in h.CAPTURED:
                if SECRETS[name] in chunk:
                    i = chunk.index(SECRETS[name])
                    where[name] = chunk[max(0, i - 200):i + 60]
                    break
        self.assertEqual(leaks, [], "secrets printed: %s" % where)
        print("\n  %d bytes of logs, metrics and outboxctl output: no secret found"
              % len(everything))

    def test_store_file_modes(self):
        h.write_config(self.cfg, h.sink_yaml("webhook", self.rx.url()))
        d = self.start(preexec=lambda: os.umask(0))
        st, _, _ = d.post(h.event("modes"))
        self.assertEqual(st, 202)
        self.assertEqual(stat.S_IMODE(os.stat(self.data).st_mode), 0o700)
        names = sorted(os.listdir(self.data))
        self.assertIn("data.mdb", names)
        self.assertIn("lock.mdb", names)
        for n in names:
            mode = stat.S_IMODE(os.stat(os.path.join(self.data, n)).st_mode)
            self.assertEqual(mode, 0o600, "%s is %o" % (n, mode))
        self.assertEqual(d.stop(), 0)
        # outboxctl backup makes files with the same modes
        dst = self.td.join("backup")
        old = os.umask(0)
        try:
            r = h.ctl(self.data, "backup", dst)
        finally:
            os.umask(old)
        if r.returncode == 0:
            self.assertEqual(stat.S_IMODE(os.stat(dst).st_mode) & 0o077, 0, "backup dir")
            for n in os.listdir(dst):
                mode = stat.S_IMODE(os.stat(os.path.join(dst, n)).st_mode)
                self.assertEqual(mode & 0o077, 0, "backup %s is %o" % (n, mode))
        print("\n  store: dir 0700, %s 0600 (umask 000); backup rc=%d"
              % (", ".join(names), r.returncode))


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
