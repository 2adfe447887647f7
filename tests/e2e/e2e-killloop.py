#!/usr/bin/env python3
"""e2e-killloop.py - the SIGKILL loop against the real outboxd (suite 'crash').

A load generator posts events over HTTP from several threads (single events and NDJSON
batches) and writes each acknowledged id to an fsynced ledger only after its 202. The
daemon is SIGKILLed at a random moment 0-300 ms after it reports "started", and restarted,
while a receiver (answering 200, and 503 to about one request in ten) records what arrives
by webhook-id. At the end the daemon is restarted and drained with a deadline, and:
  - every acknowledged id was delivered with the body it was acknowledged for, or is a
    dead letter with a reason (outboxctl list --state dead --json): lost must be 0;
  - nothing arrives that was never posted, and no id is acknowledged for two bodies;
  - duplicates (the same webhook-id delivered more than once) are counted and reported;
  - outboxctl check finds the store consistent.

Bounds: OUTBOX_E2E_KILL_CYCLES (default 100) cycles or OUTBOX_E2E_KILL_SECONDS (default
240) seconds, whichever comes first; fewer than OUTBOX_E2E_KILL_MIN (default 100) cycles
fails. Long runs: OUTBOX_E2E_KILL_CYCLES=5000 OUTBOX_E2E_KILL_SECONDS=3600.
"""
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CYCLES = int(os.environ.get("OUTBOX_E2E_KILL_CYCLES", "100"))
SECONDS = float(os.environ.get("OUTBOX_E2E_KILL_SECONDS", "240"))
MIN_CYCLES = int(os.environ.get("OUTBOX_E2E_KILL_MIN", str(min(100, CYCLES))))
PRODUCERS = 4


class TestKillLoop(h.Case):
    prefix = "obx-e2e-kill-"

    def test_kill_loop_loses_nothing_acknowledged(self):
        rng = random.Random(os.environ.get("OUTBOX_E2E_SEED") or time.time_ns())
        data, cfg = self.td.join("data"), self.td.join("outboxd.yaml")
        h.write_config(cfg, h.sink_yaml("webhook", self.rx.url(), initial="20ms",
                                        max_interval="100ms",
                                        extra="    max_backoff_duration: 1h\n"))
        flaky = [True]

        def answer(req):
            if flaky[0] and rng.random() < 0.1:
                return h.Answer(503)
            return h.Answer(200)
        self.rx.script = answer
        ledger = h.Ledger(self.td.join("ledger"))
        port = h.free_port()
        listen = "127.0.0.1:%d" % port
        stop = threading.Event()
        attempted = set()
        att_lock = threading.Lock()
        errors = []

        def producer(n):
            import http.client
            i = 0
            while not stop.is_set():
                batch = 1 if rng.random() < 0.8 else 3
                keys = ["p%d-%d" % (n, i + j) for j in range(batch)]
                i += batch
                with att_lock:
                    attempted.update(keys)
                try:
                    st, ids, resp = h.post_keys(port, keys, timeout=5)
                except (OSError, http.client.HTTPException):  # dropped mid-answer
                    time.sleep(0.005)
                    continue
                if st == 202:
                    if ids is None:
                        errors.append("bad 202 body %r" % resp)
                        continue
                    for eid, k in zip(ids, keys):
                        ledger.add(eid, k)
                elif st == 503:
                    time.sleep(0.01)
                else:
                    errors.append("unexpected status %d: %r" % (st, resp))

        threads = [threading.Thread(target=producer, args=(n,), daemon=True)
                   for n in range(PRODUCERS)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        cycles = 0
        sink_id = None
        while cycles < CYCLES and time.monotonic() - t0 < SECONDS:
            d = h.Daemon(cfg, data, listen=listen)
            self.daemons.append(d)
            if sink_id is None:
                sink_id = d.find("sink")["id"]
            time.sleep(rng.uniform(0, 0.3))
            d.kill()
            self.daemons.remove(d)
            rep = h.sanitizer_report(d.stderr())
            self.assertIsNone(rep, d.stderr()[-3000:])
            cycles += 1
        loop_s = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(10 * h.SLOW)
        ledger.close()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(cycles, MIN_CYCLES,
                                "only %d kill cycles ran in %.0fs" % (cycles, loop_s))

        # Drain: restart, receiver healthy, wait for nothing pending or in flight.
        flaky[0] = False
        acked = h.Ledger.read(self.td.join("ledger"))
        self.assertGreater(len(acked), 0, "nothing was acknowledged")
        d = h.Daemon(cfg, data, listen=listen)
        self.daemons.append(d)

        def drained():
            t = h.stats(data)["total"]
            return t["pending"] == 0 and t["inflight"] == 0
        h.wait_for(drained, 120, "the backlog to drain", interval=0.5)
        self.assertEqual(d.stop(), 0)
        self.daemons.remove(d)

        dead = {}
        for rec in h.ctl_json_lines(data, "list", "--state", "dead", "--json"):
            dead[rec["webhook_id"]] = rec
        by_wid = {}
        for r in self.rx.got():
            by_wid.setdefault(r.wid, []).append(r)
        lost, wrong_body, delivered, dead_n = [], [], 0, 0
        # webhook-id = evt_<store id>_<event>_<sink>; the store id from any delivery
        store_id = h.ctl_json_lines(data, "list", "--limit", "1", "--json")[0]["webhook_id"]
        store_id = store_id.split("_")[1]
        for eid, key in acked.items():
            wid = "evt_%s_%s_%d" % (store_id, eid, sink_id)
            oks = [r for r in by_wid.get(wid, []) if r.answered and 200 <= r.answered < 300]
            if oks:
                delivered += 1
                if any(h.event_key(r.body) != key for r in by_wid[wid]):
                    wrong_body.append((eid, key))
            elif wid in dead:
                dead_n += 1
                self.assertTrue(dead[wid].get("reason"), dead[wid])
            else:
                lost.append((eid, key))
        received_keys = {h.event_key(r.body) for r in self.rx.got()}
        never_posted = received_keys - attempted
        unacked_delivered = received_keys - set(acked.values())
        duplicates = sum(
            max(0, len([r for r in rs if r.answered and 200 <= r.answered < 300]) - 1)
            for rs in by_wid.values())
        dup_ids = sum(1 for rs in by_wid.values()
                      if len([r for r in rs if r.answered and 200 <= r.answered < 300]) > 1)
        chk = h.ctl(data, "check")
        print("\nkill loop: cycles=%d (%.0fs) acknowledged=%d delivered=%d dead=%d lost=%d "
              "duplicates=%d (over %d webhook-ids) delivered-but-unacknowledged=%d "
              "requests=%d" % (cycles, loop_s, len(acked), delivered, dead_n, len(lost),
                               duplicates, dup_ids, len(unacked_delivered),
                               len(self.rx.got())))
        self.assertEqual(lost, [], "acknowledged events lost")
        self.assertEqual(wrong_body, [], "an acknowledged id delivered another event's body")
        self.assertEqual(never_posted, set(), "delivered events that were never posted")
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
