#!/usr/bin/env python3
"""test-monitoring.py - the monitoring kit in tools/monitoring/ against a real daemon.

- `promtool test rules`: every alert fires on its synthetic series and stays quiet on a
  healthy daemon's (tools/monitoring/outbox-rules.test.yml).
- A live outboxd delivers to one receiver and dead-letters to a closed port; its /metrics
  passes `promtool check metrics` (no lint problems).
- Every metric the rules and the Grafana dashboard use exists in that live /metrics (a
  histogram's _bucket/_sum/_count included) or is a recording rule of the rules file;
  every dashboard expression parses as PromQL (`promtool check rules` on a rules file made
  of them); every panel has a query.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import (SRC, Case, event, require_binaries, sink_yaml, wait_for,  # noqa: E402
                     write_config)

KIT = os.path.join(SRC, "tools", "monitoring")
RULES = os.path.join(KIT, "outbox-rules.yml")
DASHBOARD = os.path.join(KIT, "outbox-dashboard.json")
PROMTOOL = shutil.which("promtool")
NAME = re.compile(r"\b(outbox_[a-z0-9_]+|outbox:[a-z0-9_:]+)")


def promtool(*args, stdin=None):
    if not PROMTOOL:
        raise AssertionError("promtool not found: install Debian's prometheus package "
                             "(tools/bootstrap does)")
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True,
                          cwd=KIT, timeout=120)


def dashboard_exprs():
    """(where, expr) for every panel target and template query of the dashboard."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            targets = [t["expr"] for t in p.get("targets", []) if t.get("expr")]
            if not targets:
                raise AssertionError("panel %r has no query" % p.get("title"))
            out.extend(("panel %r" % p["title"], e) for e in targets)

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
            out.append(("variable $%s" % v["name"], m.group(1) if m else q))
    return out


def promql(expr):
    """Grafana's variables replaced by what they stand for, so promtool can parse it."""
    return (expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
            .replace("$instance", ".*").replace("$sink", ".*"))


class Monitoring(Case):
    prefix = "obx-monitoring-"

    def test_rules_unit_tests(self):
        r = promtool("test", "rules", "outbox-rules.test.yml")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_live_metrics_and_dashboard(self):
        write_config(self.cfg, sink_yaml("webhook", self.rx.url())
                     + sink_yaml("closed", "http://127.0.0.1:1/hook",
                                 "    max_backoff_duration: 300ms\n"))
        d = self.start()
        for i in range(3):
            st, _, _ = d.post(event("k%d" % i))
            self.assertEqual(st, 202)
        wait_for(lambda: d.metric('outbox_deliveries_total{sink="webhook",outcome="delivered"}')
                 == 3 and d.metric('outbox_deliveries_total{sink="closed",outcome="dead"}') == 3,
                 30, "3 delivered to webhook, 3 dead for closed")
        text = d.metrics()
        self.assertEqual(d.stop(), 0)

        lint = promtool("check", "metrics", stdin=text)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertEqual(lint.stdout.strip() + lint.stderr.strip(), "")

        live = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                live.add(name)
                if kind == "histogram":
                    live |= {name + "_bucket", name + "_sum", name + "_count"}
            elif line and not line.startswith("#"):
                live.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
        with open(RULES) as f:
            rules_text = f.read()
        recorded = set(re.findall(r"record:\s*(\S+)", rules_text))
        self.assertTrue(recorded, "no recording rules found")

        used_by_rules = {n for n in NAME.findall(re.sub(r"(?m)^\s*(record|summary|description):.*$",
                                                        "", rules_text))}
        missing = sorted(n for n in used_by_rules if n not in live and n not in recorded)
        self.assertEqual(missing, [], "rules use metrics /metrics does not have")

        exprs = dashboard_exprs()
        self.assertGreaterEqual(len(exprs), 20)
        covered = set()
        for where, e in exprs:
            names = NAME.findall(e)
            self.assertTrue(names or e.startswith("up{"), "%s: no outbox metric in %s" % (where, e))
            for n in names:
                self.assertTrue(n in live or n in recorded,
                                "%s uses %s, which the live /metrics does not have" % (where, n))
                covered.add(n)
        # The dashboard shows what the issue asks for.
        for want in ("outbox_ingest_events_total", "outbox_ingest_ack_seconds_bucket",
                     "outbox_deliveries_total", "outbox_pending",
                     "outbox_oldest_pending_age_seconds", "outbox_dead",
                     "outbox_store_used_bytes", "outbox_store_commit_seconds_bucket"):
            self.assertIn(want, covered)

        # Every expression parses: promtool checks them as recording rules.
        tmp = tempfile.mkdtemp(prefix="obx-dash-")
        try:
            path = os.path.join(tmp, "dashboard-rules.yml")
            with open(path, "w") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, (_, e) in enumerate(exprs):
                    f.write("      - record: dashboard:expr_%d\n        expr: %s\n"
                            % (i, json.dumps(promql(e))))
            r = promtool("check", "rules", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    require_binaries()
    unittest.main(verbosity=2)
