#!/usr/bin/env python3
"""bench-outboxd.py - HTTP ingest benchmark of the real outboxd binary (issue 17).

Every figure is printed with its ratio to wrk -> nginx measured in the same run (nginx is
started here: one worker, access log off, answering 202 {"id":"1"} to a POST); every run
follows the same run against nginx, since the shared machine's load moves within seconds. One 271-byte Flipt event per
POST, keep-alive. Runs per server:
  64 connections, max rate   acks/s and ack latency p50/p99/p99.9 at that rate
  1 connection, max rate     acks/s of one client posting back to back
  paced ~1,000/s             latency p50/p99/p99.9 (12 connections, each waiting 10 ms after
                             an answer: ~1,000/s at ~2 ms per ack)
Servers: nginx; no-op libmicrohttpd servers (thread per connection as outboxd's default,
and MHD's best mode: epoll thread pool of one thread per CPU, MHD_USE_TURBO, no suspend);
a no-op h2o (libh2o-evloop) server with one event loop and with one per CPU; outboxd in
each ingest mode (OUTBOX_BENCH_MODES, pool_threads values, default "0,2"), once with
deliveries stalled (the sink's receiver listens but never accepts: the ingest path alone)
and once delivering every event to the nginx receiver meanwhile. The store's one-producer
enqueue rate (bench-store one) is the yardstick of the one-connection figure.
wrk's own --latency table stops at p99: a Lua done() hook prints p99.9.

usage: bench-outboxd.py --outboxd PATH --nop PATH [--h2o PATH] [--store-bench PATH]
                        [--before PATH] [--seconds N]   (needs wrk and nginx; skipped
                        (77) without)
--before: another outboxd binary (an earlier build) measured the same way in the same run,
its rows labelled "before", for before/after tables.
Targets (reported, never asserted): durable ingest >= 0.35x nginx at 64 connections with
deliveries stalled, >= 0.25x while delivering; ack p99 <= 2 ms at a paced 1,000/s; one
connection >= 0.8x the store's one-producer enqueue rate.
"""
import argparse
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

NGINX_CONF = """daemon off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path %(d)s/body;
  default_type application/json;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      if ($request_method != POST) { return 405; }
      return 202 '{"id":"1"}\\n';
    }
  }
}
"""

RUNS = (("64 connections, max rate", "load", 64, 2), ("1 connection, max rate", "load", 1, 1),
        ("paced ~1,000/s", "paced", 12, 1))


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
    load = os.getloadavg()[0]
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    lat = re.search(r"^LATENCY ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", out, re.M)
    pct = dict(zip(("50", "90", "99", "99.9"), map(float, lat.groups()))) if lat else {}
    return {"rps": rps, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(0) if errors else "", "pct": pct, "load": load}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(nginx, tmp):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % {"d": d, "port": port})
    p = subprocess.Popen([nginx, "-c", os.path.join(d, "nginx.conf"), "-p", d],
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.02)
    p.kill()
    raise SystemExit("nginx did not start (see %s/error.log)" % d)


def start_stdin_server(argv):
    """A helper server that prints its port and runs until its stdin closes."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return p, int(p.stdout.readline())


def start_outboxd(outboxd, tmp, sink_url, pool):
    cfg = os.path.join(tmp, "bench.yaml")
    data = os.path.join(tmp, "data")
    shutil.rmtree(data, ignore_errors=True)
    with open(cfg, "w") as f:
        f.write("outbox:\n  path: %s\n  max_size: 8GiB\n  retention: 1h\n"
                "ingest:\n  listen: 127.0.0.1:0\n  max_body: 1MiB\n  pool_threads: %s\n"
                "sinks:\n  - name: bench\n    url: %s\n    events: [\"*:*\"]\n"
                % (data, pool, sink_url))
    # Logs go to a file, not a pipe: nobody reads a pipe once the daemon has started, and
    # a full pipe would block its logging.
    log = os.path.join(tmp, "outboxd-%s.log" % pool)
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


def stop(p):
    if p.poll() is None:
        if p.stdin:
            p.stdin.close()
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outboxd", required=True)
    ap.add_argument("--nop", required=True)
    ap.add_argument("--h2o")
    ap.add_argument("--store-bench")
    ap.add_argument("--before")
    ap.add_argument("--seconds", type=int,
                    default=int(os.environ.get("OUTBOX_BENCH_SECONDS", "5")))
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk not installed: benchmark skipped")
        return 77
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not nginx:
        print("nginx not installed (the ceiling): benchmark skipped")
        return 77
    modes = os.environ.get("OUTBOX_BENCH_MODES", "0,2").split(",")
    cpus = os.cpu_count() or 1
    tmp = tempfile.mkdtemp(prefix="outboxd-bench-")
    procs = []
    scripts = {"load": os.path.join(tmp, "post.lua"), "paced": os.path.join(tmp, "paced.lua")}
    lua(scripts["load"])
    lua(scripts["paced"], delay_ms=10)  # 12 connections x one request per ~12 ms

    def store_one():
        if not a.store_bench:
            return None
        out = subprocess.run([a.store_bench, "one"], capture_output=True, text=True,
                             env=dict(os.environ, OUTBOX_BENCH_SECONDS=str(a.seconds)),
                             timeout=a.seconds + 120).stdout
        m = re.search(r"one-producer (\d+)", out)
        return float(m.group(1)) if m else None

    def measure(url, runs, ngx_url):
        """Each run right after the same run against nginx: the machine is shared, and
        its load moves within seconds, so a ratio is only fair between neighbours. The
        1-connection run is also paired with the store's one-producer rate."""
        wrk(url, scripts["load"], 64, 2, 1)  # warm-up
        out = []
        for name, s, c, t in runs:
            ref = wrk(ngx_url, scripts[s], c, t, a.seconds)
            one = store_one() if c == 1 else None
            r = wrk(url, scripts[s], c, t, a.seconds)
            r["ngx"], r["one"] = ref, one
            out.append(r)
        return out

    rows = []  # (group, name, results per RUNS entry, note)
    try:
        load0 = os.getloadavg()
        ngx, ngx_port = start_nginx(nginx, tmp)
        procs.append(ngx)
        ngx_url = "http://127.0.0.1:%d/v1/events" % ngx_port
        wrk(ngx_url, scripts["load"], 64, 2, 1)  # warm-up
        nops = [("MHD no-op, thread per connection (outboxd's default)", [a.nop, "tpc"]),
                ("MHD no-op, best mode (epoll pool x%d, TURBO)" % cpus, [a.nop, "best"])]
        if a.h2o:
            nops += [("h2o no-op, 1 event loop", [a.h2o, "1"]),
                     ("h2o no-op, %d event loops" % cpus, [a.h2o, str(cpus)])]
        for name, argv in nops:
            p, port = start_stdin_server(argv)
            procs.append(p)
            rows.append(("no-op", name, measure("http://127.0.0.1:%d/v1/events" % port,
                                                RUNS[:2], ngx_url), ""))
            stop(p)
        # A receiver that never answers (listening, never accepting): the engine's requests
        # hang, so those rows measure the ingest path alone, without delivery's CPU.
        stall = socket.socket()
        stall.bind(("127.0.0.1", 0))
        stall.listen(1024)
        stall_url = "http://127.0.0.1:%d/hook" % stall.getsockname()[1]
        binaries = [("", a.outboxd)] + ([("before: ", a.before)] if a.before else [])
        # Interleaved (mode, stalled, binary): before and after side by side in time.
        for pool, stalled, (label, binary) in [(p, st, b) for p in modes for st in (True, False)
                                               for b in binaries]:
            d, port = start_outboxd(binary, tmp, stall_url if stalled
                                    else "http://127.0.0.1:%d/hook" % ngx_port, pool)
            procs.append(d)
            url = "http://127.0.0.1:%d" % port
            res = measure(url + "/v1/events", RUNS, ngx_url)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                metrics = r.read().decode()
            stop(d)
            stored = re.search(r'outbox_ingest_events_total\{outcome="stored"\} (\d+)',
                               metrics)
            rows.append(("outboxd", "%soutboxd pool_threads=%s, %s" % (
                label, pool, "deliveries stalled" if stalled else "delivering to nginx"), res,
                "events stored (metrics) %s" % (stored.group(1) if stored else "?")))
        stall.close()
        stop(ngx)
        load1 = os.getloadavg()
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    print("outboxd ingest benchmark (%ds per run, 271-byte events, full durability, %d CPUs, "
          "load average %.1f at start, %.1f at end)" % (a.seconds, cpus, load0[0], load1[0]))
    print("Every run follows the same run against nginx (one worker); ratio = events/s over "
          "that nginx run's (for the paced run: p99 over nginx's p99). 1-connection runs also "
          "follow the store's one-producer enqueue rate (x1p). load = 1-min load average.")
    print("%-58s %9s %9s %6s %7s %7s %8s %5s" % ("run", "events/s", "nginx/s", "ratio", "x1p",
                                                 "p50 ms", "p99 ms", "load"))

    def ratio(r, paced):
        if paced:  # the rate is fixed: compare the latency
            n = r["ngx"]["pct"].get("99")
            return "%.1fx" % (r["pct"].get("99", 0) / n) if n else ""
        return "%.2fx" % (r["rps"] / r["ngx"]["rps"]) if r["ngx"]["rps"] else ""

    bad = 0
    for group, name, res, note in rows:
        print(name)
        for (run, _, _, _), r in zip(RUNS, res):
            pct = r["pct"]
            print("%-58s %9.0f %9.0f %6s %7s %7.2f %8.2f %5.1f" % (
                "  " + run, r["rps"], r["ngx"]["rps"], ratio(r, run == RUNS[2][0]),
                "%.2fx" % (r["rps"] / r["one"]) if r.get("one") else "",
                pct.get("50", float("nan")), pct.get("99", float("nan")), r["load"]))
            if run == RUNS[2][0]:
                print("%-58s %9s %9s %6s %7s %7.2f %8.2f" % (
                    "    (nginx, paced)", "", "", "", "", r["ngx"]["pct"].get("50", float("nan")),
                    r["ngx"]["pct"].get("99", float("nan"))))
            if run == RUNS[1][0] and r.get("one"):
                print("%-58s %9.0f" % ("    (store, one producer, obx_enqueue back to back)",
                                       r["one"]))
        bad += sum(r["non2xx"] for r in res)
        errs = "; ".join(r["errors"] for r in res if r["errors"])
        print("  non-202 answers %d, socket errors %s%s" % (
            sum(r["non2xx"] for r in res), errs or "none", ", " + note if note else ""))
    verdict = lambda ok: "met" if ok else "NOT met"
    print("issue-17 targets:")
    for group, name, res, _ in rows:
        if group != "outboxd":
            continue
        want = 0.35 if "stalled" in name else 0.25
        r64 = res[0]["rps"] / res[0]["ngx"]["rps"]
        paced = res[2]["pct"].get("99", 1e9)
        msg = "  %s: 64 conns %.2fx nginx (>= %.2fx %s); paced p99 %.2f ms (<= 2 ms %s)" % (
            name, r64, want, verdict(r64 >= want), paced, verdict(paced <= 2.0))
        if res[1].get("one"):
            x = res[1]["rps"] / res[1]["one"]
            msg += "; 1 conn %.2fx one producer (>= 0.8x %s)" % (x, verdict(x >= 0.8))
        print(msg)
    if bad:
        print("FAIL: a server answered something else than 202")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
