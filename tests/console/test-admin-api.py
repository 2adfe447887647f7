#!/usr/bin/env python3
"""test-admin-api.py - outboxd's admin API (tools/outboxd-admin.c) against the real daemon,
a real store and a real webhook receiver on 127.0.0.1 (Python 3 stdlib, tests/e2e/harness.py).

Proves: every endpoint and every filter answers what the store holds (compared with
outboxctl --json, the same fields); paging across more deliveries than one page, both
orders, both index kinds, without gaps or repeats; replay (one delivery, one event, by
filter) reaches the receiver again with the same webhook-id; purge needs "confirm" for more
than one; tokens and roles (401, 403); the no-token loopback rule (config error otherwise,
Host check); bad input (unknown state, bad cursor, bad JSON, huge limit, unknown members,
wrong method/type, oversized body) answered 4xx with nothing changed; writes are logged
with the token's index and never the token.

Both store backends: with OUTBOX_PG_DSN set (tests/pg runs it under pgharness.py), every
test runs against a PostgreSQL outbox instead, each in a schema of its own, and outboxctl
reads it through --config.
"""
import binascii
import http.client
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import (OUTBOXD, Answer, Case, ctl, event,  # noqa: E402
                     require_binaries, sanitizer_env, store_yaml, wait_for)

RW, RO = "rw-s3cret-token-value", "ro-s3cret-token-value"


def config_text(rx, admin):
    return (store_yaml() +
            "ingest:\n  listen: 127.0.0.1:0\n"
            "%s"
            "sinks:\n"
            "  - name: ok\n    url: %s\n    events: [\"*:*\"]\n"
            "  - name: bad\n    url: %s\n    events: [\"*:*\"]\n"
            "    initial_interval: 50ms\n    max_interval: 200ms\n"
            "    dead_letter_on: [410]\n" % (admin, rx.url("/ok"), rx.url("/bad")))


class Admin:
    """An HTTP client for the admin listener of a Daemon."""

    def __init__(self, daemon, token=None):
        rec = daemon.find("started")
        self.port = int(rec["admin"].rsplit(":", 1)[1])
        self.token = token

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = dict((k.lower(), v) for k, v in r.getheaders())
        finally:
            c.close()
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = payload
        return r.status, doc, hdrs

    def ok(self, method, path, body=None, **kw):
        st, doc, _ = self.call(method, path, body, **kw)
        if st != 200:
            raise AssertionError("%s %s -> %d %s" % (method, path, st, doc))
        return doc

    def stats(self):
        return {s["name"]: s for s in self.ok("GET", "/api/v1/stats")["sinks"]}

    def all_pages(self, query, limit):
        """Every delivery of a listing, page by page; (items, pages)."""
        items, cursor, pages = [], None, 0
        while True:
            q = query + "&limit=%d" % limit + ("&cursor=" + cursor if cursor else "")
            doc = self.ok("GET", "/api/v1/deliveries?" + q)
            pages += 1
            self.test_page(doc, limit)
            items += doc["deliveries"]
            cursor = doc["next_cursor"]
            if not cursor:
                return items, pages
            if pages > 100:
                raise AssertionError("paging does not end")

    @staticmethod
    def test_page(doc, limit):
        if len(doc["deliveries"]) > limit:
            raise AssertionError("page of %d over limit %d" % (len(doc["deliveries"]), limit))


def keys(items):
    return [(d["id"], d["sink"]) for d in items]


class AdminApi(Case):
    prefix = "obx-admin-"

    def ctl(self, *args):
        """outboxctl on this test's outbox: --data-dir, or --config for PostgreSQL."""
        env = sanitizer_env()
        env.setdefault("RW_TOK", RW)  # a config of test_tokens_and_roles names ${RW_TOK}
        r = ctl(self.data, *args, timeout=60, env=env, config=self.cfg)
        if r.returncode != 0:
            raise AssertionError("outboxctl %s failed (%d): %s" % (args, r.returncode, r.stderr))
        return r

    def ctl_lines(self, *args):
        return [json.loads(ln) for ln in self.ctl(*args).stdout.splitlines() if ln.strip()]

    def setUp(self):
        super().setUp()
        self.rx.routes["/bad"] = [Answer(410)]

    def boot(self, admin_yaml, token=None):
        with open(self.cfg, "w") as f:
            f.write(config_text(self.rx, admin_yaml))
        d = self.start()
        return d, Admin(d, token)

    def fill(self, d, n_flag=7):
        """n_flag flag events (actions cycling), one segment event; all dead at 'bad'."""
        actions = ["created", "updated", "deleted"]
        for i in range(n_flag):
            st, _, _ = d.post(event("k%d" % i, action=actions[i % 3]))
            self.assertEqual(st, 202)
        st, _, _ = d.post(event("seg", typ="segment"))
        self.assertEqual(st, 202)
        total = n_flag + 1
        wait_for(lambda: self.ctl_lines("stats", "--json")[0]["total"]["dead"] == total
                 and self.ctl_lines("stats", "--json")[0]["total"]["delivered"]
                 == total, 30, "every event delivered to ok and dead at bad")
        return total

    def snapshot(self):
        return sorted(json.dumps(x, sort_keys=True)
                      for x in self.ctl_lines("list", "--state", "all", "--limit", "0",
                                              "--json"))

    # ------------------------------------------------------------------ reads

    def test_reads_filters_paging(self):
        d, a = self.boot("admin:\n  listen: 127.0.0.1:0\n")
        self.assertIn("loopback only", d.find("started")["admin_auth"])
        total = self.fill(d)
        # stats: the same counters as outboxctl stats --json
        api = a.ok("GET", "/api/v1/stats")
        cli = self.ctl_lines("stats", "--json")[0]
        for k in ("events", "enqueued", "max_size", "schema_version"):
            self.assertEqual(api[k], cli[k], k)
        self.assertEqual({s["name"]: (s["dead"], s["delivered"], s["configured"])
                          for s in api["sinks"]},
                         {"ok": (0, total, True), "bad": (total, 0, True)})
        self.assertEqual(api["total"]["dead"], total)
        # a listing item has outboxctl list --json's fields, with the same values
        item = a.ok("GET", "/api/v1/deliveries?state=dead&limit=1")["deliveries"][0]
        line = [x for x in self.ctl_lines("list", "--state", "dead", "--json")
                if x["id"] == item["id"]][0]
        self.assertEqual(item, line)
        # every filter
        q = lambda s: keys(a.ok("GET", "/api/v1/deliveries?limit=1000&" + s)["deliveries"])
        self.assertEqual(len(q("state=dead")), total)
        self.assertTrue(all(s == "bad" for _, s in q("state=dead")))
        self.assertEqual(len(q("state=delivered&sink=ok")), total)
        self.assertEqual(q("state=pending"), [])
        self.assertEqual(q("state=inflight"), [])
        self.assertEqual(len(q("state=all")), 2 * total)
        self.assertEqual(len(q("sink=bad")), total)
        self.assertEqual(len(q("type=segment")), 2)
        self.assertEqual(len(q("type=flag&action=updated&sink=ok")), 2)
        self.assertEqual(len(q("since=1h")), 2 * total)
        self.assertEqual(q("until=1h"), [])
        self.assertEqual(q("since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"), [])
        ids = [i for i, _ in q("sink=ok&order=oldest")]
        self.assertEqual(ids, sorted(ids))
        ids = [i for i, _ in q("sink=ok")]  # newest first by default
        self.assertEqual(ids, sorted(ids, reverse=True))
        # paging across pages: no gaps, no repeats, both orders, both index kinds
        for query in ("state=dead", "state=dead&order=oldest", "state=all",
                      "state=all&order=oldest", "sink=ok&state=delivered"):
            whole = q(query)
            paged, pages = a.all_pages(query, 3)
            self.assertEqual(keys(paged), whole, query)
            self.assertGreater(pages, 2, query)
        # one event: body, deliveries, attempt history
        eid = q("type=segment&sink=bad")[0][0]
        ev = a.ok("GET", "/api/v1/events/%d" % eid)
        self.assertEqual(ev["body"], json.loads(event("seg", typ="segment")))
        dl = {x["sink"]: x for x in ev["deliveries"]}
        self.assertEqual(dl["bad"]["state"], "dead")
        self.assertEqual(dl["bad"]["history"][0]["status"], 410)
        self.assertEqual(dl["ok"]["state"], "delivered")
        self.assertIn("duration_ms", dl["ok"]["history"][0])
        show = json.loads(self.ctl("show", str(eid), "--json").stdout)
        self.assertEqual(ev, show)
        self.assertEqual(a.call("GET", "/api/v1/events/999999")[0], 404)
        # the console and its files
        st, page, h = a.call("GET", "/")
        self.assertEqual(st, 200)
        self.assertIn(b"console.js", page)
        self.assertIn("frame-ancestors 'none'", h["content-security-policy"])
        self.assertIn("script-src 'self'", h["content-security-policy"])
        self.assertEqual(a.call("GET", "/console.js")[2]["content-type"].split(";")[0],
                         "text/javascript")
        self.assertEqual(a.call("GET", "/nope.html")[0], 404)
        d.stop()

    # ------------------------------------------------------------------ bad input

    def test_bad_input_changes_nothing(self):
        d, a = self.boot("admin:\n  listen: 127.0.0.1:0\n")
        self.fill(d, n_flag=3)
        before = self.snapshot()
        cases = [
            ("GET", "/api/v1/deliveries?state=bogus", None, None, 400, "unknown state"),
            ("GET", "/api/v1/deliveries?cursor=zz", None, None, 400, "cursor"),
            ("GET", "/api/v1/deliveries?cursor=" + binascii.hexlify(b"c1:1:2").decode(), None,
             None, 400, "cursor"),
            ("GET", "/api/v1/deliveries?state=dead&order=oldest&cursor="
             + binascii.hexlify(b"c1:0:1:1:4:1").decode(), None, None, 400, "another"),
            ("GET", "/api/v1/deliveries?limit=1001", None, None, 400, "limit"),
            ("GET", "/api/v1/deliveries?limit=99999999999999999999", None, None, 400, "limit"),
            ("GET", "/api/v1/deliveries?limit=0", None, None, 400, "limit"),
            ("GET", "/api/v1/deliveries?sink=nosuch", None, None, 400, "nosuch"),
            ("GET", "/api/v1/deliveries?since=yesterday", None, None, 400, "since"),
            ("GET", "/api/v1/deliveries?order=sideways", None, None, 400, "order"),
            ("GET", "/api/v1/deliveries?stat=dead", None, None, 400, "unknown parameter"),
            ("POST", "/api/v1/replay", None, b"{not json", 400, "invalid JSON"),
            ("POST", "/api/v1/replay", None, b"[1,2]", 400, "object"),
            ("POST", "/api/v1/replay", {"sink": "bad", "colour": "red"}, None, 400, "colour"),
            ("POST", "/api/v1/replay", {"state": "pending"}, None, 400, "dead letters only"),
            ("POST", "/api/v1/replay", {"dry_run": "yes"}, None, 400, "dry_run"),
            ("POST", "/api/v1/purge", {"sink": 7}, None, 400, "string"),
            ("POST", "/api/v1/purge", {"state": "bogus"}, None, 400, "unknown state"),
            ("POST", "/api/v1/purge", {}, None, 409, "confirm"),
            ("POST", "/api/v1/events/999999/replay", {}, None, 404, "999999"),
            ("POST", "/api/v1/events/1/purge", {"sink": "ok"}, None, 409, "no dead"),
            ("POST", "/api/v1/events/1/replay", {"sink": "nosuch"}, None, 400, "nosuch"),
            ("GET", "/api/v1/replay", None, None, 405, "POST"),
            ("POST", "/api/v1/stats", {}, None, 405, "GET"),
            ("DELETE", "/api/v1/events/1", None, None, 405, "GET"),
            ("GET", "/api/v1/nothing", None, None, 404, "no such endpoint"),
            ("GET", "/api/v2/stats", None, None, 404, "no such endpoint"),
        ]
        for method, path, body, raw, want, text in cases:
            st, doc, h = a.call(method, path, body, raw=raw,
                                headers={"Content-Type": "application/json"} if raw else None)
            self.assertEqual(st, want, (method, path, body, raw, doc))
            self.assertIn(text, doc["error"], (method, path))
            self.assertTrue(h["content-type"].startswith("application/json"))
        st, _, h = a.call("GET", "/api/v1/replay")
        self.assertEqual(h.get("allow"), "POST")
        # a form post (not JSON) and an oversized body
        st, doc, _ = a.call("POST", "/api/v1/replay", raw=b"sink=bad",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 415, doc)
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded",
                      "application/jsonx"):  # an empty form post must not replay everything
            st, doc, _ = a.call("POST", "/api/v1/replay", raw=b"",
                                headers={"Content-Type": ctype} if ctype else {})
            self.assertEqual(st, 415, (ctype, doc))
        st, doc, _ = a.call("POST", "/api/v1/replay", {},
                            headers={"Origin": "http://evil.example"})
        self.assertEqual(st, 403, doc)
        self.assertIn("Origin", doc["error"])
        st, doc, _ = a.call("POST", "/api/v1/replay", raw=b" " * 70000,
                            headers={"Content-Type": "application/json"})
        self.assertEqual(st, 413, doc)
        # a page on another origin reaching loopback through DNS rebinding
        st, doc, _ = a.call("GET", "/api/v1/stats", headers={"Host": "evil.example:8081"})
        self.assertEqual(st, 403, doc)
        self.assertEqual(self.snapshot(), before)
        self.assertIsNone(d.find("admin write"))
        # the same origin (the console itself) may write
        r = a.ok("POST", "/api/v1/replay", {"dry_run": True},
                 headers={"Origin": "http://127.0.0.1:%d" % a.port})
        self.assertEqual(r["matched"], 4)
        d.stop()

    # ------------------------------------------------------------------ writes

    def test_replay_and_purge(self):
        d, a = self.boot("admin:\n  listen: 127.0.0.1:0\n")
        total = self.fill(d)
        before = self.snapshot()
        # dry runs count and change nothing
        r = a.ok("POST", "/api/v1/replay", {"dry_run": True})
        self.assertEqual((r["replayed"], r["matched"], r["events"], r["dry_run"]),
                         (total, total, total, True))
        self.assertEqual(len(r["ids"]), total)
        r = a.ok("POST", "/api/v1/purge", {"dry_run": True, "type": "flag"})
        self.assertEqual((r["purged"], r["matched"]), (total - 1, total - 1))
        self.assertEqual(self.snapshot(), before)
        # the receiver now accepts; replay one delivery of one event
        first = {}
        for req in self.rx.got("/bad"):
            first.setdefault(req.headers.get("webhook-id"), req)
        self.rx.routes["/bad"] = [Answer(200)]
        eid = a.ok("GET", "/api/v1/deliveries?state=dead&sink=bad&limit=1")["deliveries"][0]
        r = a.ok("POST", "/api/v1/events/%d/replay" % eid["id"], {"sink": "bad"})
        self.assertEqual((r["replayed"], r["ids"]), (1, [{"event_id": eid["id"], "sink": "bad"}]))
        wait_for(lambda: a.ok("GET", "/api/v1/events/%d" % eid["id"])["deliveries"][1]["state"]
                 == "delivered" or any(x["sink"] == "bad" and x["state"] == "delivered"
                                        for x in a.ok("GET", "/api/v1/events/%d" % eid["id"])
                                        ["deliveries"]), 20, "the replayed delivery delivered")
        wid = eid["webhook_id"]
        self.assertIn(wid, first)
        self.assertEqual(sum(1 for q in self.rx.got("/bad") if q.headers.get("webhook-id") == wid),
                         2, "sent again with the same webhook-id")
        # replay by filter: the 'updated' flag events only
        want = a.ok("GET", "/api/v1/deliveries?state=dead&action=updated&type=flag")["deliveries"]
        want = sorted(x["id"] for x in want)
        r = a.ok("POST", "/api/v1/replay", {"action": "updated", "type": "flag"})
        self.assertEqual(sorted(x["event_id"] for x in r["ids"]), want)
        self.assertEqual(r["replayed"], len(want))
        wait_for(lambda: a.stats()["bad"]["dead"] == total - 1 - len(want), 20,
                 "the replayed dead letters delivered")
        # purge: more than one needs confirm; then purge them
        left = a.stats()["bad"]["dead"]
        self.assertGreater(left, 1)
        st, doc, _ = a.call("POST", "/api/v1/purge", {"sink": "bad"})
        self.assertEqual(st, 409)
        self.assertIn("%d dead letters" % left, doc["error"])
        self.assertEqual(a.stats()["bad"]["dead"], left)
        one = a.ok("GET", "/api/v1/deliveries?state=dead&limit=1")["deliveries"][0]["id"]
        r = a.ok("POST", "/api/v1/events/%d/purge" % one, {"sink": "bad"})
        self.assertEqual(r["purged"], 1)
        r = a.ok("POST", "/api/v1/purge", {"sink": "bad", "confirm": True})
        self.assertEqual(r["purged"], left - 1)
        self.assertEqual(a.stats()["bad"]["dead"], 0)
        self.assertEqual(a.call("POST", "/api/v1/events/%d/purge" % one, {})[0], 409)
        # every write logged: who (no token here), what, how many
        writes = wait_for(lambda: [x for x in d.logs() if x.get("msg") == "admin write"][3:]
                          and [x for x in d.logs() if x.get("msg") == "admin write"], 10,
                          "four writes logged")
        self.assertEqual([(w["what"], w["changed"]) for w in writes],
                         [("replay", 1), ("replay", len(want)), ("purge", 1),
                          ("purge", left - 1)])
        self.assertTrue(all(w["by"] == "no token (loopback)" for w in writes))
        d.stop()

    # ------------------------------------------------------------------ tokens

    def test_tokens_and_roles(self):
        with open(self.cfg, "w") as f:
            f.write(config_text(self.rx, "admin:\n  listen: 127.0.0.1:0\n"
                                "  tokens: [\"${RW_TOK}\"]\n  read_only_tokens: [%s]\n" % RO))
        d = self.start(env={"RW_TOK": RW})
        self.assertEqual(d.find("started")["admin_auth"], "token")
        a = Admin(d)
        self.fill(d, n_flag=2)
        before = self.snapshot()
        for tok in (None, "", "wrong", RW + "x", RW[:-1]):
            st, doc, h = a.call("GET", "/api/v1/stats", token=tok)
            self.assertEqual(st, 401, tok)
            self.assertIn("Bearer", h["www-authenticate"])
        self.assertEqual(a.call("GET", "/api/v1/stats", token=RO)[0], 200)
        self.assertEqual(a.call("GET", "/api/v1/deliveries?state=dead", token=RO)[0], 200)
        for path in ("/api/v1/replay", "/api/v1/purge", "/api/v1/events/1/replay"):
            st, doc, _ = a.call("POST", path, {"dry_run": True} if "events" not in path else {},
                                token=RO)
            self.assertEqual(st, 403, path)
            self.assertIn("read-only", doc["error"])
        self.assertEqual(a.call("POST", "/api/v1/replay", {}, token="wrong")[0], 401)
        self.assertEqual(self.snapshot(), before)
        # the console itself loads without a token (it asks for one)
        self.assertEqual(a.call("GET", "/")[0], 200)
        # with tokens, any Host is fine (the token is the guard)
        self.assertEqual(a.call("GET", "/api/v1/stats", token=RO,
                                headers={"Host": "outbox.example"})[0], 200)
        r = a.ok("POST", "/api/v1/replay", {"sink": "bad"}, token=RW)
        self.assertEqual(r["replayed"], 3)
        w = wait_for(lambda: d.find("admin write"), 10, "the write logged")
        self.assertEqual((w["by"], w["what"], w["matched"]), ("token rw[0]", "replay", 3))
        self.assertNotIn(RW, d.stderr())
        self.assertNotIn(RO, d.stderr())
        d.stop()

    # ------------------------------------------------------------------ config

    def check_config(self, admin_yaml, env=None):
        with open(self.cfg, "w") as f:
            f.write(config_text(self.rx, admin_yaml))
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([OUTBOXD, "--config", self.cfg, "--check-config"],
                              capture_output=True, text=True, env=e, timeout=30)

    def test_config_rules(self):
        r = self.check_config("admin:\n  listen: 0.0.0.0:8081\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("admin.listen", r.stderr)
        self.assertIn("loopback", r.stderr)
        r = self.check_config("admin:\n  listen: 0.0.0.0:8081\n  read_only_tokens: [%s]\n" % RO)
        self.assertEqual(r.returncode, 0, r.stderr)
        for ok in ("127.0.0.1:8081", "localhost:8081", "[::1]:8081", "127.1.2.3:9"):
            r = self.check_config("admin:\n  listen: \"%s\"\n" % ok)
            self.assertEqual(r.returncode, 0, (ok, r.stderr))
        r = self.check_config("admin:\n  listen: 127.0.0.1:8081\n  token: [x]\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("admin.token", r.stderr)
        r = self.check_config("admin:\n  tokens: [x]\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("listen is required", r.stderr)
        r = self.check_config("admin:\n  listen: nowhere\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("HOST:PORT", r.stderr)
        r = self.check_config("admin:\n  listen: 127.0.0.1:1\n  tokens: [\"${NO_SUCH_VAR_X}\"]\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("NO_SUCH_VAR_X", r.stderr)
        # absent: no admin listener
        with open(self.cfg, "w") as f:
            f.write(config_text(self.rx, ""))
        d = self.start()
        rec = d.find("started")
        self.assertEqual((rec["admin"], rec["admin_auth"]), ("off", "off"))
        d.stop()


if __name__ == "__main__":
    require_binaries()
    unittest.main(verbosity=2)
