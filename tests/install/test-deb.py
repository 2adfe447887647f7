#!/usr/bin/env python3
"""test-deb.py - tools/build-deb builds outbox, liboutbox0 and liboutbox-dev .deb files,
lintian-clean (the script fails on any error or warning lintian reports; the remaining
tags are overridden in tools/deb/*.lintian-overrides with their reasons). Then, without
installing anything on this machine: the packages' contents, modes, conffiles and
maintainer scripts; and, from a tree they are extracted into, the binaries run, the
packaged config validates, a daemon from it accepts an event, and a program builds against
the -dev package with pkg-config and enqueues.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from harness import SRC, event  # noqa: E402


def run(*cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if r.returncode != 0:
        raise AssertionError("%s exited %d\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout,
                                                       r.stderr))
    return r.stdout


class Deb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("lintian") or not shutil.which("dpkg-shlibdeps"):
            raise AssertionError("lintian and dpkg-dev are needed (tools/bootstrap installs them)")
        cls.tmp = tempfile.mkdtemp(prefix="obx-deb-")
        out = os.path.join(cls.tmp, "out")
        env = dict(os.environ, BUILD_DEB_LINTIAN="1")
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "CFLAGS", "LDFLAGS", "CC"):
            env.pop(k, None)
        listed = run(os.path.join(SRC, "tools", "build-deb"), "--builddir",
                     os.path.join(cls.tmp, "build"), "--out", out, env=env).split()
        cls.debs = {os.path.basename(p).split("_")[0]: p for p in listed}
        cls.root = os.path.join(cls.tmp, "root")
        for p in cls.debs.values():
            run("dpkg-deb", "-x", p, cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def contents(self, pkg):
        """{path: (mode string, owner)} from dpkg-deb --contents."""
        out = {}
        for line in run("dpkg-deb", "--contents", self.debs[pkg]).splitlines():
            f = line.split()
            path = f[5].lstrip(".").rstrip("/") or "/"
            out[path] = (f[0], f[1])
        return out

    def control(self, pkg, name):
        d = tempfile.mkdtemp(dir=self.tmp)
        run("dpkg-deb", "-e", self.debs[pkg], d)
        p = os.path.join(d, name)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return f.read()

    def test_three_packages(self):
        self.assertEqual(sorted(self.debs), ["liboutbox-dev", "liboutbox0", "outbox"])

    def test_outbox_contents(self):
        c = self.contents("outbox")
        want = {
            "/usr/sbin/outboxd": "-rwxr-xr-x", "/usr/bin/outboxctl": "-rwxr-xr-x",
            "/lib/systemd/system/outboxd.service": "-rw-r--r--",
            "/etc/outbox/outboxd.yaml": "-rw-r-----", "/var/lib/outbox": "drwx------",
            "/usr/share/man/man8/outboxd.8.gz": "-rw-r--r--",
            "/usr/share/man/man1/outboxctl.1.gz": "-rw-r--r--",
            "/usr/share/man/man5/outboxd.yaml.5.gz": "-rw-r--r--",
            "/usr/share/bash-completion/completions/outboxctl": "-rw-r--r--",
            "/usr/share/zsh/vendor-completions/_outboxctl": "-rw-r--r--",
            "/usr/share/doc/outbox/examples/outboxd.example.yaml": "-rw-r--r--",
            "/usr/share/doc/outbox/copyright": "-rw-r--r--",
        }
        for path, mode in want.items():
            self.assertIn(path, c)
            self.assertEqual(c[path][0], mode, path)
        self.assertTrue(all(owner == "root/root" for _, owner in c.values()))
        self.assertFalse([p for p in c if "liboutbox" in p or p.startswith("/usr/include")])
        self.assertEqual(self.control("outbox", "conffiles").split(), ["/etc/outbox/outboxd.yaml"])
        self.assertIn("adduser", run("dpkg-deb", "-f", self.debs["outbox"], "Depends"))

    def test_postinst_creates_user_and_enables_nothing(self):
        post = self.control("outbox", "postinst")
        self.assertRegex(post, r"adduser .*--system .*--group")
        self.assertIn("chmod 0700 /var/lib/outbox", post)
        self.assertIn("chown root:outbox /etc/outbox/outboxd.yaml", post)
        self.assertIn("chmod 0640 /etc/outbox/outboxd.yaml", post)
        code = re.sub(r"#.*", "", post)
        for verb in ("enable", "start", "restart", "deb-systemd-invoke", "deb-systemd-helper"):
            self.assertNotRegex(code, r"\b%s\b" % verb)
        self.assertIsNone(self.control("outbox", "prerm"))

    def test_library_packages(self):
        lib = self.contents("liboutbox0")
        so = [p for p in lib if "/liboutbox.so" in p]
        self.assertEqual(sorted(os.path.basename(p) for p in so),
                         ["liboutbox.so.0", "liboutbox.so.0.1.0"])
        self.assertEqual(lib[[p for p in so if p.endswith("0.1.0")][0]][0], "-rw-r--r--")
        self.assertIn("liboutbox 0 liboutbox0", self.control("liboutbox0", "shlibs"))
        self.assertIn("ldconfig", self.control("liboutbox0", "triggers"))
        dev = self.contents("liboutbox-dev")
        names = {os.path.basename(p) for p in dev}
        self.assertTrue({"outbox.h", "version.h", "outbox.pc", "liboutbox.so"} <= names, names)
        self.assertIn("liboutbox0 (= 0.1.0-1)",
                      run("dpkg-deb", "-f", self.debs["liboutbox-dev"], "Depends"))

    def test_packaged_config(self):
        with open(os.path.join(self.root, "etc/outbox/outboxd.yaml")) as f:
            cfg = f.read()
        self.assertNotIn("demo-secret", cfg)
        self.assertIn("path: /var/lib/outbox", cfg)
        self.assertIn("url: http://127.0.0.1:9000/hook", cfg)  # test_extracted_binaries_run
        with open(os.path.join(self.root, "lib/systemd/system/outboxd.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/outboxd --config /etc/outbox/outboxd.yaml", unit)
        self.assertIn("Type=notify", unit)

    def test_extracted_binaries_run(self):
        outboxd = os.path.join(self.root, "usr/sbin/outboxd")
        self.assertEqual(run(outboxd, "--version").strip(), "outboxd 0.1.0")
        self.assertEqual(run(os.path.join(self.root, "usr/bin/outboxctl"), "--version").strip(),
                         "outboxctl 0.1.0")
        cfg = os.path.join(self.root, "etc/outbox/outboxd.yaml")
        run(outboxd, "--check-config", "--config", cfg)
        # A daemon from the package, on the packaged config (its webhook pointed at a test
        # receiver instead of port 9000), stores an event and delivers it.
        with open(cfg) as f:
            text = f.read()
        rx = harness.Receiver()
        local = os.path.join(self.tmp, "outboxd.yaml")
        with open(local, "w") as f:
            f.write(text.replace("http://127.0.0.1:9000/hook", rx.url()))
        harness.OUTBOXD = outboxd
        data = os.path.join(self.tmp, "store")
        d = harness.Daemon(local, data)
        try:
            st, _, body = d.post(event("deb"))
            self.assertEqual(st, 202, body)
            harness.wait_for(lambda: len(rx.got()) == 1, 20, "the event delivered")
        finally:
            self.assertEqual(d.stop(), 0)
            rx.close()
        self.assertEqual(run(os.path.join(self.root, "usr/bin/outboxctl"), "--data-dir", data,
                             "list", "--json").count('"id"'), 1)

    def test_program_builds_against_dev_package(self):
        lib = os.path.dirname(next(p for p in self.contents("liboutbox-dev") if p.endswith("outbox.pc")))
        env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=self.root,
                   PKG_CONFIG_LIBDIR=os.path.join(self.root, lib.lstrip("/")))
        flags = run("pkg-config", "--cflags", "--libs", "outbox", env=env).split()
        app = os.path.join(self.tmp, "app")
        run(os.environ.get("CC", "cc"), "-std=c11", os.path.join(HERE, "app.c"), "-o", app, *flags)
        libdir = os.path.join(self.root, os.path.dirname(lib).lstrip("/"))
        out = run(app, os.path.join(self.tmp, "app-store"), env=dict(os.environ, LD_LIBRARY_PATH=libdir))
        self.assertTrue(out.startswith("enqueued 1 version 0.1.0"), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
