#!/usr/bin/env python3
"""e2e-pgfeat.py - on a PostgreSQL outbox (pgharness.py runs the server), with two outboxd
nodes on one database: what the LMDB store did first.

Idempotency-Key (schema "idem"):
  1. a keyed post to node a is 202; the same post to node b answers the same body with
     `Idempotent-Replayed: true`; another body with that key is 422 naming the key; one
     event stored.
  2. the same key posted to both nodes at once, for many keys: both answers are 202 with
     the same body, exactly one of them not a replay (the loser of the race is given the
     winner's answer); one event per key.
  3. kill -9: a producer posts with one key per request to node a while node a is killed
     at random moments; the request whose answer was lost is retried with its key on node
     b. In the end events == keys (no event without its key, no key without its events)
     and every answer a request got is the one a replay of it gives.
  4. sweep: a node with a 1 s window forgets its keys (stats idempotency_keys drops to 0);
     the key is then new again.
Sink health (schema "health"):
  5. `outboxctl --config pause hook` (against the database): both nodes log it and make no
     attempt to it while paused; `resume`: both nodes log it and everything is delivered;
     then each node alone (the other stopped) delivers new events.
  6. the breaker opens (receiver down); both nodes stopped; outboxctl stats says down; a
     node started again starts with the sink down; the receiver back: all delivered.
Retire (schema "health", nodes stopped, the sink removed from the config):
  7. outboxctl retire hook --dead-letter --dry-run changes nothing; --dead-letter makes its
     pending deliveries dead letters; --purge deletes them and frees its name.
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import pgharness  # noqa: E402
from harness import (Answer, Daemon, Receiver, event, event_key, sink_yaml, wait_for,  # noqa: E402
                     OUTBOXCTL)

KEY = "Idempotency-Key"
REPLAYED = "idempotent-replayed"


def write_config(path, dsn, schema, sinks, ingest=""):
    with open(path, "w") as f:
        f.write("outbox:\n  backend: postgres\n  postgres:\n    dsn: \"%s\"\n"
                "    schema: %s\n    pool: 4\n    lease: 2s\n"
                "ingest:\n  listen: 127.0.0.1:0\n%s"
                "sinks:\n%s" % (dsn, schema, ingest, sinks))


def ctl(cfg, *args, ok=True):
    r = subprocess.run([OUTBOXCTL, "--config", cfg] + list(args), capture_output=True,
                       text=True, timeout=120)
    if ok:
        assert r.returncode == 0, "outboxctl %s: %s%s" % (args, r.stdout, r.stderr)
    return r


def stats(cfg):
    return json.loads(ctl(cfg, "stats", "--json").stdout)


def sink(cfg, name):
    for s in stats(cfg)["sinks"]:
        if s["name"] == name:
            return s
    raise AssertionError("no sink %s in stats" % name)


def attempts(d, name):
    """Attempts node d finished to sink `name` (all classes)."""
    n = 0
    for line in d.metrics().splitlines():
        if line.startswith('outbox_delivery_attempts_total{sink="%s"' % name):
            n += float(line.rsplit(" ", 1)[1])
    return n


def keyed(d, key, body):
    st, hd, data = d.post(body, headers={KEY: key})
    return st, hd.get(REPLAYED), data


def idempotency(pg, tmp, rx):
    cfg = os.path.join(tmp, "idem.yaml")
    write_config(cfg, pg.primary.dsn(), "idem", sink_yaml("hook", rx.url()))
    a, b = Daemon(cfg, os.path.join(tmp, "a")), Daemon(cfg, os.path.join(tmp, "b"))
    nodes = [a, b]
    try:
        # 1. replay on the other node, conflict
        st, rep, first = keyed(a, "order-1", event("one"))
        assert st == 202 and rep is None, (st, rep, first)
        st, rep, again = keyed(b, "order-1", event("one"))
        assert (st, rep, again) == (202, "true", first), (st, rep, again, first)
        st, rep, body = keyed(b, "order-1", event("another"))
        assert st == 422 and b"order-1" in body, (st, body)
        s = stats(cfg)
        assert s["events"] == 1 and s["idempotency_keys"] == 1, s

        # 2. both nodes at once, same key and body
        n_keys = 40
        answers = {}

        def post(d, i, barrier):
            barrier.wait()
            answers[(d.port, i)] = keyed(d, "race-%d" % i, event("race-%d" % i))
        for i in range(n_keys):
            barrier = threading.Barrier(2)
            ts = [threading.Thread(target=post, args=(d, i, barrier)) for d in nodes]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
        stored_by = {a.port: 0, b.port: 0}
        for i in range(n_keys):
            ra, rb = answers[(a.port, i)], answers[(b.port, i)]
            assert ra[0] == 202 and rb[0] == 202, (ra, rb)
            assert ra[2] == rb[2], (ra, rb)
            assert sorted([ra[1] or "", rb[1] or ""]) == ["", "true"], (ra, rb)
            stored_by[a.port if ra[1] is None else b.port] += 1
        s = stats(cfg)
        assert s["events"] == 1 + n_keys and s["idempotency_keys"] == 1 + n_keys, s
        print("race of %d keys on two nodes: stored by a %d, by b %d; the other replayed"
              % (n_keys, stored_by[a.port], stored_by[b.port]))

        # 3. kill -9 node a at random moments; retry a lost answer with its key on node b
        rnd = random.Random(int(os.environ.get("OUTBOX_E2E_SEED", "13")))
        keys = ["kill-%03d" % i for i in range(150)]
        got, lost, pending = {}, [], list(keys)
        stop = threading.Event()

        def produce():
            while pending and not stop.is_set():
                k = pending[0]
                try:
                    st, _, data = keyed(nodes[0], k, event(k))
                except Exception:  # killed before the answer was read
                    lost.append(k)
                    return
                if st != 202:
                    return
                got[k] = data
                pending.pop(0)
        kills = 0
        while pending and kills < 4:
            t = threading.Thread(target=produce)
            t.start()
            time.sleep(rnd.uniform(0.05, 0.4))
            nodes[0].kill()
            kills += 1
            t.join(30)
            for k in list(lost):  # the retry, with the same key, on the other node
                st, _, data = keyed(b, k, event(k))
                assert st == 202, (st, data)
                got[k] = data
                pending.remove(k)
                lost.remove(k)
            nodes[0] = Daemon(cfg, os.path.join(tmp, "a"))
        stop.set()
        for k in list(pending):
            st, _, data = keyed(nodes[0], k, event(k))
            assert st == 202, (st, data)
            got[k] = data
        for k in keys:  # every answer is the one a replay gives
            st, rep, data = keyed(b, k, event(k))
            assert (st, rep, data) == (202, "true", got[k]), (k, st, rep, data, got[k])
        s = stats(cfg)
        n = 1 + n_keys + len(keys)
        assert s["events"] == n and s["idempotency_keys"] == n, (s["events"], n, s)
        bad = pg.primary.sql(
            "SELECT count(*) FROM idem.idem_keys k WHERE cardinality(k.ids) <> 1 OR NOT EXISTS"
            " (SELECT 1 FROM idem.events e WHERE e.id = k.ids[1])")
        assert bad == "0", bad
        print("kill -9 of node a %d times: %d keys, %d events, every answer a replay's" %
              (kills, s["idempotency_keys"], s["events"]))
        for d in nodes:
            assert d.stop() == 0
    finally:
        for d in nodes:
            if d.proc.poll() is None:
                d.kill()

    # 4. the sweep, with a 1 s window
    cfg = os.path.join(tmp, "sweep.yaml")
    write_config(cfg, pg.primary.dsn(), "sweep", sink_yaml("hook", rx.url()),
                 ingest="  idempotency_window: 1s\n")
    d = Daemon(cfg, os.path.join(tmp, "c"))
    try:
        st, _, first = keyed(d, "short-lived", event("exp"))
        assert st == 202, first
        assert stats(cfg)["idempotency_keys"] == 1
        wait_for(lambda: stats(cfg)["idempotency_keys"] == 0, 60, "the sweeper to forget the key")
        st, rep, second = keyed(d, "short-lived", event("exp"))
        assert st == 202 and rep is None and second != first, (st, rep, second, first)
        assert stats(cfg)["events"] == 2
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()


class Gate:
    """503 while `down` is set, else 200."""

    def __init__(self):
        self.down = threading.Event()

    def __call__(self, req):
        return Answer(503 if self.down.is_set() else 200)


def health_and_retire(pg, tmp, rx):
    gate = Gate()
    rx.routes["/gated"] = gate
    cfg = os.path.join(tmp, "health.yaml")
    hook = sink_yaml("hook", rx.url("/gated"), extra="    max_backoff_duration: 1h\n"
                     "    breaker: {failures: 2}\n")
    write_config(cfg, pg.primary.dsn(), "health", hook)
    nodes = [Daemon(cfg, os.path.join(tmp, "ha")), Daemon(cfg, os.path.join(tmp, "hb"))]
    try:
        def post(d, k):
            st, _, body = d.post(event(k))
            assert st == 202, (st, body)

        def delivered():
            return set(event_key(r.body) for r in rx.got("/gated") if r.answered == 200)

        for i in range(10):
            post(nodes[i % 2], "before-%d" % i)
        wait_for(lambda: sink(cfg, "hook")["delivered"] == 10, 60, "first events delivered")

        # 5. pause through the database: both nodes stop, resume: both deliver
        r = ctl(cfg, "pause", "hook")
        assert "sink hook paused" in r.stdout, r.stdout
        for d in nodes:
            wait_for(lambda: d.find("sink paused") is not None, 10, "node saw the pause")
            assert d.metric('outbox_sink_paused{sink="hook"}') == 1
        before = [attempts(d, "hook") for d in nodes]
        for i in range(20):
            post(nodes[i % 2], "paused-%d" % i)
        time.sleep(2)  # let a node that missed the pause show it
        assert [attempts(d, "hook") for d in nodes] == before, before
        assert not [k for k in delivered() if k.startswith("paused-")]
        assert sink(cfg, "hook")["health"]["state"] == "paused"
        assert "already paused" in ctl(cfg, "pause", "hook").stdout
        r = ctl(cfg, "resume", "hook")
        assert "sink hook resumed after" in r.stdout, r.stdout
        for d in nodes:
            wait_for(lambda: d.find("sink resumed") is not None, 10, "node saw the resume")
        wait_for(lambda: sink(cfg, "hook")["delivered"] == 30, 60, "all delivered after resume")
        assert sum(attempts(d, "hook") for d in nodes) >= sum(before) + 20
        # which node claims is a race: each node alone must deliver (it took the resume)
        total = 30
        for i, name in enumerate(("ha", "hb")):
            other = 1 - i
            assert nodes[other].stop() == 0
            n0 = attempts(nodes[i], "hook")
            for k in range(3):
                post(nodes[i], "alone-%s-%d" % (name, k))
            total += 3
            wait_for(lambda: sink(cfg, "hook")["delivered"] == total, 60, "node alone delivers")
            assert attempts(nodes[i], "hook") >= n0 + 3
            nodes[other] = Daemon(cfg, os.path.join(tmp, ("ha", "hb")[other]))

        # 6. the breaker's state is the database's: it survives both nodes stopping
        gate.down.set()
        for i in range(4):
            post(nodes[i % 2], "down-%d" % i)
        wait_for(lambda: sink(cfg, "hook")["health"]["state"] == "down", 30, "sink down")
        for d in nodes:
            wait_for(lambda: d.metric('outbox_sink_up{sink="hook"}') == 0, 10,
                     "both nodes see it down")
            assert d.stop() == 0
        h = sink(cfg, "hook")["health"]
        assert h["state"] == "down" and h["down"], h
        nodes[0] = Daemon(cfg, os.path.join(tmp, "ha"))
        assert nodes[0].metric('outbox_sink_up{sink="hook"}') == 0
        gate.down.clear()
        wait_for(lambda: sink(cfg, "hook")["delivered"] == 40, 60, "all delivered after probe")
        assert sink(cfg, "hook")["health"]["state"] == "up"
        assert sink(cfg, "hook")["dead"] == 0

        # 7. retire: the sink leaves the config; its undelivered deliveries become dead
        #    letters, then are purged with its name
        gate.down.set()
        for i in range(5):
            post(nodes[0], "retire-%d" % i)
        assert nodes[0].stop() == 0
        pending = sink(cfg, "hook")["pending"] + sink(cfg, "hook")["inflight"]
        assert pending == 5, sink(cfg, "hook")
        cfg2 = os.path.join(tmp, "retired.yaml")
        write_config(cfg2, pg.primary.dsn(), "health", sink_yaml("other", rx.url("/other")))
        r = ctl(cfg, "retire", "hook", "--dead-letter", ok=False)
        assert r.returncode != 0 and "still configured" in r.stderr, r.stderr
        dry = json.loads(ctl(cfg2, "retire", "hook", "--dead-letter", "--dry-run",
                             "--json").stdout)
        assert dry["pending"] + dry["inflight"] == 5 and dry["delivered_kept"] == 40, dry
        assert sink(cfg, "hook")["pending"] + sink(cfg, "hook")["inflight"] == 5
        out = json.loads(ctl(cfg2, "retire", "hook", "--dead-letter", "--json").stdout)
        assert out["pending"] + out["inflight"] == 5 and not out["slot_freed"], out
        s = sink(cfg, "hook")
        assert s["dead"] == 5 and s["pending"] == 0 and s["inflight"] == 0, s
        dead = ctl(cfg2, "list", "--state", "dead", "--json").stdout
        assert "sink retired by the operator" in dead, dead
        out = json.loads(ctl(cfg2, "retire", "hook", "--purge", "--json").stdout)
        assert out["dead"] == 5 and out["delivered"] == 40 and out["slot_freed"], out
        assert "hook" not in [x["name"] for x in stats(cfg2)["sinks"]]
        assert stats(cfg2)["events"] == 0
    finally:
        for d in nodes:
            if d.proc.poll() is None:
                d.kill()


def main():
    with pgharness.Cluster(standby=False) as pg, tempfile.TemporaryDirectory() as tmp:
        rx = Receiver()
        try:
            idempotency(pg, tmp, rx)
            health_and_retire(pg, tmp, rx)
        finally:
            rx.close()
    print("ok")


if __name__ == "__main__":
    main()
