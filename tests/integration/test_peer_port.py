"""The replication port (--peer-listen) under connections that prove nothing.

Before authentication an inbound connection holds a place in a bounded pool
(32, at most 8 from one address) for at most 3 s from accept; once it has
proven the cluster key as a configured region it holds that region's own
slot instead (src/repl/repl.c, accept_conn; docs/REPLICATION.md).

- PreauthFloodTest: us-east-1 and eu-west-1. With us-east-1 stopped, idle TCP
  connections to eu-west-1's peer port that send nothing: 70 from 127.0.0.1
  (beyond the per-address limit) and 8 from each of 127.0.0.2 .. 127.0.0.9
  (beyond the pool), kept open. us-east-1 starts again: its link to
  eu-west-1 comes up and a write there reaches eu-west-1 within 10 s of the
  flood (the old receiver had 64 slots for everything and a 15 s handshake
  timeout, so the idle connections kept the peer out for 15 s). Every idle
  connection is closed by eu-west-1 within 3 s of its accept plus slack, and
  counted once in meridian_replication_refused_total under address_limit,
  preauth_limit or handshake_timeout, each also logged. A second test keeps
  such a flood up (every connection the server closes is opened again) while
  us-east-1 restarts: the same bound holds.
- OutOfDescriptorsTest: one region whose RLIMIT_NOFILE is lowered (with
  prlimit on the running process) to leave it 10 descriptors; connections
  to its peer port use them up and more keep arriving. Its CPU time (from
  /proc/PID/stat) over 2.5 s stays below 30% of a core (the old accept loop
  span at 100%: accept4 failed with EMFILE and the listening socket stayed
  readable); the connections it could not take are closed at once and
  counted (reason "limit"); once descriptors are back it serves again.
"""

import os
import resource
import select
import socket
import sys
import threading
import time
import unittest

import harness
from harness import Cluster, metric_value, requires_meridian, wait_until
from test_hostile import REFUSED, FakePeer, read_cluster_key

US, EU = "us-east-1", "eu-west-1"
PREAUTH_TIMEOUT = 3.0      # src/repl/repl.c PREAUTH_TIMEOUT_MS
PREAUTH_MAX = 32
PREAUTH_PER_ADDR = 8
PEER_BOUND = 10.0          # a write reaches the flooded region within this of the flood
CLOSE_SLACK = 4.0          # idle connections closed within PREAUTH_TIMEOUT + this
FLOOD_SOURCES = ["127.0.0.%d" % i for i in range(2, 10)]
PREAUTH_REASONS = ("address_limit", "preauth_limit", "handshake_timeout")


def refused(server):
    samples, types = harness.scrape_metrics(server)
    if types.get(REFUSED) != "counter":
        raise AssertionError("%s is not a counter in /metrics of %s" % (REFUSED, server.name))
    return {r: metric_value(samples, REFUSED, reason=r)
            for r in ("incomplete", "limit") + PREAUTH_REASONS}


def connect_from(source, address, timeout=5.0):
    """A TCP connection to address from source (an address of 127/8), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(address)
        return s
    except OSError:
        s.close()
        return None


def closed_by_server(s):
    """True once the server closed s (EOF or reset); s sends nothing and the
    server sends nothing before the handshake's HELLO, so any readable
    event is the close."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def log_lines(server, *needles):
    return [ln for ln in server.log_text().splitlines() if all(n in ln for n in needles)]


class Flood(threading.Thread):
    """Keeps `per_source` idle connections open from each of `sources`:
    every `interval` the ones the server closed are opened again."""

    def __init__(self, address, sources, per_source, interval=0.2):
        super().__init__(daemon=True)
        self.address, self.sources, self.per_source, self.interval = address, sources, per_source, interval
        self.stop_event = threading.Event()
        self.opened = 0
        self.closed_seen = 0
        self.rounds = 0
        self.socks = {src: [] for src in sources}

    def run(self):
        while not self.stop_event.is_set():
            for src in self.sources:
                alive = []
                for s in self.socks[src]:
                    if closed_by_server(s):
                        s.close()
                        self.closed_seen += 1
                    else:
                        alive.append(s)
                while len(alive) < self.per_source and not self.stop_event.is_set():
                    s = connect_from(src, self.address, timeout=2.0)
                    if s is None:
                        break
                    alive.append(s)
                    self.opened += 1
                self.socks[src] = alive
            self.rounds += 1
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join(10)
        for socks in self.socks.values():
            for s in socks:
                s.close()


@requires_meridian("replication needs meridian processes")
class PreauthFloodTest(harness.TestCase):
    T = "peer-port-flood"

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster((US, EU), tag="preauth-flood")
        try:
            cls.cluster.create_global_table(cls.T, regions=[US, EU])
        except BaseException:
            cls.cluster.stop(check=False)
            raise
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def peer_address(self):
        return ("127.0.0.1", self.cluster[EU].peer_port)

    def write_reaches_eu(self, since, what):
        """A write in us-east-1 reaches eu-west-1 by since + PEER_BOUND."""
        cl = self.cluster
        type(self).n += 1
        item = {"pk": {"S": "%s-%d" % (what, self.n)}}
        cl.client(US).put_item(TableName=self.T, Item=item)
        left = since + PEER_BOUND - time.monotonic()
        try:
            cl.wait_item(EU, self.T, {"pk": item["pk"]}, item, timeout=max(left, 0.1))
        except AssertionError as ex:
            raise AssertionError("a write in %s did not reach %s within %gs of the flood: %s\n"
                                 "--- %s log tail:\n%s" % (US, EU, PEER_BOUND, ex, US,
                                                           cl[US].log_tail(15))) from None
        return time.monotonic() - since

    def test_idle_connections_do_not_keep_a_peer_out(self):
        cl = self.cluster
        eu = cl[EU]
        cl[US].stop()
        before = refused(eu)
        addr = self.peer_address()
        start = time.monotonic()
        socks = []
        for _ in range(70):
            s = connect_from("127.0.0.1", addr)
            if s is not None:
                socks.append(s)
        for src in FLOOD_SOURCES:
            for _ in range(PREAUTH_PER_ADDR):
                s = connect_from(src, addr)
                if s is not None:
                    socks.append(s)
        opened = time.monotonic()
        try:
            self.assertGreaterEqual(len(socks), 120, "could not open the idle connections")
            # The peer comes back during the flood and gets in.
            cl.restart(US)
            took = self.write_reaches_eu(start, "idle-flood")
            # Every idle connection is closed: at once when a limit pushes it
            # out, the others at the handshake deadline.
            open_left = lambda: [s for s in socks if not closed_by_server(s)]  # noqa: E731
            wait_until(lambda: not open_left(), opened + PREAUTH_TIMEOUT + CLOSE_SLACK - time.monotonic(),
                       what=lambda: "%s to close the idle connections (%d of %d open %.1fs after)" % (
                           EU, len(open_left()), len(socks), time.monotonic() - opened))
        finally:
            for s in socks:
                s.close()
        # Each counted once, under one of the new reasons.
        def counted():
            now = refused(eu)
            d = {r: now[r] - before[r] for r in now}
            return d if sum(d[r] for r in PREAUTH_REASONS) >= len(socks) else None
        d = wait_until(counted, 10, what=lambda: "the idle connections to be counted: %r -> %r" % (
            before, refused(eu)))
        self.assertGreaterEqual(d["address_limit"], 70 - PREAUTH_PER_ADDR, d)
        self.assertGreaterEqual(d["preauth_limit"], 1, d)
        self.assertGreaterEqual(d["handshake_timeout"], 1, d)
        self.assertLessEqual(sum(d[r] for r in PREAUTH_REASONS), len(socks) + 5, d)
        for reason in PREAUTH_REASONS:
            self.assertTrue(log_lines(eu, "level=warn", "refused a replication connection from 127.0.0.",
                                      "(%s)" % reason), "no warning for %s in %s's log" % (reason, EU))
        self.assertTrue(eu.running())
        self.assertEqual(harness.link_up(cl, US, EU), 1)
        sys_stderr("[idle flood of %d connections] the write arrived %.2fs after the flood began\n"
                   % (len(socks), took))

    def test_reconnecting_flood_does_not_keep_a_peer_out(self):
        cl = self.cluster
        cl[US].stop()
        before = refused(cl[EU])
        flood = Flood(self.peer_address(), FLOOD_SOURCES, PREAUTH_PER_ADDR)
        start = time.monotonic()
        flood.start()
        try:
            wait_until(lambda: flood.rounds >= 2, 30, what="the flood to begin")
            cl.restart(US)
            took = self.write_reaches_eu(start, "reconnecting-flood")
            # The flood went on all along: the server kept closing its
            # connections and it kept opening new ones.
            self.assertGreater(flood.closed_seen, 0)
            self.assertGreater(flood.opened, len(FLOOD_SOURCES) * PREAUTH_PER_ADDR)
            self.assertTrue(flood.is_alive())
        finally:
            flood.stop()
        after = refused(cl[EU])
        self.assertGreater(after["preauth_limit"], before["preauth_limit"])
        self.assertTrue(cl[EU].running())
        sys_stderr("[reconnecting flood, %d connections opened] the write arrived %.2fs after the "
                   "flood began\n" % (flood.opened, took))


def sys_stderr(text):
    sys.stderr.write("\n" + text)


def proc_cpu_seconds(pid):
    """User + system CPU time of every thread of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def open_fds(pid):
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


@requires_meridian("needs a meridian process (its descriptor limit and CPU time)")
class OutOfDescriptorsTest(harness.TestCase):
    FREE = 10      # descriptors left to the region
    WINDOW = 2.5   # seconds of CPU time measured (within the handshake deadline)
    MAX_CPU = 0.3  # of one core; a spinning accept loop takes ~1.0

    def test_accept_does_not_spin_without_descriptors(self):
        srv = harness.Server(name="nofile")  # no peers: nothing else connects
        srv.start()
        pid = srv.proc.pid
        held, trickled = [], []
        stop = threading.Event()
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        try:
            # The limit at which exactly FREE descriptor numbers are free.
            used = set(open_fds(pid))
            limit, free = 0, 0
            while free < self.FREE:
                if limit not in used:
                    free += 1
                limit += 1
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
            address = ("127.0.0.1", srv.peer_port)
            # More connections than descriptors (each source within the
            # per-address limit, all within the pool) ...
            for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                for _ in range(PREAUTH_PER_ADDR):
                    s = connect_from(src, address, timeout=2.0)
                    if s is not None:
                        held.append(s)

            # ... and more keep arriving (held open, from other addresses),
            # also taking any descriptor the region frees meanwhile.
            def trickle():
                i = 0
                while not stop.is_set():
                    s = connect_from("127.0.1.%d" % (1 + i % 200), address, timeout=1.0)
                    if s is not None:
                        trickled.append(s)
                    i += 1
                    stop.wait(0.05)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            wait_until(lambda: set(range(limit)) <= set(open_fds(pid)), 10,
                       what=lambda: "the region to run out of descriptors (%d of %d in use)" % (
                           len([n for n in open_fds(pid) if n < limit]), limit))
            cpu0, wall0 = proc_cpu_seconds(pid), time.monotonic()
            time.sleep(self.WINDOW)
            cpu = (proc_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
            stop.set()
            t.join(5)
            sys_stderr("[out of descriptors] the region used %.0f%% of a core over %.1fs (limit %d)\n"
                       % (100 * cpu, self.WINDOW, limit))
            self.assertLess(cpu, self.MAX_CPU, "the region span while out of descriptors:\n%s"
                            % srv.log_tail(10))
        finally:
            stop.set()
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
            for s in held + trickled:
                s.close()
        try:
            # The connections it had no descriptor for were closed and counted.
            self.assertGreaterEqual(refused(srv)["limit"], 1)
            self.assertTrue(log_lines(srv, "level=warn", "(limit)", "out of file descriptors"),
                            srv.log_tail(20))
            # With descriptors back it serves clients and peers again.
            self.assertEqual(srv.health()[0], 200)
            fake = FakePeer(address, read_cluster_key(srv.cluster_key_path), EU)
            try:
                self.assertEqual(fake.hello(), srv.region)
            finally:
                fake.close()
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
