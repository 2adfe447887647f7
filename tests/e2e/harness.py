"""harness.py - shared helpers of the end-to-end "prove it" suites (tests/e2e/).

The suites run the real binaries (build/tools/outboxd, build/tools/outboxctl) against
real servers on 127.0.0.1. This module gives them:
  - Receiver: a recording webhook receiver on raw sockets (HTTP/1.1 keep-alive, optional
    TLS), with scripted answers per request: a status (with Retry-After), a delay, a hang,
    closing after the answer, resetting mid-body, or closing without an answer;
  - Daemon: one outboxd process on 127.0.0.1 with its stderr (JSON logs) captured;
  - write_config/sink_yaml: temporary YAML configs; ctl(): outboxctl with captured output;
  - Ledger: an fsynced append-only file of acknowledged event ids; post_keys(): one
    event or an NDJSON batch POSTed, the acknowledged ids parsed;
  - wait_for(): polling with a deadline; free_port(); make_certs() (openssl, temp dir).
Every captured output (daemon logs, outboxctl stdout/stderr, metrics) is appended to
CAPTURED so a suite can grep all of it for secrets.

Environment: OUTBOX_PG_DSN (set by tests/pg/pgharness.py: every config written here is a
PostgreSQL outbox in a schema of its own and outboxctl reads it through --config),
OUTBOX_BUILD_ROOT (the meson build dir; binaries under tools/),
OUTBOX_SOURCE_ROOT, OUTBOX_E2E_SCALE (a float < 1 shrinks counts for slow sanitizer runs,
never below each test's stated minimum) and OUTBOX_E2E_SLOW (a float > 1 stretches
deadlines; set automatically when the binary is built with ASan).
"""
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

BUILD = os.environ.get("OUTBOX_BUILD_ROOT",
                       os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build")))
SRC = os.environ.get("OUTBOX_SOURCE_ROOT",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
OUTBOXD = os.path.join(BUILD, "tools", "outboxd")
OUTBOXCTL = os.path.join(BUILD, "tools", "outboxctl")

CAPTURED = []  # every piece of output seen (str); grep it for secrets
_cap_lock = threading.Lock()


def capture(text):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    with _cap_lock:
        CAPTURED.append(text)
    return text


def _asan_build():
    try:
        with open(OUTBOXD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _asan_build()
SLOW = float(os.environ.get("OUTBOX_E2E_SLOW", "3" if SANITIZED else "1"))
SCALE = float(os.environ.get("OUTBOX_E2E_SCALE", "1"))


def scaled(n, minimum):
    """n scaled by OUTBOX_E2E_SCALE, never below `minimum`."""
    return max(minimum, int(n * SCALE))


def sanitizer_env():
    """Environment for child processes: sanitizer reports go to stderr and fail the run."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.pop("OUTBOX_CRASH_POINT", None)
    env.pop("OUTBOX_CRASH_AFTER", None)
    return env


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    for m in SANITIZER_MARKS:
        if m in text:
            return m
    return None


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout * SLOW,
                                                                         what))
        time.sleep(interval)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def event(key, action="created", typ="flag"):
    """A Flipt v0.2 event whose payload key makes it recognisable at the receiver."""
    return ('{"version":"0.2","type":"%s","action":"%s","metadata":{"actor":{}},'
            '"payload":{"key":"%s"},"timestamp":"2024-06-09T12:00:00Z","status":"success"}'
            % (typ, action, key)).encode()


def event_key(body):
    try:
        return json.loads(body)["payload"]["key"]
    except (ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------- receiver

class Request:
    __slots__ = ("t", "path", "headers", "body", "wid", "answered", "conn")

    def __init__(self, t, path, headers, body, conn):
        self.t, self.path, self.headers, self.body, self.conn = t, path, headers, body, conn
        self.wid = headers.get("webhook-id")
        self.answered = None  # the status sent back, None when no answer was sent


class Answer:
    """What the receiver does with one request.
    kind: 'respond' (status after delay), 'hang' (no answer for hang_s, then close),
    'close' (close without an answer), 'reset_mid_body' (200 headers, part of the body,
    then RST), 'close_after' (a full 200 answer, then close at once)."""

    def __init__(self, status=200, kind="respond", retry_after=None, delay=0.0, hang_s=30.0,
                 body=b"ok", headers=()):
        self.status, self.kind, self.retry_after = status, kind, retry_after
        self.delay, self.hang_s = delay, hang_s
        self.body, self.headers = body, headers  # raw bytes; [(name, value bytes), ...]


class Receiver:
    """Recording webhook receiver. `script(req) -> Answer` decides each answer; by default
    `routes` maps a path to a list of Answers consumed in order (the last one repeats) or to
    a function of the request, and other paths get 200. Optional TLS: pass an ssl.SSLContext as `tls`."""

    def __init__(self, tls=None, port=0):
        self.tls = tls
        self.requests = []
        self.routes = {}
        self.script = None
        self.lock = threading.Lock()
        self.tls_failures = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.scheme = "https" if tls else "http"
        self.stopping = False
        self.conns = set()
        self.serial = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def _answer_for(self, req):
        if self.script:
            return self.script(req)
        with self.lock:
            seq = self.routes.get(req.path)
        if callable(seq):
            return seq(req)
        with self.lock:
            if not seq:
                return Answer(200)
            return seq.pop(0) if len(seq) > 1 else seq[0]

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with self.lock:
            self.serial += 1
            serial = self.serial
            self.conns.add(c)
        try:
            c.settimeout(60)
            if self.tls:
                try:
                    c = self.tls.wrap_socket(c, server_side=True)
                except (ssl.SSLError, OSError):
                    with self.lock:
                        self.tls_failures += 1
                    return
                with self.lock:
                    self.conns.add(c)
            buf = b""
            while not self.stopping:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                path = parts[1] if len(parts) > 1 else "/"
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:n], buf[n:]
                req = Request(time.monotonic(), path, headers, body, serial)
                with self.lock:
                    self.requests.append(req)
                a = self._answer_for(req)
                if a.delay:
                    time.sleep(a.delay)
                if a.kind == "hang":
                    end = time.monotonic() + a.hang_s
                    while not self.stopping and time.monotonic() < end:
                        time.sleep(0.05)
                    return
                if a.kind == "close":
                    return
                if a.kind == "reset_mid_body":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
                    time.sleep(0.05)
                    raw = c.unwrap() if self.tls else c
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
                    return
                extra = ""
                if a.retry_after is not None:
                    extra = "Retry-After: %s\r\n" % a.retry_after
                close = a.kind == "close_after"
                for name, value in a.headers:
                    extra += "%s: %s\r\n" % (name, value.decode("latin-1"))
                c.sendall(("HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s%s\r\n"
                           % (a.status, len(a.body), extra,
                              "Connection: close\r\n" if close else "")).encode("latin-1")
                          + a.body)
                req.answered = a.status
                if close:
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def got(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------- daemon

class Daemon:
    """One outboxd process. stderr (JSON logs) is collected line by line."""

    def __init__(self, config, data_dir, listen="127.0.0.1:0", env=None, wait=True,
                 extra=(), log_level="info", preexec=None):
        args = [OUTBOXD, "--config", config, "--data-dir", data_dir, "--log-format", "json",
                "--log-level", log_level]
        _configs[os.path.abspath(data_dir)] = config  # outboxctl's store on PostgreSQL
        if listen:
            args += ["--listen", listen]
        args += list(extra)
        e = sanitizer_env()
        e.update(env or {})
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=e, preexec_fn=preexec)
        self.lines = []
        self.lock = threading.Lock()
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None
        if wait:
            self.wait_started()

    def _read(self):
        for raw in self.proc.stderr:
            line = capture(raw)
            with self.lock:
                self.lines.append(line)
            if '"msg":"started"' in line:
                self.started.set()
        self.proc.stderr.close()

    def wait_started(self, timeout=20):
        deadline = time.monotonic() + timeout * SLOW
        while not self.started.wait(0.02):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.reader.join(2)
                raise AssertionError("outboxd did not start (rc %s):\n%s"
                                     % (self.proc.poll(), self.stderr()))
        rec = self.find("started")
        self.port = int(rec["listen"].rsplit(":", 1)[1])
        return rec

    def logs(self):
        out = []
        with self.lock:
            lines = list(self.lines)
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": "<not json>", "raw": line})
        return out

    def find(self, msg):
        for rec in self.logs():
            if rec.get("msg") == msg:
                return rec
        return None

    def stderr(self):
        with self.lock:
            return "".join(self.lines)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def post(self, body, ctype="application/json", headers=None, timeout=10):
        h = {"Content-Type": ctype}
        h.update(headers or {})
        return self.request("POST", "/v1/events", body, h, timeout=timeout)

    def metrics(self):
        st, _, data = self.request("GET", "/metrics")
        assert st == 200, st
        return capture(data)

    def metric(self, name_with_labels):
        for line in self.metrics().splitlines():
            if line.startswith(name_with_labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(5)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("outboxd did not stop within %ss" % (timeout * SLOW))
        self.reader.join(5)
        rep = sanitizer_report(self.stderr())
        if rep:
            raise AssertionError("sanitizer report (%s) from outboxd:\n%s"
                                 % (rep, self.stderr()[-4000:]))
        return rc


# ---------------------------------------------------------------- config, outboxctl

# The store backend of every config written here: with OUTBOX_PG_DSN set (tests/pg runs a
# suite under pgharness.py) a PostgreSQL schema of its own per config, else LMDB.
PG_DSN = os.environ.get("OUTBOX_PG_DSN")
_pg_schemas = [0]
_configs = {}  # data dir -> the config of the last Daemon started on it


def store_yaml(max_size="64MiB", retention="1h"):
    """The outbox: block's backend lines - an LMDB directory (the daemon's --data-dir), or
    a PostgreSQL schema no other config uses."""
    if not PG_DSN:
        return "outbox:\n  path: ./unused\n  max_size: %s\n  retention: %s\n" % (
            max_size, retention)
    _pg_schemas[0] += 1
    return ("outbox:\n  backend: postgres\n  max_size: %s\n  retention: %s\n  postgres:\n"
            "    dsn: \"%s\"\n    schema: t%d_%d\n    pool: 2\n"
            % (max_size, retention, PG_DSN, os.getpid(), _pg_schemas[0]))


def store_args(data_dir, config=None):
    """outboxctl's arguments naming the store: --data-dir DIR, or on PostgreSQL --config
    FILE (the database is in the config; by default the config of the last Daemon started
    with that data dir)."""
    if not PG_DSN:
        return ["--data-dir", data_dir]
    config = config or _configs.get(os.path.abspath(data_dir))
    if not config:
        raise AssertionError("outboxctl on a PostgreSQL outbox needs the config file")
    return ["--config", config]


def sink_yaml(name, url, extra="", initial="50ms", max_interval="200ms"):
    return ("  - name: %s\n    url: %s\n    events: [\"*:*\"]\n"
            "    initial_interval: %s\n    max_interval: %s\n%s"
            % (name, url, initial, max_interval, extra))


def write_config(path, sinks_yaml, ingest_yaml="", outbox_yaml="", max_size="64MiB",
                 retention="1h", max_body="64KiB"):
    """A config at path; outbox_yaml adds lines to the outbox: block (see store_yaml())."""
    with open(path, "w") as f:
        f.write("%s%singest:\n  listen: 127.0.0.1:0\n  max_body: %s\n%ssinks:\n%s"
                % (store_yaml(max_size, retention), outbox_yaml, max_body,
                   ingest_yaml, sinks_yaml))


def ctl(data_dir, *args, timeout=30, env=None, config=None):
    """Run outboxctl on the store (store_args: --data-dir DIR, or --config FILE on
    PostgreSQL) with ARGS; returns CompletedProcess with text output."""
    r = subprocess.run([OUTBOXCTL] + store_args(data_dir, config) + list(args),
                       capture_output=True, timeout=timeout * SLOW, env=env or sanitizer_env())
    r.stdout = capture(r.stdout)
    r.stderr = capture(r.stderr)
    rep = sanitizer_report(r.stderr)
    if rep:
        raise AssertionError("sanitizer report (%s) from outboxctl %s:\n%s"
                             % (rep, args, r.stderr[-4000:]))
    return r


def ctl_json_lines(data_dir, *args, config=None):
    r = ctl(data_dir, *args, config=config)
    if r.returncode != 0:
        raise AssertionError("outboxctl %s failed (%d): %s" % (args, r.returncode, r.stderr))
    return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]


def deliveries(data_dir, eid, config=None):
    """{sink name: delivery} of event `eid` from outboxctl show --json."""
    r = ctl(data_dir, "show", str(eid), "--json", config=config)
    if r.returncode != 0:
        raise AssertionError("outboxctl show %s failed: %s" % (eid, r.stderr))
    return {dl["sink"]: dl for dl in json.loads(r.stdout)["deliveries"]}


def stats(data_dir, config=None):
    r = ctl(data_dir, "stats", "--json", config=config)
    if r.returncode != 0:
        raise AssertionError("outboxctl stats failed: %s" % r.stderr)
    return json.loads(r.stdout)


def post_keys(port, keys, timeout=10):
    """POST the events of `keys` to outboxd on 127.0.0.1:port: one JSON event, or an
    NDJSON batch for several. Returns (status, ids, body); ids lists the acknowledged
    event ids in key order for a 202 whose body names one per key, else None. A dropped
    connection raises OSError or http.client.HTTPException."""
    if len(keys) == 1:
        body, ctype = event(keys[0]), "application/json"
    else:
        body = b"\n".join(event(k) for k in keys) + b"\n"
        ctype = "application/x-ndjson"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    try:
        c.request("POST", "/v1/events", body, {"Content-Type": ctype})
        r = c.getresponse()
        resp, st = r.read(), r.status
    finally:
        c.close()
    ids = None
    if st == 202:
        doc = json.loads(resp)
        ids = doc.get("ids") if len(keys) > 1 else [doc.get("id")]
        if not isinstance(ids, list) or len(ids) != len(keys) or None in ids:
            ids = None
    return st, ids, resp


# ---------------------------------------------------------------- ledger

class Ledger:
    """Append-only record of acknowledged ids, fsynced before the producer goes on."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "a")
        self.lock = threading.Lock()

    def add(self, eid, key):
        with self.lock:
            self.f.write("%s %s\n" % (eid, key))
            self.f.flush()
            os.fsync(self.f.fileno())

    def close(self):
        self.f.close()

    @staticmethod
    def read(path):
        """{id: key} of a ledger file; an id acknowledged for two keys fails."""
        out = {}
        with open(path) as f:
            for line in f:
                eid, key = line.split()
                if eid in out and out[eid] != key:
                    raise AssertionError("id %s acknowledged twice for %s and %s"
                                         % (eid, out[eid], key))
                out[eid] = key
        return out


# ---------------------------------------------------------------- TLS

def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by
    it, and an unrelated self-signed certificate. Returns a dict of paths."""
    def run(*a):
        subprocess.run(["openssl"] + list(a), check=True, capture_output=True, timeout=60)
    p = {k: os.path.join(d, k) for k in ("ca.pem", "ca.key", "srv.pem", "srv.key", "srv.csr",
                                         "cli.pem", "cli.key", "cli.csr", "self.pem",
                                         "self.key", "ext.cnf")}
    with open(p["ext.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e-ca",
        "-keyout", p["ca.key"], "-out", p["ca.pem"])
    for who, cn in (("srv", "127.0.0.1"), ("cli", "e2e-client")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", p[who + ".key"], "-out", p[who + ".csr"])
        run("x509", "-req", "-in", p[who + ".csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
            "-CAcreateserial", "-days", "2", "-out", p[who + ".pem"], "-extfile", p["ext.cnf"])
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", p["self.key"], "-out",
        p["self.pem"])
    return p


def server_tls(cert, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


class TempDir:
    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *a):
        return os.path.join(self.path, *a)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Case(unittest.TestCase):
    """A test with a temp dir (self.td), a store path (self.data), a config path (self.cfg)
    and a receiver (self.rx); daemons started with self.start() are killed at the end."""
    prefix = "obx-e2e-"

    def setUp(self):
        self.td = TempDir(self.prefix)
        self.data, self.cfg = self.td.join("data"), self.td.join("outboxd.yaml")
        self.rx = Receiver()
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        self.rx.close()
        self.td.cleanup()

    def start(self, data=None, **kw):
        d = Daemon(self.cfg, data or self.data, **kw)
        self.daemons.append(d)
        return d


def require_binaries():
    for b in (OUTBOXD, OUTBOXCTL):
        if not os.access(b, os.X_OK):
            raise SystemExit("missing %s (build first)" % b)


__all__ = [n for n in dir() if not n.startswith("_")] + ["random", "select", "signal"]
