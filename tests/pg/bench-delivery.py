#!/usr/bin/env python3
"""bench-delivery.py - delivery throughput in cluster mode with 1, 2 and 3 outboxd nodes
beside the LMDB mode, in one run on one machine.

Each row: a backlog of N pending events (default 20,000; 271-byte Flipt events) is
imported with outboxctl while no daemon runs, then the nodes start and drain it to a
fast local receiver (nginx answering 202 to every POST, started here in a temp dir on a
loopback port with one worker, stopped by PID; without nginx the harness's Python
receiver, and the table says so). The rate is deliveries with their results committed
per second (outboxctl stats: delivered), measured between 10 % and 90 % of the backlog so
that start-up and the tail do not count. PostgreSQL: a primary with a synchronous standby
(pgharness.py); every recorded result waits for the standby too. The sink's
max_in_flight is 64 (the default; on PostgreSQL it holds across the cluster) or
OUTBOX_BENCH_MAX_IN_FLIGHT. LMDB drains a backlog five times longer so that its much
shorter window is still measured over seconds.

usage: bench-delivery.py [EVENTS]
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import pgharness  # noqa: E402
from harness import OUTBOXCTL, Daemon, Receiver, event, free_port, sink_yaml  # noqa: E402

NGINX = "/usr/sbin/nginx"
LMDB_FACTOR = 5
MAX_IN_FLIGHT = int(os.environ.get("OUTBOX_BENCH_MAX_IN_FLIGHT", "64"))


class Nginx:
    """nginx in the foreground over its own prefix: one worker, 202 to anything."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(self.dir, "logs"))
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        with open(conf, "w") as f:
            f.write("daemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                    "error_log %s/logs/error.log;\n%s"
                    "events { worker_connections 1024; }\n"
                    "http {\n  access_log off;\n  client_body_temp_path %s/body;\n"
                    "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fastcgi;\n"
                    "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
                    "  keepalive_requests 1000000;\n"
                    "  server {\n    listen 127.0.0.1:%d;\n"
                    "    location / { return 202 \"ok\"; }\n  }\n}\n"
                    % (d, d, "user root;\n" if os.geteuid() == 0 else "", d, d, d, d, d,
                       self.port))
        self.proc = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-e", d + "/logs/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful, to the master's PID
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ctl(args, timeout=600):
    r = subprocess.run([OUTBOXCTL] + args, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("outboxctl %s: %s" % (args, r.stderr))
    return r.stdout


def delivered(where):
    return sum(s["delivered"] for s in json.loads(ctl(where + ["stats", "--json"]))["sinks"])


def drain_rate(where, start_nodes, n, base):
    """Start the nodes; deliveries/s between 10 % and 90 % of n (results committed)."""
    nodes = start_nodes()
    marks = {}
    deadline = time.monotonic() + 600
    try:
        while True:
            done = delivered(where) - base
            now = time.monotonic()
            for pct in (10, 90):
                if pct not in marks and done >= n * pct / 100:
                    marks[pct] = (now, done)
            if done >= n:
                break
            if now > deadline:
                raise RuntimeError("the backlog did not drain: %d of %d" % (done, n))
            time.sleep(0.05)
    finally:
        for d in nodes:
            d.stop()
    (t1, d1), (t2, d2) = marks[10], marks[90]
    return (d2 - d1) / (t2 - t1)


def write_events(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write('{"body":%s}\n' % event("bench-%08d" % i).decode())


def config(path, outbox_yaml, url):
    with open(path, "w") as f:
        f.write("outbox:\n%s  max_size: 4GiB\ningest:\n  listen: 127.0.0.1:0\n"
                "sinks:\n%s" % (outbox_yaml, sink_yaml(
                    "hook", url, extra="    max_backoff_duration: 1h\n"
                                       "    max_in_flight: %d\n" % MAX_IN_FLIGHT)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rows = []
    with pgharness.Cluster(standby=True) as pg, tempfile.TemporaryDirectory() as tmp:
        if os.access(NGINX, os.X_OK):
            rx, rx_name = Nginx(tmp), "nginx (1 worker)"
        else:
            rx, rx_name = Receiver(), "the harness's Python receiver"
        try:
            jsonl = os.path.join(tmp, "events.jsonl")
            write_events(jsonl, n)
            ljsonl = os.path.join(tmp, "lmdb.jsonl")  # LMDB drains ~15x faster: a longer
            write_events(ljsonl, n * LMDB_FACTOR)      # backlog keeps its window measurable
            lcfg = os.path.join(tmp, "lmdb.yaml")
            ldir = os.path.join(tmp, "lmdb")
            config(lcfg, "  path: %s\n" % ldir, rx.url())
            lwhere = ["--config", lcfg, "--data-dir", ldir]
            Daemon(lcfg, ldir).stop()  # creates the store
            ctl(lwhere + ["import", ljsonl, "--sink", "hook"])
            rows.append(("LMDB, 1 outboxd", drain_rate(
                lwhere, lambda: [Daemon(lcfg, ldir)], n * LMDB_FACTOR, 0)))
            pcfg = os.path.join(tmp, "pg.yaml")
            config(pcfg, "  backend: postgres\n  postgres:\n    dsn: \"%s\"\n    pool: 4\n"
                         % pg.dsn(), rx.url())
            pwhere = ["--config", pcfg]
            base = 0
            for k in (1, 2, 3):
                ctl(pwhere + ["import", jsonl, "--sink", "hook"])
                rows.append(("postgres, %d outboxd" % k, drain_rate(
                    pwhere, lambda: [Daemon(pcfg, os.path.join(tmp, "n%d" % i))
                                     for i in range(k)], n, base)))
                base += n
        finally:
            rx.close()
    lmdb = rows[0][1]
    one = rows[1][1]
    print("delivery, a backlog of %d events (LMDB: %d) drained to %s, results committed, "
          "max_in_flight %d; PostgreSQL 15 primary + synchronous standby on this machine"
          % (n, n * LMDB_FACTOR, rx_name, MAX_IN_FLIGHT))
    print("%-22s %14s %10s %14s" % ("setup", "deliveries/s", "vs LMDB", "vs 1 node"))
    for name, rate in rows:
        print("%-22s %14.0f %9.0f%% %13s" % (
            name, rate, 100 * rate / lmdb,
            "%.0f%%" % (100 * rate / one) if name.startswith("postgres") else "-"))


if __name__ == "__main__":
    if not shutil.which(OUTBOXCTL) and not os.access(OUTBOXCTL, os.X_OK):
        sys.exit("missing %s (build first)" % OUTBOXCTL)
    main()
