#!/usr/bin/env python3
"""e2e-faults.py - faults at the receiver, against the real outboxd (suite 'faults').

One daemon, one scripted receiver, one sink per fault (each on its own path), so every
case runs at once and the whole file takes seconds:
  200; 500, 429, 408, 400 (retried until max_backoff_duration, then dead with the status in
  the reason); 400 and 410 listed in dead_letter_on (dead after one attempt); 503 with a
  Retry-After inside the bound (obeyed, then delivered) and beyond it (dead at once);
  answering after the sink timeout; resetting mid-body; accepting and hanging; closing
  without an answer; answering 200 then closing (delivered once, the next event on a new
  connection); a TLS handshake failure (https to a plain-HTTP port).
Also: the backoff schedule (each wait within the jitter bounds of the sink's config, the
whole delivery within max_backoff_duration) and a healthy sink that keeps flowing while the
others fail.
With OUTBOX_PG_DSN set (tests/pg runs it as pg-e2e-faults) the outbox is a PostgreSQL schema.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

A = h.Answer
BOUND_MS = 1500
LATE_MS = 250 * h.SLOW  # dispatch lateness tolerated on a busy machine


def first_then(first, rest):
    """A route answering `first` to the first request of each webhook-id, then `rest`."""
    seen = set()

    def answer(req):
        if req.wid in seen:
            return rest
        seen.add(req.wid)
        return first
    return answer


class Faults(h.Case):
    prefix = "obx-e2e-faults-"

    def deliveries(self, eid):
        return h.deliveries(self.data, eid)

    def test_backoff_schedule_and_bound(self):
        h.write_config(self.cfg, "  - name: sched\n    url: %s\n    events: [\"*:*\"]\n"
                       "    initial_interval: 100ms\n    multiplier: 2\n"
                       "    randomization_factor: 0.5\n    max_interval: 400ms\n"
                       "    max_backoff_duration: 2s\n" % self.rx.url("/sched"))
        self.rx.routes["/sched"] = [A(500)]
        d = self.start()
        st, _, resp = d.post(h.event("sched"))
        self.assertEqual(st, 202, resp)
        eid = h.json.loads(resp)["id"]
        h.wait_for(lambda: self.deliveries(eid)["sched"]["state"] == "dead", 15, "dead letter")
        dl = self.deliveries(eid)["sched"]
        reqs = self.rx.got("/sched")
        self.assertEqual(len(reqs), dl["attempts"])
        self.assertGreaterEqual(len(reqs), 5)
        slack = LATE_MS / 1000
        gaps = []
        for k in range(1, len(reqs)):
            gap = reqs[k].t - reqs[k - 1].t
            i = min(0.1 * 2 ** (k - 1), 0.4)
            gaps.append(round(gap * 1000))
            self.assertGreaterEqual(gap, i * 0.5 - 0.01, "wait %d: %.3fs < %.3fs" % (k, gap,
                                                                                     i * 0.5))
            self.assertLessEqual(gap, i * 1.5 + slack, "wait %d: %.3fs > %.3fs" % (k, gap,
                                                                                   i * 1.5))
        elapsed = reqs[-1].t - reqs[0].t
        self.assertLessEqual(elapsed, 2.0 + LATE_MS / 1000, "attempts past max_backoff_duration")
        # the budget the store keeps for the delivery is exact (the end of the last attempt,
        # done_ms, depends on the machine's speed and is not a rule)
        self.assertEqual(dl["deadline_ms"] - dl["first_attempt_ms"], 2000)
        self.assertIn("max_backoff_duration", dl["reason"])
        self.assertIn("500", dl["reason"])
        self.assertEqual(dl["last_status"], 500)
        self.assertEqual(len(dl["history"]), min(10, len(reqs)))
        print("\n  backoff waits (ms): %s; %d attempts in %.2fs (bound 2s)"
              % (gaps, len(reqs), elapsed))
        self.assertEqual(d.stop(), 0)

    def test_fault_matrix(self):
        # each failing sink gets 11 events: its breaker would open and keep matrix-1 from
        # dying of its budget, which is what this test watches (e2e-health tests the breaker)
        retry = ("    max_backoff_duration: %dms\n    breaker: {enabled: false}\n"
                 % BOUND_MS)
        dl_on = retry + "    dead_letter_on: [400, 410]\n"
        cases = {
            # name: (answers, extra sink yaml)
            "ok": ([A(200)], retry),
            "s500": ([A(500)], retry),
            "s429": ([A(429)], retry),
            "s408": ([A(408)], retry),
            "s400": ([A(400)], retry),
            "s400dl": ([A(400)], dl_on),
            "s410dl": ([A(410)], dl_on),
            "ra_in": (first_then(A(503, retry_after="1"), A(200)),
                      "    max_backoff_duration: 5s\n"),
            "ra_out": ([A(503, retry_after="30")], retry),
            "slow": ([A(200, delay=1.0)], retry + "    timeout: 300ms\n"),
            "reset": ([A(kind="reset_mid_body")], retry),
            "hang": ([A(kind="hang", hang_s=5)], retry + "    timeout: 300ms\n"),
            "close": ([A(kind="close")], retry),
            "closeafter": ([A(200, kind="close_after")], retry),
        }
        sinks = ""
        for name, (answers, extra) in cases.items():
            self.rx.routes["/" + name] = answers if callable(answers) else list(answers)
            sinks += h.sink_yaml(name, self.rx.url("/" + name), extra=extra)
        # TLS failure: a receiver whose self-signed certificate does not verify.
        certs = h.make_certs(self.td.path)
        tls_rx = h.Receiver(tls=h.server_tls(certs["self.pem"], certs["self.key"]))
        self.addCleanup(tls_rx.close)
        sinks += h.sink_yaml("tlsfail", tls_rx.url("/tls"), extra=retry)
        h.write_config(self.cfg, sinks)
        d = self.start()
        t_post = time.monotonic()
        st, _, resp = d.post(h.event("matrix-1"))
        self.assertEqual(st, 202, resp)
        eid = h.json.loads(resp)["id"]

        # A healthy sink keeps flowing while the others fail: each new event reaches "ok"
        # promptly although 14 other sinks are retrying.
        lat = []
        for i in range(10):
            t = time.monotonic()
            st, _, _ = d.post(h.event("flow-%d" % i))
            self.assertEqual(st, 202)
            key = "flow-%d" % i
            got = h.wait_for(lambda: [r for r in self.rx.got("/ok")
                                      if h.event_key(r.body) == key], 5, "healthy delivery")
            lat.append(got[0].t - t)
            time.sleep(0.1)
        self.assertLess(max(lat), 1.0 * h.SLOW, "healthy sink held up: %s" % lat)

        final = ("dead", "delivered")
        h.wait_for(lambda: all(x["state"] in final for x in self.deliveries(eid).values()),
                   20, "every sink to settle", interval=0.2)
        dls = self.deliveries(eid)
        every = {name: self.rx.got("/" + name) for name in cases}
        got = {name: [r for r in rs if h.event_key(r.body) == "matrix-1"]
               for name, rs in every.items()}
        report = []
        for name, dl in sorted(dls.items()):
            report.append("%s:%s/%d" % (name, dl["state"], dl["attempts"]))

        def dead_with(name, *words, min_attempts=2):
            dl = dls[name]
            self.assertEqual(dl["state"], "dead", (name, dl))
            self.assertGreaterEqual(dl["attempts"], min_attempts, (name, dl))
            for w in words:
                self.assertIn(w.lower(), dl["reason"].lower(), (name, dl["reason"]))
            # No attempt is scheduled past the bound. Dispatch runs late on a loaded 2-core
            # machine (attempts that take 1 ms idle took 100-180 ms while other builds ran),
            # so allow LATE_MS; the exact decision is unit-tested in tests/delivery.
            if os.environ.get("E2E_DEBUG"):
                print(name, [x["started_ms"] - dl["first_attempt_ms"] for x in dl["history"]],
                      [x["duration_ms"] for x in dl["history"]])
            self.assertLessEqual(dl["last_attempt_ms"] - dl["first_attempt_ms"],
                                 BOUND_MS + LATE_MS, name)
            self.assertEqual(dl["deadline_ms"] - dl["first_attempt_ms"], BOUND_MS, name)
            self.assertGreaterEqual(dl["done_ms"], dl["last_attempt_ms"], name)

        self.assertEqual(dls["ok"]["state"], "delivered")
        for name, status in (("s500", "500"), ("s429", "429"), ("s408", "408"),
                             ("s400", "400")):
            dead_with(name, status, "max_backoff_duration")
            self.assertEqual(dls[name]["last_status"], int(status))
            self.assertEqual(len(got[name]), dls[name]["attempts"])
        for name, status in (("s400dl", "400"), ("s410dl", "410")):
            dead_with(name, status, min_attempts=1)
            self.assertEqual(dls[name]["attempts"], 1, "dead_letter_on: dead at once")
            self.assertEqual(len(got[name]), 1)
        # Retry-After inside the bound: obeyed (second attempt >= 1 s later), delivered.
        self.assertEqual(dls["ra_in"]["state"], "delivered")
        self.assertEqual(len(got["ra_in"]), 2)
        self.assertGreaterEqual(got["ra_in"][1].t - got["ra_in"][0].t, 0.95)
        self.assertEqual(got["ra_in"][0].wid, got["ra_in"][1].wid)
        # Retry-After beyond the bound: dead at once.
        dead_with("ra_out", "503", min_attempts=1)
        self.assertEqual(len(got["ra_out"]), 1)
        dead_with("slow", "timeout")
        dead_with("hang", "timeout")
        self.assertIsNone(dls["hang"]["last_status"])
        dead_with("reset")
        dead_with("close")
        self.assertTrue(dls["close"]["last_error"])
        dead_with("tlsfail")
        self.assertRegex(dls["tlsfail"]["reason"].lower(), "ssl|tls|certificate")
        self.assertEqual(tls_rx.got(), [], "a request went through an unverified TLS session")
        self.assertGreaterEqual(tls_rx.tls_failures, 2)
        # 200 then close: delivered once, no duplicate.
        self.assertEqual(dls["closeafter"]["state"], "delivered")
        self.assertEqual(len(every["closeafter"]), 11)  # matrix-1 + 10 flow events, once each
        self.assertEqual(len({r.wid for r in every["closeafter"]}), 11)
        self.assertEqual(len({r.conn for r in every["closeafter"]}), 11)  # new connections
        # Every attempt of one delivery carries the same webhook-id.
        for name in cases:
            self.assertLessEqual(len({r.wid for r in got[name]}), 1, name)
        print("\n  outcomes: %s\n  healthy-sink latency while others fail: max %.0f ms"
              % (" ".join(report), max(lat) * 1000))
        logs = d.stderr()
        self.assertIn('"msg":"dead letters"', logs)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
