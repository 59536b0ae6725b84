"""Hostile clients and hostile replication peers.

Replication port (src/repl): the handshake and frames of src/repl/wire.c are
spoken here in Python (FakePeer), with the cluster key file the Cluster
writes, so that a test can pass the handshake and then misbehave.

- WrongClusterKeyTest: a three-region cluster where ap-south-1 has another
  cluster key. Its links are refused in both directions, each side says so
  in its log (the receiving side "refused a replication connection ...
  (auth)", the connecting side "replication handshake with ... failed: ...
  peer failed to prove the cluster key"), the refusals are counted in
  meridian_replication_refused_total{reason="auth"}, and the two regions
  that share the key replicate meanwhile.
- HostilePeerTest: a cluster of us-east-1 and eu-west-1 (ap-south-1 is a
  configured peer that is not running, so a FakePeer can speak for it
  without a real ap-south-1 interfering). Against us-east-1's peer port:
  garbage bytes, an HTTP request, a wrong protocol version, a wrong key, an
  unknown region, a connection that goes away mid-handshake, one that goes
  silent mid-handshake (closed 3 s after accept, reason "handshake_timeout");
  and after a
  successful handshake: a frame with a huge length, a frame cut off and the
  socket closed, unknown and out-of-place frame types, a short batch, a
  batch whose count lies, a batch with an undecodable entry or an
  unparsable table descriptor after a valid one. Each ends with the
  connection closed, a log line naming the connection, the refusal counted
  by reason (a connection that merely broke is logged, not counted), no
  crash and nothing of the batch applied; a valid forged batch (the
  control) is applied, so the corrupt ones are refused for their
  corruption. Unauthenticated connections from one address beyond the
  limit (8) push out the oldest from that address at once (reason
  "address_limit"), the rest are closed at the handshake deadline
  (test_peer_port.py floods the port from many addresses and runs a
  region out of file descriptors). Throughout, us-east-1 serves API
  clients and replicates with eu-west-1; at the end ap-south-1 is started
  and added as a replica, and its writes reach us-east-1 (the hostile
  batches, which claimed a huge log position, did not move its recorded
  position).
- HostileReceiverTest: a region whose --peer address is a fake receiver
  that answers with garbage, or with a malformed frame after a correct
  handshake: the sender logs the failure, keeps retrying and keeps serving.
- ClockSkewTest: a region whose clock runs far ahead (--clock-offset-ms
  beyond the peer's --max-clock-skew-ms): the receiving region logs "write
  from ... ms ahead of this region's clock" and counts
  meridian_replication_clock_skew_violations_total; the writes still arrive.

API port (src/server/http.c, libmicrohttpd, one thread per connection):

- ManyIdleConnectionsTest: 10,000 idle TCP connections (the default
  --max-connections, 16384); a boto3 client is served during and after, and the server's
  threads go back down once they close. Prints the server's RSS and thread
  count with and without them. Skipped, saying why, where the machine's
  limits (file descriptors, threads, memory maps) cannot hold them.
- SlowlorisTest: 200 connections trickling header bytes (--idle-timeout 2)
  while a boto3 client keeps being served; half of them go silent early and
  are closed by the server while the other half still trickle, the rest are
  closed once they stop.
"""

import hashlib
import hmac
import json
import os
import random
import resource
import select
import socket
import struct
import sys
import threading
import time
import unittest

import harness
from harness import Cluster, create_table, metric_value, requires_meridian, wait_until

NAMES = harness.REGIONS3
US, EU, AP = NAMES
UNKNOWN_REGION = "sa-east-1"
REFUSED = "meridian_replication_refused_total"
REFUSE_REASONS = ("auth", "unknown_region", "protocol", "incomplete", "limit", "preauth_limit",
                  "address_limit", "handshake_timeout")
PREAUTH_TIMEOUT_MS = 3000  # src/repl/repl.c: an inbound handshake, from accept
PREAUTH_PER_ADDR = 8       # unauthenticated connections from one address
SKEW = "meridian_replication_clock_skew_violations_total"

# -- the replication protocol (src/repl/wire.h) --------------------------------

F_HELLO, F_CHALLENGE, F_AUTH, F_START, F_BATCH, F_ACK, F_HEARTBEAT, F_ERROR = range(1, 9)
PROTOCOL_VERSION = 1
FRAME_MAX = 64 * 1024 * 1024
K_PUT, K_TOMBSTONE, K_TABLE = 1, 2, 3
HLC_LOGICAL_BITS = 16


def read_cluster_key(path):
    """The key as meridian reads it: the file minus trailing newlines/spaces."""
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n ")


def frame(ftype, payload=b""):
    return struct.pack(">IB", len(payload) + 1, ftype) + payload


def region_bytes(name):
    b = name.encode()
    return bytes([len(b)]) + b


def proof(key, role, client_region, server_region, nonce_c, nonce_s):
    msg = ("meridian-repl-1|%s|%s|%s|" % (role, client_region, server_region)).encode()
    return hmac.new(key, msg + nonce_c + b"|" + nonce_s, hashlib.sha256).digest()


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def entry(kind, uid, ts, origin, data=b"", pk=b"", commit_ms=0):
    """A replication log entry (format 1, src/repl/wire.c)."""
    o = origin.encode()
    return (bytes([1, kind, 0]) + uid + struct.pack(">Q", ts) + varint(len(o)) + o
            + struct.pack(">Q", 0) + varint(0) + struct.pack(">Q", commit_ms)
            + varint(len(pk)) + pk + b"\x00" + varint(len(data)) + data)


def batch(through, items, count=None):
    """BATCH payload: u64 through | u32 count | (u64 seq | varint len | entry)*."""
    body = b"".join(struct.pack(">Q", seq) + varint(len(e)) + e for seq, e in items)
    return struct.pack(">QI", through, len(items) if count is None else count) + body


def hlc_now():
    return int(time.time() * 1000) << HLC_LOGICAL_BITS


def descriptor_entry(name, origin, region, account="acct-one"):
    """A REPL_TABLE entry creating table `name` (one replica: `region`)."""
    uid = os.urandom(16)
    v = hlc_now()
    desc = {
        "id": "1", "uid": uid.hex(), "account": account, "name": name,
        "pk_name": "pk", "pk_type": "S", "attr_defs": [{"name": "pk", "type": "S"}],
        "created_ms": int(time.time() * 1000), "pay_per_request": True, "rcu": 0, "wcu": 0,
        "deletion_protection": False, "billing_changed_ms": 0,
        "version": str(v), "version_origin": origin,
        "replicas": [{"region": region, "status": "ACTIVE", "removed": False,
                      "version": str(v), "origin": origin}],
    }
    return entry(K_TABLE, uid, v, origin, data=json.dumps(desc).encode())


class Refused(Exception):
    """The server answered the handshake with an ERROR frame."""


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def recv_frame(sock):
    length, ftype = struct.unpack(">IB", recv_exact(sock, 5))
    return ftype, recv_exact(sock, length - 1)


def parse_frames(data):
    """[(type, payload)] of the complete frames at the start of data."""
    frames = []
    while len(data) >= 5:
        length, ftype = struct.unpack(">IB", data[:5])
        if length < 1 or len(data) < 4 + length:
            break
        frames.append((ftype, data[5:4 + length]))
        data = data[4 + length:]
    return frames


def wait_closed(sock, limit=30.0):
    """Reads until the peer closes sock (EOF or reset). Returns the bytes
    received, or raises AssertionError if it is still open after `limit`."""
    sock.settimeout(0.5)
    got = bytearray()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return bytes(got)
        if not data:
            return bytes(got)
        got += data
    raise AssertionError("the server kept the connection open for %gs (received %r)" % (limit, bytes(got[:200])))


class FakePeer:
    """A client of a region's peer port that speaks the handshake itself."""

    def __init__(self, address, key, region, timeout=10.0):
        self.key = key
        self.region = region
        self.sock = socket.create_connection(address, timeout=timeout)
        self.port = self.sock.getsockname()[1]
        self.server_region = None

    @property
    def tag(self):
        """How the server's log names this connection."""
        return "127.0.0.1:%d" % self.port

    def send(self, data):
        self.sock.sendall(data)

    def hello(self, version=PROTOCOL_VERSION):
        self.nonce_c = os.urandom(32)
        self.send(frame(F_HELLO, struct.pack(">H", version) + region_bytes(self.region) + self.nonce_c))
        t, p = recv_frame(self.sock)
        if t == F_ERROR:
            raise Refused(p.decode("ascii", "replace"))
        if t != F_CHALLENGE:
            raise AssertionError("expected CHALLENGE, got frame type %d" % t)
        n = p[0]
        self.server_region = p[1:1 + n].decode()
        self.nonce_s = p[1 + n:1 + n + 32]
        self.proof_s = p[1 + n + 32:]
        return self.server_region

    def server_proof_ok(self, key=None):
        want = proof(key or self.key, "server", self.region, self.server_region, self.nonce_c, self.nonce_s)
        return hmac.compare_digest(want, self.proof_s)

    def auth(self, key=None):
        """Sends AUTH (proof made with key, default: ours); returns START's from_seq."""
        self.send(frame(F_AUTH, proof(key or self.key, "client", self.region, self.server_region,
                                      self.nonce_c, self.nonce_s)))
        t, p = recv_frame(self.sock)
        if t == F_ERROR:
            raise Refused(p.decode("ascii", "replace"))
        if t != F_START or len(p) != 8:
            raise AssertionError("expected START, got frame type %d (%d bytes)" % (t, len(p)))
        return struct.unpack(">Q", p)[0]

    def handshake(self):
        self.hello()
        if not self.server_proof_ok():
            raise AssertionError("the server's proof does not verify with the cluster key")
        return self.auth()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- helpers -------------------------------------------------------------------

def proc_status(server):
    """{field: value} of the meridian process's /proc/<pid>/status."""
    out = {}
    with open("/proc/%d/status" % server.proc.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def server_threads(server):
    return int(proc_status(server)["Threads"])


def server_rss_kib(server):
    return int(proc_status(server)["VmRSS"].split()[0])


def refused(server, reason):
    samples, types = harness.scrape_metrics(server)
    if types.get(REFUSED) != "counter":
        raise AssertionError("%s is not a counter in /metrics of %s" % (REFUSED, server.name))
    return metric_value(samples, REFUSED, reason=reason)


def refused_all(server):
    samples, _ = harness.scrape_metrics(server)
    return {r: metric_value(samples, REFUSED, reason=r)
            for r in REFUSE_REASONS}


def log_lines(server, *needles):
    """Lines of server's log holding every one of needles."""
    return [line for line in server.log_text().splitlines() if all(n in line for n in needles)]


def wait_log(server, *needles, timeout=30.0):
    return wait_until(lambda: log_lines(server, *needles), timeout,
                      what=lambda: "a log line of %s with %r; log tail:\n%s" % (
                          server.name, needles, server.log_tail(30)))


def table_names(c):
    return c.list_tables()["TableNames"]


def start_regions(cluster, names):
    """Starts only `names` of a Cluster made with start=False."""
    for n in names:
        s = cluster[n]
        old = s.peer_port
        s.start(new_ports=False)
        cluster._check_ports(n, old)


# -- replication: wrong cluster key ----------------------------------------------

@requires_meridian("replication needs meridian processes")
class WrongClusterKeyTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag="wrong-key", start=False)
        try:
            bad = cls.cluster[AP]
            bad.cluster_key_path = os.path.join(bad.root, "other-cluster.key")
            with open(bad.cluster_key_path, "w") as f:
                f.write("a-different-cluster-key-%s\n" % os.urandom(8).hex())
            os.chmod(bad.cluster_key_path, 0o600)
            cls.cluster.start()
        except BaseException:
            cls.cluster.stop(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_refused_logged_counted_and_good_peers_replicate(self):
        cl = self.cluster
        # Refused both ways and counted by every region that received a link.
        for r in NAMES:
            wait_until(lambda: refused(cl[r], "auth") >= 2, 30,
                       what="%s to count refused links (reason auth)" % r)
            self.assertTrue(cl[r].running(), "%s exited" % r)
        # The receiving side names the connection and the reason ...
        for r in (US, EU):
            wait_log(cl[r], "level=warn", "refused a replication connection from 127.0.0.1:", "(auth)")
        # ... and the connecting side names the peer and the cause.
        for r in (US, EU):
            wait_log(cl[r], "level=warn", "replication handshake with %s at 127.0.0.1:%d failed"
                     % (AP, cl[AP].peer_port), "peer failed to prove the cluster key")
            wait_log(cl[AP], "level=warn", "replication handshake with %s at 127.0.0.1:%d failed"
                     % (r, cl[r].peer_port), "peer failed to prove the cluster key")
        self.assertEqual(harness.link_up(cl, US, AP), 0)
        self.assertEqual(harness.link_up(cl, AP, US), 0)
        wait_until(lambda: harness.link_up(cl, US, EU) == 1 and harness.link_up(cl, EU, US) == 1, 30,
                   what="the links between the regions sharing the key")
        # The regions sharing the key replicate meanwhile, both ways.
        T = "wrong-key-good"
        cl.create_global_table(T, regions=[US, EU])
        cl.client(US).put_item(TableName=T, Item={"pk": {"S": "from-us"}})
        cl.client(EU).put_item(TableName=T, Item={"pk": {"S": "from-eu"}})
        self.assertEqual(cl.wait_converged(T, [US, EU]),
                         [{"pk": {"S": "from-eu"}}, {"pk": {"S": "from-us"}}])
        # Nothing of it reached the region with the wrong key.
        self.assertNotIn(T, table_names(cl.client(AP)))
        # Every region still serves its clients.
        for r in NAMES:
            self.assertEqual(cl[r].health()[0], 200)
        before = refused(cl[US], "auth")
        wait_until(lambda: refused(cl[US], "auth") > before, 30, what="the refusals to go on being counted")


# -- replication: hostile peers ------------------------------------------------

@requires_meridian("replication needs meridian processes")
class HostilePeerTest(harness.TestCase):
    """us-east-1 and eu-west-1 run; ap-south-1 is configured but not started,
    so a FakePeer speaks for it. Tests are independent of their order."""

    T = "hostile-peers"

    @classmethod
    def setUpClass(cls):
        # Debug level: refusals beyond one warning a second per reason are
        # logged at debug, and every one is looked for here.
        cls.cluster = Cluster(NAMES, tag="hostile", start=False, log_level="debug")
        try:
            start_regions(cls.cluster, (US, EU))
            cls.cluster.create_global_table(cls.T, regions=[US, EU])
        except BaseException:
            cls.cluster.stop(check=False)
            raise
        cls.key = read_cluster_key(cls.cluster.cluster_key_path)
        cls.us = cls.cluster[US]
        cls.addr = ("127.0.0.1", cls.us.peer_port)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.close()

    def fake(self, region=AP, key=None):
        f = FakePeer(self.addr, key or self.key, region)
        self.fakes.append(f)
        return f

    def assert_replicating(self):
        """us-east-1 serves its clients and replicates with eu-west-1, both ways."""
        type(self).n += 1
        cl, n = self.cluster, self.n
        self.assertTrue(self.us.running(), "us-east-1 exited")
        a = {"pk": {"S": "us-%d" % n}, "v": {"N": str(n)}}
        b = {"pk": {"S": "eu-%d" % n}, "v": {"N": str(n)}}
        cl.client(US).put_item(TableName=self.T, Item=a)
        cl.client(EU).put_item(TableName=self.T, Item=b)
        cl.wait_item(EU, self.T, {"pk": a["pk"]}, a)
        cl.wait_item(US, self.T, {"pk": b["pk"]}, b)

    def expect_refused(self, reason, fn, *needles):
        """Runs fn() (which makes a connection misbehave and returns the
        FakePeer); the refusal is counted once under reason and logged with
        the connection's address and needles."""
        before = refused_all(self.us)
        f = fn()
        want = dict(before)
        want[reason] += 1
        wait_until(lambda: refused_all(self.us) == want, 30,
                   what=lambda: "refusal counts %r (were %r)" % (want, before))
        wait_log(self.us, f.tag, "(%s)" % reason, *needles)
        return f

    # -- before the handshake --------------------------------------------------

    def test_garbage_bytes(self):
        def go():
            f = self.fake()
            rnd = random.Random(5)
            junk = bytes([0xF3, 0x17, 0x00, 0x42]) + bytes(rnd.randrange(256) for _ in range(4092))
            try:
                f.send(junk)
            except OSError:
                pass
            wait_closed(f.sock)
            return f
        self.expect_refused("protocol", go, "refused a replication connection", "malformed frame")
        self.assert_replicating()

    def test_http_request(self):
        def go():
            f = self.fake()
            f.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = wait_closed(f.sock)
            # The ERROR may be lost to the reset of a close with unread bytes.
            self.assertIn(parse_frames(data), ([], [(F_ERROR, b"malformed frame")]), data)
            return f
        self.expect_refused("protocol", go, "exceeds the limit of 4096")
        self.assert_replicating()

    def test_wrong_protocol_version(self):
        def go():
            f = self.fake()
            with self.assertRaises(Refused) as cm:
                f.hello(version=7)
            self.assertIn("unsupported protocol version 7", str(cm.exception))
            wait_closed(f.sock)
            return f
        self.expect_refused("protocol", go, "protocol version 7")

    def test_wrong_key(self):
        def go():
            wrong = b"not-the-cluster-key-" + os.urandom(8).hex().encode()
            f = self.fake(key=wrong)
            self.assertEqual(f.hello(), US)
            # The server proves the real key, which a wrong one cannot verify.
            self.assertFalse(f.server_proof_ok(wrong))
            self.assertTrue(f.server_proof_ok(self.key))
            with self.assertRaises(Refused) as cm:
                f.auth(wrong)
            self.assertEqual(str(cm.exception), "authentication failed")
            wait_closed(f.sock)
            return f
        self.expect_refused("auth", go, "level=warn", "peer failed to prove the cluster key")
        self.assert_replicating()

    def test_unknown_region(self):
        def go():
            f = self.fake(region=UNKNOWN_REGION)
            with self.assertRaises(Refused) as cm:
                f.handshake()
            self.assertEqual(str(cm.exception), "region not accepted")
            wait_closed(f.sock)
            return f
        self.expect_refused("unknown_region", go, "region '%s' is not accepted" % UNKNOWN_REGION)

    def test_gone_during_handshake(self):
        def go():
            f = self.fake()
            hello = frame(F_HELLO, struct.pack(">H", 1) + region_bytes(AP) + os.urandom(32))
            f.send(hello[:20])
            f.close()
            return f
        self.expect_refused("incomplete", go, "peer closed the connection mid-frame")

    def test_silent_during_handshake(self):
        """Half a HELLO, then nothing: closed at the handshake deadline
        (3 s after accept), not after the 15 s of an established link."""
        def go():
            f = self.fake()
            hello = frame(F_HELLO, struct.pack(">H", 1) + region_bytes(AP) + os.urandom(32))
            f.send(hello[:20])
            start = time.monotonic()
            wait_closed(f.sock, limit=10)
            took = time.monotonic() - start
            self.assertGreater(took, PREAUTH_TIMEOUT_MS / 1000.0 - 0.5)
            self.assertLess(took, PREAUTH_TIMEOUT_MS / 1000.0 + 3)
            return f
        self.expect_refused("handshake_timeout", go, "not authenticated within %d ms of accept" % PREAUTH_TIMEOUT_MS,
                            "timed out")

    def test_many_connections_from_one_address(self):
        """Unauthenticated connections from one address beyond the limit
        (8): each new one pushes out the oldest at once; the last 8 are
        closed at the handshake deadline. Each is counted once."""
        n = 72
        before = refused_all(self.us)
        socks = []
        try:
            for _ in range(n):
                socks.append(socket.create_connection(self.addr, timeout=10))
            # API clients are served meanwhile.
            self.assertEqual(table_names(self.cluster.client(US)).count(self.T), 1)
            start = time.monotonic()
            for s in socks:
                wait_closed(s, limit=10)
            self.assertLess(time.monotonic() - start, PREAUTH_TIMEOUT_MS / 1000.0 + 3)
        finally:
            for s in socks:
                s.close()
        want = dict(before)
        want["address_limit"] += n - PREAUTH_PER_ADDR
        want["handshake_timeout"] += PREAUTH_PER_ADDR
        wait_until(lambda: refused_all(self.us) == want, 30,
                   what=lambda: "refusal counts %r (were %r)" % (want, before))
        wait_log(self.us, "level=warn", "(address_limit)",
                 "%d unauthenticated connections from its address" % PREAUTH_PER_ADDR)
        wait_log(self.us, "(handshake_timeout)", "not authenticated within")
        self.assert_replicating()

    # -- after a successful handshake --------------------------------------------

    def violate(self, payload, *needles, reason="protocol", answer=None):
        """Handshakes as ap-south-1, sends payload; the server closes the
        connection and counts a protocol violation."""
        def go():
            f = self.fake()
            f.handshake()
            f.send(payload)
            data = wait_closed(f.sock)
            if answer is not None:
                self.assertEqual(parse_frames(data), answer, data)
            return f
        return self.expect_refused(reason, go, "closing the replication connection from %s at" % AP, *needles)

    def test_huge_frame_length(self):
        self.violate(struct.pack(">IB", 0xFFFFFFFF, F_BATCH) + b"x" * 100,
                     "length 4294967295 exceeds the limit of %d" % FRAME_MAX)
        self.violate(struct.pack(">IB", FRAME_MAX + 1, F_BATCH),
                     "length %d exceeds the limit" % (FRAME_MAX + 1))
        self.violate(struct.pack(">I", 0), "malformed frame: length 0")
        self.assert_replicating()

    def test_unexpected_frame_types(self):
        self.violate(frame(99, b"whatever"), "unexpected frame type 99")
        self.violate(frame(F_HELLO, b"\x00\x01"), "unexpected frame type %d" % F_HELLO)
        self.violate(frame(F_ACK, struct.pack(">Q", 1)), "unexpected frame type %d" % F_ACK)
        self.assert_replicating()

    def test_frame_cut_off(self):
        """A frame cut off by a closed socket: logged, not applied, and not
        counted as a violation (a link that breaks looks the same)."""
        before = refused_all(self.us)
        name = "forged-cut"
        f = self.fake()
        f.handshake()
        full = frame(F_BATCH, batch(1 << 40, [(1 << 40, descriptor_entry(name, AP, US))]))
        f.send(full[:len(full) // 2])
        f.close()
        wait_log(self.us, "level=info", "replication from %s at %s ended" % (AP, f.tag),
                 "peer closed the connection mid-frame (got %d of %d bytes)" % (len(full) // 2, len(full)))
        self.assertEqual(refused_all(self.us), before)
        self.assertNotIn(name, table_names(self.cluster.client(US)))
        self.assert_replicating()

    def test_corrupt_batches_apply_nothing(self):
        c = self.cluster.client(US)
        huge = 1 << 40  # a position far beyond ap-south-1's real log
        cases = [
            ("forged-short", frame(F_BATCH, b"\x00\x01"), "short batch"),
            ("forged-count", frame(F_BATCH, batch(huge, [(huge, descriptor_entry("forged-count", AP, US))],
                                                   count=2)), "BATCH payload"),
            ("forged-trailing", frame(F_BATCH, batch(huge, [(huge, descriptor_entry("forged-trailing", AP, US))])
                                      + b"\x00"), "BATCH payload: 1 bytes after"),
            ("forged-entry", frame(F_BATCH, batch(huge, [(huge, descriptor_entry("forged-entry", AP, US)),
                                                         (huge + 1, b"\x01\x03garbage")])),
             "replication entry: unknown flags 0x67"),
            ("forged-format", frame(F_BATCH, batch(huge, [(huge, descriptor_entry("forged-format", AP, US)),
                                                          (huge + 1, b"\x09" + descriptor_entry("x", AP, US)[1:])])),
             "replication entry: unknown format 9"),
            ("forged-descriptor", frame(F_BATCH, batch(huge, [
                (huge, descriptor_entry("forged-descriptor", AP, US)),
                (huge + 1, entry(K_TABLE, os.urandom(16), hlc_now(), AP, data=b'{"name": "half'))])),
             "malformed table descriptor"),
        ]
        for name, payload, needle in cases:
            with self.subTest(case=name):
                self.violate(payload, needle, answer=[(F_ERROR, b"apply failed")])
        names = table_names(c)
        for name, _, _ in cases:
            self.assertNotIn(name, names)
        self.assert_replicating()

    def test_valid_forged_batch_is_applied(self):
        """The control: the same forged entries, uncorrupted, are applied (a
        holder of the cluster key is trusted), so the corrupt batches above
        were refused for their corruption. Position 0: nothing recorded."""
        f = self.fake()
        f.handshake()
        f.send(frame(F_BATCH, batch(0, [(1 << 41, descriptor_entry("forged-valid", AP, US))])))
        t, p = recv_frame(f.sock)
        self.assertEqual((t, p), (F_ACK, struct.pack(">Q", 0)))
        self.assertIn("forged-valid", table_names(self.cluster.client(US)))
        f.send(frame(F_HEARTBEAT, b"\x00" * 24))
        f.close()
        wait_log(self.us, "replication from %s at %s ended" % (AP, f.tag), "peer closed the connection")
        self.assert_replicating()

    def test_zz_real_peer_joins_after_all_that(self):
        """Last (by name): ap-south-1 itself starts, becomes a replica, and its
        writes reach us-east-1: no hostile batch moved the log position
        recorded for it."""
        cl = self.cluster
        cl.start()
        c = cl.client(US)
        c.update_table(TableName=self.T, ReplicaUpdates=[{"Create": {"RegionName": AP}}])
        cl.wait_replicas(self.T, NAMES, timeout=60)
        item = {"pk": {"S": "from-the-real-ap"}}
        cl.client(AP).put_item(TableName=self.T, Item=item)
        cl.wait_item(US, self.T, {"pk": item["pk"]}, item)
        cl.wait_item(EU, self.T, {"pk": item["pk"]}, item)
        cl.wait_converged(self.T)
        self.assert_replicating()


# -- replication: a hostile receiver -------------------------------------------

class FakeReceiver:
    """A listener standing in for a region's peer port. mode "garbage":
    answers every connection with junk and closes; "bad-ack": completes the
    handshake with the cluster key as region `region`, then sends a frame
    with an impossible length."""

    def __init__(self, mode, key=None, region=None):
        self.mode, self.key, self.region = mode, key, region
        self.accepted = 0
        self.started = 0
        self._stop = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.accepted += 1
            try:
                conn.settimeout(5)
                self._serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _serve(self, conn):
        if self.mode == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
            return
        t, p = recv_frame(conn)
        if t != F_HELLO:
            return
        n = p[2]
        client_region = p[3:3 + n].decode()
        nonce_c = p[3 + n:]
        nonce_s = os.urandom(32)
        conn.sendall(frame(F_CHALLENGE, region_bytes(self.region) + nonce_s
                           + proof(self.key, "server", client_region, self.region, nonce_c, nonce_s)))
        t, p = recv_frame(conn)
        if t != F_AUTH or p != proof(self.key, "client", client_region, self.region, nonce_c, nonce_s):
            return
        conn.sendall(frame(F_START, struct.pack(">Q", 1)))
        self.started += 1
        conn.sendall(struct.pack(">IB", 0x7FFFFFFF, F_ACK))
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def stop(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()


@requires_meridian("replication needs meridian processes")
class HostileReceiverTest(harness.TestCase):
    def run_against(self, mode, *needles):
        probe = harness.Server(name="hostile-recv")  # for its cluster key file
        key = read_cluster_key(probe.cluster_key_path)
        fake = FakeReceiver(mode, key=key, region=EU)
        probe.extra_args = ["--peer", "%s=127.0.0.1:%d" % (EU, fake.port)]
        try:
            probe.start()
            c = harness.client(probe)
            create_table(c, "still-serving")
            # A replica in the fake's region: the sender has a batch in flight
            # (the descriptor), so it reads what the fake receiver answers.
            c.update_table(TableName="still-serving", ReplicaUpdates=[{"Create": {"RegionName": EU}}])
            wait_until(lambda: fake.accepted >= 3, 30, what="the sender to retry")
            wait_log(probe, "level=warn", *needles)
            self.assertTrue(probe.running())
            c.put_item(TableName="still-serving", Item={"pk": {"S": "x"}})
            self.assertEqual(c.get_item(TableName="still-serving", Key={"pk": {"S": "x"}})["Item"],
                             {"pk": {"S": "x"}})
            samples, _ = harness.scrape_metrics(probe)
            self.assertEqual(harness.metric_samples(samples, "meridian_replication_link_up", peer=EU)[0][2], 0)
            return fake
        finally:
            fake.stop()
            probe.close()

    def test_garbage_answer(self):
        self.run_against("garbage", "replication handshake with %s at 127.0.0.1:" % EU, "malformed frame")

    def test_malformed_frame_after_handshake(self):
        fake = self.run_against("bad-ack", "replication link to %s down" % EU,
                                "length 2147483647 exceeds the limit")
        self.assertGreaterEqual(fake.started, 1)


# -- replication: clock skew -----------------------------------------------------

@requires_meridian("clock offsets need meridian processes")
class ClockSkewTest(harness.TestCase):
    """us-east-1's clock runs 120 s ahead; eu-west-1 accepts at most 5 s."""

    OFFSET_MS, MAX_SKEW_MS = 120000, 5000

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster((US, EU), tag="far-clock", extra_args={
            US: ["--clock-offset-ms", str(cls.OFFSET_MS)],
            EU: ["--max-clock-skew-ms", str(cls.MAX_SKEW_MS)]})

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def skew(self, r):
        samples, types = self.cluster.metrics(r)
        self.assertEqual(types.get(SKEW), "counter")
        return metric_value(samples, SKEW)

    def test_far_clock_is_logged_and_counted(self):
        cl = self.cluster
        T = "far-clock"
        cl.create_global_table(T, regions=[US, EU])
        before = self.skew(EU)
        for i in range(3):
            item = {"pk": {"S": "ahead-%d" % i}}
            cl.client(US).put_item(TableName=T, Item=item)
            cl.wait_item(EU, T, {"pk": item["pk"]}, item)  # still applied
        wait_until(lambda: self.skew(EU) >= before + 3, 30, what="eu-west-1 to count the skewed writes")
        lines = wait_log(cl[EU], "level=warn", "from %s is" % US,
                         "ms ahead of this region's clock (limit %d ms)" % self.MAX_SKEW_MS)
        ahead = int(lines[-1].split("from %s is " % US)[1].split(" ms")[0])
        self.assertGreater(ahead, self.MAX_SKEW_MS)
        # The region behind it is not the one at fault: nothing counted there.
        item = {"pk": {"S": "from-eu"}}
        cl.client(EU).put_item(TableName=T, Item=item)
        cl.wait_item(US, T, {"pk": item["pk"]}, item)
        self.assertEqual(self.skew(US), 0)
        self.assertEqual(cl.wait_converged(T), sorted(
            [{"pk": {"S": "ahead-%d" % i}} for i in range(3)] + [item], key=harness.item_json))


# -- the API port: many idle connections -----------------------------------------

IDLE_CONNECTIONS = 10000


def _read_int(path):
    try:
        with open(path) as f:
            v = f.read().strip()
        return None if v == "max" else int(v)
    except (OSError, ValueError):
        return None


def _pids_cgroup_room():
    """Tasks the pids cgroup (v2) of this process may still add, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    base = "/sys/fs/cgroup" + line.strip()[3:]
                    limit = _read_int(os.path.join(base, "pids.max"))
                    current = _read_int(os.path.join(base, "pids.current"))
                    if limit is not None and current is not None:
                        return limit - current
    except OSError:
        pass
    return None


def idle_connection_obstacle(n):
    """Why this machine cannot hold n connections to a thread-per-connection
    server (one fd each side, one thread and two memory maps in the server),
    or None."""
    need = n + 1000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        return "RLIMIT_NOFILE hard limit %d < %d" % (hard, need)
    nproc, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if nproc != resource.RLIM_INFINITY and nproc < need:
        return "RLIMIT_NPROC %d < %d" % (nproc, need)
    tmax = _read_int("/proc/sys/kernel/threads-max")
    if tmax is not None and tmax < need:
        return "kernel.threads-max %d < %d" % (tmax, need)
    room = _pids_cgroup_room()
    if room is not None and room < need:
        return "the pids cgroup allows only %d more tasks (< %d)" % (room, need)
    maps = _read_int("/proc/sys/vm/max_map_count")
    if maps is not None and maps < 2 * n + 5000:
        return "vm.max_map_count %d < %d" % (maps, 2 * n + 5000)
    return None


@requires_meridian("needs a meridian process (thread counts, --max-connections)")
class ManyIdleConnectionsTest(harness.TestCase):
    def test_10000_idle_connections(self):
        n = IDLE_CONNECTIONS
        why = idle_connection_obstacle(n)
        if why:
            self.skipTest("this machine cannot hold %d connections: %s" % (n, why))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n + 1000 if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        srv = harness.Server(name="idle10k")  # the default --max-connections (16384)
        socks = []
        try:
            srv.start()
            c = harness.client(srv)
            create_table(c, "idle")
            base_threads, base_rss = server_threads(srv), server_rss_kib(srv)
            try:
                for i in range(n):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.settimeout(30)
                    s.connect((srv.host, srv.port))
            except OSError as ex:
                self.fail("connection %d of %d failed: %r\n%s" % (len(socks), n, ex, srv.log_tail(20)))
            # Every connection has its thread once the server accepted them all.
            wait_until(lambda: server_threads(srv) >= n, 60,
                       what=lambda: "a thread per connection (%d threads)" % server_threads(srv))
            held_threads, held_rss = server_threads(srv), server_rss_kib(srv)
            vm = proc_status(srv)["VmSize"]
            # A normal client (new connections) is served meanwhile.
            c2 = harness.client(srv)
            for i in range(20):
                c2.put_item(TableName="idle", Item={"pk": {"S": "during-%d" % i}})
            self.assertEqual(c2.get_item(TableName="idle", Key={"pk": {"S": "during-19"}})["Item"],
                             {"pk": {"S": "during-19"}})
            self.assertEqual(srv.health()[0], 200)
            self.assertEqual(c.scan(TableName="idle", Select="COUNT")["Count"], 20)
            self.assertTrue(srv.running())
        finally:
            for s in socks:
                s.close()
        try:
            # The connections' threads end once the clients have gone.
            wait_until(lambda: server_threads(srv) < base_threads + 50, 60,
                       what=lambda: "the server's threads to go back down (%d)" % server_threads(srv))
            after_threads, after_rss = server_threads(srv), server_rss_kib(srv)
            c3 = harness.client(srv)
            c3.put_item(TableName="idle", Item={"pk": {"S": "after"}})
            self.assertEqual(c3.scan(TableName="idle", Select="COUNT")["Count"], 21)
            sys.stderr.write(
                "\n[%d idle connections] server threads %d -> %d -> %d, RSS %.1f -> %.1f -> %.1f MiB "
                "(VmSize with them %s)\n" % (
                    n, base_threads, held_threads, after_threads, base_rss / 1024.0, held_rss / 1024.0,
                    after_rss / 1024.0, vm))
        finally:
            srv.close()


# -- the API port: slowloris ---------------------------------------------------

@requires_meridian("--idle-timeout needs a meridian process")
class SlowlorisTest(harness.TestCase):
    """Connections that send nothing are closed after --idle-timeout; those
    that trickle a request's headers a byte at a time (never idle) once the
    headers have taken twice --idle-timeout, on a fresh connection as on a
    keep-alive one after a complete request. Everyone else is served."""
    CONNECTIONS = 200
    KEEPALIVE = 10

    def test_trickling_headers(self):
        srv = harness.Server(name="slowloris", idle_timeout=2).start()
        socks = []
        stop = threading.Event()
        lock = threading.Lock()
        closed = set()
        try:
            # With a 2 s idle timeout a pooled keep-alive connection may be
            # closed just as it is reused; real clients retry that.
            c = harness.client(srv, attempts=3)
            create_table(c, "slow")
            head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            for _ in range(self.CONNECTIONS):
                s = socket.create_connection((srv.host, srv.port), timeout=10)
                socks.append(s)
                s.send(head)
            # Keep-alive connections: one complete request answered, then
            # the next request's headers trickle.
            keepalive = []
            for _ in range(self.KEEPALIVE):
                s = socket.create_connection((srv.host, srv.port), timeout=10)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                got = b""
                while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "the server closed a keep-alive connection")
                    got += chunk
                self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:80])
                s.send(head)
                keepalive.append(s)
            for s in socks + keepalive:
                s.setblocking(False)
            trickling = socks[:self.CONNECTIONS // 2] + keepalive
            silent = socks[self.CONNECTIONS // 2:]
            socks += keepalive

            def poll_closed():
                """Notes every socket the server closed (EOF or reset)."""
                with lock:
                    by_fd = {s.fileno(): s for s in socks if s not in closed}
                p = select.poll()
                for fd in by_fd:
                    p.register(fd, select.POLLIN)
                for fd, _ in p.poll(0):
                    s = by_fd[fd]
                    try:
                        data = s.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data == b"":
                        with lock:
                            closed.add(s)

            def piece(i):
                """One header byte (or a new header's name) per round."""
                if i == 0:
                    return b"X-Slow-0: "
                return b"\r\nX-Slow-%d: " % i if i % 8 == 0 else b"a"

            sent = [0]

            def trickle():
                i = 0
                while not stop.is_set():
                    for s in trickling:
                        with lock:
                            if s in closed:
                                continue
                        try:
                            s.send(piece(i))
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            with lock:
                                closed.add(s)
                    i += 1
                    sent[0] = i
                    stop.wait(0.25)

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            # Every slow connection is closed by the server while the
            # trickle goes on and a normal client keeps being served.
            n = [0]

            def served_and_all_closed():
                n[0] += 1
                c.put_item(TableName="slow", Item={"pk": {"S": "while-%d" % n[0]}})
                poll_closed()
                with lock:
                    return len(closed) == len(socks)

            wait_until(served_and_all_closed, 60, interval=0.2, max_interval=0.2,
                       what=lambda: "the slow connections to be closed (silent %d of %d, trickling %d of %d)" % (
                           sum(1 for s in silent if s in closed), len(silent),
                           sum(1 for s in trickling if s in closed), len(trickling)))
            # They were closed while still trickling (not once it stopped).
            self.assertFalse(stop.is_set())
            self.assertGreater(sent[0], 8)
            stop.set()
            t.join(10)
            self.assertGreaterEqual(c.scan(TableName="slow", Select="COUNT")["Count"], n[0])
            m = harness.scrape_metrics(srv)[0]
            timeouts = metric_value(m, "meridian_http_header_timeouts_total")
            self.assertGreaterEqual(timeouts, len(trickling))
            self.assertLessEqual(timeouts, len(socks))
            self.assertIn("whose request headers did not arrive within 4 s", srv.log_text())
            self.assertEqual(c.get_item(TableName="slow", Key={"pk": {"S": "while-1"}})["Item"],
                             {"pk": {"S": "while-1"}})
            self.assertTrue(srv.running())
            wait_until(lambda: server_threads(srv) < 50, 30,
                       what=lambda: "the server's threads to go back down (%d)" % server_threads(srv))
            wait_until(lambda: metric_value(harness.scrape_metrics(srv)[0], "meridian_http_connections") < 10,
                       30, what="meridian_http_connections to go back down")
        finally:
            stop.set()
            for s in socks:
                s.close()
            srv.close()


if __name__ == "__main__":
    unittest.main()
