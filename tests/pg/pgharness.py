#!/usr/bin/env python3
"""pgharness.py - runs PostgreSQL 15 for the tests: its own clusters in a temporary
directory, on free loopback ports, never the system's cluster.

A primary and, on request, a synchronous standby (pg_basebackup -R, the primary's
synchronous_standby_names naming it, synchronous_commit on). Servers are started and
stopped by PID (postmaster.pid), never by name. When run as root, every PostgreSQL program
runs as the `postgres` user (runuser) and the temporary directory is chowned to it.

As a module: `with Cluster(standby=True) as c: c.dsn(), c.kill_primary(), c.promote()`.
As a wrapper for meson tests: `pgharness.py [--standby] [--async] run -- CMD ARGS...`
starts the cluster, runs CMD with OUTBOX_PG_DSN (and OUTBOX_PG_STANDBY_DSN) set, stops
the cluster and exits with CMD's status.
"""
import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get("OUTBOX_PG_BIN", "/usr/lib/postgresql/15/bin")
DB = "outbox"
USER = "outbox"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(ppid):
    """The pids whose parent is ppid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


class Server:
    """One postgres process over one data directory."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.datadir = os.path.join(cluster.tmp, name)
        self.port = free_port()
        self.log = os.path.join(cluster.tmp, name + ".log")
        self.proc = None

    def pid(self):
        """The postmaster's pid from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.cluster.as_pg([os.path.join(PG_BIN, "postgres"), "-D", self.datadir,
                                "-p", str(self.port), "-k", self.cluster.sockdir]),
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log:\n%s" %
                                   (self.name, self.proc.returncode, self.tail()))
            r = subprocess.run(self.cluster.as_pg([os.path.join(PG_BIN, "pg_isready"), "-q",
                                                   "-h", "127.0.0.1", "-p", str(self.port)]))
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("%s not ready after %ss; log:\n%s" % (self.name, timeout, self.tail()))

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-30:])
        except OSError:
            return ""

    def stop(self, timeout=60):
        """Fast shutdown (SIGINT to the postmaster, by its PID), SIGKILL after timeout."""
        if not self.proc or self.proc.poll() is not None:
            return
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)  # runuser exits with the postmaster
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """kill -9 the postmaster and, like a machine dying, its backends (by PID)."""
        if not self.proc or self.proc.poll() is not None:
            return
        pid = self.pid()
        victims = ([pid] + children(pid)) if pid else []
        for v in victims:
            try:
                os.kill(v, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        try:
            os.unlink(os.path.join(self.datadir, "postmaster.pid"))
        except OSError:
            pass

    def dsn(self, dbname=DB):
        return "host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=5" % (
            self.port, dbname, USER)

    def sql(self, query, dbname=DB):
        r = subprocess.run(self.cluster.as_pg([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t",
                                               "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                               "-p", str(self.port), "-U", USER, "-d", dbname,
                                               "-c", query]),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (query, r.stderr.strip()))
        return r.stdout.strip()


class Cluster:
    """A primary and optionally one synchronous standby, in a temporary directory."""

    def __init__(self, standby=False, sync_commit="on"):
        self.want_standby = standby
        self.sync_commit = sync_commit
        self.tmp = tempfile.mkdtemp(prefix="outbox-pg-")
        self.sockdir = self.tmp
        self.pg_user = None
        if os.geteuid() == 0:
            self.pg_user = pwd.getpwnam("postgres")
            os.chown(self.tmp, self.pg_user.pw_uid, self.pg_user.pw_gid)
        os.chmod(self.tmp, 0o700)
        self.primary = Server(self, "primary")
        self.standby = Server(self, "standby") if standby else None

    def as_pg(self, argv):
        if self.pg_user is None:
            return argv
        return ["runuser", "-u", "postgres", "--"] + argv

    def run_pg(self, argv):
        r = subprocess.run(self.as_pg(argv), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s%s" % (argv[0], r.stdout, r.stderr))

    def start(self):
        p = self.primary
        self.run_pg([os.path.join(PG_BIN, "initdb"), "-D", p.datadir, "-U", USER,
                     "--auth=trust", "-E", "UTF8", "--no-instructions"])
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_permissions = 0700",
            "fsync = on",
            "synchronous_commit = %s" % self.sync_commit,
            "wal_level = replica",
            "max_wal_senders = 5",
            "max_connections = 100",
            "shared_buffers = 32MB",
            "logging_collector = off",
        ]
        with open(os.path.join(p.datadir, "postgresql.auto.conf"), "a") as f:
            f.write("\n".join(conf) + "\n")
        with open(os.path.join(p.datadir, "pg_hba.conf"), "w") as f:
            f.write("host all all 127.0.0.1/32 trust\n"
                    "host replication all 127.0.0.1/32 trust\n"
                    "local all all trust\n")
        p.start()
        p.sql("CREATE DATABASE %s" % DB, dbname="postgres")
        if self.standby:
            s = self.standby
            self.run_pg([os.path.join(PG_BIN, "pg_basebackup"), "-h", "127.0.0.1", "-p",
                         str(p.port), "-U", USER, "-D", s.datadir, "-R", "-X", "stream",
                         "-c", "fast"])
            # The standby names itself so the primary's synchronous_standby_names applies.
            with open(os.path.join(s.datadir, "postgresql.auto.conf"), "a") as f:
                f.write("primary_conninfo = 'host=127.0.0.1 port=%d user=%s "
                        "application_name=standby'\n" % (p.port, USER))
                f.write("synchronous_standby_names = ''\n")
            s.start()
            # Only now: with a synchronous standby named before it exists, every commit
            # (CREATE DATABASE included) would wait for it.
            p.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby'", dbname="postgres")
            p.sql("SELECT pg_reload_conf()", dbname="postgres")
            self.wait_sync()
        return self

    def wait_sync(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.primary.sql("SELECT sync_state FROM pg_stat_replication "
                                  "WHERE application_name = 'standby'")
            if st == "sync":
                return
            time.sleep(0.1)
        raise RuntimeError("standby never became synchronous")

    def dsn(self):
        """A conninfo listing every server, following the read-write one."""
        hosts = [self.primary] + ([self.standby] if self.standby else [])
        return "host=%s port=%s dbname=%s user=%s connect_timeout=5 " \
               "target_session_attrs=read-write" % (
                   ",".join("127.0.0.1" for _ in hosts),
                   ",".join(str(h.port) for h in hosts), DB, USER)

    def kill_primary(self):
        self.primary.kill()

    def promote(self):
        self.run_pg([os.path.join(PG_BIN, "pg_ctl"), "promote", "-w", "-D",
                     self.standby.datadir])

    def stop(self):
        for srv in (self.standby, self.primary):
            if srv:
                srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--standby", action="store_true", help="add a synchronous standby")
    ap.add_argument("--async", dest="async_commit", action="store_true",
                    help="run the server with synchronous_commit = off")
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
    if not argv:
        ap.error("run needs a command")
    with Cluster(standby=a.standby, sync_commit="off" if a.async_commit else "on") as c:
        env = dict(os.environ)
        env["OUTBOX_PG_DSN"] = c.primary.dsn()
        env["OUTBOX_PG_CLUSTER_DSN"] = c.dsn()
        if c.standby:
            env["OUTBOX_PG_STANDBY_DSN"] = c.standby.dsn()
        rc = subprocess.run(argv, env=env).returncode
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
