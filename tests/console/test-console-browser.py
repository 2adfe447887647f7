#!/usr/bin/env python3
"""test-console-browser.py - the admin console in a real headless Chromium (Debian's
`chromium`), driven over the DevTools protocol by a minimal WebSocket client (stdlib only),
against the real outboxd, store and a receiver on 127.0.0.1.

Proves: the console asks for a token and keeps it in sessionStorage only (no cookie, not
in the URL); it shows the sinks with their counts and a dead letter made by a failing
receiver; it opens the event (body pretty-printed, attempts); an event body holding
<script> and HTML is shown as text and does not run (a window flag stays unset, no element
is created); replaying the dead letter from the console delivers it (same webhook-id at
the receiver); the bulk purge asks with a dry-run count before it deletes; every form
control has a label; the page fits a phone's width. It saves a screenshot at 1280 px to the
build directory (and to tests/console/console.png with OUTBOX_UPDATE_SCREENSHOT=1).
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import (BUILD, SLOW, SRC, Answer, Case, event, event_key,  # noqa: E402
                     require_binaries, wait_for)

TOKEN = "console-test-token-0123456789"
XSS_KEY = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"><b>bold</b>'


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    raise SystemExit("chromium is not installed (tools/bootstrap installs it)")


class WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: text frames, client masking."""

    def __init__(self, url, timeout):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AssertionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise AssertionError("websocket handshake refused: %r" % head)

    def send(self, text):
        data = text.encode()
        hdr = bytearray([0x81])
        n = len(data)
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        hdr += mask
        self.sock.sendall(bytes(hdr) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise AssertionError("websocket closed")
            buf += chunk
        return buf

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise AssertionError("websocket closed by the browser")
            if op in (0x9, 0xA):
                continue
            msg += payload
            if b0 & 0x80:
                return msg.decode()

    def close(self):
        self.sock.close()


class Browser:
    """One headless Chromium with a fresh profile; one page driven over CDP."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="obx-chromium-")
        args = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--remote-debugging-port=0", "--user-data-dir=" + self.dir, "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = os.path.join(self.dir, "DevToolsActivePort")
        wait_for(lambda: self._port_line(port_file) or self.proc.poll() is not None, 60,
                 "chromium's DevTools port")
        if self.proc.poll() is not None:
            raise AssertionError("chromium exited: %s" % self.proc.stderr.read().decode()[-2000:])
        port = int(self._port_line(port_file))
        targets = wait_for(lambda: [t for t in json.load(urllib.request.urlopen(
            "http://127.0.0.1:%d/json/list" % port, timeout=10)) if t["type"] == "page"], 30,
            "a page target")
        self.ws = WebSocket(targets[0]["webSocketDebuggerUrl"], timeout=60 * SLOW)
        self.next_id = 0
        self.cmd("Page.enable")
        self.cmd("Runtime.enable")

    @staticmethod
    def _port_line(path):
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text.split("\n")[0] if "\n" in text else None

    def cmd(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == mid:
                if "error" in m:
                    raise AssertionError("%s: %s" % (method, m["error"]))
                return m["result"]

    def js(self, expr):
        r = self.cmd("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("page script failed: %s\n%s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def until(self, expr, what, timeout=20):
        """Poll expr until it is truthy; a page still loading (expr throws) counts as not yet."""
        def probe():
            r = self.cmd("Runtime.evaluate", expression=expr, returnByValue=True,
                         awaitPromise=True)
            return None if "exceptionDetails" in r else r["result"].get("value")
        return wait_for(probe, timeout, what, interval=0.1)

    def viewport(self, width, height, mobile=False):
        self.cmd("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=mobile)

    def screenshot(self, path):
        data = self.cmd("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def config_text(rx):
    return ("outbox:\n  path: ./unused\n  max_size: 64MiB\n"
            "ingest:\n  listen: 127.0.0.1:0\n"
            "admin:\n  listen: 127.0.0.1:0\n  tokens: [\"%s\"]\n"
            "sinks:\n"
            "  - name: crm\n    url: %s\n    events: [\"*:*\"]\n"
            "  - name: billing\n    url: %s\n    events: [\"*:*\"]\n"
            "    initial_interval: 50ms\n    max_interval: 200ms\n"
            "    dead_letter_on: [410]\n" % (TOKEN, rx.url("/crm"), rx.url("/billing")))


class ConsoleBrowser(Case):
    prefix = "obx-console-"

    def setUp(self):
        super().setUp()
        self.browser = None

    def tearDown(self):
        if self.browser:
            self.browser.close()
        super().tearDown()

    def test_console(self):
        self.rx.routes["/billing"] = [Answer(410)]
        with open(self.cfg, "w") as f:
            f.write(config_text(self.rx))
        d = self.start()
        admin = d.find("started")["admin"]
        for i, act in enumerate(["created", "updated", "deleted"]):
            self.assertEqual(d.post(event("flag-%d" % i, action=act))[0], 202)
        xss = json.dumps({"version": "0.2", "type": "flag", "action": "updated",
                          "metadata": {"actor": {}}, "payload": {"key": XSS_KEY},
                          "timestamp": "2024-06-09T12:00:00Z", "status": "success"})
        self.assertEqual(d.post(xss.encode())[0], 202)
        b = self.browser = Browser()
        b.viewport(1280, 900)
        b.cmd("Page.navigate", url="http://%s/" % admin)
        # no token yet: the console asks for one
        b.until("!document.getElementById('token-form').hidden", "the token form")
        self.assertEqual(b.js("document.activeElement.id"), "token-input")
        b.js("document.getElementById('token-input').value = %s;"
             "document.getElementById('token-form').requestSubmit(); true" % json.dumps(TOKEN))
        b.until("document.querySelector('#sinks-body tr[data-sink=billing]') !== null", "sinks")
        self.assertEqual(b.js("sessionStorage.getItem('outbox-admin-token')"), TOKEN)
        self.assertEqual(b.js("document.cookie"), "")
        self.assertNotIn(TOKEN, b.js("location.href"))
        # the sinks and their dead letters (the table refreshes on its own)
        b.until("document.querySelector('#sinks-body tr[data-sink=billing] .dead-count')"
                ".textContent === '4'", "4 dead letters at billing", timeout=30)
        self.assertEqual(b.js("document.querySelector('#sinks-body tr[data-sink=crm]')"
                              ".children[4].textContent"), "4")
        # list the dead letters through the filters
        b.js("document.getElementById('f-state').value='dead';"
             "document.getElementById('f-sink').value='billing';"
             "document.getElementById('filters').requestSubmit(); true")
        rows = "[...document.querySelectorAll('#deliveries-body tr')]"
        b.until(rows + ".length === 4 && " + rows + ".every(r => r.dataset.state === 'dead' && "
                "r.dataset.sink === 'billing')", "the 4 dead letters listed, and only them")
        # open the event whose body holds <script> and HTML
        ids = b.js("[...document.querySelectorAll('#deliveries-body tr')].map(r => "
                   "r.dataset.event)")
        xss_id = max(ids, key=int)  # posted last
        b.js("document.querySelector('#deliveries-body tr[data-event=\"%s\"] .open-event')"
             ".click(); true" % xss_id)
        b.until("!document.getElementById('event-view').hidden && "
                "document.getElementById('event-title').textContent === 'Event %s'" % xss_id,
                "the event view")
        body = b.js("document.getElementById('event-body').textContent")
        self.assertEqual(json.loads(body)["payload"]["key"], XSS_KEY)
        self.assertIn('\n  "payload": {', body, "pretty-printed")
        self.assertIsNone(b.js("window.__xss === undefined ? null : window.__xss"))
        self.assertEqual(b.js("document.querySelectorAll('#event-view script, #event-view img,"
                              " #event-view b').length"), 0)
        self.assertEqual(b.js("document.querySelector('.delivery[data-sink=billing] "
                              "[data-role=state]').textContent"), "dead")
        self.assertIn("410", b.js("document.querySelector('.delivery[data-sink=billing] table')"
                                  ".textContent"))
        # every form control is labelled
        self.assertEqual(b.js("[...document.querySelectorAll('input, select')].filter(e => "
                              "!(e.labels && e.labels.length)).map(e => e.id)"), [])
        shot = os.path.join(BUILD, "console.png")
        b.screenshot(shot)
        self.assertGreater(os.path.getsize(shot), 10000)
        if os.environ.get("OUTBOX_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, os.path.join(SRC, "tests", "console", "console.png"))
        # the receiver recovers; replay the dead letter from the event view
        self.rx.routes["/billing"] = [Answer(200)]
        b.js("document.querySelector('button[data-action=replay-delivery][data-sink=billing]')"
             ".click(); true")
        b.until("document.getElementById('status').textContent.startsWith('replayed 1')",
                "the replay acknowledged")

        def delivered():
            b.js("document.getElementById('refresh').click(); true")
            time.sleep(0.2)
            return b.js("(document.querySelector('.delivery[data-sink=billing] [data-role=state]')"
                        " || {}).textContent") == "delivered"
        wait_for(delivered, 30, "the replayed delivery shown delivered")
        sent = [q for q in self.rx.got("/billing") if event_key(q.body) == XSS_KEY]
        self.assertEqual(len(sent), 2)
        self.assertEqual(sent[0].headers["webhook-id"], sent[1].headers["webhook-id"])
        self.assertIsNone(b.js("window.__xss === undefined ? null : window.__xss"))
        # bulk purge: a dry-run count, then the confirmation
        b.js("document.getElementById('bulk-purge').click(); true")
        b.until("!document.getElementById('confirm').hidden", "the confirmation")
        self.assertIn("Delete for good 3 dead letters",
                      b.js("document.getElementById('confirm-text').textContent"))
        self.assertEqual(b.js("document.activeElement.id"), "confirm-yes")
        b.js("document.getElementById('confirm-yes').click(); true")
        b.until("document.getElementById('status').textContent.startsWith('purged 3')",
                "the purge done")
        b.until("document.querySelector('#sinks-body tr[data-sink=billing] .dead-count')"
                ".textContent === '0'", "no dead letters left")
        wait_for(lambda: [x for x in d.logs() if x.get("msg") == "admin write"][1:], 10,
                 "writes logged")
        self.assertEqual([(x["what"], x["changed"], x["by"]) for x in d.logs()
                          if x.get("msg") == "admin write"],
                         [("replay", 1, "token rw[0]"), ("purge", 3, "token rw[0]")])
        # a phone's width: nothing wider than the screen
        b.viewport(390, 844, mobile=True)
        time.sleep(0.3)
        self.assertLessEqual(b.js("document.documentElement.scrollWidth"), 391)
        self.assertFalse(b.js("document.getElementById('f-state').getBoundingClientRect()"
                              ".width === 0"))
        d.stop()


if __name__ == "__main__":
    require_binaries()
    unittest.main(verbosity=2)
