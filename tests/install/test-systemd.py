#!/usr/bin/env python3
"""test-systemd.py - outboxd under systemd's notification protocol, without systemd: the
test binds the AF_UNIX datagram socket systemd would, runs the real daemon with
NOTIFY_SOCKET pointing at it and reads what it sends: READY=1 once it accepts events,
WATCHDOG=1 when WATCHDOG_USEC asks for it (not when WATCHDOG_PID names another process),
STOPPING=1 on SIGTERM; and a socket nobody listens on is a warning, not a failure.
"""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import (SLOW, Case, require_binaries, sink_yaml, wait_for,  # noqa: E402
                     write_config)


class Notify(Case):
    prefix = "obx-notify-"

    def setUp(self):
        super().setUp()
        write_config(self.cfg, sink_yaml("webhook", self.rx.url()))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.settimeout(20 * SLOW)

    def tearDown(self):
        self.sock.close()
        super().tearDown()

    def recv(self):
        return self.sock.recv(4096).decode()

    def run_daemon(self, address, env=None):
        """Start outboxd notifying `address`; return the datagrams it sent up to and
        including STOPPING=1 after SIGTERM, and its exit status."""
        d = self.start(env=dict({"NOTIFY_SOCKET": address}, **(env or {})))
        got = [self.recv()]
        self.assertEqual(got[0], "READY=1")
        # Ready means accepting: the listener answers by now.
        status, _, _ = d.request("GET", "/healthz")
        self.assertEqual(status, 200)
        d.proc.send_signal(signal.SIGTERM)
        while got[-1] != "STOPPING=1":
            got.append(self.recv())
        return got, d.stop()

    def test_ready_then_stopping(self):
        path = self.td.join("notify.sock")
        self.sock.bind(path)
        got, rc = self.run_daemon(path)
        self.assertEqual(got, ["READY=1", "STOPPING=1"])
        self.assertEqual(rc, 0)

    def test_watchdog_on_abstract_socket(self):
        # The daemon pings once before it first waits for a signal, so a WATCHDOG=1 always
        # comes between READY=1 and STOPPING=1 when the watchdog is on.
        name = "@outbox-test-%d" % os.getpid()
        self.sock.bind("\0" + name[1:])
        got, rc = self.run_daemon(name, {"WATCHDOG_USEC": "2000000"})
        self.assertEqual(got[0], "READY=1")
        self.assertIn("WATCHDOG=1", got[1:-1])
        self.assertEqual(set(got[1:-1]), {"WATCHDOG=1"})
        self.assertEqual(rc, 0)

    def test_watchdog_for_another_pid_is_ignored(self):
        path = self.td.join("notify.sock")
        self.sock.bind(path)
        got, rc = self.run_daemon(path, {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
        self.assertEqual(got, ["READY=1", "STOPPING=1"])
        self.assertEqual(rc, 0)

    def test_dead_socket_is_a_warning(self):
        missing = self.td.join("nobody.sock")
        d = self.start(env={"NOTIFY_SOCKET": missing})
        status, _, _ = d.request("GET", "/healthz")
        self.assertEqual(status, 200)
        # The warning follows the "started" line the harness waited for.
        wait_for(lambda: d.find("sd_notify failed"), 20, "the sd_notify warning")
        rec = d.find("sd_notify failed")
        self.assertEqual(rec["socket"], missing)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    require_binaries()
    unittest.main(verbosity=2)
