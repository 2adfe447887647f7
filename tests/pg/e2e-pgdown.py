#!/usr/bin/env python3
"""e2e-pgdown.py - the database down for longer than a sink's budget (issue 13's proof).

One outboxd on a PostgreSQL outbox (pgharness.py runs the server), one sink with a 4 s
budget (max_backoff_duration), its breaker off (so no held time of a sink down covers the
outage: only the store's own unavailability may) and a receiver that fails (500) until
told otherwise.
1. Events are posted and acknowledged; each is attempted (and fails) at least once, so
   its budget has started.
2. The database is stopped for three budgets: ingest answers 503 with Retry-After and a
   JSON error, /healthz answers 503.
3. The database is started again; the receiver keeps failing each delivery's first
   attempt after the restart, then accepts: every acknowledged event is delivered and
   there is no dead letter - the time the store was unavailable spent no budget.
4. outboxctl stats on the database outbox names the backend and the database (host, port,
   dbname, user, schema; never the DSN's password) and no LMDB directory or daemon check.
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
from harness import Answer, Daemon, Receiver, event, event_key, sink_yaml, wait_for  # noqa: E402
from harness import OUTBOXCTL  # noqa: E402

BUDGET_S = 4  # room for a noisy machine before and after the outage
N = 20


def write_config(path, dsn, url):
    with open(path, "w") as f:
        f.write("outbox:\n  backend: postgres\n  postgres:\n    dsn: \"%s\"\n"
                "    schema: down\n    pool: 2\n    lease: 2s\n"
                "ingest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (dsn, sink_yaml("hook", url, extra="    max_backoff_duration: %ds\n"
                                               "    breaker:\n      enabled: false\n"
                                               % BUDGET_S)))


class Script:
    """500 while failing; after that each event's first request fails once more, then 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failing = True
        self.after = {}  # key -> requests seen since failing ended

    def __call__(self, req):
        key = event_key(req.body)
        with self.lock:
            if self.failing:
                return Answer(500)
            n = self.after[key] = self.after.get(key, 0) + 1
        return Answer(500 if n == 1 else 200)


def main():
    with pgharness.Cluster(standby=False) as pg, tempfile.TemporaryDirectory() as tmp:
        rx = Receiver()
        script = Script()
        rx.script = script
        cfg = os.path.join(tmp, "outboxd.yaml")
        write_config(cfg, pg.dsn(), rx.url())
        d = Daemon(cfg, os.path.join(tmp, "a"))
        try:
            keys = ["k%d" % i for i in range(N)]
            for k in keys:
                st, _, body = d.post(event(k))
                assert st == 202, (st, body)

            def attempted():
                return set(event_key(r.body) for r in rx.got())
            wait_for(lambda: set(keys) <= attempted(), 60, "every event attempted once")

            pg.primary.stop()
            wait_for(lambda: d.request("GET", "/healthz")[0] == 503, 30,
                     "/healthz 503 while the database is down")
            st, hdr, body = d.post(event("while-down"))
            assert st == 503, (st, body)
            assert int(hdr.get("retry-after", "0")) >= 1, hdr
            err = json.loads(body)
            assert err.get("error"), err
            time.sleep(3 * BUDGET_S)  # down for three budgets (nothing is asserted on time)
            down_metrics = d.metrics()  # the store is down: no snapshot, the pool is there
            assert "outbox_store_up 0" in down_metrics, down_metrics
            assert "outbox_store_pool_size 2" in down_metrics, down_metrics
            st, _, _ = d.post(event("still-down"))
            assert st == 503, st
            with script.lock:
                script.failing = False
            pg.primary.start()
            wait_for(lambda: d.request("GET", "/healthz")[0] == 200, 60,
                     "/healthz 200 with the database back")

            def delivered():
                return set(event_key(r.body) for r in rx.got() if r.answered == 200)
            def dead_letters():
                return pg.primary.sql("SELECT count(*) FROM down.deliveries WHERE state = 4")
            wait_for(lambda: set(keys) <= delivered() or dead_letters() != "0", 120,
                     "every acknowledged event delivered (or a dead letter)", interval=0.5)
            dead = dead_letters()
            metrics = d.metrics()
            d.stop()
            for rec in d.logs() if os.environ.get("PGDOWN_LOGS") else []:  # when debugging
                print(rec)
            print("delivered %d of %d, dead letters %s" % (len(delivered() & set(keys)), N, dead))
            assert dead == "0", pg.primary.sql(
                "SELECT string_agg(reason, '; ') FROM down.deliveries WHERE state = 4")
            assert 'outbox_dead{sink="hook"} 0' in metrics, metrics
            pool = dict((ln.split('"')[1], float(ln.rsplit(" ", 1)[1]))
                        for ln in metrics.splitlines()
                        if ln.startswith("outbox_store_pool_connections{"))
            assert set(pool) == {"busy", "idle", "unopened"}, pool
            assert sum(pool.values()) == 2 and pool["busy"] + pool["idle"] >= 1, pool

            # 4. stats names the database, never the password (trust auth ignores it)
            cfg2 = os.path.join(tmp, "secret.yaml")
            write_config(cfg2, pg.dsn() + " password=hunter2-not-shown", rx.url())
            out = subprocess.run([OUTBOXCTL, "--config", cfg2, "stats"], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            first = out.stdout.splitlines()[0]
            assert first.startswith("outbox   postgres host=127.0.0.1 port=%d dbname=outbox "
                                    "user=outbox schema=down (schema " % pg.primary.port), first
            assert "daemon" not in out.stdout and "hunter2" not in out.stdout + out.stderr, out
            js = json.loads(subprocess.run([OUTBOXCTL, "--config", cfg2, "stats", "--json"],
                                           capture_output=True, text=True, timeout=60).stdout)
            assert js["store"] == first.split("   ", 1)[1].split(" (schema")[0], js["store"]
            assert js["data_dir"] is None and js["daemon_running"] is None, js
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            rx.close()


if __name__ == "__main__":
    main()
