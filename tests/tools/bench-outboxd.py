#!/usr/bin/env python3
"""bench-outboxd.py - HTTP ingest benchmark of the real outboxd binary.

For each daemon setup, three wrk runs, one 271-byte Flipt event per POST, keep-alive:
  max rate, 64 connections   durable acks/s and ack latency p50/p99/p99.9 at that rate
  max rate, 1 connection     acks/s and latency of one client posting back to back
  paced ~1,000 events/s      ack latency p50/p99/p99.9 (12 connections, each waiting
                             10 ms after an answer: ~1,000/s at ~2 ms per ack)
Setups: one sink delivering to a fast no-op receiver meanwhile (as in production), in
both HTTP threading modes (ingest.pool_threads 0 = a thread per connection, 2 = epoll
pool + committers), and the ingest path alone (the sink's receiver never answers, so
delivery uses no CPU). The same loads against bench-outboxd-nop (the same HTTP server
library, answering 202 without storing) give the ceiling of the HTTP layer here.
wrk's own --latency table stops at p99: a Lua done() hook prints p99.9.

usage: bench-outboxd.py OUTBOXD NOP_SERVER [SECONDS]   (needs wrk; skipped (77) without)
Prints a table; targets: >= 30,000 events/s durable (>= 40 % of the ceiling) at 64
connections, p99 <= 5 ms at 1,000/s. Targets are reported, never asserted.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

EVENT = ('{"version":"0.2","type":"flag","action":"created","metadata":{"actor":'
         '{"authentication":"none","ip":"127.0.0.1"}},"payload":{"description":"",'
         '"enabled":true,"key":"my-flag","name":"My Flag","namespace_key":"default"},'
         '"timestamp":"2024-06-09T12:00:00Z","status":"success"}')


def lua(path, delay_ms=None):
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = %s\n" % json.dumps(EVENT))
        f.write('function response(status, headers, body)\n'
                '  if status ~= 202 then non202 = (non202 or 0) + 1 end\nend\n')
        if delay_ms:
            f.write("function delay()\n  return %d\nend\n" % delay_ms)
        f.write('function done(summary, latency, requests)\n'
                '  io.write(string.format("LATENCY %.3f %.3f %.3f %.3f\\n",\n'
                '    latency:percentile(50) / 1000, latency:percentile(90) / 1000,\n'
                '    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))\nend\n')


def wrk(url, script, conns, threads, seconds):
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    lat = re.search(r"^LATENCY ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", out, re.M)
    pct = dict(zip(("50", "90", "99", "99.9"), map(float, lat.groups()))) if lat else {}
    return rps, int(non2xx.group(1)) if non2xx else 0, errors.group(0) if errors else "", pct


def start_nop(nop):
    p = subprocess.Popen([nop], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    return p, port


def start_outboxd(outboxd, tmp, sink_url, pool):
    cfg = os.path.join(tmp, "bench.yaml")
    data = os.path.join(tmp, "data")
    shutil.rmtree(data, ignore_errors=True)
    with open(cfg, "w") as f:
        f.write("outbox:\n  path: %s\n  max_size: 8GiB\n  retention: 1h\n"
                "ingest:\n  listen: 127.0.0.1:0\n  max_body: 1MiB\n  pool_threads: %d\n"
                "sinks:\n  - name: bench\n    url: %s\n    events: [\"*:*\"]\n"
                % (data, pool, sink_url))
    # Logs go to a file, not a pipe: nobody reads a pipe once the daemon has started, and
    # a full pipe would block its logging.
    log = os.path.join(tmp, "outboxd-%d.log" % pool)
    with open(log, "w") as err:
        p = subprocess.Popen([outboxd, "--config", cfg, "--log-format", "json"], stderr=err)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and p.poll() is None:
        with open(log) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("msg") == "started":
                    return p, int(rec["listen"].rsplit(":", 1)[1])
        time.sleep(0.02)
    p.kill()
    raise SystemExit("outboxd did not start")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    if not shutil.which("wrk"):
        print("wrk not installed: benchmark skipped")
        return 77
    outboxd, nop = sys.argv[1], sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else int(
        os.environ.get("OUTBOX_BENCH_SECONDS", "5"))
    tmp = tempfile.mkdtemp(prefix="outboxd-bench-")
    procs = []
    try:
        load, paced = os.path.join(tmp, "post.lua"), os.path.join(tmp, "paced.lua")
        lua(load)
        lua(paced, delay_ms=10)  # 12 connections x one request per ~12 ms = ~1,000/s
        rx, rx_port = start_nop(nop)
        procs.append(rx)
        # A receiver that never answers (listening, never accepting): the engine's requests
        # hang, so that row measures the ingest path alone, without delivery's CPU.
        stall = socket.socket()
        stall.bind(("127.0.0.1", 0))
        stall.listen(1024)
        stall_url = "http://127.0.0.1:%d/hook" % stall.getsockname()[1]
        runs = (("64 connections, max rate", load, 64, 2), ("1 connection, max rate", load, 1, 1),
                ("paced ~1,000/s", paced, 12, 1))
        rows = []
        for pool, sink in ((0, None), (2, None), (2, stall_url)):
            d, port = start_outboxd(outboxd, tmp, sink or "http://127.0.0.1:%d/hook" % rx_port,
                                    pool)
            procs.append(d)
            url = "http://127.0.0.1:%d/v1/events" % port
            wrk(url, load, 64, 2, 1)  # warm-up
            res = [wrk(url, script, conns, threads, seconds)
                   for _, script, conns, threads in runs]
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                metrics = r.read().decode()
            d.terminate()
            d.wait(60)
            stored = re.search(r'outbox_ingest_events_total\{outcome="stored"\} (\d+)', metrics)
            rows.append((pool, sink, res, stored.group(1) if stored else "?"))
        nop_p, nop_port = start_nop(nop)
        procs.append(nop_p)
        nop_url = "http://127.0.0.1:%d/v1/events" % nop_port
        ceil = [wrk(nop_url, load, conns, threads, seconds)
                for _, _, conns, threads in runs[:2]]
        print("outboxd ingest benchmark (%ds per row, 271-byte events, full durability, "
              "%d CPUs, load average %.1f)" % (seconds, os.cpu_count(), os.getloadavg()[0]))
        print("%-40s %10s %8s %9s %9s %9s" % ("run", "events/s", "ceiling", "p50 ms",
                                                "p99 ms", "p99.9 ms"))

        def line(name, r, c=None):
            pct = r[3]
            print("%-40s %10.0f %8s %9.2f %9.2f %9.2f" % (
                name, r[0], "%.0f%%" % (100.0 * r[0] / c[0]) if c and c[0] else "",
                pct.get("50", float("nan")), pct.get("99", float("nan")),
                pct.get("99.9", float("nan"))))

        print("no-op HTTP server (thread per connection): the ceiling")
        for (name, _, _, _), r in zip(runs, ceil):
            line("  " + name, r)
        best = None
        for pool, sink, res, stored in rows:
            print("pool_threads=%d (%s), %s" % (
                pool, "epoll pool" if pool else "thread per connection",
                "deliveries stalled (ingest path alone)" if sink else "delivering meanwhile"))
            for i, ((name, _, _, _), r) in enumerate(zip(runs, res)):
                line("  " + name, r, ceil[i] if i < 2 else None)
            bad = sum(r[1] for r in res)
            print("  non-202 answers %d, socket errors %s, events stored (from /metrics) %s" % (
                bad, "; ".join(r[2] for r in res if r[2]) or "none", stored))
            if bad:
                print("FAIL: outboxd answered something else than 202")
                return 1
            if not sink and (best is None or res[0][0] > best[0]):
                best = (res[0][0], res[2][3].get("99", 1e9), ceil[0][0])
        verdict = lambda ok: "met" if ok else "NOT met"
        print("targets, delivering meanwhile: 64 connections >= 30,000/s: %.0f/s, %s; "
              ">= 40 %% of the ceiling: %.0f %%, %s; p99 <= 5 ms at 1,000/s: %.2f ms, %s" % (
                  best[0], verdict(best[0] >= 30000), 100.0 * best[0] / best[2],
                  verdict(best[0] >= 0.4 * best[2]), best[1], verdict(best[1] <= 5.0)))
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
