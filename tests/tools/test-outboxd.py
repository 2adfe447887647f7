#!/usr/bin/env python3
"""test-outboxd.py - integration tests of the real outboxd binary.

Each test starts build/tools/outboxd on a free 127.0.0.1 port (--listen 127.0.0.1:0; the
bound address is read from the JSON "started" log line) with a temporary store and a real
local receiver (http.server on 127.0.0.1), and checks what a user sees: acknowledged
events delivered byte-exact and signed, retries to dead letters and replay, restart
resumes, bad input refused with the right status while the daemon keeps serving, SIGTERM
under load loses nothing acknowledged, config errors name the key path.
With OUTBOX_PG_DSN set (tests/pg's pg-outboxd, under pgharness.py) every config is a
PostgreSQL outbox in a schema of its own and outboxctl reads it through --config.

usage: test-outboxd.py OUTBOXD [OUTBOXCTL]   (stdlib only; every wait is bounded)
"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (the outboxd process helper shared with the e2e suites)
from harness import event, sink_yaml, wait_for  # noqa: E402

OUTBOXD = None
OUTBOXCTL = None
SRC = os.environ.get("OUTBOX_SOURCE_ROOT",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
FIXTURES = os.path.join(SRC, "tests", "fixtures", "events")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read().rstrip(b"\n")


class Receiver:
    """A scriptable webhook receiver: answers `status` (200 by default), records requests."""

    def __init__(self):
        self.status = 200
        self.requests = []  # (path, headers dict lower-cased, body bytes)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = outer.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self):
        with self.lock:
            return [r[2] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Daemon(harness.Daemon):
    """One outboxd process (tests/e2e/harness.py), debug logs, its stderr collected."""

    def __init__(self, config_path, data_dir, extra=(), listen="127.0.0.1:0", wait=True):
        super().__init__(config_path, data_dir, listen=listen, wait=wait, extra=extra,
                         log_level="debug")


def write_config(path, sinks_yaml, ingest_yaml="", retention="1h"):
    """harness.write_config (LMDB, or PostgreSQL with OUTBOX_PG_DSN) with a 4 KiB max_body."""
    harness.write_config(path, sinks_yaml, ingest_yaml, retention=retention, max_body="4KiB")


# Tests of what only an LMDB outbox does; skipped only when run on PostgreSQL (pg-outboxd).
def lmdb_only(why):
    return unittest.skipIf(harness.PG_DSN, "LMDB only: " + why)


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="outboxd-it-")
        self.data = os.path.join(self.tmp, "data")
        self.cfg = os.path.join(self.tmp, "outboxd.yaml")
        self.rx = Receiver()
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        self.rx.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **kw):
        d = Daemon(self.cfg, self.data, **kw)
        self.daemons.append(d)
        return d

    def ctl(self, *args):
        return harness.ctl(self.data, *args, config=self.cfg)


class TestDelivery(Base):
    def test_delivered_signed_byte_exact(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url, "    signing_secret: s3crET\n"))
        d = self.start()
        body = fixture("flag-created.json")
        st, _, resp = d.post(body)
        self.assertEqual(st, 202, resp)
        self.assertRegex(resp.decode(), r'^\{"id":"\d+"\}')
        wait_for(lambda: self.rx.bodies(), 10, "delivery")
        path, headers, got = self.rx.requests[0]
        self.assertEqual(got, body)
        self.assertEqual(headers.get("content-type"), "application/json")
        want = hmac.new(b"s3crET", body, hashlib.sha256).hexdigest()
        self.assertEqual(headers.get("x-flipt-webhook-signature"), want)
        self.assertTrue(headers.get("webhook-id"))
        wid, ts = headers["webhook-id"], headers.get("webhook-timestamp", "")
        import base64
        std = base64.b64encode(hmac.new(b"s3crET", ("%s.%s." % (wid, ts)).encode() + body,
                                        hashlib.sha256).digest()).decode()
        self.assertIn("v1," + std, headers.get("webhook-signature", ""))
        # NDJSON: all acknowledged, all delivered, each byte-exact.
        lines = [event("nd-%d" % i) for i in range(5)]
        st, _, resp = d.post(b"\n".join(lines) + b"\n", "application/x-ndjson")
        self.assertEqual(st, 202, resp)
        self.assertEqual(len(json.loads(resp)["ids"]), 5)
        wait_for(lambda: len(self.rx.bodies()) >= 6, 10, "ndjson deliveries")
        self.assertEqual(sorted(self.rx.bodies()[1:]), sorted(lines))
        m = d.metrics()
        self.assertIn('outbox_ingest_events_total{outcome="stored"} 6', m)
        self.assertIn('outbox_pending{sink="webhook"}', m)
        # the store's commits (two acknowledgements, claims, results) and how long they took
        commits = d.metric("outbox_store_commit_seconds_count")
        self.assertGreaterEqual(commits, 2)
        self.assertEqual(d.metric('outbox_store_commit_seconds_bucket{le="+Inf"}'), commits)
        self.assertGreater(d.metric("outbox_store_commit_seconds_sum"), 0)
        self.assertIn('outbox_store_commit_seconds_bucket{le="0.001"}', m)
        self.assertNotIn("s3crET", m)
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("s3crET", d.stderr())
        self.assertIsNotNone(d.find("stopped"))

    def test_unrouted_event_acknowledged_not_stored(self):
        write_config(self.cfg, "  - name: flags\n    url: %s\n    events: [\"flag:*\"]\n"
                     % self.rx.url)
        d = self.start()
        st, _, resp = d.post(event("s1", typ="segment"))
        self.assertEqual(st, 202)
        self.assertEqual(json.loads(resp), {"id": None})
        st, _, resp = d.post(event("f1"))
        self.assertEqual(st, 202)
        wait_for(lambda: self.rx.bodies(), 10, "delivery")
        time.sleep(0.3)
        self.assertEqual(self.rx.bodies(), [event("f1")])
        self.assertEqual(d.metric('outbox_ingest_events_total{outcome="unrouted"}'), 1)
        self.assertEqual(d.stop(), 0)


class TestBadInput(Base):
    def test_each_bad_input_refused_daemon_keeps_serving(self):
        self.bad_inputs("")

    def test_each_bad_input_refused_pool_mode(self):
        self.bad_inputs("  pool_threads: 2\n")

    def bad_inputs(self, ingest_yaml):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url),
                     ingest_yaml="  tokens: [t0ken]\n" + ingest_yaml)
        d = self.start()
        auth = {"Authorization": "Bearer t0ken"}
        cases = [
            ("invalid json", d.post(b'{"version":', headers=auth), 400, "line 1, column"),
            ("missing field", d.post(b'{"version":"0.2","type":"flag","action":"created"}',
                                     headers=auth), 400, 'missing field \\"timestamp\\"'),
            ("wrong type", d.post(b'{"version":1,"type":"flag","action":"created",'
                                  b'"timestamp":"t"}', headers=auth), 400, '\\"version\\"'),
            ("ndjson line", d.post(event("a") + b"\n{\n", "application/x-ndjson",
                                   headers=auth), 400, "line 2"),
            ("content type", d.post(event("a"), "text/plain", headers=auth), 415,
             "Content-Type"),
            ("too large", d.post(b" " * 5000, headers=auth), 413, "max_body"),
            ("no token", d.post(event("a")), 401, "bearer"),
            ("bad token", d.post(event("a"), headers={"Authorization": "Bearer nope"}), 401,
             "bearer"),
            ("not found", d.request("GET", "/v2/nothing"), 404, "no such endpoint"),
            ("method", d.request("GET", "/v1/events"), 405, "POST"),
        ]
        for name, (st, headers, body), want_st, want in cases:
            self.assertEqual(st, want_st, "%s: %s" % (name, body))
            self.assertEqual(headers.get("content-type"), "application/json", name)
            self.assertIn(want, body.decode(), name)
            self.assertIn("error", json.loads(body), name)
        self.assertEqual(cases[-1][1][1].get("allow"), "POST")
        # Nothing was stored, and the daemon still serves.
        self.assertEqual(d.metric('outbox_store_events'), 0)
        self.assertEqual(d.request("GET", "/healthz")[0], 200)
        st, _, _ = d.post(event("ok"), headers=auth)
        self.assertEqual(st, 202)
        wait_for(lambda: self.rx.bodies() == [event("ok")], 10, "delivery after bad input")
        self.assertEqual(d.metric('outbox_ingest_rejected_total{reason="unauthorized"}'), 2)
        self.assertEqual(d.stop(), 0)

    def test_flipt_signature_required(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url),
                     ingest_yaml="  signing_secret: ins3cret\n")
        d = self.start()
        body = event("signed")
        st, _, resp = d.post(body)
        self.assertEqual(st, 401, resp)
        st, _, resp = d.post(body, headers={"X-Flipt-Webhook-Signature": "0" * 64})
        self.assertEqual(st, 401, resp)
        sig = hmac.new(b"ins3cret", body, hashlib.sha256).hexdigest()
        st, _, resp = d.post(body, headers={"X-Flipt-Webhook-Signature": sig})
        self.assertEqual(st, 202, resp)
        wait_for(lambda: self.rx.bodies() == [body], 10, "delivery")
        self.assertEqual(d.stop(), 0)


class TestRetries(Base):
    def test_retries_dead_letter_replay(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url,
                                         "    max_backoff_duration: 1s\n"))
        self.rx.status = 500
        d = self.start()
        st, _, resp = d.post(event("dead-1"))
        self.assertEqual(st, 202)
        eid = json.loads(resp)["id"]
        wait_for(lambda: d.metric('outbox_dead{sink="webhook"}') == 1, 20, "dead letter")
        self.assertGreaterEqual(len(self.rx.bodies()), 2, "retried before dying")
        self.assertEqual(d.metric('outbox_pending{sink="webhook"}'), 0)
        self.rx.status = 200
        n_before = len(self.rx.bodies())
        if OUTBOXCTL and os.access(OUTBOXCTL, os.X_OK):
            r = self.ctl("replay", eid)
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            self.skipTest("outboxctl not built: replay step not run")
        wait_for(lambda: len(self.rx.bodies()) > n_before, 10, "redelivery after replay")
        self.assertEqual(self.rx.bodies()[-1], event("dead-1"))
        wait_for(lambda: d.metric('outbox_delivered{sink="webhook"}') == 1, 10,
                 "delivered recorded")
        self.assertEqual(d.metric('outbox_dead{sink="webhook"}'), 0)
        self.assertEqual(d.stop(), 0)

    def test_restart_mid_backlog_resumes(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url,
                                         "    max_backoff_duration: 1h\n"))
        self.rx.status = 503
        d = self.start()
        sent = [event("backlog-%d" % i) for i in range(20)]
        st, _, _ = d.post(b"\n".join(sent), "application/x-ndjson")
        self.assertEqual(st, 202)
        wait_for(lambda: len(self.rx.bodies()) >= 20, 10, "first attempts")
        self.assertEqual(d.stop(), 0)
        self.rx.status = 200
        d2 = self.start()
        wait_for(lambda: set(sent) <= set(self.rx.bodies()[20:]), 30, "backlog after restart")
        wait_for(lambda: d2.metric('outbox_pending{sink="webhook"}') == 0, 10, "drained")
        self.assertEqual(d2.stop(), 0)


class TestLifecycle(Base):
    def test_sigterm_under_load_loses_nothing_acknowledged(self):
        self.sigterm_under_load("")

    def test_sigterm_under_load_pool_mode(self):
        self.sigterm_under_load("  pool_threads: 2\n")

    def sigterm_under_load(self, ingest_yaml):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url), ingest_yaml=ingest_yaml)
        self.rx.status = 503  # keep everything pending while we load and stop
        d = self.start()
        acked, stop = [], threading.Event()
        lock = threading.Lock()

        def producer(n):
            i = 0
            while not stop.is_set():
                body = event("load-%d-%d" % (n, i))
                i += 1
                try:
                    st, _, _ = d.post(body)
                except OSError:
                    return  # listener gone
                if st == 202:
                    with lock:
                        acked.append(body)
                elif st != 503:
                    raise AssertionError("unexpected %d" % st)

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) > 200, 20, "load")
        self.assertEqual(d.stop(), 0)
        stop.set()
        for t in threads:
            t.join(15)
        self.assertGreater(len(acked), 200)
        self.rx.status = 200
        d2 = self.start()
        want = set(acked)
        wait_for(lambda: want <= set(self.rx.bodies()), 60, "every acknowledged event")
        self.assertEqual(d2.stop(), 0)

    def test_slow_clients_cannot_exhaust_the_server(self):
        import socket
        write_config(self.cfg, sink_yaml("webhook", self.rx.url),
                     ingest_yaml="  max_connections_per_ip: 3\n  idle_timeout: 1s\n")
        d = self.start()
        slow = []
        for _ in range(3):  # hold every slot this address may use, mid-headers
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        time.sleep(0.2)
        # Over the per-address limit: the server closes the new connection at once.
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = extra.recv(100)
        except ConnectionResetError:
            got = b""
        self.assertEqual(got, b"", "a 4th connection from one address was served")
        extra.close()
        # The idle timeout drops the slow clients; then the daemon serves again.
        for s in slow:
            s.settimeout(5)
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass
            s.close()

        def healthy():  # the server frees a slot just after it closes the socket
            try:
                return d.request("GET", "/healthz")[0] == 200
            except OSError:
                return False

        wait_for(healthy, 5, "a free connection slot after the idle timeout")
        self.assertEqual(d.stop(), 0)

    @lmdb_only("one daemon owns a directory; on PostgreSQL nodes share the outbox by design")
    def test_second_daemon_on_same_dir_refused(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url))
        d = self.start()
        d2 = self.start(wait=False)
        rc = d2.proc.wait(20)
        self.assertNotEqual(rc, 0)
        self.assertIn("owned by another outboxd", d2.stderr())
        self.assertEqual(d.request("GET", "/healthz")[0], 200)
        self.assertEqual(d.stop(), 0)

    def test_retention_sweeps_delivered_events(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url), retention="200ms")
        d = self.start()
        st, _, _ = d.post(event("old"))
        self.assertEqual(st, 202)
        wait_for(lambda: self.rx.bodies(), 10, "delivery")
        # The sweeper runs every 5 s and deletes deliveries delivered > retention ago.
        wait_for(lambda: d.metric("outbox_store_events") == 0, 20, "retention sweep")
        self.assertEqual(d.metric('outbox_delivered{sink="webhook"}'), 0)
        self.assertEqual(d.stop(), 0)

    def test_health_and_metrics(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url))
        d = self.start()
        st, _, body = d.request("GET", "/healthz")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))
        m = d.metrics()
        for name in ("outbox_ingest_events_total", "outbox_ingest_rejected_total",
                     "outbox_pending", "outbox_dead", "outbox_in_doubt",
                     "outbox_oldest_pending_age_seconds", "outbox_store_used_bytes",
                     "outbox_store_max_bytes", "outbox_deliveries_total",
                     "outbox_delivery_latency_seconds", "outbox_attempt_duration_seconds"):
            self.assertIn("# TYPE " + name, m)
        self.assertEqual(d.metric("outbox_store_max_bytes"), 64 * 1024 * 1024)
        # the backend the config switch chose: only a database outbox has a pool
        self.assertEqual("# TYPE outbox_store_pool_size" in m, bool(harness.PG_DSN))
        self.assertEqual(d.stop(), 0)


class TestConfig(Base):
    def run_daemon(self, *args):
        return subprocess.run([OUTBOXD] + list(args), capture_output=True, timeout=30)

    def test_config_errors_name_the_key(self):
        cases = [
            ("outbox:\n  max_size: lots\nsinks:\n  - name: a\n    url: http://x/\n",
             "outbox.max_size"),
            ("ingest:\n  max_body: -1\nsinks:\n  - name: a\n    url: http://x/\n",
             "ingest.max_body"),
            ("sinks:\n  - name: a\n    url: http://x/\n    events: [\"flag:exploded\"]\n",
             "sinks[0].events"),
            ("sinks:\n  - name: a\n    url: http://x/\n    max_backoff_duration: soon\n",
             "sinks[0].max_backoff_duration"),
            ("outbox: [\n", "outboxd.yaml:"),
        ]
        for text, key in cases:
            with open(self.cfg, "w") as f:
                f.write(text)
            for extra in ([], ["--check-config"]):
                r = self.run_daemon("--config", self.cfg, "--data-dir", self.data, *extra)
                self.assertEqual(r.returncode, 2, (text, r.stderr))
                self.assertIn(key, r.stderr.decode(), text)
            self.assertFalse(os.path.exists(self.data), "store touched on a config error")

    def test_usage(self):
        self.assertEqual(self.run_daemon("--help").returncode, 0)
        r = self.run_daemon("--version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("outboxd", r.stdout.decode())
        self.assertEqual(self.run_daemon("--bogus").returncode, 2)
        self.assertEqual(self.run_daemon().returncode, 2)  # --config is required
        write_config(self.cfg, sink_yaml("webhook", self.rx.url))
        self.assertEqual(self.run_daemon("--config", self.cfg, "--log-level", "loud")
                         .returncode, 2)
        r = self.run_daemon("--config", self.cfg, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.data))
        r = self.run_daemon("--config", self.cfg, "--data-dir", self.data, "--listen", "nonsense")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--listen", r.stderr.decode())
        self.assertFalse(os.path.exists(self.data))

    def test_port_in_use_exits_1(self):
        import socket
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        write_config(self.cfg, sink_yaml("webhook", self.rx.url))
        r = self.run_daemon("--config", self.cfg, "--data-dir", self.data, "--listen",
                            "127.0.0.1:%d" % busy.getsockname()[1])
        busy.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn("Address already in use", r.stderr.decode())

    def test_example_config_starts(self):
        example = os.path.join(SRC, "tools", "outboxd.example.yaml")
        if not os.path.exists(example):
            self.skipTest("tools/outboxd.example.yaml not written yet")
        r = self.run_daemon("--config", example, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = Daemon(example, self.data)
        self.daemons.append(d)
        self.assertEqual(d.request("GET", "/healthz")[0], 200)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test-outboxd.py OUTBOXD [OUTBOXCTL]")
    OUTBOXD = harness.OUTBOXD = os.path.abspath(sys.argv[1])
    OUTBOXCTL = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
    if OUTBOXCTL:
        harness.OUTBOXCTL = OUTBOXCTL
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])
