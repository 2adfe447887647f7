#!/usr/bin/env python3
"""test-outboxctl.py - drives the real outboxctl binary against stores built by
outboxctl-fill (public API, as the owner): every command's --json output parsed back,
replay of dead and delivered deliveries, purge with and without --yes, a corrupt record
(check reports it; list/show/export skip it with a warning), damaged pages (check reports
structural corruption instead of crashing; outboxd warns at start after a failed check),
export/import round trip, import's sink rules and validation (all or nothing), retire
(dead-letter, purge, the freed registry slot reused), sign/listen/render when built,
usage (2) and not-found (3) exit codes.

usage: test-outboxctl.py OUTBOXCTL OUTBOXCTL_FILL [OUTBOXD]
With OUTBOXD: replay of dead letters while the daemon delivers new events loses nothing
and duplicates nothing.
Every subprocess has a timeout; every scratch directory is removed at the end.
"""
import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

CTL = FILL = OUTBOXD = None
FIXTURES = os.environ.get("OUTBOX_FIXTURES", "tests/fixtures")
TIMEOUT = 30


def run(*args, data_dir=None, input=None, check_rc=None):
    cmd = [CTL]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    cmd += list(args)
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=TIMEOUT)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("%s: exit %d, want %d\nstdout: %s\nstderr: %s"
                             % (" ".join(args), p.returncode, check_rc, out, err))
    return p.returncode, out, err


def jlines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class Store:
    """A scratch store filled with the layout documented in outboxctl-fill.c."""

    def __init__(self, extra=0):
        self.tmp = tempfile.mkdtemp(prefix="outboxctl-test-")
        self.dir = os.path.join(self.tmp, "store")
        p = subprocess.run([FILL, "fill", self.dir, str(extra)], capture_output=True,
                           timeout=TIMEOUT, check=True)
        self.ids = json.loads(p.stdout)

    def ctl(self, *args, **kw):
        return run(*args, data_dir=self.dir, **kw)

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class OutboxctlTest(unittest.TestCase):
    def setUp(self):
        self.s = Store(extra=3)
        self.ev = self.s.ids["ev"]

    def tearDown(self):
        self.s.close()

    def deliveries(self, state="all", *extra):
        _, out, _ = self.s.ctl("list", "--state", state, "--limit", "0", "--json", *extra,
                               check_rc=0)
        return jlines(out)

    # ---- stats ----
    def test_stats_json(self):
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        st = json.loads(out)
        sinks = {x["name"]: x for x in st["sinks"]}
        self.assertEqual(set(sinks), {"webhook", "slack"})
        w, sl = sinks["webhook"], sinks["slack"]
        # webhook: ev3, ev5 pending; ev4 in flight; ev1 delivered; ev2 + 3 extras dead
        self.assertEqual((w["pending"], w["inflight"], w["delivered"], w["dead"]), (2, 1, 1, 4))
        self.assertEqual((sl["pending"], sl["inflight"], sl["delivered"], sl["dead"]),
                         (1, 0, 1, 1))
        self.assertEqual(st["total"]["dead"], 5)
        self.assertEqual(st["events"], 8)
        self.assertGreater(st["used_bytes"], 0)
        self.assertGreaterEqual(st["max_size"], st["high_water"])
        # oldest pending of slack is ev2, received 9h ago
        self.assertAlmostEqual(sl["oldest_pending_age_ms"] / 3600000.0, 9.0, delta=0.1)
        # no daemon owns the store, so ev4's attempt was cut off: said, in both forms
        self.assertIsNone(st["daemon_pid"])
        self.assertIs(st["daemon_running"], False)
        # the human form names both sinks and the totals
        _, out, _ = self.s.ctl("stats", check_rc=0)
        self.assertIn("webhook", out)
        self.assertIn("TOTAL", out)
        self.assertIn("9h ago", out)
        self.assertIn("daemon   not running", out)
        self.assertIn("no daemon owns this outbox, yet 1 deliveries are in flight", out)

    # ---- list ----
    def test_list_json_filters(self):
        all_ = self.deliveries()
        self.assertEqual(len(all_), 11)  # routes of the 5 events (2+2+2+1+1) + 3 extras
        for d in all_:
            for k in ("id", "sink", "state", "type", "action", "received", "attempts",
                      "last_status", "last_error", "reason", "next_attempt"):
                self.assertIn(k, d)
        dead = self.deliveries("dead")
        self.assertEqual(len(dead), 5)
        self.assertTrue(all(d["state"] == "dead" and d["reason"] for d in dead))
        self.assertEqual(len(self.deliveries("dead", "--sink", "slack")), 1)
        self.assertEqual(len(self.deliveries("pending")), 3)
        self.assertEqual(len(self.deliveries("inflight")), 1)
        self.assertEqual(len(self.deliveries("delivered")), 2)
        self.assertEqual({d["id"] for d in self.deliveries("all", "--type", "flag")},
                         {self.ev[0], self.ev[2], self.ev[3]})
        self.assertEqual({d["id"] for d in self.deliveries("all", "--action", "updated")},
                         {self.ev[2]})
        # received 10h..5h ago: --since 7h30m keeps ev4, ev5 and the extras
        got = {d["id"] for d in self.deliveries("all", "--since", "7h30m")}
        self.assertEqual(got, {self.ev[3], self.ev[4]} | set(self.s.ids["extra"]))
        got = {d["id"] for d in self.deliveries("all", "--until", "8h30m")}
        self.assertEqual(got, {self.ev[0], self.ev[1]})
        ids = [d["id"] for d in self.deliveries("all", "--newest")]
        self.assertEqual(ids, sorted(ids, reverse=True))
        # the pending retry has its status and next attempt
        p3 = [d for d in all_ if d["id"] == self.ev[2] and d["sink"] == "webhook"][0]
        self.assertEqual((p3["state"], p3["attempts"], p3["last_status"]), ("pending", 1, 503))
        self.assertIsNotNone(p3["next_attempt"])

    def test_list_limit_and_table(self):
        rc, out, err = self.s.ctl("list", "--limit", "2", "--json")
        self.assertEqual(rc, 0)
        self.assertEqual(len(jlines(out)), 2)
        self.assertIn("more match", err)
        _, out, _ = self.s.ctl("list", check_rc=0)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ID"))
        self.assertIn("RECEIVED", lines[0])
        # aligned: every row has the SINK column where the header has it
        col = lines[0].index("SINK")
        self.assertTrue(all(line[col - 2:col] == "  " for line in lines[1:12]))
        self.assertIn("10h ago", out)
        self.assertIn("in 59m", out)

    # ---- show ----
    def test_show_json(self):
        _, out, _ = self.s.ctl("show", str(self.ev[0]), "--json", check_rc=0)
        e = json.loads(out)
        with open(os.path.join(FIXTURES, "events", "flag-created.json"), "rb") as f:
            self.assertEqual(e["body"], json.loads(f.read()))
        self.assertEqual((e["type"], e["action"]), ("flag", "created"))
        by = {d["sink"]: d for d in e["deliveries"]}
        self.assertEqual(by["webhook"]["state"], "delivered")
        sl = by["slack"]
        self.assertEqual((sl["state"], sl["attempts"], len(sl["history"])), ("dead", 2, 2))
        self.assertEqual(sl["history"][0]["status"], 500)
        self.assertEqual(sl["history"][0]["duration_ms"], 120)
        self.assertIn("HTTP 500", sl["reason"])
        self.assertFalse(sl["in_doubt"])
        # a body that is not JSON comes as base64, byte-exact
        _, out, _ = self.s.ctl("show", str(self.ev[4]), "--json", check_rc=0)
        e = json.loads(out)
        self.assertNotIn("body", e)
        self.assertEqual(base64.b64decode(e["body_base64"]), b"not json \x01\x02 victim-binary")
        _, out, _ = self.s.ctl("show", str(self.ev[0]), check_rc=0)
        self.assertIn("sink slack: dead", out)
        self.assertIn("reason", out)
        self.assertIn("Internal Server Error", out)

    def test_exit_codes(self):
        self.assertEqual(self.s.ctl("show", "999999")[0], 3)
        self.assertEqual(self.s.ctl("replay", "999999")[0], 3)
        self.assertEqual(self.s.ctl("list", "--sink", "nope")[0], 3)
        self.assertEqual(self.s.ctl("show")[0], 2)
        self.assertEqual(self.s.ctl("show", "abc")[0], 2)
        self.assertEqual(self.s.ctl("list", "--state", "weird")[0], 2)
        self.assertEqual(self.s.ctl("list", "--since", "5 minutes")[0], 2)
        self.assertEqual(self.s.ctl("list", "--bogus")[0], 2)
        self.assertEqual(self.s.ctl("frobnicate")[0], 2)
        self.assertEqual(self.s.ctl("replay")[0], 2)
        self.assertEqual(self.s.ctl("purge")[0], 2)
        self.assertEqual(run("stats")[0] if "OUTBOX_DATA_DIR" not in os.environ else 2, 2)
        rc, _, err = run("stats", data_dir=os.path.join(self.s.tmp, "absent"))
        self.assertEqual(rc, 1)
        self.assertIn("no outbox store", err)
        for cmd in ("stats", "list", "show", "replay", "purge", "export", "import", "render",
                    "listen", "sign", "backup", "check"):
            rc, out, _ = run(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            self.assertIn("usage: outboxctl " + cmd, out)
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("Exit codes", out)

    # ---- replay ----
    def test_replay_dead(self):
        _, out, _ = self.s.ctl("replay", "--dead", "--dry-run", "--json", check_rc=0)
        self.assertEqual(json.loads(out), {"replayed": 5, "events": 5, "skipped": 0,
                                           "dry_run": True})
        self.assertEqual(len(self.deliveries("dead")), 5)  # dry run changed nothing
        _, out, _ = self.s.ctl("replay", "--dead", "--sink", "slack", "--json", check_rc=0)
        self.assertEqual(json.loads(out)["replayed"], 1)
        _, out, _ = self.s.ctl("show", str(self.ev[0]), "--json", check_rc=0)
        sl = [d for d in json.loads(out)["deliveries"] if d["sink"] == "slack"][0]
        self.assertEqual((sl["state"], sl["attempts"], sl["replays"]), ("pending", 0, 1))
        self.assertEqual(sl["total_attempts"], 2)  # history kept, budget fresh
        _, out, _ = self.s.ctl("replay", "--dead", "--type", "token", check_rc=0)
        self.assertIn("replayed 3 deliveries", out)
        self.assertEqual(len(self.deliveries("dead")), 1)
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        self.assertEqual(json.loads(out)["total"]["dead"], 1)

    def test_replay_delivered_by_id(self):
        _, out, _ = self.s.ctl("replay", str(self.ev[2]), "--sink", "slack", "--json",
                               check_rc=0)
        self.assertEqual(json.loads(out)["replayed"], 1)
        _, out, _ = self.s.ctl("show", str(self.ev[2]), "--json", check_rc=0)
        by = {d["sink"]: d for d in json.loads(out)["deliveries"]}
        self.assertEqual(by["slack"]["state"], "pending")
        # ev1: webhook delivered + slack dead -> both back
        _, out, _ = self.s.ctl("replay", str(self.ev[0]), check_rc=0)
        self.assertIn("replayed 2 deliveries (1 event)", out)
        # nothing to replay: pending / in flight only
        rc, _, err = self.s.ctl("replay", str(self.ev[3]))
        self.assertEqual(rc, 1)
        self.assertIn("nothing to replay", err)
        self.assertEqual(self.s.ctl("check")[0], 0)

    # ---- purge ----
    def test_purge(self):
        rc, _, err = self.s.ctl("purge", "--dead")
        self.assertEqual(rc, 1)
        self.assertIn("5 dead letters", err)
        self.assertIn("--yes", err)
        self.assertEqual(len(self.deliveries("dead")), 5)
        # one dead letter: no --yes needed
        _, out, _ = self.s.ctl("purge", "--dead", "--sink", "slack", "--json", check_rc=0)
        self.assertEqual(json.loads(out)["purged"], 1)
        # --before: the dead letters died just now, so a minute ago matches none
        _, out, _ = self.s.ctl("purge", "--dead", "--before", "1m", check_rc=0)
        self.assertIn("nothing to purge", out)
        _, out, _ = self.s.ctl("purge", "--dead", "--yes", check_rc=0)
        self.assertIn("purged 4 dead letters", out)
        self.assertEqual(self.deliveries("dead"), [])
        # extras were routed to webhook only: their events went with their last delivery
        self.assertEqual(self.s.ctl("show", str(self.s.ids["extra"][0]))[0], 3)
        # ev2 keeps its pending slack delivery
        _, out, _ = self.s.ctl("show", str(self.ev[1]), "--json", check_rc=0)
        self.assertEqual([d["sink"] for d in json.loads(out)["deliveries"]], ["slack"])
        self.assertEqual(self.s.ctl("check")[0], 0)

    # ---- corrupt records ----
    def test_corrupt_record(self):
        copy = os.path.join(self.s.tmp, "copy")
        shutil.copytree(self.s.dir, copy)
        subprocess.run([FILL, "corrupt", copy, str(self.ev[0]), "2"], check=True,
                       timeout=TIMEOUT)
        rc, out, err = run("check", data_dir=copy)
        self.assertEqual(rc, 1)
        self.assertIn("corrupt", out)
        _, out, _ = run("check", "--json", data_dir=copy)
        ck = json.loads(out)
        self.assertFalse(ck["ok"])
        self.assertTrue(any("corrupt" in p for p in ck["problems"]))
        rc, out, err = run("list", "--json", "--limit", "0", data_dir=copy)
        self.assertEqual(rc, 0)
        self.assertIn("warning: skipping a corrupt record", err)
        self.assertEqual(len(jlines(out)), 10)
        rc, out, err = run("show", str(self.ev[0]), "--json", data_dir=copy)
        self.assertEqual(rc, 0)
        self.assertIn("corrupt", err)
        self.assertEqual([d["sink"] for d in json.loads(out)["deliveries"]], ["webhook"])
        rc, out, err = run("export", data_dir=copy)
        self.assertEqual(rc, 0)
        self.assertIn("corrupt", err)
        self.assertEqual(len(jlines(out)), 8)
        # the original is intact
        self.assertEqual(self.s.ctl("check")[0], 0)

    # ---- damaged pages (LMDB 0.9 has no page checksums) ----
    def read_last_check(self, d):
        path = os.path.join(d, "last-check")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            return dict(line.strip().split("=", 1) for line in f if line.strip())

    def test_check_survives_damaged_pages(self):
        """Page headers overwritten in copies of data.mdb made `check` die of SIGSEGV inside
        LMDB; now every copy gets a clean exit 1 and the crashes are reported as structural
        corruption."""
        big = Store(extra=200)
        try:
            with open(os.path.join(big.dir, "data.mdb"), "rb") as f:
                data = f.read()
            structural = 0
            for page in range(2, 40):
                copy = os.path.join(big.tmp, "copy-%d" % page)
                os.mkdir(copy, 0o700)
                b = bytearray(data)
                b[page * 4096 + 12:page * 4096 + 16] = b"\xff" * 4  # the page's lower/upper
                with open(os.path.join(copy, "data.mdb"), "wb") as f:
                    f.write(b)
                rc, out, err = run("check", data_dir=copy)
                self.assertIn(rc, (0, 1), "page %d: check died: %s" % (page, err[-300:]))
                if "structural corruption" in err:
                    structural += 1
                    self.assertEqual(rc, 1)
                    self.assertIn("restore from a backup", err)
                    self.assertIn("crashed the check (", err)
                    lc = self.read_last_check(copy)
                    self.assertEqual((lc["structural"], lc["problems"]), ("1", "1"))
                    rc, out, _ = run("check", "--json", data_dir=copy)
                    self.assertEqual(rc, 1)
                    self.assertEqual(json.loads(out)["structural"], True)
                shutil.rmtree(copy)
            self.assertGreater(structural, 0, "no damaged copy crashed LMDB: test ineffective")
        finally:
            big.close()

    def start_daemon(self, d):
        cfg = os.path.join(self.s.tmp, "daemon.yaml")
        with open(cfg, "w") as f:
            f.write("outbox:\n  path: %s\ningest:\n  listen: 127.0.0.1:0\nsinks:\n"
                    "  - name: webhook\n    url: http://127.0.0.1:9/x\n" % d)
        log = os.path.join(self.s.tmp, "outboxd.log")
        with open(log, "w") as lf:
            p = subprocess.Popen([OUTBOXD, "--config", cfg], stdout=lf, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + TIMEOUT
            while time.time() < deadline and p.poll() is None:
                with open(log) as f:
                    if "msg=started" in f.read():
                        break
                time.sleep(0.05)
        finally:
            p.terminate()
            p.wait(timeout=TIMEOUT)
        with open(log) as f:
            return f.read()

    def test_daemon_warns_when_the_last_check_found_problems(self):
        if not OUTBOXD:
            self.skipTest("outboxd not built")
        copy = os.path.join(self.s.tmp, "copy")
        shutil.copytree(self.s.dir, copy)
        subprocess.run([FILL, "corrupt", copy, str(self.ev[0]), "2"], check=True,
                       timeout=TIMEOUT)
        self.assertEqual(run("check", data_dir=copy)[0], 1)
        self.assertEqual(self.read_last_check(copy)["problems"], "2")  # record + counter
        log = self.start_daemon(copy)
        self.assertIn("msg=started", log)
        self.assertIn("the last outboxctl check found problems", log)
        self.assertIn('problems=2 kind=records', log)
        # a clean check clears it
        self.assertEqual(run("check", data_dir=self.s.dir)[0], 0)
        self.assertEqual(self.read_last_check(self.s.dir)["problems"], "0")
        log = self.start_daemon(self.s.dir)
        self.assertIn("msg=started", log)
        self.assertNotIn("last outboxctl check", log)
        # a structural finding is named as such
        with open(os.path.join(self.s.dir, "last-check"), "w") as f:
            f.write("checked_ms=1\nproblems=1\nstructural=1\n")
        self.assertIn('kind="structural corruption"', self.start_daemon(self.s.dir))

    # ---- export / import ----
    def write_config(self, *sinks):
        path = os.path.join(self.s.tmp, "outboxd-%s.yaml" % "-".join(sinks))
        with open(path, "w") as f:
            f.write("outbox:\n  path: %s\nsinks:\n" % self.s.dir)
            for name in sinks:
                f.write("  - name: %s\n    url: http://127.0.0.1:9/%s\n" % (name, name))
        return path

    def test_export_import(self):
        _, out, _ = self.s.ctl("export", check_rc=0)
        lines = jlines(out)
        self.assertEqual(len(lines), 8)
        self.assertEqual([x["id"] for x in lines], sorted(x["id"] for x in lines))
        e1 = lines[0]
        self.assertEqual({d["sink"]: d["state"] for d in e1["deliveries"]},
                         {"webhook": "delivered", "slack": "dead"})
        _, dead, _ = self.s.ctl("export", "--state", "dead", "--sink", "webhook", check_rc=0)
        self.assertEqual(len(jlines(dead)), 4)
        path = os.path.join(self.s.tmp, "export.jsonl")
        with open(path, "w") as f:
            f.write(out)
        cfg = self.write_config("webhook", "slack")
        dest = os.path.join(self.s.tmp, "dest")
        subprocess.run([FILL, "enqueue", dest, "0"], check=True, timeout=TIMEOUT,
                       capture_output=True)
        # ev5's body is not an event ingest accepts (not JSON): the whole file is refused,
        # naming the line, and nothing is stored
        rc, _, err = run("--config", cfg, "import", path, data_dir=dest)
        self.assertEqual(rc, 1)
        self.assertIn("export.jsonl:5: the event in the body is not one ingest accepts", err)
        self.assertIn("nothing imported", err)
        self.assertEqual(run("export", data_dir=dest, check_rc=0)[1], "")
        # ev1..ev4 (received 10h..7h ago) are real events: they round-trip
        _, out, _ = self.s.ctl("export", "--until", "6h30m", check_rc=0)
        lines = jlines(out)
        self.assertEqual(len(lines), 4)
        with open(path, "w") as f:
            f.write(out)
        _, msg, _ = run("--config", cfg, "import", path, data_dir=dest, check_rc=0)
        self.assertIn("imported 4 events", msg)
        _, out2, _ = run("export", data_dir=dest, check_rc=0)
        again = jlines(out2)
        self.assertEqual(len(again), 4)
        for a, b in zip(lines, again):
            self.assertEqual((a["type"], a["action"], a["received_ms"]),
                             (b["type"], b["action"], b["received_ms"]))
            self.assertEqual(a.get("body"), b.get("body"))
            self.assertEqual(a.get("body_base64"), b.get("body_base64"))
            self.assertEqual(sorted(d["sink"] for d in a["deliveries"]),
                             sorted(d["sink"] for d in b["deliveries"]))
            self.assertTrue(all(d["state"] == "pending" for d in b["deliveries"]))
        # body bytes survive exactly (show the raw bytes of one JSON body)
        _, o1, _ = self.s.ctl("show", str(self.ev[0]), "--json", check_rc=0)
        _, o2, _ = run("show", str(again[0]["id"]), "--json", data_dir=dest, check_rc=0)
        self.assertEqual(o1.split('"body":', 1)[1], o2.split('"body":', 1)[1])
        # a bad line names its line number
        with open(path, "a") as f:
            f.write("{not json\n")
        rc, _, err = run("--config", cfg, "import", path, data_dir=dest)
        self.assertEqual(rc, 1)
        self.assertIn(":5:", err)

    def event_line(self, sinks, **over):
        body = {"version": "0.2", "type": "flag", "action": "created",
                "metadata": {"actor": {}}, "payload": {"key": "k"},
                "timestamp": "2024-06-09T12:00:00Z", "status": "success"}
        line = {"id": 1, "received_ms": int(time.time() * 1000) - 60000, "type": "flag",
                "action": "created", "deliveries": [{"sink": n, "state": "pending"}
                                                    for n in sinks], "body": body}
        line.update(over)
        return json.dumps(line)

    def sink_names(self):
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        st = json.loads(out)
        return sorted(x["name"] for x in st["sinks"]), st["events"]

    def test_import_registers_only_configured_sinks(self):
        """A file naming 1,000 unknown sinks filled the registry: no new sink could be
        configured afterwards and the phantom deliveries stayed pending forever."""
        before = self.sink_names()
        path = os.path.join(self.s.tmp, "ghosts.jsonl")
        with open(path, "w") as f:
            f.write(self.event_line(["webhook"]) + "\n")
            for i in range(1000):
                f.write(self.event_line(["ghost-%d" % i]) + "\n")
        rc, _, err = self.s.ctl("import", path)
        self.assertEqual(rc, 1)
        self.assertIn('ghosts.jsonl:1: deliveries[0].sink: sink "webhook" is not known', err)
        cfg = self.write_config("webhook", "slack")
        rc, _, err = run("--config", cfg, "import", path)
        self.assertEqual(rc, 1)
        self.assertIn('ghosts.jsonl:2: deliveries[0].sink: sink "ghost-0" is not in the config',
                      err)
        self.assertIn("--map-sink ghost-0=NAME", err)
        self.assertIn("nothing imported", err)
        self.assertEqual(self.sink_names(), before)  # no sink registered, no event stored
        # an explicit sink must be configured too, and so must a mapping's target
        rc, _, err = run("--config", cfg, "import", path, "--sink", "ghost-1")
        self.assertEqual(rc, 1)
        self.assertIn('--sink ghost-1: %s has no sink named "ghost-1"' % cfg, err)
        rc, _, err = run("--config", cfg, "import", path, "--map-sink", "ghost-0=ghost-1")
        self.assertEqual(rc, 1)
        self.assertIn('--map-sink ghost-1: %s has no sink named "ghost-1"' % cfg, err)
        self.assertEqual(self.s.ctl("import", path, "--map-sink", "nonsense")[0], 2)
        self.assertEqual(self.sink_names(), before)
        # --sink: every event goes to the configured sink named
        rc, out, err = run("--config", cfg, "import", path, "--sink", "slack")
        self.assertEqual(rc, 0, err)
        self.assertIn("imported 1001 events", out)
        names, events = self.sink_names()
        self.assertEqual(names, before[0])
        self.assertEqual(events, before[1] + 1001)
        # --map-sink: the sinks a line lists are renamed (a configured target)
        with open(path, "w") as f:
            f.write(self.event_line(["old-hook", "slack"]) + "\n")
        rc, out, err = run("--config", cfg, "import", path, "--map-sink", "old-hook=webhook")
        self.assertEqual(rc, 0, err)
        _, out, _ = self.s.ctl("export", "--since", "2m", "--state", "pending", check_rc=0)
        self.assertEqual(sorted(d["sink"] for d in jlines(out)[-1]["deliveries"]),
                         ["slack", "webhook"])
        self.assertEqual(self.sink_names()[0], before[0])

    def test_import_validates_like_ingest(self):
        before = self.sink_names()
        cfg = self.write_config("webhook", "slack")
        good = self.event_line(["webhook"])
        no_ts = json.loads(good)
        del no_ts["body"]["timestamp"]
        cases = [
            (self.event_line(["webhook"], type=""),
             'field "type" is "" but the event in the body has type "flag"'),
            (self.event_line(["webhook"], action=7), 'field "action" must be a string'),
            (self.event_line(["webhook"], received_ms=-(2 ** 63)),
             'field "received_ms" is -9223372036854775808: out of range'),
            (self.event_line(["webhook"], received_ms=2 ** 62),
             'field "received_ms" is 4611686018427387904: out of range'),
            (self.event_line(["webhook"], received_ms="yesterday"),
             'field "received_ms" must be an integer'),
            (json.dumps(no_ts), 'missing field "timestamp"'),
            (self.event_line(["webhook"], body={"version": "0.2", "type": "", "action": "x",
                                                "timestamp": "t"}),
             'field "type" must not be empty'),
            (self.event_line(["webhook"], body=[1, 2]), "event must be a JSON object"),
            (self.event_line(["webhook"], body=None, body_base64="bm90IGpzb24="),
             "invalid JSON"),
            (self.event_line([], deliveries=[{"sink": 3}]),
             'field "deliveries[0].sink" must be a string'),
            (self.event_line([], deliveries="webhook"), 'field "deliveries" must be an array'),
        ]
        big = json.loads(good)
        big["body"]["payload"]["key"] = "k" * (2 << 20)
        cases.append((json.dumps(big), "over ingest.max_body (1048576) of the config"))
        path = os.path.join(self.s.tmp, "bad.jsonl")
        for bad, want in cases:
            with self.subTest(want=want):
                with open(path, "w") as f:
                    f.write(good + "\n" + good + "\n" + bad + "\n")
                rc, _, err = run("--config", cfg, "import", path)
                self.assertEqual(rc, 1, err)
                self.assertIn("bad.jsonl:3: ", err)
                self.assertIn(want.replace('\\"', '"'), err.replace('\\"', '"'))
                self.assertIn("nothing imported", err)
        self.assertEqual(self.sink_names(), before)  # the good lines were not stored either
        # stdin is validated in full before anything is stored as well
        p = subprocess.run([CTL, "--config", cfg, "import", "-"], timeout=TIMEOUT,
                           input=(good + "\n" + cases[0][0] + "\n").encode(),
                           capture_output=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"-:2: ", p.stderr)
        self.assertEqual(self.sink_names(), before)
        p = subprocess.run([CTL, "--config", cfg, "import", "-"], timeout=TIMEOUT,
                           input=(good + "\n" + good + "\n").encode(), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"imported 2 events", p.stdout)
        with open(path, "w") as f:
            f.write(good + "\n")
        _, out, _ = run("--config", cfg, "import", path, "--dry-run", check_rc=0)
        self.assertIn("would import 1 events", out)
        self.assertEqual(self.sink_names()[1], before[1] + 2)

    # ---- retire ----
    def test_retire_dead_letter_then_purge(self):
        cfg = self.write_config("slack")
        before = self.s.ctl("export")[1]
        rc, _, err = run("--config", self.write_config("webhook", "slack"), "retire", "webhook",
                         "--dead-letter")
        self.assertEqual(rc, 1)
        self.assertIn('sink "webhook" is still configured in', err)
        self.assertEqual(self.s.ctl("retire", "webhook")[0], 2)  # no mode
        self.assertEqual(self.s.ctl("retire", "webhook", "--purge", "--dead-letter")[0], 2)
        self.assertEqual(self.s.ctl("retire", "nope", "--purge")[0], 3)
        _, out, _ = run("--config", cfg, "stats", check_rc=0)
        self.assertIn("webhook (not in config)", out)
        self.assertIn("`outboxctl retire NAME --dead-letter|--purge`", out)
        # dry run: the same counts, nothing changed
        _, dry, _ = run("--config", cfg, "retire", "webhook", "--dead-letter", "--dry-run",
                        "--json", check_rc=0)
        self.assertEqual(self.s.ctl("export")[1], before)
        _, out, _ = run("--config", cfg, "retire", "webhook", "--dead-letter", "--json",
                        check_rc=0)
        r, d = json.loads(out), json.loads(dry)
        self.assertEqual((r["pending"], r["inflight"], r["dead_kept"], r["delivered_kept"]),
                         (2, 1, 4, 1))
        self.assertFalse(r["slot_freed"])
        self.assertTrue(d.pop("dry_run"))
        self.assertFalse(r.pop("dry_run"))
        self.assertEqual(d, r)
        dead = self.deliveries("dead", "--sink", "webhook")
        self.assertEqual(len(dead), 7)
        self.assertEqual(sum("sink retired" in x["reason"] for x in dead), 3)
        self.assertEqual(self.deliveries("pending", "--sink", "webhook"), [])
        self.assertEqual(self.s.ctl("check")[0], 0)
        # the dead letters keep their sink's name, so its slot stays; purge frees it
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        ids = {x["name"]: x["id"] for x in json.loads(out)["sinks"]}
        self.assertIn("webhook", ids)
        before = self.s.ctl("export")[1]
        _, dry, _ = run("--config", cfg, "retire", "webhook", "--purge", "--dry-run", "--json",
                        check_rc=0)
        self.assertEqual(self.s.ctl("export")[1], before)
        _, out, _ = run("--config", cfg, "retire", "webhook", "--purge", "--json", check_rc=0)
        r, d = json.loads(out), json.loads(dry)
        self.assertEqual((r["pending"], r["inflight"], r["dead"], r["delivered"], r["events"]),
                         (0, 0, 7, 1, 5))
        self.assertTrue(r["slot_freed"])
        self.assertTrue(d.pop("dry_run"))
        self.assertFalse(r.pop("dry_run"))
        self.assertEqual(d, r)
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        st = json.loads(out)
        self.assertEqual([x["name"] for x in st["sinks"]], ["slack"])
        self.assertEqual(st["events"], 3)
        self.assertEqual(self.s.ctl("check")[0], 0)
        self.assertEqual(self.s.ctl("list", "--sink", "webhook")[0], 3)
        # the human form says what happened
        rc, out, _ = self.s.ctl("retire", "slack", "--purge", "--dry-run")
        self.assertEqual(rc, 0)
        self.assertIn("sink slack: 1 pending, 0 in flight, 1 dead and 1 delivered deliveries "
                      "would be purged", out)
        # the freed id goes to the next sink registered
        path = os.path.join(self.s.tmp, "one.jsonl")
        with open(path, "w") as f:
            f.write(self.event_line(["slack"]) + "\n")
        self.s.ctl("import", path, "--sink", "fresh", check_rc=0)
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        self.assertEqual({x["name"]: x["id"] for x in json.loads(out)["sinks"]}["fresh"],
                         ids["webhook"])
        self.assertEqual(self.s.ctl("check")[0], 0)

    def test_retire_frees_a_full_registry(self):
        """1,023 sinks fill the registry: no new sink can be registered until one is
        retired with --purge."""
        path = os.path.join(self.s.tmp, "one.jsonl")
        with open(path, "w") as f:
            f.write(self.event_line(["x"]) + "\n")
        n = 2  # webhook, slack
        while n < 1023:
            names = ["s%d" % i for i in range(n, min(n + 64, 1023))]
            args = []
            for name in names:
                args += ["--sink", name]
            self.s.ctl("import", path, *args, check_rc=0)
            n += len(names)
        rc, _, err = self.s.ctl("import", path, "--sink", "one-too-many")
        self.assertEqual(rc, 1)
        self.assertIn("too many sinks", err)
        self.assertIn("outboxctl retire", err)
        _, out, _ = self.s.ctl("retire", "s500", "--purge", check_rc=0)
        self.assertIn("registry slot is freed", out)
        self.s.ctl("import", path, "--sink", "one-too-many", check_rc=0)
        _, out, _ = self.s.ctl("stats", "--json", check_rc=0)
        names = {x["name"] for x in json.loads(out)["sinks"]}
        self.assertEqual(len(names), 1023)
        self.assertIn("one-too-many", names)
        self.assertNotIn("s500", names)
        self.assertEqual(self.s.ctl("check")[0], 0)

    def test_import_needs_the_owner_lock(self):
        # ev1 and ev2 (the extras' bodies lack a timestamp: not events ingest accepts)
        _, out, _ = self.s.ctl("export", "--state", "dead", "--until", "6h30m", check_rc=0)
        path = os.path.join(self.s.tmp, "dead.jsonl")
        with open(path, "w") as f:
            f.write(out)
        holder = subprocess.Popen([FILL, "hold", self.s.dir], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        try:
            self.assertEqual(holder.stdout.readline().strip(), b"ready")
            rc, _, err = self.s.ctl("import", path, "--sink", "slack")
            self.assertEqual(rc, 1)
            self.assertIn("running outboxd", err)
            self.assertIn("--url", err)
            # reading still works next to the owner
            self.assertEqual(self.s.ctl("stats", "--json")[0], 0)
            # and writes by a non-owner (replay) too
            self.assertEqual(self.s.ctl("replay", "--dead", "--sink", "slack")[0], 0)
        finally:
            holder.stdin.close()
            holder.wait(timeout=TIMEOUT)
        # the owner's start moved ev4's in-flight delivery back to pending, in doubt
        _, out, _ = self.s.ctl("show", str(self.ev[3]), "--json", check_rc=0)
        d4 = json.loads(out)["deliveries"][0]
        self.assertEqual((d4["state"], d4["in_doubt"]), ("pending", True))
        _, out, _ = self.s.ctl("list", "--state", "pending", check_rc=0)
        self.assertIn("pending*", out)
        self.assertIn("in doubt", out)
        _, out, _ = self.s.ctl("show", str(self.ev[3]), check_rc=0)
        self.assertIn("IN DOUBT", out)
        _, msg, _ = self.s.ctl("import", path, "--sink", "slack", check_rc=0)
        self.assertIn("imported 2 events", msg)
        self.assertEqual(len(self.deliveries("pending", "--sink", "slack")), 4)

    def test_import_to_a_daemon_url(self):
        _, out, _ = self.s.ctl("export", "--type", "flag", check_rc=0)
        lines = jlines(out)
        self.assertEqual(len(lines), 3)
        path = os.path.join(self.s.tmp, "flags.jsonl")
        with open(path, "w") as f:
            f.write(out)
        port = free_port()
        lp = subprocess.Popen([CTL, "listen", "--port", str(port), "--count", "3",
                               "--status", "202", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_port(port)
            rc, msg, err = run("import", path, "--url",
                               "http://127.0.0.1:%d/v1/events" % port, "--token", "tok")
            self.assertEqual(rc, 0, err)
            self.assertIn("posted 3 events", msg)
            got, _ = lp.communicate(timeout=TIMEOUT)
        finally:
            if lp.poll() is None:
                lp.kill()
                lp.wait()
        reqs = jlines(got.decode())
        self.assertEqual([r["path"] for r in reqs], ["/v1/events"] * 3)
        self.assertEqual([r["body"] for r in reqs], [x["body"] for x in lines])
        self.assertEqual(reqs[0]["headers"]["content-type"], "application/json")
        self.assertEqual(reqs[0]["headers"]["authorization"], "Bearer ***")

    # ---- backup ----
    def test_backup(self):
        dest = os.path.join(self.s.tmp, "backup")
        _, out, _ = self.s.ctl("backup", dest, "--json", check_rc=0)
        self.assertGreater(json.loads(out)["bytes"], 0)
        _, a, _ = self.s.ctl("export", check_rc=0)
        _, b, _ = run("export", data_dir=dest, check_rc=0)
        self.assertEqual(a, b)
        self.assertEqual(run("check", data_dir=dest)[0], 0)
        rc, _, err = self.s.ctl("backup", dest)
        self.assertEqual(rc, 1)
        self.assertIn("already", err)


FLIPT_A_BODY = (b'{"version":"","type":"flag","action":"create","metadata":{},'
                b'"payload":null,"timestamp":"","status":""}')
FLIPT_B_BODY = (b'{"version":"0.2","type":"flag","action":"created","metadata":{"actor":'
                b'{"authentication":"none","ip":"127.0.0.1"}},"payload":{"description":"",'
                b'"enabled":true,"key":"my-flag","name":"My Flag","namespace_key":"default"},'
                b'"timestamp":"2024-06-09T12:00:00Z","status":"success"}')


def wait_port(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d" % port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TryTest(unittest.TestCase):
    """sign and listen (no store needed)."""

    def sign(self, body, *args):
        rc, out, err = run("sign", *args, "--json", input=body)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_sign_vectors(self):
        # Flipt's signature vectors A and B (HMAC-SHA256 of the exact body, lower-case hex)
        self.assertEqual(self.sign(FLIPT_A_BODY, "--secret", "s3crET")
                         ["x-flipt-webhook-signature"],
                         "6bc16d7434cbd746abfd25e3350a3f43fba04883b7f0b83f09bbc373116f84b0")
        self.assertEqual(len(FLIPT_B_BODY), 271)
        self.assertEqual(self.sign(FLIPT_B_BODY, "--secret", "s3crET")
                         ["x-flipt-webhook-signature"],
                         "8820fc7ddd8a127297aa9fc8dc0939b7a97320b543ede98fe7ce4a2c992132d6")
        # the Standard Webhooks specification's own test vector
        sig = self.sign(b'{"test": 2432232314}', "--secret",
                        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--id",
                        "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330")
        self.assertEqual(sig["webhook-signature"],
                         "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        self.assertEqual(sig["webhook-id"], "msg_p5jXN8AQM9LWM0D4loKWxJek")
        # default timestamp: now
        sig = self.sign(b"{}", "--secret", "s3crET")
        self.assertLess(abs(int(sig["webhook-timestamp"]) - time.time()), 60)
        # from a file, human form; the secret is never printed
        path = os.path.join(tempfile.gettempdir(), "outboxctl-sign-%d.json" % os.getpid())
        with open(path, "wb") as f:
            f.write(FLIPT_B_BODY)
        try:
            rc, out, _ = run("sign", "--secret", "s3crET", path)
        finally:
            os.unlink(path)
        self.assertEqual(rc, 0)
        self.assertIn("X-Flipt-Webhook-Signature: 8820fc7d", out)
        self.assertNotIn("s3crET", out)
        self.assertEqual(run("sign")[0], 2)
        self.assertEqual(run("sign", "--secret", "x", "--timestamp", "soon")[0], 2)

    def test_listen_verifies_curl_post(self):
        port = free_port()
        lp = subprocess.Popen([CTL, "listen", "--port", str(port), "--secret", "s3crET",
                               "--count", "2", "--status", "202", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_port(port)
            sig = self.sign(FLIPT_B_BODY, "--secret", "s3crET", "--id", "msg_x")
            url = "http://127.0.0.1:%d/hook" % port
            good = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                 "-H", "Content-Type: application/json",
                 "-H", "X-Flipt-Webhook-Signature: " + sig["x-flipt-webhook-signature"],
                 "-H", "webhook-id: msg_x",
                 "-H", "webhook-timestamp: " + sig["webhook-timestamp"],
                 "-H", "webhook-signature: " + sig["webhook-signature"],
                 "-H", "Authorization: Bearer hush-hush",
                 "--data-binary", "@-", url],
                input=FLIPT_B_BODY, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(good.stdout, b"202")
            bad = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                 "-H", "X-Flipt-Webhook-Signature: " + "0" * 64,
                 "-H", "webhook-id: msg_x", "-H", "webhook-timestamp: 1614265330",
                 "-H", "webhook-signature: v1,AAAA",
                 "--data-binary", "@-", url],
                input=b"tampered", capture_output=True, timeout=TIMEOUT)
            self.assertEqual(bad.stdout, b"202")
            out, err = lp.communicate(timeout=TIMEOUT)
        finally:
            if lp.poll() is None:
                lp.kill()
                lp.wait()
        self.assertEqual(lp.returncode, 0, err)
        reqs = jlines(out.decode())
        self.assertEqual(len(reqs), 2)
        r1, r2 = reqs
        self.assertEqual((r1["method"], r1["path"], r1["status"]), ("POST", "/hook", 202))
        self.assertEqual(r1["signatures"]["flipt"], "valid")
        self.assertEqual(r1["signatures"]["standard"], "valid")
        self.assertEqual(r1["headers"]["webhook-id"], "msg_x")
        self.assertEqual(r1["headers"]["authorization"], "Bearer ***")
        self.assertEqual(r1["body"], json.loads(FLIPT_B_BODY))
        self.assertEqual(r2["signatures"]["flipt"], "INVALID")
        self.assertEqual(r2["signatures"]["standard"], "INVALID")
        self.assertEqual(base64.b64decode(r2["body_base64"]), b"tampered")
        self.assertNotIn(b"hush-hush", out)


# Flipt's template behaviour (README "Templates", delivery/template/README.md): fixtures and some vectors (id, template, event overrides, output or
# error class). "valid": false vectors must exit 1 (the engine would not send them).
E = {"version": "0.2", "type": "flag", "action": "created",
     "metadata": {"actor": {"authentication": "none", "ip": "127.0.0.1"}},
     "payload": {"key": "my-flag", "name": "My Flag", "description": "", "enabled": True,
                 "namespace_key": "default"},
     "timestamp": "2024-06-09T12:00:00Z", "status": "success"}
NUM = '{"rank":1,"rollout":33.3,"big":1000000,"small":1e-7,"huge":1e21,"i7":12345678}'
VECTORS = [
    ("T01", '{"event":"{{ .Type }}:{{ .Action }}"}', None, '{"event":"flag:created"}', True),
    ("T05", "{{ toJson .Metadata }}", {"metadata": {}}, '{"actor":{}}', True),
    ("T08", "{{ toJson .Payload }}", None, '{"description":"","enabled":true,"key":"my-flag",'
     '"name":"My Flag","namespace_key":"default"}', True),
    ("T09", "{{ toJson . }}", None, '{"version":"0.2","type":"flag","action":"created",'
     '"metadata":{"actor":{"authentication":"none","ip":"127.0.0.1"}},"payload":'
     '{"description":"","enabled":true,"key":"my-flag","name":"My Flag","namespace_key":'
     '"default"},"timestamp":"2024-06-09T12:00:00Z","status":"success"}', True),
    ("T11", '{{- if eq .Action "created" -}} yes {{- else -}} no {{- end -}}', None, "yes",
     False),
    ("T21", "{{ toJson .Payload }}", "NUM", '{"big":1000000,"huge":1e+21,"i7":12345678,'
     '"rank":1,"rollout":33.3,"small":1e-7}', True),
    ("T28", "{{ toJson .Payload.d }}", {"payload": {"d": "<b>\u00e9</b> & \"q\"\n"}},
     '"\\u003cb\\u003e\u00e9\\u003c/b\\u003e \\u0026 \\"q\\"\\n"', True),
    ("T36", '{\n  "a": "{{ .Type }}",\n  {{- /* note */ -}}\n  {{- if .Payload.enabled }}\n'
     '  "on": true\n  {{- end }}\n}', None, '{\n  "a": "flag",\n  "on": true\n}', True),
    ("T23", "{{ eq .Payload.rank 1 }}", "NUM", "incompatible types for comparison", None),
    ("T27", "{{ .Payload.key }}", {"status": "denied", "payload": None},
     "nil pointer evaluating interface {}.key", None),
    ("T39", "{{ .version }}", None, "can't evaluate field version", None),
    ("T42", "{{ if .Type }}x", None, "unexpected EOF", None),
]


class RenderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="outboxctl-render-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def event(self, over):
        if over == "NUM":
            ev = json.dumps(dict(E, payload=None))
            return ev.replace('"payload": null', '"payload": ' + NUM)
        ev = dict(E)
        ev.update(over or {})
        return json.dumps(ev)

    def test_vectors(self):
        for vid, tmpl, over, want, valid in VECTORS:
            with self.subTest(vid):
                t = self.write(vid + ".tmpl", tmpl)
                e = self.write(vid + ".json", self.event(over))
                rc, out, err = run("render", "--template", t, "--event", e)
                if valid is None:  # parse/exec error
                    self.assertEqual(rc, 1)
                    self.assertIn(want, err)
                    self.assertIn("template: :1", err)
                    self.assertEqual(out, "")
                elif valid:
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(out, want)
                else:
                    self.assertEqual(rc, 1)
                    self.assertIn("invalid JSON: " + want, err)
                    rc, out, _ = run("render", "--template", t, "--event", e, "--raw")
                    self.assertEqual((rc, out), (0, want))

    def test_configured_sink(self):
        cfg = self.write("outboxd.yaml",
                         "outbox:\n  path: %s\nsinks:\n"
                         "  - name: slack\n    url: http://127.0.0.1:9/x\n"
                         "    body: '{\"text\": \"{{ .Type }}/{{ .Action }}\"}'\n"
                         "  - name: plain\n    url: http://127.0.0.1:9/y\n"
                         % os.path.join(self.tmp, "store"))
        e = os.path.join(FIXTURES, "events", "flag-created.json")
        rc, out, err = run("--config", cfg, "render", "--sink", "slack", "--event", e)
        self.assertEqual((rc, out), (0, '{"text": "flag/created"}'), err)
        rc, out, err = run("--config", cfg, "render", "--sink", "plain", "--event", e)
        self.assertEqual(rc, 0)
        with open(e) as f:
            self.assertEqual(out, f.read())
        self.assertIn("URL mode", err)
        self.assertEqual(run("--config", cfg, "render", "--sink", "nope", "--event", e)[0], 3)
        self.assertEqual(run("render", "--sink", "slack", "--event", e)[0], 2)
        self.assertEqual(run("render", "--event", e)[0], 2)


class Receiver:
    """A loopback webhook receiver: answers `status` (settable), records every webhook-id
    it answered with a 2xx."""

    def __init__(self):
        self.status = 500  # 0: hold each request until `release` is set, then answer 500
        self.release = threading.Event()
        self.ok_ids = []
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                with outer.lock:
                    outer.requests += 1
                    st = outer.status
                if st == 0:
                    outer.release.wait(TIMEOUT)
                    st = 500
                with outer.lock:
                    if 200 <= st < 300:
                        outer.ok_ids.append(self.headers.get("webhook-id"))
                self.send_response(st)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class DaemonTest(unittest.TestCase):
    """outboxctl next to a running outboxd."""

    def setUp(self):
        if not OUTBOXD:
            self.skipTest("outboxd not built")
        self.tmp = tempfile.mkdtemp(prefix="outboxctl-daemon-")
        self.dir = os.path.join(self.tmp, "store")
        self.rx = Receiver()
        self.port = free_port()
        self.cfg = os.path.join(self.tmp, "outboxd.yaml")
        with open(self.cfg, "w") as f:
            f.write("outbox:\n  path: %s\n  max_size: 64MiB\n"
                    "ingest:\n  listen: 127.0.0.1:%d\n"
                    "sinks:\n  - name: webhook\n    url: http://127.0.0.1:%d/hook\n"
                    "    events: ['*:*']\n    max_backoff_duration: 1s\n"
                    "    initial_interval: 100ms\n    max_interval: 200ms\n"
                    % (self.dir, self.port, self.rx.port))
        self.log = open(os.path.join(self.tmp, "outboxd.log"), "w")
        self.d = subprocess.Popen([OUTBOXD, "--config", self.cfg], stdout=self.log,
                                  stderr=subprocess.STDOUT)
        wait_port(self.port)

    def tearDown(self):
        if hasattr(self, "d"):
            self.d.terminate()
            try:
                self.d.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.d.kill()
                self.d.wait()
            self.log.close()
        if hasattr(self, "rx"):
            self.rx.close()
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def post(self, n, tag):
        url = "http://127.0.0.1:%d/v1/events" % self.port
        for i in range(n):
            body = json.dumps({"version": "0.2", "type": "flag", "action": "created",
                               "metadata": {"actor": {}}, "payload": {"key": "%s-%d" % (tag, i)},
                               "timestamp": "2024-06-09T12:00:00Z", "status": "success"})
            req = urllib.request.Request(url, data=body.encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                self.assertEqual(r.status, 202)

    def stats(self):
        _, out, _ = run("--config", self.cfg, "stats", "--json", check_rc=0)
        return json.loads(out)["total"]

    def wait_for(self, pred, what, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            st = self.stats()
            if pred(st):
                return st
            time.sleep(0.2)
        self.fail("timed out waiting for %s: %s" % (what, self.stats()))

    def test_retire_next_to_the_daemon(self):
        # the receiver holds every request: deliveries stay in flight
        with self.rx.lock:
            self.rx.status = 0
        self.post(3, "held")
        self.wait_for(lambda st: st["inflight"] == 3, "3 in flight")
        rc, _, err = run("--data-dir", self.dir, "retire", "webhook", "--purge")
        self.assertEqual(rc, 1)
        self.assertIn("outboxd (pid %d) owns this outbox: give its --config" % self.d.pid, err)
        rc, _, err = run("--config", self.cfg, "retire", "webhook", "--purge")
        self.assertEqual(rc, 1)
        self.assertIn("still configured", err)
        other = os.path.join(self.tmp, "other.yaml")
        with open(other, "w") as f:
            f.write("outbox:\n  path: %s\nsinks:\n  - name: other\n"
                    "    url: http://127.0.0.1:9/x\n" % self.dir)
        rc, _, err = run("--config", other, "retire", "webhook", "--dead-letter")
        self.assertEqual(rc, 1)
        self.assertIn('3 deliveries of sink "webhook" are in flight under outboxd (pid %d)'
                      % self.d.pid, err)
        self.assertEqual(self.stats()["inflight"], 3)  # nothing changed
        self.rx.release.set()
        self.wait_for(lambda st: st["inflight"] == 0, "the held requests answered")

    def test_replay_while_delivering_loses_and_duplicates_nothing(self):
        _, out, _ = run("--config", self.cfg, "stats", "--json", check_rc=0)
        self.assertEqual(json.loads(out)["daemon_pid"], self.d.pid)  # found, not disturbed
        _, out, _ = run("--config", self.cfg, "stats", check_rc=0)
        self.assertIn("daemon   running (pid %d)" % self.d.pid, out)
        self.post(40, "first")
        self.wait_for(lambda st: st["dead"] == 40, "40 dead letters")
        # live reads while the daemon runs
        _, out, _ = run("--config", self.cfg, "list", "--state", "dead", "--limit", "0",
                        "--json", check_rc=0)
        dead = jlines(out)
        self.assertEqual(len(dead), 40)
        self.assertTrue(all(d["attempts"] >= 1 and d["reason"] for d in dead))
        # the receiver recovers; new events arrive while the dead letters are replayed
        with self.rx.lock:
            self.rx.status = 200
        poster = threading.Thread(target=self.post, args=(40, "second"))
        poster.start()
        rc, out, err = run("--config", self.cfg, "replay", "--dead", "--json")
        poster.join(timeout=TIMEOUT)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["replayed"], 40)
        st = self.wait_for(lambda st: st["delivered"] == 80 and st["pending"] == 0 and
                           st["inflight"] == 0, "80 delivered")
        self.assertEqual(st["dead"], 0)
        time.sleep(0.5)  # anything sent twice would have arrived by now
        with self.rx.lock:
            ids = list(self.rx.ok_ids)
        self.assertEqual(len(ids), 80, "2xx answers: one per delivery, no duplicates")
        self.assertEqual(len(set(ids)), 80)
        # replayed ones kept their webhook-id: the dead letters' ids are among the answered
        dead_ids = {d["webhook_id"] for d in dead}
        self.assertRegex(dead[0]["webhook_id"],
                         r"^evt_[0-9a-f]{32}_%d_%d$" % (dead[0]["id"], dead[0]["sink_id"]))
        self.assertTrue(dead_ids <= set(ids))
        self.assertEqual(run("--config", self.cfg, "check")[0], 0)


def main():
    global CTL, FILL, OUTBOXD
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    CTL, FILL = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if len(sys.argv) > 3:
        OUTBOXD = os.path.abspath(sys.argv[3])
    os.environ.pop("OUTBOX_DATA_DIR", None)
    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite([loader.loadTestsFromTestCase(OutboxctlTest),
                                loader.loadTestsFromTestCase(TryTest),
                                loader.loadTestsFromTestCase(RenderTest),
                                loader.loadTestsFromTestCase(DaemonTest)])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
