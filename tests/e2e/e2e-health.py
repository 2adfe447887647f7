#!/usr/bin/env python3
"""e2e-health.py - sink health against the real outboxd (suite 'health'): the circuit
breaker, pause/resume, and the time held not spending budgets.

  - outage: a receiver answering 503 for several times the sinks' budget while events keep
    arriving. Each sink (one unordered, one ordered) goes down after breaker.failures
    different deliveries; meanwhile the receiver sees probes only, never two at once, and
    (unordered) never the same delivery twice in a row; afterwards nothing is dead, even
    the deliveries whose first attempts failed before the breaker opened, everything is
    delivered, and the ordered sink delivers in event order. Logs and /metrics say so.
  - poison: one event the receiver always refuses (500) on a healthy sink still dies of
    its budget, and the breaker stays closed while the others succeed.
  - pause: paused (by outboxctl, next to the daemon) for longer than the budget, with
    deliveries that had failed before: nothing dead, all delivered after resume.
  - restart: a sink that is down stays down across a daemon restart.
  - give_up_after: an outage longer than it makes the held deliveries dead letters that
    say why.
No timed assertions: waits are bounded polls; sleeps only let an outage last.
With OUTBOX_PG_DSN set (tests/pg runs it as pg-e2e-health) the outbox is a PostgreSQL schema.
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

A = h.Answer
BUDGET = "1500ms"
BUDGET_S = 1.5


class Gate:
    """A receiver route: 503 while `down` is set, else 200 (or `refuse(req)` -> status).
    Counts requests answered while down and the most that were being answered at once."""

    def __init__(self, refuse=None):
        self.down = threading.Event()
        self.lock = threading.Lock()
        self.active = self.max_active = 0
        self.refuse = refuse
        self.down_wids = []  # webhook-ids answered 503, in order, since watch()

    def watch(self):
        with self.lock:
            self.max_active = 0
            self.down_wids = []

    def __call__(self, req):
        if not self.down.is_set():
            st = self.refuse(req) if self.refuse else 200
            return A(st)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.down_wids.append(req.wid)
        time.sleep(0.05)  # hold it: a second request sent meanwhile would overlap
        with self.lock:
            self.active -= 1
        return A(503)


def breaker(failures, extra=""):
    return "    breaker: {failures: %d%s}\n" % (failures, extra)


class Health(h.Case):
    prefix = "obx-e2e-health-"

    def metric(self, d, name, sink):
        return d.metric('%s{sink="%s"}' % (name, sink))

    def sink_stats(self, sink):
        for s in h.stats(self.data)["sinks"]:
            if s["name"] == sink:
                return s
        raise AssertionError("no sink %s in stats" % sink)

    def one_failing_sink(self, extra, budget=BUDGET):
        """A daemon with one sink `hook` whose receiver answers 503 until gate.down clears."""
        gate = Gate()
        gate.down.set()
        self.rx.routes["/hook"] = gate
        h.write_config(self.cfg, h.sink_yaml("hook", self.rx.url("/hook"),
                                             "    max_backoff_duration: %s\n" % budget + extra))
        return gate, self.start()

    def post(self, d, key):
        st, _, resp = d.post(h.event(key))
        self.assertEqual(st, 202, resp)
        return h.json.loads(resp)["id"]

    def delivered_in_order(self, path):
        """Event keys of the 200 answers on path, in the order they were answered."""
        return [h.event_key(r.body) for r in self.rx.got(path) if r.answered == 200]

    def test_outage_holds_budgets_and_probes_one_at_a_time(self):
        gate, ogate = Gate(), Gate()
        gate.down.set()
        ogate.down.set()
        self.rx.routes["/u"] = gate
        self.rx.routes["/o"] = ogate
        common = "    max_backoff_duration: %s\n" % BUDGET
        h.write_config(self.cfg,
                       h.sink_yaml("u", self.rx.url("/u"),
                                   common + "    max_in_flight: 4\n" + breaker(3)) +
                       h.sink_yaml("o", self.rx.url("/o"),
                                   common + "    ordered: true\n" + breaker(3)))
        d = self.start()
        keys = []
        for i in range(8):
            keys.append("e%02d" % i)
            self.post(d, keys[-1])
        h.wait_for(lambda: self.metric(d, "outbox_sink_up", "u") == 0, 20, "sink u down")
        h.wait_for(lambda: self.metric(d, "outbox_sink_up", "o") == 0, 20, "sink o down")
        gate.watch()
        h.wait_for(lambda: d.find("sink down") is not None, 10, "the 'sink down' log line")
        # the outage lasts three budgets while events keep arriving
        end = time.monotonic() + 3 * BUDGET_S
        i = 8
        while time.monotonic() < end:
            keys.append("e%02d" % i)
            self.post(d, keys[-1])
            i += 1
            time.sleep(0.3)
        self.assertEqual(self.sink_stats("u")["dead"], 0)
        self.assertEqual(self.sink_stats("o")["dead"], 0)
        with gate.lock:
            probes, most = list(gate.down_wids), gate.max_active
        self.assertGreater(len(probes), 0, "no probe while down")
        self.assertLessEqual(most, 1, "two requests at once while down")
        for a, b in zip(probes, probes[1:]):
            self.assertNotEqual(a, b, "the same delivery probed twice in a row: %s" % probes)
        self.assertLessEqual(ogate.max_active, 1)
        health = self.sink_stats("u")["health"]
        self.assertEqual(health["state"], "down")
        self.assertIn("failed in a row", health["why"])
        self.assertEqual(health["last_error"], "status 503")
        out = h.ctl(self.data, "stats").stdout
        self.assertIn("health   u: down since", out)

        t_up = time.monotonic()
        gate.down.clear()
        ogate.down.clear()
        n = len(keys)
        h.wait_for(lambda: self.sink_stats("u")["delivered"] == n and
                   self.sink_stats("o")["delivered"] == n, 60, "every event delivered")
        for s in ("u", "o"):
            st = self.sink_stats(s)
            self.assertEqual((st["dead"], st["pending"]), (0, 0), st)
        # the first deliveries failed before the breaker opened and were delivered more than
        # a budget after their first attempt: the outage did not spend their budgets
        first = {}
        for r in self.rx.got("/u"):
            first.setdefault(r.wid, r.t)
        e00 = [r for r in self.rx.got("/u") if h.event_key(r.body) == "e00"]
        self.assertEqual(e00[-1].answered, 200)
        self.assertGreater(e00[-1].t - e00[0].t, BUDGET_S)
        self.assertGreater(e00[-1].t, t_up)
        self.assertEqual(self.delivered_in_order("/o"), keys)
        self.assertEqual(sorted(set(self.delivered_in_order("/u"))), keys)
        h.wait_for(lambda: self.metric(d, "outbox_sink_up", "u") == 1, 10, "sink u up")
        self.assertGreaterEqual(self.metric(d, "outbox_sink_state_changes_total", "u"), 2)
        logged = lambda msg: [r for r in d.logs() if r.get("msg") == msg and r["sink"] == "u"]
        down = logged("sink down")
        up = h.wait_for(lambda: logged("sink up"), 10, "the 'sink up' log line")
        self.assertEqual(len(down), 1)  # one line per transition
        self.assertEqual(len(up), 1)
        self.assertEqual(down[0]["level"], "warn")
        self.assertIn("3 different deliveries failed in a row", down[0]["why"])
        self.assertEqual(up[0]["level"], "info")
        self.assertIn("delivered", up[0]["why"])
        self.assertEqual(d.stop(), 0)

    def test_poison_event_dies_and_the_breaker_stays_closed(self):
        gate = Gate(refuse=lambda req: 500 if h.event_key(req.body) == "poison" else 200)
        self.rx.routes["/hook"] = gate
        h.write_config(self.cfg, h.sink_yaml("hook", self.rx.url("/hook"),
                                             "    max_backoff_duration: %s\n" % BUDGET +
                                             breaker(2)))
        d = self.start()
        eid = self.post(d, "poison")
        for i in range(400):  # others keep succeeding meanwhile
            if h.deliveries(self.data, eid)["hook"]["state"] == "dead":
                break
            self.post(d, "ok%d" % i)
            time.sleep(0.05)
        dl = h.deliveries(self.data, eid)["hook"]
        self.assertEqual(dl["state"], "dead")
        self.assertIn("max_backoff_duration", dl["reason"])
        self.assertGreater(dl["attempts"], 2)
        self.assertEqual(self.metric(d, "outbox_sink_up", "hook"), 1)
        self.assertEqual(self.metric(d, "outbox_sink_state_changes_total", "hook"), 0)
        self.assertIsNone(d.find("sink down"))
        self.assertEqual(d.stop(), 0)

    def test_pause_longer_than_the_budget_then_resume(self):
        gate, d = self.one_failing_sink(breaker(100))
        ids = [self.post(d, "p%d" % i) for i in range(3)]
        h.wait_for(lambda: all(h.deliveries(self.data, e)["hook"]["attempts"] >= 1 for e in ids),
                   10, "a failed first attempt each")
        r = h.ctl(self.data, "pause", "hook")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sink hook paused", r.stdout)
        h.wait_for(lambda: d.find("sink paused") is not None, 10, "the daemon saw the pause")
        ids += [self.post(d, "p%d" % i) for i in range(3, 6)]
        n_before = len(self.rx.got("/hook"))
        time.sleep(3 * BUDGET_S)
        self.assertEqual(self.sink_stats("hook")["dead"], 0)
        # at most the requests running when the pause was seen; none of the new events
        self.assertFalse([q for q in self.rx.got("/hook")[n_before:]
                          if h.event_key(q.body) in ("p3", "p4", "p5")])
        self.assertEqual(h.stats(self.data)["sinks"][0]["health"]["state"], "paused")
        r = h.ctl(self.data, "pause", "hook")
        self.assertIn("already paused", r.stdout)
        gate.down.clear()
        r = h.ctl(self.data, "resume", "hook")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sink hook resumed after", r.stdout)
        h.wait_for(lambda: self.sink_stats("hook")["delivered"] == 6, 30, "all delivered")
        self.assertEqual(self.sink_stats("hook")["dead"], 0)
        self.assertEqual(h.ctl(self.data, "pause", "nosuch").returncode, 3)
        self.assertEqual(d.stop(), 0)

    def test_down_survives_a_restart(self):
        gate, d = self.one_failing_sink(breaker(2))
        for i in range(3):
            self.post(d, "r%d" % i)
        h.wait_for(lambda: self.metric(d, "outbox_sink_up", "hook") == 0, 20, "sink down")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(h.stats(self.data)["sinks"][0]["health"]["state"], "down")
        d2 = self.start()
        self.assertEqual(self.metric(d2, "outbox_sink_up", "hook"), 0)
        rec = h.wait_for(lambda: d2.find("sink down"), 10, "'sink down' logged at start")
        self.assertEqual(rec["level"], "warn")
        time.sleep(2 * BUDGET_S)
        self.assertEqual(self.sink_stats("hook")["dead"], 0)
        gate.down.clear()
        h.wait_for(lambda: self.sink_stats("hook")["delivered"] == 3, 30, "all delivered")
        self.assertEqual(self.metric(d2, "outbox_sink_up", "hook"), 1)
        self.assertEqual(d2.stop(), 0)

    def test_give_up_after_turns_a_long_outage_into_dead_letters(self):
        gate, d = self.one_failing_sink(breaker(2, ", give_up_after: 1s"), budget="1h")
        ids = [self.post(d, "g%d" % i) for i in range(5)]
        h.wait_for(lambda: self.sink_stats("hook")["dead"] == 5, 30, "5 dead letters")
        for e in ids:
            dl = h.deliveries(self.data, e)["hook"]
            self.assertIn("breaker.give_up_after (1s)", dl["reason"])
        gate.down.clear()
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    h.require_binaries()
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
