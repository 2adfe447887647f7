#!/usr/bin/env python3
"""e2e-forensics.py - what a failed attempt leaves behind, against the real outboxd.

  - A receiver answering 500 with a body and headers: `outboxctl show` prints the status,
    Content-Type, Retry-After and Location and the body, with control bytes escaped (no raw
    ESC reaches the terminal); `show --json` has them under "response".
  - A 1 MiB response body: only the first 1 KiB (capture_body's default) is stored; show
    says how much the body had.
  - Metrics: a 500, a 404, a refused connection and a timeout each land in their class of
    outbox_delivery_attempts_total and in no other; final outcomes (delivered, dead) stay
    apart from retries.
  - Log rate limit: a receiver refusing connections for ~10 s yields at most about one
    warn line per second for that sink, and the lines plus the suppression counts they and
    the flush lines carry add up to exactly the failed attempts the metrics counted.
With OUTBOX_PG_DSN set (tests/pg's pg-e2e-forensics) the outbox is a PostgreSQL schema.
"""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

A = h.Answer
BODY_500 = b"upstream exploded\x1b[31m red \x1b[0m\nline two \xff\xfe end"
HEADERS_500 = [("Content-Type", b"text/plain; charset=utf-8"), ("Retry-After", b"7"),
               ("Location", b"/status/42"), ("X-Not-Captured", b"secret-ish")]


def post_one(d, key):
    st, _, resp = d.post(h.event(key))
    assert st == 202, (st, resp)
    return json.loads(resp)["id"]


def attempts_by_class(d, sink):
    out = {}
    for line in d.metrics().splitlines():
        if line.startswith('outbox_delivery_attempts_total{sink="%s",' % sink):
            cls = line.split('class="', 1)[1].split('"', 1)[0]
            out[cls] = float(line.rsplit(" ", 1)[1])
    return out


class Forensics(h.Case):
    prefix = "obx-e2e-forensics-"

    def history(self, eid, sink):
        return self.deliveries(eid)[sink]["history"]

    def deliveries(self, eid):
        return h.deliveries(self.data, eid, config=self.cfg)

    def test_show_prints_the_response_escaped_and_json_has_it(self):
        h.write_config(self.cfg, h.sink_yaml("s500", self.rx.url("/s500"),
                                             "    max_backoff_duration: 60s\n"))
        self.rx.routes["/s500"] = [A(500, body=BODY_500, headers=HEADERS_500)]
        d = self.start()
        eid = post_one(d, "f1")
        h.wait_for(lambda: len(self.history(eid, "s500")) >= 1, 20, "an attempt recorded")
        r = h.ctl(self.data, "show", str(eid), config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("(status 500)", out)
        self.assertIn("Content-Type: text/plain; charset=utf-8", out)
        self.assertIn("Retry-After: 7", out)
        self.assertIn("Location: /status/42", out)
        self.assertNotIn("X-Not-Captured", out)  # only the listed headers are kept
        self.assertIn("upstream exploded\\x1b[31m red \\x1b[0m\\nline two \\xff\\xfe end", out)
        self.assertNotIn("\x1b", out)  # no raw escape byte reaches the terminal
        a = self.history(eid, "s500")[0]
        self.assertEqual(a["status"], 500)
        resp = a["response"]
        self.assertEqual(resp["headers"]["Content-Type"], "text/plain; charset=utf-8")
        self.assertEqual(resp["headers"]["Location"], "/status/42")
        self.assertNotIn("X-Not-Captured", resp["headers"])
        self.assertIsNone(resp["body"])  # not UTF-8: byte-exact as base64
        import base64
        self.assertEqual(base64.b64decode(resp["body_base64"]), BODY_500)
        self.assertEqual(resp["body_size"], len(BODY_500))
        self.assertFalse(resp["body_truncated"])
        d.stop()

    def test_a_huge_body_stores_only_capture_body_bytes(self):
        big = (b"0123456789abcdef" * 65536)  # 1 MiB
        h.write_config(self.cfg, h.sink_yaml("big", self.rx.url("/big"),
                                             "    max_backoff_duration: 60s\n"))
        self.rx.routes["/big"] = [A(503, body=big)]
        d = self.start()
        eid = post_one(d, "f2")
        h.wait_for(lambda: len(self.history(eid, "big")) >= 2, 20, "two attempts recorded")
        resp = self.history(eid, "big")[0]["response"]
        self.assertEqual(resp["body"], big[:1024].decode())
        self.assertEqual(resp["body_size"], len(big))
        self.assertTrue(resp["body_truncated"])
        r = h.ctl(self.data, "show", str(eid), config=self.cfg)
        self.assertIn("body (1024 of 1048576 bytes kept", r.stdout)
        self.assertLess(len(r.stdout), 64 * 1024, "show's output is bounded")
        d.stop()

    def test_capture_config_keys(self):
        h.write_config(self.cfg, h.sink_yaml("s500", self.rx.url("/s500"),
                                             "    max_backoff_duration: 60s\n"
                                             "    capture_headers: [x-not-captured]\n"
                                             "    capture_body: 8\n") +
                       h.sink_yaml("none", self.rx.url("/s500"),
                                   "    max_backoff_duration: 60s\n    capture_body: 0\n"))
        self.rx.routes["/s500"] = [A(500, body=BODY_500, headers=HEADERS_500)]
        d = self.start()
        eid = post_one(d, "f4")
        h.wait_for(lambda: all(len(self.history(eid, s)) >= 1 for s in ("s500", "none")), 20,
                   "attempts recorded")
        resp = self.history(eid, "s500")[0]["response"]
        self.assertEqual(resp["headers"]["X-Not-Captured"], "secret-ish")
        self.assertEqual(resp["body"], BODY_500[:8].decode())
        self.assertEqual(resp["body_size"], len(BODY_500))
        resp = self.history(eid, "none")[0]["response"]
        self.assertNotIn("body", resp)  # capture_body: 0 keeps no body, headers still
        self.assertEqual(resp["headers"]["Retry-After"], "7")
        d.stop()
        for extra, want in (("    capture_body: 1MiB\n",
                             "sinks[0]: capture_body is 1048576 bytes, at most 65536 are allowed"),
                            ("    capture_headers: [\"a b\"]\n",
                             "sinks[0]: capture_headers[0]: header name")):
            h.write_config(self.cfg, h.sink_yaml("bad", self.rx.url("/x"), extra))
            with open(self.cfg) as f:  # the key's line (the outbox block's length varies)
                line = next(i for i, ln in enumerate(f, 1) if ln.startswith("    capture_"))
            want = "outboxd.yaml:%d: %s" % (line, want)
            r = h.subprocess.run([h.OUTBOXD, "--check-config", "--config", self.cfg],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(want, r.stderr)

    def test_list_shortens_reasons_in_the_middle_to_the_terminal_width(self):
        h.write_config(self.cfg, h.sink_yaml("s500", self.rx.url("/s500"),
                                             "    max_backoff_duration: 300ms\n"))
        self.rx.routes["/s500"] = [A(500)]
        d = self.start()
        eid = post_one(d, "f5")
        h.wait_for(lambda: self.deliveries(eid)["s500"]["state"] == "dead", 20, "dead")
        d.stop()
        reason = self.deliveries(eid)["s500"]["reason"]
        self.assertTrue(reason.endswith("last status 500"), reason)
        env = h.sanitizer_env()
        for cols in (80, 100, 120):
            env["COLUMNS"] = str(cols)
            r = h.ctl(self.data, "list", "--state", "dead", env=env, config=self.cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            rows = r.stdout.splitlines()
            self.assertEqual(len(rows), 2, r.stdout)
            for row in rows:
                self.assertLessEqual(len(row), cols, "COLUMNS=%d:\n%s" % (cols, r.stdout))
            # the start and the end (the status) of the reason are both visible; how much of
            # the end depends on the other columns (an age of "528ms ago" or "2s ago")
            self.assertIn(reason[:8], rows[1])
            self.assertIn("...", rows[1])
            tail = rows[1].split("...", 1)[1].split("  ")[0]
            self.assertTrue(tail.endswith(" 500") and reason.endswith(tail), rows[1])
        env["COLUMNS"] = "1000"  # room enough: the reason in full
        r = h.ctl(self.data, "list", "--state", "dead", env=env, config=self.cfg)
        self.assertIn(reason, r.stdout)

    def test_metrics_classes(self):
        refused = h.free_port()
        sinks = (h.sink_yaml("s500", self.rx.url("/s500")) +
                 h.sink_yaml("s404", self.rx.url("/s404")) +
                 h.sink_yaml("ok", self.rx.url("/ok")) +
                 h.sink_yaml("refused", "http://127.0.0.1:%d/x" % refused) +
                 h.sink_yaml("slow", self.rx.url("/slow"), "    timeout: 200ms\n"))
        h.write_config(self.cfg, sinks)
        self.rx.routes["/s500"] = [A(500)]
        self.rx.routes["/s404"] = [A(404)]
        self.rx.routes["/slow"] = [A(kind="hang", hang_s=3)]
        d = self.start()
        post_one(d, "f3")
        want = {"s500": "5xx", "s404": "4xx", "ok": "2xx", "refused": "connect",
                "slow": "timeout"}
        for sink, cls in want.items():
            h.wait_for(lambda: attempts_by_class(d, sink).get(cls, 0) >= 1, 20,
                       "an attempt of %s in class %s" % (sink, cls))
        for sink, cls in want.items():
            got = attempts_by_class(d, sink)
            self.assertEqual(sorted(got), sorted(["2xx", "3xx", "4xx", "5xx", "timeout",
                                                  "connect", "tls", "dns", "other"]))
            others = {k: v for k, v in got.items() if k != cls and v}
            self.assertEqual(others, {}, "%s: attempts outside class %s" % (sink, cls))
        text = d.metrics()
        self.assertIn('outbox_deliveries_total{sink="ok",outcome="delivered"} 1', text)
        self.assertNotIn('outcome="retried"', text)  # retries are a family of their own
        self.assertGreaterEqual(d.metric('outbox_delivery_retries_total{sink="s500"}'), 1)
        self.assertIn('outbox_build_info{version="', text)
        for fam in ("process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                    "process_start_time_seconds", "process_virtual_memory_bytes"):
            self.assertGreater(d.metric(fam), 0, fam)
        # CPU time can still be 0 at the kernel's 10 ms tick: it must match /proc read
        # around it instead
        def cpu():
            with open("/proc/%d/stat" % d.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        before = cpu()
        metric = d.metric("process_cpu_seconds_total")
        after = cpu()
        self.assertTrue(before - 0.01 <= metric <= after + 0.01, (before, metric, after))
        self.assertLess(abs(d.metric("process_start_time_seconds") - time.time()), 300)
        d.stop()

    def test_failed_attempt_log_is_rate_limited(self):
        port = h.free_port()
        events = 20
        h.write_config(self.cfg, h.sink_yaml("down", "http://127.0.0.1:%d/x" % port,
                                             "    max_backoff_duration: 120s\n",
                                             initial="20ms", max_interval="50ms"))
        d = self.start()
        for i in range(events):
            post_one(d, "down%d" % i)
        time.sleep(10)  # the outage: every attempt is refused
        rx = h.Receiver(port=port)
        try:
            h.wait_for(lambda: d.metric('outbox_deliveries_total{sink="down",outcome='
                                        '"delivered"}') == events, 30, "all delivered")
            failed = attempts_by_class(d, "down")["connect"]
            time.sleep(3 * h.SLOW)  # the main loop (1 s ticks) flushes the last count
            d.stop()
        finally:
            rx.close()
        logs = d.logs()
        lines = [r for r in logs if r.get("msg") == "delivery attempt failed"
                 and r.get("sink") == "down"]
        flushes = [r for r in logs if r.get("msg") == "delivery attempt failures suppressed"
                   and r.get("sink") == "down"]
        suppressed = sum(r["suppressed"] for r in lines + flushes)
        self.assertGreater(failed, 100, "the outage produced many failed attempts")
        self.assertGreaterEqual(len(lines), 3)
        # about one line a second for ~10 s (+ start-up and slack for a slow machine)
        self.assertLessEqual(len(lines) + len(flushes), 16 * h.SLOW)
        self.assertEqual(len(lines) + suppressed, failed,
                         "every failed attempt is either a line or counted as suppressed")
        for r in lines:
            self.assertEqual(r["level"], "warn")
            self.assertEqual(r["error"], "connection refused")
            self.assertEqual(r["outcome"], "retry")
            self.assertGreaterEqual(r["attempt"], 1)
            self.assertRegex(r["next_attempt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn("event", r)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(verbosity=2)
