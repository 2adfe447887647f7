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
  - Slowloris: more sockets than max_connections trickling header bytes are closed at the
    header deadline (ingest.header_timeout), after which /healthz answers; a body trickled
    past ingest.body_timeout is cut too; a connection that sends nothing is left alone.
  - HTTP framing (RFC 9112 sec. 6.3): two Content-Length headers, Content-Length with
    Transfer-Encoding, or a Transfer-Encoding other than chunked get 400 and a closed
    connection; a request pipelined after them is never processed (nothing is stored).
"""
import hashlib
import hmac
import os
import socket
import stat
import sys
import threading
import time
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


def closed_by_peer(sock):
    """True once the daemon has closed `sock` (EOF or reset); never blocks."""
    try:
        sock.setblocking(False)
        while True:
            b = sock.recv(65536)
            if b == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def read_to_eof(sock):
    """Everything the daemon sends until it closes; socket.timeout if it keeps it open."""
    sock.settimeout(10 * h.SLOW)
    out = b""
    while True:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not b:
            return out
        out += b


class TestSlowClients(Base):
    def healthz_ok(self, d):
        try:
            return d.request("GET", "/healthz", timeout=2)[0] == 200
        except OSError:
            return False  # no free slot: the daemon closed the connection at once

    def test_slow_headers_closed_at_deadline(self):
        # 60 sockets against 50 slots, each trickling a header byte every 0.3 s: before the
        # header deadline existed they held every slot for as long as they trickled.
        h.write_config(self.cfg, h.sink_yaml("webhook", self.rx.url()),
                       ingest_yaml="  max_connections: 50\n  idle_timeout: 60s\n"
                                   "  header_timeout: 2s\n  body_timeout: 3s\n")
        d = self.start()
        idle = socket.create_connection(("127.0.0.1", d.port), timeout=5)  # sends nothing
        slow = []
        for _ in range(60):
            try:
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append(s)
            except OSError:
                pass
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.3):
                for s in slow:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            h.wait_for(lambda: all(closed_by_peer(s) for s in slow), 30,
                       "every trickling socket closed by the daemon")
            h.wait_for(lambda: self.healthz_ok(d), 10, "/healthz during the attack")
            closed = d.metric('outbox_ingest_deadline_closed_total{phase="headers"}')
            self.assertGreaterEqual(closed, 1)
            # A body trickled past body_timeout is cut as well.
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 1000\r\n\r\n{")
            slow.append(s)
            h.wait_for(lambda: closed_by_peer(s), 30, "the trickled body cut")
            self.assertEqual(d.metric('outbox_ingest_deadline_closed_total{phase="body"}'), 1)
        finally:
            stop.set()
            t.join(5)
            for s in slow:
                s.close()
        # The connection that sent nothing is governed by idle_timeout only: still usable.
        idle.settimeout(10 * h.SLOW)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(idle.recv(100).startswith(b"HTTP/1.1 200"))
        idle.close()
        print("\n  slowloris: %d trickling sockets against 50 slots closed at the header "
              "deadline (%d counted), /healthz answered; trickled body cut"
              % (len(slow) - 1, closed))
        st, _, resp = d.post(h.event("after-slowloris"))
        self.assertEqual(st, 202, resp)
        self.assertEqual(d.stop(), 0)


def smuggle(head, body, extra):
    """A POST with the given framing headers and body, then `extra` on the same connection."""
    return (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
            head + b"\r\n" + body + extra)


class TestFraming(Base):
    def test_ambiguous_length_400_and_close(self):
        h.write_config(self.cfg, h.sink_yaml("webhook", self.rx.url()))
        d = self.start()
        ev = h.event("front")
        inner = h.event("smuggled")
        nxt = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
        chunked = b"%x\r\n" % len(ev) + ev + b"\r\n0\r\n\r\n"
        cases = [
            ("two Content-Length, different",
             smuggle(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(ev), len(ev + nxt)),
                     ev, nxt)),
            ("two Content-Length, equal",
             smuggle(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(ev), len(ev)),
                     ev, nxt)),
            ("Content-Length and chunked",
             smuggle(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(chunked),
                     chunked, nxt)),
            ("chunked and Content-Length",
             smuggle(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", chunked, nxt)),
            ("Transfer-Encoding not chunked",
             smuggle(b"Transfer-Encoding: gzip, chunked\r\n", chunked, nxt)),
            ("two Transfer-Encoding",
             smuggle(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                     chunked, nxt)),
        ]
        for name, raw in cases:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            try:
                s.sendall(raw)
                try:
                    got = read_to_eof(s)
                except socket.timeout:
                    self.fail("%s: connection kept open after the request" % name)
            finally:
                s.close()
            self.assertTrue(got.startswith(b"HTTP/1.1 400 "), (name, got[:200]))
            self.assertEqual(got.count(b"HTTP/1.1 "), 1, (name, got))
            self.assertIn(b"ambiguous body length", got, name)
        self.assertEqual(h.stats(self.data)["events"], 0, "a smuggled or framed event was stored")
        self.assertEqual(d.metric('outbox_ingest_rejected_total{reason="bad_request"}'),
                         len(cases))
        # Unambiguous requests still work, pipelined ones included.
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(smuggle(b"Content-Length: %d\r\nConnection: keep-alive\r\n" % len(ev), ev,
                          nxt[:-len(inner)].replace(b"Content-Length",
                                                    b"Connection: close\r\nContent-Length") +
                          inner))
        got = read_to_eof(s)
        s.close()
        self.assertEqual(got.count(b"HTTP/1.1 202 "), 2, got)
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(smuggle(b"Transfer-Encoding: chunked\r\nConnection: close\r\n", chunked,
                          b""))
        got = read_to_eof(s)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 202 "), got)
        self.assertEqual(h.stats(self.data)["events"], 3)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
