#!/usr/bin/env python3
"""bench-latency.py - ack and end-to-end latency of the real outboxd at a paced rate.

Posts events over HTTP at OUTBOX_RATE events/s (default 1,000) for OUTBOX_BENCH_SECONDS
(default 5) from keep-alive connections, and records for each event the time the 202
came back and the time the receiver saw it (same monotonic clock: the receiver runs in this
process). Prints ack latency p50/p99/p99.9 (request sent -> 202) and end-to-end latency
p50/p99/p99.9 (202 -> receiver). Bounded: the drain waits at most 30 s.
"""
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness as h  # noqa: E402


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def main():
    rate = float(os.environ.get("OUTBOX_RATE", "1000"))
    seconds = float(os.environ.get("OUTBOX_BENCH_SECONDS", "5"))
    conns = 8
    td = h.TempDir("obx-lat")
    rx = h.Receiver()
    cfg = td.join("outboxd.yaml")
    h.write_config(cfg, h.sink_yaml("webhook", rx.url()))
    d = h.Daemon(cfg, td.join("data"))
    acked = {}   # key -> (sent, acked) monotonic seconds
    lock = threading.Lock()
    start = time.monotonic() + 0.2
    per_conn = rate / conns
    total = int(rate * seconds)

    def worker(w):
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        i = w
        while i < total:
            due = start + (i // conns) / per_conn
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            key = "lat-%d" % i
            t0 = time.monotonic()
            c.request("POST", "/v1/events", h.event(key), {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            t1 = time.monotonic()
            if r.status == 202:
                with lock:
                    acked[key] = (t0, t1)
            i += conns
        c.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = {h.event_key(r.body) for r in rx.got()}
        if all(k in seen for k in acked):
            break
        time.sleep(0.05)
    first = {}
    for r in rx.got():
        k = h.event_key(r.body)
        if k is not None and k not in first:
            first[k] = r.t
    ack = [(a - s) * 1000 for s, a in acked.values()]
    e2e = [(first[k] - a) * 1000 for k, (s, a) in acked.items() if k in first]
    d.stop()
    rx.close()
    td.cleanup()
    print("outboxd latency at a paced %.0f events/s (%d keep-alive connections, %.0f s, "
          "full durability, one sink)" % (rate, conns, seconds))
    print("%-40s %10.0f" % ("achieved events/s", len(acked) / elapsed))
    print("%-40s %10d / %d" % ("delivered / acknowledged", len(e2e), len(acked)))
    for name, vals in (("ack latency", ack), ("end-to-end latency (ack -> receiver)", e2e)):
        for p in (50, 99, 99.9):
            print("%-40s %8.2fms" % ("%s p%g" % (name, p), pct(vals, p)))
    return 0 if len(e2e) == len(acked) else 1


if __name__ == "__main__":
    h.require_binaries()
    sys.exit(main())
