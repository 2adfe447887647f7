#!/usr/bin/env python3
"""e2e-idempotency.py - the Idempotency-Key of POST /v1/events against the real outboxd
and outboxctl (suite 'e2e'; the crash case is in e2e-crashpoints.py).

  - a repeated key with the same body: the first 202 body again, `Idempotent-Replayed:
    true`, one event stored (outboxctl stats and list) and delivered once;
  - the same key with another body: 422 naming the key, nothing stored;
  - an NDJSON batch (with an unrouted line) under one key: the replay answers the same ids
    and nulls;
  - bad keys (empty, too long, not printable ASCII): 400 naming the header;
  - threads racing with one key (thread-per-connection and pool mode): exactly one event,
    every answer has its id;
  - expiry: with a 1s window the sweeper forgets the key (stats idempotency_keys drops to
    0) and the key is then accepted as new;
  - kill -9: a producer posts events with one key each while outboxd is SIGKILLed at random
    moments; after each restart it retries the request whose answer it lost, with the same
    key; in the end every key is stored exactly once (events == keys) and every answer it
    got is the one a replay gives.
With OUTBOX_PG_DSN set (tests/pg runs it as pg-e2e-idempotency) the outbox is a PostgreSQL
schema.
"""
import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KEY = "Idempotency-Key"


class TestIdempotency(h.Case):
    prefix = "obx-e2e-idem-"

    def config(self, ingest="", events='["*:*"]'):
        sink = ("  - name: webhook\n    url: %s\n    events: %s\n"
                "    initial_interval: 50ms\n    max_interval: 200ms\n" % (self.rx.url(), events))
        h.write_config(self.cfg, sink, ingest_yaml=ingest)

    def post(self, d, body, key, ctype="application/json"):
        st, hd, data = d.post(body, ctype=ctype, headers={KEY: key} if key is not None else {})
        return st, hd, data

    def events_stored(self):
        return h.stats(self.data)["events"]

    def test_repeat_answers_first_202_and_stores_once(self):
        self.config()
        d = self.start()
        body = h.event("idem-1")
        st, hd, first = self.post(d, body, "order-1001")
        self.assertEqual(st, 202, first)
        self.assertNotIn("idempotent-replayed", hd)
        for _ in range(3):
            st, hd, again = self.post(d, body, "order-1001")
            self.assertEqual(st, 202, again)
            self.assertEqual(hd.get("idempotent-replayed"), "true")
            self.assertEqual(again, first)
        eid = json.loads(first)["id"]
        st2 = h.stats(self.data)
        self.assertEqual(st2["events"], 1)
        self.assertEqual(st2["idempotency_keys"], 1)
        listed = h.ctl_json_lines(self.data, "list", "--json")
        self.assertEqual([str(x["id"]) for x in listed], [eid])
        h.wait_for(lambda: len(self.rx.got("/hook")) >= 1, 20, "the delivery")
        self.assertEqual(d.metric('outbox_ingest_events_total{outcome="replayed"}'), 3)
        self.assertEqual(d.metric('outbox_ingest_events_total{outcome="stored"}'), 1)
        # Another key, same body: a new event.
        st, hd, other = self.post(d, body, "order-1002")
        self.assertEqual(st, 202)
        self.assertNotEqual(json.loads(other)["id"], eid)
        self.assertEqual(self.events_stored(), 2)
        h.wait_for(lambda: len(self.rx.got("/hook")) >= 2, 20, "both deliveries")
        self.assertEqual(d.stop(), 0)
        # One delivery per stored event: the replays made none.
        got = self.rx.got("/hook")
        self.assertEqual(len(got), 2)
        self.assertEqual(len({r.wid for r in got}), 2)

    def test_other_body_is_422(self):
        self.config()
        d = self.start()
        st, _, first = self.post(d, h.event("a"), "k-422")
        self.assertEqual(st, 202)
        st, hd, err = self.post(d, h.event("b"), "k-422")
        self.assertEqual(st, 422, err)
        self.assertNotIn("idempotent-replayed", hd)
        msg = json.loads(err)["error"]
        self.assertIn("k-422", msg)
        self.assertIn("different request", msg)
        # The same bytes as NDJSON are another request too.
        st, _, err = self.post(d, h.event("a"), "k-422", ctype="application/x-ndjson")
        self.assertEqual(st, 422, err)
        self.assertEqual(self.events_stored(), 1)
        self.assertEqual(d.metric('outbox_ingest_rejected_total{reason="idempotency_conflict"}'),
                         2)
        self.assertEqual(d.stop(), 0)

    def test_ndjson_batch_one_key(self):
        self.config(events='["flag:*"]')
        d = self.start()
        lines = [h.event("n1"), h.event("s1", typ="segment"), h.event("n2")]
        body = b"".join(x + b"\n" for x in lines)
        st, hd, first = self.post(d, body, "batch-7", ctype="application/x-ndjson")
        self.assertEqual(st, 202, first)
        ids = json.loads(first)["ids"]
        self.assertEqual(len(ids), 3)
        self.assertIsNone(ids[1])  # unrouted: not stored
        st, hd, again = self.post(d, body, "batch-7", ctype="application/x-ndjson")
        self.assertEqual(st, 202)
        self.assertEqual(hd.get("idempotent-replayed"), "true")
        self.assertEqual(json.loads(again)["ids"], ids)
        self.assertEqual(self.events_stored(), 2)
        # A batch whose events all go unrouted keeps its key as well.
        seg = h.event("s2", typ="segment")
        st, hd, first = self.post(d, seg, "unrouted-1")
        self.assertEqual((st, json.loads(first)), (202, {"id": None}))
        st, hd, again = self.post(d, seg, "unrouted-1")
        self.assertEqual((st, hd.get("idempotent-replayed"), again), (202, "true", first))
        st, _, _ = self.post(d, h.event("s3", typ="segment"), "unrouted-1")
        self.assertEqual(st, 422)
        self.assertEqual(d.stop(), 0)

    def test_bad_keys_400(self):
        self.config()
        d = self.start()
        for key in ("", "k" * 256, "caf\u00e9"):
            st, _, err = self.post(d, h.event("bad"), key)
            self.assertEqual(st, 400, (key, err))
            self.assertIn("Idempotency-Key", json.loads(err)["error"])
        st, _, _ = self.post(d, h.event("ok"), "k" * 255)
        self.assertEqual(st, 202)
        self.assertEqual(self.events_stored(), 1)
        self.assertEqual(d.stop(), 0)

    def race(self, ingest):
        self.config(ingest=ingest)
        d = self.start()
        body = h.event("race")
        out, barrier = [], threading.Barrier(8)

        def one():
            barrier.wait()
            out.append(self.post(d, body, "race-key"))

        ths = [threading.Thread(target=one) for _ in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        self.assertEqual([st for st, _, _ in out], [202] * 8)
        self.assertEqual(len({data for _, _, data in out}), 1)
        self.assertEqual(sum(1 for _, hd, _ in out if "idempotent-replayed" not in hd), 1)
        self.assertEqual(self.events_stored(), 1)
        self.assertEqual(d.stop(), 0)

    def test_race_thread_per_connection(self):
        self.race("")

    def test_race_pool_mode(self):
        self.race("  pool_threads: 2\n")

    def test_expired_key_is_new_again(self):
        self.config(ingest="  idempotency_window: 1s\n")
        d = self.start()
        body = h.event("exp")
        st, _, first = self.post(d, body, "short-lived")
        self.assertEqual(st, 202)
        self.assertEqual(h.stats(self.data)["idempotency_keys"], 1)
        h.wait_for(lambda: h.stats(self.data)["idempotency_keys"] == 0, 30,
                   "the sweeper to forget the key")
        st, hd, second = self.post(d, body, "short-lived")
        self.assertEqual(st, 202)
        self.assertNotIn("idempotent-replayed", hd)
        self.assertNotEqual(json.loads(second)["id"], json.loads(first)["id"])
        self.assertEqual(self.events_stored(), 2)
        self.assertEqual(d.stop(), 0)

    def test_kill9_then_retry_with_same_key_stores_once(self):
        self.config()
        keys = ["kill-%03d" % i for i in range(h.scaled(300, 60))]
        pending, answers, lost = list(keys), {}, []
        rnd = random.Random(int(os.environ.get("OUTBOX_E2E_SEED", "15")))

        def produce(d):
            while pending:
                k = pending[0]
                try:
                    st, _, data = self.post(d, h.event(k), k)
                except Exception:  # killed before the answer was read: retry later
                    lost.append(k)
                    return
                if st != 202:
                    return
                answers.setdefault(k, data)
                pending.pop(0)

        cycles = 0
        for _ in range(8):
            if not pending:
                break
            cycles += 1
            d = self.start()
            t = threading.Thread(target=produce, args=(d,))
            t.start()
            time.sleep(rnd.uniform(0.005, 0.08))
            d.kill()  # SIGKILL, wherever the request is
            t.join()
        d = self.start()
        for k in keys:
            st, hd, data = self.post(d, h.event(k), k)
            self.assertEqual(st, 202, data)
            if k in answers:
                self.assertEqual(hd.get("idempotent-replayed"), "true")
                self.assertEqual(data, answers[k])
        sys.stderr.write("kill -9 cycles %d, answers lost and retried %d, keys %d\n"
                         % (cycles, len(lost), len(keys)))
        st = h.stats(self.data)
        self.assertEqual(st["events"], len(keys), "lost answers retried: %d" % len(lost))
        self.assertEqual(st["idempotency_keys"], len(keys))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(verbosity=2)
