#!/usr/bin/env python3
"""e2e-cluster.py - cluster mode end to end: two outboxd nodes on one PostgreSQL outbox
(a primary with a synchronous standby, run by pgharness.py), producers posting to both.

1. Both nodes take events; one node is kill -9ed while producers keep posting (to the
   other); its claimed deliveries come back when their lease (2 s here) expires. It is
   restarted and joins again.
2. The primary is killed and the standby promoted while producers keep posting: answers
   are 202 or 503 (never a lost 202); the nodes follow the DSN's read-write host.
0. A post with an Idempotency-Key to one node is stored; the same post to the other
   node answers the same body with Idempotent-Replayed: true, another body with that key
   is 422; the event is stored once and delivered.
3. After a drain every acknowledged event reached the receiver (lost = 0); duplicates
   are counted by webhook-id (allowed: at least once). outboxctl --config reads the
   database (stats, list).
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import pgharness  # noqa: E402
from harness import (Daemon, Receiver, event, event_key, sink_yaml, wait_for,  # noqa: E402
                     OUTBOXCTL)


def write_config(path, dsn, url):
    with open(path, "w") as f:
        f.write("outbox:\n  backend: postgres\n  postgres:\n    dsn: \"%s\"\n"
                "    schema: e2e\n    pool: 4\n    lease: 2s\n"
                "ingest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (dsn, sink_yaml("hook", url, extra="    max_backoff_duration: 10m\n")))


class Producer(threading.Thread):
    """Posts events with unique keys round-robin to the live nodes; records each 202."""

    def __init__(self, name, nodes):
        super().__init__(daemon=True)
        self.name_ = name
        self.nodes = nodes
        self.acked = []
        self.refused = 0
        self.stop = False
        self.n = 0

    def run(self):
        while not self.stop:
            key = "%s-%d" % (self.name_, self.n)
            self.n += 1
            live = [d for d in list(self.nodes) if d.proc.poll() is None]
            if not live:
                time.sleep(0.05)
                continue
            d = live[self.n % len(live)]
            try:
                st, hdr, _ = d.post(event(key), timeout=5)
            except OSError:
                st = 0
            if st == 202:
                self.acked.append(key)
            else:
                assert st in (0, 503), "unexpected status %s" % st
                self.refused += 1
                time.sleep(0.05)


def ctl(cfg, *args):
    r = subprocess.run([OUTBOXCTL, "--config", cfg] + list(args), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "outboxctl %s: %s" % (args, r.stderr)
    return r.stdout


def main():
    with pgharness.Cluster(standby=True) as pg, tempfile.TemporaryDirectory() as tmp:
        rx = Receiver()
        cfg = os.path.join(tmp, "outboxd.yaml")
        write_config(cfg, pg.dsn(), rx.url())
        nodes = [Daemon(cfg, os.path.join(tmp, "a")), Daemon(cfg, os.path.join(tmp, "b"))]
        try:
            prods = [Producer("p%d" % i, nodes) for i in range(3)]
            for p in prods:
                p.start()
            wait_for(lambda: sum(len(p.acked) for p in prods) >= 150, 60, "first acks")

            # 0. an Idempotency-Key holds across the nodes: stored once, replayed by the
            #    other node, 422 for another body (delivered: checked after the drain)
            st, hd, first = nodes[1].post(event("keyed-once"), headers={"Idempotency-Key": "k-1"})
            assert st == 202 and "idempotent-replayed" not in hd, (st, hd, first)
            st, hd, again = nodes[0].post(event("keyed-once"), headers={"Idempotency-Key": "k-1"})
            assert (st, hd.get("idempotent-replayed"), again) == (202, "true", first), (st, again)
            st, _, body = nodes[0].post(event("keyed-other"), headers={"Idempotency-Key": "k-1"})
            assert st == 422 and b"k-1" in body, (st, body)

            # 1. kill -9 one node; the others keep going; restart it
            nodes[0].kill()
            wait_for(lambda: sum(len(p.acked) for p in prods) >= 300, 60, "acks on one node")
            nodes[0] = Daemon(cfg, os.path.join(tmp, "a"))
            wait_for(lambda: sum(len(p.acked) for p in prods) >= 400, 60, "acks after restart")

            # 2. failover: kill the primary, promote the standby
            before = sum(len(p.acked) for p in prods)
            pg.kill_primary()
            wait_for(lambda: nodes[1].request("GET", "/healthz")[0] == 503, 30,
                     "/healthz 503 while the database is down")
            pg.promote()
            wait_for(lambda: nodes[1].request("GET", "/healthz")[0] == 200, 60,
                     "/healthz 200 on the new primary")
            wait_for(lambda: sum(len(p.acked) for p in prods) >= before + 100, 120,
                     "acks after failover")
            for p in prods:
                p.stop = True
            for p in prods:
                p.join(30)
            acked = set(k for p in prods for k in p.acked)
            refused = sum(p.refused for p in prods)

            # 3. drain
            def received():
                return set(event_key(r.body) for r in rx.got())
            try:
                wait_for(lambda: acked <= received(), 120, "every acknowledged event delivered")
            except AssertionError:
                for key in sorted(acked - received())[:10]:  # where each missing one is
                    srv = pg.standby if pg.standby.proc.poll() is None else pg.primary
                    print("missing %s: %s" % (key, srv.sql(
                        "SELECT coalesce(string_agg(format('event %%s state %%s lease %%s until %%s "
                        "attempts %%s', e.id, d.state, d.lease_owner, d.lease_until_ms, d.attempts),"
                        " '; '), 'not in the database') FROM e2e.events e LEFT JOIN e2e.deliveries d"
                        " ON d.event_id = e.id WHERE convert_from(e.body, 'UTF8') LIKE '%%\"%s\"%%'"
                        % key)))
                raise
            ids = [r.headers.get("webhook-id") for r in rx.got()]
            dups = len(ids) - len(set(ids))
            st = json.loads(ctl(cfg, "stats", "--json"))
            listed = ctl(cfg, "list", "--state", "delivered", "--limit", "5", "--json")
            assert len([ln for ln in listed.splitlines() if ln.strip()]) == 5, listed
            # check reads the database; it records no last-check file (there is no directory:
            # outbox.path's default must not be created or written to)
            chk = subprocess.run([OUTBOXCTL, "--config", cfg, "check"], capture_output=True,
                                 text=True, timeout=300, cwd=tmp)
            assert chk.returncode == 0, "outboxctl check: %s" % chk.stderr
            assert "warning" not in chk.stderr, chk.stderr
            assert not os.path.exists(os.path.join(tmp, "outbox-data")), os.listdir(tmp)
            for d in nodes:
                d.stop()
            rx.close()
            print("acked %d, refused (503/connection) %d, lost %d, duplicates %d, stats: %s"
                  % (len(acked), refused, len(acked - received()), dups,
                     json.dumps(st)[:300]))
            assert not (acked - received())
            assert "keyed-once" in received() and "keyed-other" not in received()
            assert pg.standby.sql("SELECT count(*) FROM e2e.events WHERE convert_from(body, "
                                  "'UTF8') LIKE '%keyed-once%'") == "1"
        finally:  # a failed assertion must not leave the nodes running
            for d in nodes:
                if d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait()


if __name__ == "__main__":
    main()
