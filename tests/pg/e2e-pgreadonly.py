#!/usr/bin/env python3
"""e2e-pgreadonly.py - the primary turns read-only (a failover in progress, a demoted
primary) under two running nodes: issue 13's "database read-only" failure behaviour.

Two outboxd nodes on one PostgreSQL outbox (pgharness.py runs the server), one sink whose
receiver answers 200.
1. Events posted to both nodes are delivered.
2. The server is made read-only for every new transaction (default_transaction_read_only
   with a configuration reload - what a primary being demoted looks like to a client)
   while producers keep posting to both nodes: each answer is 202 or 503 (never another
   code); a 503 has Retry-After and a JSON error, the log names the read-only server, /healthz
   answers 503 on both nodes, and no delivery is recorded (nothing can be written).
3. Writable again: /healthz 200 on both, every acknowledged event reaches the receiver
   (lost = 0) and there is no dead letter; no event answered 503 was stored.
"""
import json
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import pgharness  # noqa: E402
from harness import Daemon, Receiver, event, event_key, sink_yaml, wait_for  # noqa: E402


def write_config(path, dsn, url):
    with open(path, "w") as f:
        f.write("outbox:\n  backend: postgres\n  postgres:\n    dsn: \"%s\"\n"
                "    schema: ro\n    pool: 2\n    lease: 2s\n"
                "ingest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (dsn, sink_yaml("hook", url,
                                               extra="    max_backoff_duration: 10m\n")))


class Producer(threading.Thread):
    """Posts uniquely keyed events alternately to the nodes; sorts answers by status."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.acked, self.refused, self.other = [], [], []
        self.stop = False
        self.n = 0

    def run(self):
        while not self.stop:
            key = "p-%d" % self.n
            d = self.nodes[self.n % len(self.nodes)]
            self.n += 1
            try:
                st, hdr, body = d.post(event(key), timeout=10)
            except OSError as e:  # the nodes stay up throughout: a failure
                self.other.append((key, 0, str(e)))
                continue
            if st == 202:
                self.acked.append(key)
            elif st == 503:
                self.refused.append((key, hdr, body))
                time.sleep(0.05)
            else:
                self.other.append((key, st, body))
            time.sleep(0.01)


def read_only(pg, on):
    if on:
        pg.primary.sql("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        pg.primary.sql("ALTER SYSTEM RESET default_transaction_read_only")
    pg.primary.sql("SELECT pg_reload_conf()")


def main():
    with pgharness.Cluster(standby=False) as pg, tempfile.TemporaryDirectory() as tmp:
        rx = Receiver()
        cfg = os.path.join(tmp, "outboxd.yaml")
        write_config(cfg, pg.dsn(), rx.url())
        nodes = []
        try:
            nodes = [Daemon(cfg, os.path.join(tmp, n)) for n in ("a", "b")]

            def delivered():
                return set(event_key(r.body) for r in rx.got() if r.answered == 200)

            # 1. both nodes take and deliver
            first = ["w%d" % i for i in range(10)]
            for i, k in enumerate(first):
                st, _, body = nodes[i % 2].post(event(k))
                assert st == 202, (st, body)
            wait_for(lambda: set(first) <= delivered(), 60, "events delivered while writable")

            # 2. read-only under load
            prod = Producer(nodes)
            prod.start()
            wait_for(lambda: len(prod.acked) >= 20, 60, "acks before the switch")
            read_only(pg, True)
            for d in nodes:
                wait_for(lambda: d.request("GET", "/healthz")[0] == 503, 30,
                         "/healthz 503 on a read-only primary")
            wait_for(lambda: len(prod.refused) >= 10, 60, "503s while read-only")
            key, hdr, body = prod.refused[-1]
            assert int(hdr.get("retry-after", "0")) >= 1, hdr
            err = json.loads(body)
            assert "unavailable" in err.get("error", ""), err
            records = pg.primary.sql("SELECT count(*) FROM ro.deliveries WHERE state = 3")
            got_before = len(rx.got())
            time.sleep(1.0)  # a while read-only: nothing can be recorded as delivered
            assert pg.primary.sql("SELECT count(*) FROM ro.deliveries WHERE state = 3") == \
                records

            # 3. writable again
            read_only(pg, False)
            for d in nodes:
                wait_for(lambda: d.request("GET", "/healthz")[0] == 200, 60,
                         "/healthz 200 once writable")
            n_refused = len(prod.refused)
            wait_for(lambda: len(prod.acked) >= 20 + 20, 60, "acks after the switch back")
            prod.stop = True
            prod.join(30)
            acked = set(first) | set(prod.acked)
            wait_for(lambda: acked <= delivered(), 120, "every acknowledged event delivered",
                     interval=0.5)
            dead = pg.primary.sql("SELECT count(*) FROM ro.deliveries WHERE state = 4")
            refused = set(k for k, _, _ in prod.refused)
            stored = set(event_key(b) for b in pg.primary.sql(
                "SELECT convert_from(body, 'UTF8') FROM ro.events").splitlines())
            stored_refused = refused & stored
            print("acked %d, refused %d (during the switch %d), delivered %d, requests while "
                  "read-only %d, dead %s" % (len(acked), len(refused), n_refused,
                                            len(acked & delivered()), got_before, dead))
            assert not prod.other, prod.other[:5]
            assert dead == "0", dead
            assert not stored_refused, sorted(stored_refused)[:5]
            assert acked <= stored, sorted(acked - stored)[:5]
            # the operator's log names why (the client's error stays generic)
            assert any("read-only" in line for line in nodes[0].stderr().splitlines()
                       + nodes[1].stderr().splitlines()), nodes[0].stderr()[-2000:]
            for d in nodes:
                assert d.stop() == 0, d.stderr()
        finally:
            for d in nodes:
                if d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait()
            rx.close()


if __name__ == "__main__":
    main()
