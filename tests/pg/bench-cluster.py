#!/usr/bin/env python3
"""bench-cluster.py - durable ingest in cluster mode beside the LMDB mode and a plain
pgbench insert loop, in one run on one machine.

A PostgreSQL primary with a synchronous standby (pgharness.py; every commit waits for the
standby's flush). Rows: one LMDB outboxd; 1, 2 and 3 outboxd nodes on the database (wrk
spread over the nodes, 16 connections in all, one 271-byte Flipt event per POST); pgbench
inserting the same body into a one-column table with 16 clients. Every 202 is durable.
Sinks point at a closed port with a 10-minute backoff, so delivery costs one refused
connection per event and the rows measure ingest.

usage: bench-cluster.py [SECONDS]   (needs wrk; exits 77 = skipped without it)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import pgharness  # noqa: E402
from harness import Daemon, event, free_port, sink_yaml  # noqa: E402

CONNS = 16
BODY = event("bench-key-0000000000").decode()


def lua(path):
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = %s\n" % json.dumps(BODY))


def wrk_many(urls, script, seconds):
    """wrk against every url at once (CONNS split); total requests/s and non-2xx count."""
    out = [None] * len(urls)

    def one(i, url):
        c = max(1, CONNS // len(urls))
        r = subprocess.run(["wrk", "-t1", "-c%d" % c, "-d%ds" % seconds, "-s", script, url],
                           capture_output=True, text=True)
        out[i] = r.stdout
    ts = [threading.Thread(target=one, args=(i, u)) for i, u in enumerate(urls)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rps = sum(float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1)) for o in out)
    bad = sum(int(m.group(1)) for o in out
              for m in [re.search(r"Non-2xx or 3xx responses:\s+(\d+)", o)] if m)
    return rps, bad


def config(path, outbox_yaml):
    dead = "http://127.0.0.1:%d/hook" % free_port()
    with open(path, "w") as f:
        f.write("outbox:\n%s  max_size: 4GiB\ningest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (outbox_yaml, sink_yaml(
                    "hook", dead, initial="10m", max_interval="10m",
                    extra="    max_backoff_duration: 1h\n    max_in_flight: 4\n")))


def pgbench(pg, seconds):
    pg.primary.sql("CREATE TABLE IF NOT EXISTS bench_ev (body bytea NOT NULL)")
    script = os.path.join(pg.tmp, "insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO bench_ev (body) VALUES ('%s');\n" % BODY.replace("'", "''"))
    os.chmod(script, 0o644)
    if pg.pg_user:
        os.chown(script, pg.pg_user.pw_uid, pg.pg_user.pw_gid)
    r = subprocess.run(pg.as_pg([os.path.join(pgharness.PG_BIN, "pgbench"), "-n", "-h",
                                 "127.0.0.1", "-p", str(pg.primary.port), "-U", "outbox",
                                 "-c", str(CONNS), "-j", "2", "-T", str(seconds), "-f", script,
                                 "outbox"]), capture_output=True, text=True)
    m = re.search(r"tps = ([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError("pgbench: %s %s" % (r.stdout, r.stderr))
    return float(m.group(1))


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if not shutil.which("wrk"):
        print("wrk not installed: benchmark skipped")
        sys.exit(77)
    rows = []
    with pgharness.Cluster(standby=True) as pg, tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "post.lua")
        lua(script)
        lcfg = os.path.join(tmp, "lmdb.yaml")
        config(lcfg, "  path: %s/lmdb\n" % tmp)
        d = Daemon(lcfg, os.path.join(tmp, "lmdb"))
        wrk_many(["http://127.0.0.1:%d/v1/events" % d.port], script, 1)  # warm-up
        rows.append(("LMDB, 1 outboxd",) + wrk_many(
            ["http://127.0.0.1:%d/v1/events" % d.port], script, seconds))
        d.stop()
        pcfg = os.path.join(tmp, "pg.yaml")
        config(pcfg, "  backend: postgres\n  postgres:\n    dsn: \"%s\"\n    pool: 4\n"
                     % pg.dsn())
        nodes = []
        for n in (1, 2, 3):
            while len(nodes) < n:
                nodes.append(Daemon(pcfg, os.path.join(tmp, "n%d" % len(nodes))))
            urls = ["http://127.0.0.1:%d/v1/events" % x.port for x in nodes]
            wrk_many(urls, script, 1)
            rows.append(("postgres, %d outboxd" % n,) + wrk_many(urls, script, seconds))
        for x in nodes:
            x.stop()
        tps = pgbench(pg, seconds)
    lmdb = rows[0][1]
    print("durable ingest, %d connections, %d s per row, PostgreSQL 15 primary + synchronous "
          "standby on this machine" % (CONNS, seconds))
    print("%-22s %12s %10s %12s %8s" % ("setup", "events/s", "vs LMDB", "vs pgbench", "non-2xx"))
    for name, rps, bad in rows:
        print("%-22s %12.0f %9.0f%% %11.0f%% %8d" % (name, rps, 100 * rps / lmdb,
                                                   100 * rps / tps, bad))
    print("%-22s %12.0f %9.0f%% %11s" % ("pgbench INSERT loop", tps, 100 * tps / lmdb, "100%"))
    if any(bad for _, _, bad in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
