#!/usr/bin/env python3
"""e2e-pgkillloop.py - the cluster kill loop: three outboxd nodes on one PostgreSQL outbox
(a primary with a synchronous standby, run by pgharness.py), suites pg/crash/e2e.

Producers post over HTTP (single events and NDJSON batches) to random live nodes and
fsync each acknowledged id to a ledger after its 202, before counting it. Meanwhile:
  1. for many cycles the harness kill -9s one or two random nodes (every fifth cycle all
     three) after a random delay and restarts them; with a 2 s lease, the deliveries a
     killed node had claimed come back to the others as due;
  2. the primary is killed and the standby promoted while the producers keep posting (the
     nodes follow the DSN's hosts with target_session_attrs=read-write), and a few more
     node kill cycles run on the new primary;
  3. the producers stop, the receiver turns healthy (it answered 503 to about one request
     in twenty until then) and the backlog drains.
Asserted: every ledger id was delivered (a 2xx answer) or is a dead letter with a reason
(outboxctl --config list --state dead): lost = 0; every request carried the webhook-id of
its event (evt_<store uid>_<event id>_<sink id>, the same on every redelivery; for
events committed but never acknowledged, one webhook-id per event all the same); nothing
arrives that was never posted; no answer other than 202/503 or a dropped connection;
outboxctl check passes. Duplicates (a webhook-id answered 2xx more than once) are counted
and printed: allowed, delivery is at least once.

Bounds: OUTBOX_KILLLOOP_CYCLES (default 50) cycles or OUTBOX_KILLLOOP_SECONDS (default
120) seconds of kill loop before the failover, whichever comes first; fewer than
OUTBOX_KILLLOOP_MIN (default 20, at most the cycles asked for) fails. A long run:
OUTBOX_KILLLOOP_CYCLES=100000 OUTBOX_KILLLOOP_SECONDS=900 (see README, "Running several
nodes").
"""
import http.client
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
import harness as h  # noqa: E402

CYCLES = int(os.environ.get("OUTBOX_KILLLOOP_CYCLES", "50"))
SECONDS = float(os.environ.get("OUTBOX_KILLLOOP_SECONDS", "120"))
MIN_CYCLES = int(os.environ.get("OUTBOX_KILLLOOP_MIN", str(min(20, CYCLES))))
AFTER_FAILOVER = 5  # node kill cycles on the promoted standby
NODES = 3
PRODUCERS = 4


def write_config(path, dsn, url):
    with open(path, "w") as f:
        f.write("outbox:\n  backend: postgres\n  postgres:\n    dsn: \"%s\"\n"
                "    schema: killloop\n    pool: 4\n    lease: 2s\n"
                "ingest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (dsn, h.sink_yaml("hook", url, initial="20ms",
                                                 max_interval="200ms",
                                                 extra="    max_backoff_duration: 1h\n")))


def ctl(cfg, *args, timeout=120):
    r = subprocess.run([h.OUTBOXCTL, "--config", cfg] + list(args), capture_output=True,
                       text=True, timeout=timeout * h.SLOW, env=h.sanitizer_env())
    assert r.returncode == 0, "outboxctl %s failed (%d): %s" % (args, r.returncode, r.stderr)
    return r.stdout


def ctl_json_lines(cfg, *args):
    return [json.loads(ln) for ln in ctl(cfg, *args).splitlines() if ln.strip()]


class Cluster:
    """NODES outboxd slots on fixed loopback ports; a slot's process may be dead."""

    def __init__(self, cfg, tmp):
        self.cfg, self.tmp = cfg, tmp
        self.ports = [h.free_port() for _ in range(NODES)]
        self.nodes = [None] * NODES
        self.sink_id = None

    def start(self, i):
        d = h.Daemon(self.cfg, os.path.join(self.tmp, "node%d" % i),
                     listen="127.0.0.1:%d" % self.ports[i])
        if self.sink_id is None:
            self.sink_id = d.find("sink")["id"]
        self.nodes[i] = d

    def kill(self, i):
        d = self.nodes[i]
        d.kill()
        rep = h.sanitizer_report(d.stderr())
        assert rep is None, "sanitizer report (%s):\n%s" % (rep, d.stderr()[-3000:])

    def live_ports(self):
        return [self.ports[i] for i, d in enumerate(self.nodes)
                if d is not None and d.proc.poll() is None]

    def kill_all(self):
        for d in self.nodes:
            if d is not None and d.proc.poll() is None:
                d.kill()


class Producers:
    """PRODUCERS threads posting to random live nodes; each 202's ids go to the ledger."""

    def __init__(self, cluster, ledger, rng):
        self.cluster, self.ledger, self.rng = cluster, ledger, rng
        self.stop = threading.Event()
        self.attempted = set()
        self.lock = threading.Lock()
        self.errors = []
        self.acked = 0
        self.refused = 0
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True)
                        for n in range(PRODUCERS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(30 * h.SLOW)

    def run(self, n):
        i = 0
        while not self.stop.is_set():
            ports = self.cluster.live_ports()
            if not ports:
                time.sleep(0.02)
                continue
            port = self.rng.choice(ports)
            batch = 1 if self.rng.random() < 0.8 else 3
            keys = ["p%d-%d" % (n, i + j) for j in range(batch)]
            i += batch
            with self.lock:
                self.attempted.update(keys)
            try:
                st, ids, resp = h.post_keys(port, keys)
            except (OSError, http.client.HTTPException):  # killed mid-request
                with self.lock:
                    self.refused += 1
                time.sleep(0.01)
                continue
            if st == 202:
                if ids is None:
                    self.errors.append("bad 202 body %r" % resp)
                    continue
                for eid, k in zip(ids, keys):
                    self.ledger.add(eid, k)  # fsynced before it counts
                with self.lock:
                    self.acked += batch
            elif st == 503:
                with self.lock:
                    self.refused += 1
                time.sleep(0.02)
            else:
                self.errors.append("unexpected status %d: %r" % (st, resp[:300]))


def kill_cycle(cl, rng, cycle):
    """kill -9 one or two random nodes (all of them every fifth cycle), restart them."""
    time.sleep(rng.uniform(0.1, 1.2))
    if cycle % 5 == 4:
        victims = list(range(NODES))
    else:
        victims = rng.sample(range(NODES), rng.choice((1, 1, 2)))
    for i in victims:
        cl.kill(i)
    time.sleep(rng.uniform(0, 0.4))
    for i in victims:
        cl.start(i)


def main():
    h.require_binaries()
    seed = os.environ.get("OUTBOX_E2E_SEED") or str(time.time_ns())
    rng = random.Random(seed)
    print("seed %s" % seed)
    with pgharness.Cluster(standby=True) as pg, tempfile.TemporaryDirectory() as tmp:
        rx = h.Receiver()
        flaky = [True]

        def answer(req):
            if flaky[0] and rng.random() < 0.05:
                return h.Answer(503)
            return h.Answer(200)
        rx.script = answer
        cfg = os.path.join(tmp, "outboxd.yaml")
        write_config(cfg, pg.dsn(), rx.url())
        ledger_path = os.path.join(tmp, "ledger")
        ledger = h.Ledger(ledger_path)
        cl = Cluster(cfg, tmp)
        prods = Producers(cl, ledger, rng)
        try:
            for i in range(NODES):
                cl.start(i)
            prods.start()
            h.wait_for(lambda: prods.acked >= 50, 60, "first acknowledgements")

            # 1. kill loop
            t0 = time.monotonic()
            cycles = 0
            while cycles < CYCLES and time.monotonic() - t0 < SECONDS:
                kill_cycle(cl, rng, cycles)
                cycles += 1
            loop_s = time.monotonic() - t0
            assert cycles >= MIN_CYCLES, "only %d kill cycles ran in %.0fs" % (cycles, loop_s)

            # 2. failover while the producers post, then more node kills on the new primary
            before = prods.acked
            pg.kill_primary()
            time.sleep(rng.uniform(0.2, 1.0))
            pg.promote()
            h.wait_for(lambda: prods.acked >= before + 200, 120, "acks after the failover")
            for c in range(AFTER_FAILOVER):
                kill_cycle(cl, rng, c)
            after = prods.acked
            h.wait_for(lambda: prods.acked >= after + 100, 60, "acks after the last kills")
            prods.join()
            ledger.close()
            assert prods.errors == [], prods.errors[:5]

            # 3. drain: healthy receiver, every node up, nothing pending or in flight
            flaky[0] = False
            acked = h.Ledger.read(ledger_path)  # {event id: key}
            assert acked, "nothing was acknowledged"

            def drained():
                t = json.loads(ctl(cfg, "stats", "--json"))["total"]
                return t["pending"] == 0 and t["inflight"] == 0
            h.wait_for(drained, 180, "the backlog to drain", interval=0.5)
            for d in cl.nodes:
                assert d.stop() == 0, d.stderr()[-3000:]

            uid = ctl_json_lines(cfg, "list", "--limit", "1", "--json")[0]["webhook_id"]
            uid = uid.split("_")[1]
            dead = {rec["webhook_id"]: rec
                    for rec in ctl_json_lines(cfg, "list", "--state", "dead", "--json")}
            key_eid = {k: e for e, k in acked.items()}
            reqs = rx.got()
            wid_of_key, keys_of_wid, wrong_wid = {}, {}, []
            ok_by_wid = {}
            for r in reqs:
                key = h.event_key(r.body)
                if key in key_eid:
                    want = "evt_%s_%s_%d" % (uid, key_eid[key], cl.sink_id)
                    if r.wid != want:
                        wrong_wid.append((key, r.wid, want))
                wid_of_key.setdefault(key, set()).add(r.wid)
                keys_of_wid.setdefault(r.wid, set()).add(key)
                if r.answered and 200 <= r.answered < 300:
                    ok_by_wid[r.wid] = ok_by_wid.get(r.wid, 0) + 1
            lost, delivered, dead_n = [], 0, 0
            for eid, key in acked.items():
                wid = "evt_%s_%s_%d" % (uid, eid, cl.sink_id)
                if ok_by_wid.get(wid):
                    delivered += 1
                elif wid in dead:
                    dead_n += 1
                    assert dead[wid].get("reason"), dead[wid]
                else:
                    lost.append((eid, key))
            duplicates = sum(n - 1 for n in ok_by_wid.values() if n > 1)
            dup_ids = sum(1 for n in ok_by_wid.values() if n > 1)
            never_posted = set(wid_of_key) - prods.attempted
            two_wids = {k: w for k, w in wid_of_key.items() if len(w) != 1}
            shared = {w: k for w, k in keys_of_wid.items() if len(k) != 1}
            unacked = len(set(wid_of_key) - set(key_eid))
            ctl(cfg, "check", timeout=300)
            print("pg kill loop: cycles=%d (+%d after failover, %.0fs) acknowledged=%d "
                  "delivered=%d dead=%d lost=%d duplicates=%d (over %d webhook-ids) "
                  "delivered-but-unacknowledged=%d requests=%d refused/dropped=%d"
                  % (cycles, AFTER_FAILOVER, loop_s, len(acked), delivered, dead_n, len(lost),
                     duplicates, dup_ids, unacked, len(reqs), prods.refused))
            assert lost == [], "acknowledged events lost: %s" % lost[:10]
            assert wrong_wid == [], "requests with another event's webhook-id: %s" % (
                wrong_wid[:5],)
            assert not two_wids, "an event delivered under two webhook-ids: %s" % (
                list(two_wids.items())[:5],)
            assert not shared, "one webhook-id for two events: %s" % list(shared.items())[:5]
            assert not never_posted, "delivered but never posted: %s" % list(never_posted)[:5]
        finally:  # a failed assertion must not leave the nodes running
            prods.stop.set()
            cl.kill_all()
            rx.close()


if __name__ == "__main__":
    main()
