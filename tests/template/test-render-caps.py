#!/usr/bin/env python3
"""test-render-caps.py - `outboxctl render` renders under the engine's caps at every entry.

A template that doubles a string used to run unbounded through `render --template` (6 GB
and 24 s before failing) while `render --config --sink` stopped at the engine's caps. Both
must now fail quickly with the same cap error, in bounded memory. Memory is checked with
the child's own peak RSS (os.wait4), and, outside sanitizer builds (whose shadow memory
needs a huge address space), with an RLIMIT_AS the child cannot exceed: before the fix the
child died of out-of-memory instead of printing the cap error. No timing is asserted.

Usage: test-render-caps.py OUTBOXCTL
"""
import os
import resource
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (TempDir, SANITIZED, sanitizer_env)

OUTBOXCTL = None
EVENT = ('{"version":"0.2","type":"flag","action":"created","metadata":{"actor":{}},'
         '"payload":{"key":"f"},"timestamp":"2024-06-09T12:00:00Z","status":"success"}')
DOUBLING = ('{{ $x := "aaaaaaaa" }}{{ range 60 }}{{ $x = printf "%s%s" $x $x }}{{ end }}'
            '{{ $x }}')
CAP_ERROR = "template: intermediate values exceed 9437184 bytes"
MAX_RSS_KIB = 256 * 1024
AS_LIMIT = 1 << 30


def run(args, cwd):
    """Run outboxctl; (rc, stdout, stderr, peak RSS in KiB)."""
    limit_as = not harness.SANITIZED

    def limits():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([OUTBOXCTL] + args, cwd=cwd, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, preexec_fn=limits,
                             env=harness.sanitizer_env())
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss


class RenderCaps(unittest.TestCase):
    def setUp(self):
        self.td = harness.TempDir("render-caps-")
        self.tmp = self.td.path
        self.event = self.write("event.json", EVENT)

    def tearDown(self):
        self.td.cleanup()

    def write(self, name, data):
        with open(self.td.join(name), "w") as f:
            f.write(data)
        return self.td.join(name)

    def test_doubling_template_is_capped(self):
        tmpl = self.write("doubling.tmpl", DOUBLING)
        rc, out, err, rss = run(["render", "--template", tmpl, "--event", self.event],
                                self.tmp)
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertIn(CAP_ERROR, err)
        self.assertLess(rss, MAX_RSS_KIB, "peak RSS %d KiB" % rss)

    def test_same_caps_through_config(self):
        cfg = self.write("outboxd.yaml",
                         "outbox:\n  path: %s\nsinks:\n"
                         "  - name: doubling\n    url: http://127.0.0.1:9/x\n"
                         "    body: '%s'\n" % (os.path.join(self.tmp, "data"), DOUBLING))
        rc, out, err, rss = run(["--config", cfg, "render", "--sink", "doubling", "--event",
                                 self.event], self.tmp)
        self.assertEqual(rc, 1, err)
        self.assertIn(CAP_ERROR, err)
        self.assertLess(rss, MAX_RSS_KIB, "peak RSS %d KiB" % rss)

    def test_ordinary_template_renders(self):
        tmpl = self.write("ok.tmpl", '{"k": {{ toJson .Payload.key }}}')
        rc, out, err, _ = run(["render", "--template", tmpl, "--event", self.event], self.tmp)
        self.assertEqual((rc, out), (0, '{"k": "f"}'), err)


if __name__ == "__main__":
    OUTBOXCTL = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
