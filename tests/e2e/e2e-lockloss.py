#!/usr/bin/env python3
"""e2e-lockloss.py - lock.mdb deleted or replaced under the running outboxd (suite 'faults').

LMDB coordinates writers through lock.mdb; a process that opens the store after it was
deleted makes a new one and becomes a second, unsynchronised writer. The real daemon and
outboxctl must refuse: once lock.mdb is deleted (or replaced by another file), the
daemon answers 503 with the reason to every event (it notices within about a second) and
logs why once; outboxctl refuses to open the store and names the file; after a restart
everything works again and no acknowledged event was lost.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class LockLoss(h.Case):
    prefix = "obx-e2e-lockloss-"

    def setUp(self):
        super().setUp()
        h.write_config(self.cfg, h.sink_yaml("sink", self.rx.url()))

    def post_until_refused(self, d):
        """POST events until one is refused (bounded); returns (acked ids, last answer)."""
        acked = []
        for _ in range(int(200 * h.SLOW)):  # the daemon looks every second; 20 s at most
            st, _, body = d.post(h.event("k%d" % len(acked)))
            if st != 202:
                return acked, (st, body)
            acked.append(json.loads(body)["id"])
            time.sleep(0.1)
        self.fail("outboxd kept acknowledging events after lock.mdb was lost")

    def check_refused(self, d, what):
        lock = os.path.join(self.data, "lock.mdb")
        acked, (st, body) = self.post_until_refused(d)
        self.assertEqual(st, 503, body)
        self.assertIn("lock.mdb", json.loads(body)["error"])
        st, _, body = d.post(h.event("again"))  # still refused, logged only once
        self.assertEqual(st, 503)
        r = h.ctl(self.data, "stats")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(lock, r.stderr)
        self.assertIn(what, r.stderr)
        self.assertEqual(d.stop(), 0)
        lost = [rec for rec in d.logs() if rec.get("msg") == "store lock file lost; refusing events"]
        self.assertEqual(len(lost), 1, d.stderr())
        self.assertIn("lock.mdb", lost[0].get("error", ""))
        return acked

    def restart_and_verify(self, acked):
        d = self.start()
        st, _, _ = d.post(h.event("after-restart"))
        self.assertEqual(st, 202)
        h.wait_for(lambda: sum(sk["delivered"] for sk in h.stats(self.data)["sinks"])
                   >= len(acked) + 1, 30, "every acknowledged event delivered after the restart")
        for eid in acked:
            self.assertEqual(h.deliveries(self.data, eid)["sink"]["state"], "delivered")
        r = h.ctl(self.data, "check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d.stop(), 0)

    def test_deleted_lock_file(self):
        d = self.start()
        st, _, body = d.post(h.event("before"))
        self.assertEqual(st, 202, body)
        acked = [json.loads(body)["id"]]
        os.unlink(os.path.join(self.data, "lock.mdb"))
        acked += self.check_refused(d, "missing")
        self.assertFalse(os.path.exists(os.path.join(self.data, "lock.mdb")),
                         "the refused outboxctl must not create a new lock.mdb")
        self.restart_and_verify(acked)

    def test_replaced_lock_file(self):
        d = self.start()
        st, _, body = d.post(h.event("before"))
        self.assertEqual(st, 202, body)
        acked = [json.loads(body)["id"]]
        lock = os.path.join(self.data, "lock.mdb")
        with open(lock + ".new", "wb") as f:
            f.write(b"\0" * 8192)
        os.rename(lock + ".new", lock)
        acked += self.check_refused(d, "replaced")
        self.restart_and_verify(acked)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(verbosity=2)
