#!/usr/bin/env python3
"""bench-outboxd.py - HTTP ingest benchmark of the real outboxd binary.

1. Acknowledged (durable) events/s: wrk, 64 keep-alive connections, one 271-byte Flipt
   event per POST, against outboxd with one sink (delivering to a fast no-op receiver
   while the load runs, as in production), in both HTTP threading modes
   (ingest.pool_threads: 0 = a thread per connection, 2 = epoll pool + committers).
2. The same wrk load against bench-outboxd-nop (the same HTTP server library and mode,
   answering 202 without storing): the ceiling of the HTTP layer on this machine.
3. Ack latency percentiles at about 1,000 events/s (wrk with a per-request delay).
4. For comparison, the ingest path alone: the sink's receiver never answers, so the
   delivery engine uses no CPU meanwhile. The targets are judged on the delivering rows.

usage: bench-outboxd.py OUTBOXD NOP_SERVER [SECONDS]   (needs wrk; skipped (77) without)
Prints a table; targets: >= 30,000 events/s durable, p99 <= 5 ms at 1,000/s.
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


def wrk(url, script, conns, threads, seconds):
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    pct = {}
    for p, v, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
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
    p = subprocess.Popen([outboxd, "--config", cfg, "--log-format", "json"],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        rec = json.loads(line)
        if rec.get("msg") == "started":
            return p, int(rec["listen"].rsplit(":", 1)[1])
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
        lua(paced, delay_ms=10)  # 10 connections x one request per ~10 ms = ~1,000/s
        rx, rx_port = start_nop(nop)
        procs.append(rx)
        # A receiver that never answers (listening, never accepting): the engine's requests
        # hang, so that row measures the ingest path alone, without delivery's CPU.
        stall = socket.socket()
        stall.bind(("127.0.0.1", 0))
        stall.listen(1024)
        stall_url = "http://127.0.0.1:%d/hook" % stall.getsockname()[1]
        rows = []
        for pool, sink in ((0, None), (2, None), (2, stall_url)):
            d, port = start_outboxd(outboxd, tmp, sink or "http://127.0.0.1:%d/hook" % rx_port,
                                    pool)
            procs.append(d)
            url = "http://127.0.0.1:%d/v1/events" % port
            wrk(url, load, 64, 2, 1)  # warm-up
            rps, bad, errs, _ = wrk(url, load, 64, 2, seconds)
            lat_rps, _, _, pct = wrk(url, paced, 10, 1, seconds)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                metrics = r.read().decode()
            d.terminate()
            d.wait(60)
            stored = re.search(r'outbox_ingest_events_total\{outcome="stored"\} (\d+)', metrics)
            rows.append((pool, sink, rps, bad, lat_rps, pct, stored.group(1) if stored else "?"))
        nop_p, nop_port = start_nop(nop)
        procs.append(nop_p)
        ceil, _, _, _ = wrk("http://127.0.0.1:%d/v1/events" % nop_port, load, 64, 2, seconds)
        print("outboxd ingest benchmark (%ds per row, 271-byte events, full durability, "
              "%d CPUs, load average %.1f)" % (seconds, os.cpu_count(), os.getloadavg()[0]))
        print("%-56s %12s" % ("measurement", "value"))
        print("%-56s %12.0f" % ("no-op HTTP server (thread per connection) req/s: ceiling",
                                ceil))
        best = None
        for pool, sink, rps, bad, lat_rps, pct, stored in rows:
            mode = "pool_threads=%d (%s), %s" % (
                pool, "epoll pool" if pool else "thread per connection",
                "deliveries stalled (ingest path alone)" if sink else "delivering meanwhile")
            print(mode)
            print("%-56s %12.0f" % ("  durable acks/s, 64 keep-alive connections", rps))
            print("%-56s %11.0f%%" % ("  of the no-op ceiling", 100.0 * rps / ceil if ceil else 0))
            print("%-56s %12d" % ("  non-202 answers", bad))
            print("%-56s %12s" % ("  events stored (from /metrics)", stored))
            print("%-56s %12.0f" % ("  paced run: achieved events/s", lat_rps))
            for p in ("50", "90", "99"):
                print("%-56s %10.2fms" % ("  ack latency p%s" % p, pct.get(p, float("nan"))))
            if not sink and (best is None or rps > best[0]):
                best = (rps, pct.get("99", 1e9))
        ok = best[0] >= 30000 and best[1] <= 5.0
        print("targets (>= 30,000/s, p99 <= 5 ms): %s" % ("met" if ok else "NOT met"))
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
