"""Network partitions between regions of a global table.

Every directed peer link of the cluster goes through a Python TCP proxy
(harness.LinkProxy), so tests can cut links and heal them:

- ProxySelfTest checks the proxy itself against a local echo server: bytes
  flow both ways, a cut closes current connections and refuses (or
  black-holes) new ones, heal restores forwarding, stop ends everything.
- ClusterHarnessTest checks Cluster's wiring (ports, --peer arguments, shared
  credentials and cluster key, cut/heal selectivity, kill -9 and restart on
  the same ports).
- PartitionTest: one region cut off from both others keeps serving its own
  clients (and reads its own writes) while all three keep writing, the
  majority side keeps replicating, and after the heal all three converge to
  identical contents with every acknowledged write; a single cut link
  (A↔B while A↔C and B↔C stay up) and a flapping link also converge.
"""

import json
import os
import socket
import threading

import harness
from harness import Cluster, LinkProxy, requires_meridian, wait_until

NAMES = harness.REGIONS3
US, EU, AP = NAMES


# -- proxy self-test ----------------------------------------------------------

class EchoServer:
    """A TCP echo server on 127.0.0.1 (daemon threads, bounded)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.closed = 0
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True, name="echo-accept")
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True, name="echo-conn").start()
        self.sock.close()

    def _echo(self, conn):
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.closed += 1

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def assert_connection_closed(test, sock, send=None, timeout=10.0):
    """sock's peer closed (EOF) or reset it; fails if it stays open for
    `timeout` seconds or if data arrives instead."""
    sock.settimeout(timeout)
    try:
        if send is not None:
            sock.sendall(send)
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return
    except socket.timeout:
        test.fail("connection still open after %gs" % timeout)
    finally:
        sock.close()
    test.assertEqual(data, b"", "data arrived on a connection that should be closed")


def assert_refused(test, address, send=b"hello"):
    """A new connection to address is refused: reset during connect, or
    accepted and then closed/reset without any answer."""
    try:
        sock = socket.create_connection(address, timeout=10)
    except (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError):
        return
    assert_connection_closed(test, sock, send=send)


def roundtrip(sock, payload, timeout=20.0):
    """Sends payload (from a separate thread, so large payloads cannot
    deadlock) and reads the same number of bytes back."""
    sock.settimeout(timeout)
    errors = []

    def send():
        try:
            sock.sendall(payload)
        except OSError as ex:
            errors.append(ex)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    got = bytearray()
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    t.join(timeout)
    if errors:
        raise errors[0]
    return bytes(got)


class ProxySelfTest(harness.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.proxy = LinkProxy(("127.0.0.1", self.echo.port), name="self-test")
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.proxy.stop()
        self.echo.stop()

    def connect(self, proxy=None):
        s = socket.create_connection((proxy or self.proxy).address, timeout=10)
        self.socks.append(s)
        return s

    def test_bytes_flow_both_ways(self):
        payloads = [os.urandom(300000 + i) for i in range(3)]
        socks = [self.connect() for _ in payloads]
        results = [None] * len(payloads)

        def run(i):
            results[i] = roundtrip(socks[i], payloads[i])

        threads = harness.run_threads([lambda i=i: run(i) for i in range(len(payloads))])
        for t in threads:
            t.join(60)
            self.assertFalse(t.is_alive())
        for i, p in enumerate(payloads):
            self.assertEqual(len(results[i]), len(p))
            self.assertTrue(results[i] == p, "bytes changed on the way through connection %d" % i)
        self.assertEqual(self.echo.accepted, 3)
        self.assertEqual(self.proxy.connection_count(), 3)
        self.assertGreaterEqual(self.proxy.bytes_forwarded, 2 * sum(len(p) for p in payloads))
        # Closing the client side closes the upstream side too.
        for s in socks:
            s.close()
        wait_until(lambda: self.echo.closed == 3 and self.proxy.connection_count() == 0,
                   what="both ends of every connection closed")
        # Small messages back and forth on one connection (request/response).
        s = self.connect()
        for i in range(50):
            msg = b"message %d" % i
            self.assertEqual(roundtrip(s, msg), msg)

    def test_cut_closes_connections_and_refuses_new_ones(self):
        s1, s2 = self.connect(), self.connect()
        self.assertEqual(roundtrip(s1, b"before"), b"before")
        self.assertEqual(roundtrip(s2, b"before"), b"before")
        self.proxy.cut()
        self.assertTrue(self.proxy.is_cut)
        self.assertEqual(self.proxy.mode, "refuse")
        assert_connection_closed(self, s1)
        assert_connection_closed(self, s2, send=b"after the cut")
        wait_until(lambda: self.echo.closed == 2, what="the target side of the cut connections closed")
        self.assertEqual(self.proxy.connection_count(), 0)
        accepted = self.echo.accepted
        refused = self.proxy.refused
        for i in range(3):
            assert_refused(self, self.proxy.address, send=b"hello %d" % i)
        self.assertEqual(self.echo.accepted, accepted, "a connection reached the target during the cut")
        self.assertGreaterEqual(self.proxy.refused, refused + 1)

    def test_heal_restores_forwarding(self):
        self.proxy.cut()
        assert_refused(self, self.proxy.address)
        self.proxy.heal()
        self.assertFalse(self.proxy.is_cut)
        s = self.connect()
        self.assertEqual(roundtrip(s, b"after heal"), b"after heal")
        # Cut and heal again: the same proxy keeps working.
        self.proxy.cut()
        assert_connection_closed(self, s)
        self.proxy.heal()
        s = self.connect()
        self.assertEqual(roundtrip(s, b"again"), b"again")

    def test_blackhole_holds_new_connections_silently(self):
        s = self.connect()
        self.assertEqual(roundtrip(s, b"before"), b"before")
        self.proxy.cut("blackhole")
        self.assertEqual(self.proxy.mode, "blackhole")
        assert_connection_closed(self, s)  # current connections are closed as for any cut
        accepted = self.echo.accepted
        h = self.connect()
        h.sendall(b"into the void")
        wait_until(lambda: self.proxy.held_count() == 1, what="the new connection to be held")
        self.assertEqual(self.echo.accepted, accepted, "a black-holed connection reached the target")
        h.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            h.recv(1)  # open, and silent
        self.proxy.heal()
        assert_connection_closed(self, h)  # held connections are closed on heal
        self.assertEqual(self.proxy.held_count(), 0)
        s = self.connect()
        self.assertEqual(roundtrip(s, b"after"), b"after")

    def test_connection_limit(self):
        limited = LinkProxy(("127.0.0.1", self.echo.port), name="self-test-limited", max_connections=2)
        try:
            a, b = self.connect(limited), self.connect(limited)
            self.assertEqual(roundtrip(a, b"a"), b"a")
            self.assertEqual(roundtrip(b, b"b"), b"b")
            assert_refused(self, limited.address, send=b"c")
            a.close()
            wait_until(lambda: limited.connection_count() == 1, what="the closed connection to be released")
            self.assertEqual(roundtrip(self.connect(limited), b"d"), b"d")
        finally:
            limited.stop()

    def test_retarget(self):
        other = EchoServer()
        try:
            s = self.connect()
            self.assertEqual(roundtrip(s, b"one"), b"one")
            self.proxy.retarget(("127.0.0.1", other.port))
            assert_connection_closed(self, s)
            s = self.connect()
            self.assertEqual(roundtrip(s, b"two"), b"two")
            self.assertEqual(other.accepted, 1)
        finally:
            other.stop()

    def test_unreachable_target_closes_client(self):
        dead = LinkProxy(("127.0.0.1", harness.free_port()), name="self-test-dead")
        try:
            assert_refused(self, dead.address, send=b"anyone?")
            wait_until(lambda: dead.upstream_failures >= 1, what="the failed upstream connection counted")
        finally:
            dead.stop()

    def test_stop_ends_everything(self):
        s = self.connect()
        self.assertEqual(roundtrip(s, b"x"), b"x")
        self.proxy.cut("blackhole")
        h = self.connect()
        wait_until(lambda: self.proxy.held_count() == 1, what="the new connection to be held")
        self.proxy.heal()
        s = self.connect()
        self.assertEqual(roundtrip(s, b"y"), b"y")
        self.proxy.stop()
        self.assertTrue(self.proxy.stopped())
        assert_connection_closed(self, s)
        with self.assertRaises(OSError):
            socket.create_connection(self.proxy.address, timeout=2).close()
        names = {"proxy-self-test", "proxy-self-test-conn", "proxy-self-test-back"}
        wait_until(lambda: not [t for t in threading.enumerate() if t.name in names],
                   what="every proxy thread to end")
        h.close()
        self.proxy.stop()  # idempotent


# -- Cluster wiring -------------------------------------------------------------

def peer_arg(cmd, name):
    """The HOST:PORT of `--peer name=HOST:PORT` in a command line (None if absent)."""
    for i, a in enumerate(cmd[:-1]):
        if a == "--peer" and cmd[i + 1].startswith(name + "="):
            return cmd[i + 1].split("=", 1)[1]
    return None


@requires_meridian("a Cluster runs meridian processes")
class ClusterHarnessTest(harness.TestCase):
    def check_common(self, cl):
        cred = {cl[n].cred_path for n in cl}
        keys = {cl[n].cluster_key_path for n in cl}
        self.assertEqual(len(cred), 1, "one shared credentials file")
        self.assertEqual(len(keys), 1, "one shared cluster key file")
        with open(cred.pop()) as f:
            self.assertIn(harness.KEY1[0], f.read())
        with open(keys.pop()) as f:
            self.assertTrue(f.read().strip())
        for n in cl:
            cmd = cl[n].command()
            self.assertEqual(cmd[cmd.index("--region") + 1], n)
            self.assertEqual(cmd[cmd.index("--peer-listen") + 1], "127.0.0.1:%d" % cl[n].peer_port)
            self.assertEqual(sum(1 for a in cmd if a == "--peer"), len(cl.names) - 1)
            status, _, body = cl[n].health()
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body)["region"], n)
            self.assertIn("TableNames", cl.client(n).list_tables())

    def test_proxied_cluster(self):
        cl = Cluster(proxied=True, tag="harness-p")
        servers = [cl[n] for n in cl]
        proxies = list(cl.proxies.values())
        try:
            self.check_common(cl)
            self.assertEqual(set(cl.proxies), {(a, b) for a in NAMES for b in NAMES if a != b})
            ports = [s.port for s in servers] + [s.peer_port for s in servers] + [p.port for p in proxies]
            self.assertEqual(len(ports), len(set(ports)), "ports are distinct")
            for (a, b), p in cl.proxies.items():
                self.assertEqual(peer_arg(cl[a].command(), b), "127.0.0.1:%d" % p.port)
                self.assertEqual(p.target, ("127.0.0.1", cl[b].peer_port))
                self.assertFalse(p.is_cut)

            cl.cut(US, EU)
            self.assertEqual({k for k, p in cl.proxies.items() if p.is_cut}, {(US, EU), (EU, US)})
            assert_refused(self, cl.proxies[(US, EU)].address)
            cl.heal(US, EU)
            self.assertEqual([k for k, p in cl.proxies.items() if p.is_cut], [])
            cl.isolate(AP, mode="blackhole")
            self.assertEqual({k for k, p in cl.proxies.items() if p.is_cut},
                             {(AP, US), (US, AP), (AP, EU), (EU, AP)})
            self.assertTrue(all(cl.proxies[k].mode == "blackhole" for k in [(AP, US), (EU, AP)]))
            cl.heal_all()
            self.assertEqual([k for k, p in cl.proxies.items() if p.is_cut], [])

            # kill -9 and restart keep the region's ports (its peers' proxies still point at it).
            peer_port = cl[EU].peer_port
            self.assertEqual(cl.kill9(EU), -9)
            self.assertFalse(cl[EU].running())
            cl.restart(EU)
            self.assertTrue(cl[EU].running())
            self.assertEqual(cl[EU].peer_port, peer_port)
            self.assertEqual(cl.proxies[(US, EU)].target, ("127.0.0.1", peer_port))
            self.check_common(cl)
            # A restart of a running region (SIGTERM, exit 0 asserted).
            cl.restart(US)
            self.check_common(cl)
        finally:
            cl.stop()
        for s in servers:
            self.assertEqual(s.proc.returncode, 0, "%s exit code" % s.name)
        self.assertTrue(all(p.stopped() for p in proxies))
        self.assertFalse(os.path.exists(cl.root) and not os.environ.get("MERIDIAN_TEST_KEEP"))
        cl.stop()  # idempotent

    def test_plain_cluster(self):
        names = ("us-east-1", "eu-west-1")
        with Cluster(names=names, tag="harness", extra_args={"eu-west-1": ["--idle-timeout", "61"]}) as cl:
            self.check_common(cl)
            self.assertEqual(cl.proxies, {})
            self.assertEqual(peer_arg(cl["us-east-1"].command(), "eu-west-1"),
                             "127.0.0.1:%d" % cl["eu-west-1"].peer_port)
            self.assertEqual(peer_arg(cl["eu-west-1"].command(), "us-east-1"),
                             "127.0.0.1:%d" % cl["us-east-1"].peer_port)
            self.assertIn("61", cl["eu-west-1"].command())
            self.assertNotIn("--idle-timeout", cl["us-east-1"].command())
            with self.assertRaises(harness.ServerError):
                cl.cut("us-east-1", "eu-west-1")
            servers = [cl[n] for n in cl]
        for s in servers:
            self.assertEqual(s.proc.returncode, 0, "%s exit code" % s.name)


# -- partitions -----------------------------------------------------------------

S, N, key, get = harness.S, harness.N, harness.pk_key, harness.get_pk


def metric(cluster, region, name, **labels):
    samples, _ = cluster.metrics(region)
    return harness.metric_value(samples, name, **labels)


link_up = harness.link_up


class Writer(threading.Thread):
    """Writes unique keys (and overwrites a few shared keys) in one region
    until stopped; records what was acknowledged."""

    def __init__(self, cluster, region, table, tag, shared=5):
        super().__init__(daemon=True)
        self.client = cluster.client(region, read_timeout=15, connect_timeout=3)
        self.region = region
        self.table = table
        self.tag = tag
        self.shared = shared
        self.stop = threading.Event()
        self.acked = {}
        self.errors = []
        self.count = 0

    def run(self):
        seq = 0
        while not self.stop.is_set() and seq < 100000:
            seq += 1
            if seq % 3 == 0:
                item = {"pk": S("shared-%d" % (seq % self.shared)), "v": S("%s-%d" % (self.region, seq))}
            else:
                item = {"pk": S("%s-%s-%06d" % (self.tag, self.region, seq)), "v": S("w%d" % seq), "n": N(seq)}
            try:
                self.client.put_item(TableName=self.table, Item=item)
            except Exception as ex:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(ex))
                if len(self.errors) > 20:
                    return
                continue
            self.count += 1
            if not item["pk"]["S"].startswith("shared-"):
                self.acked[item["pk"]["S"]] = item


@requires_meridian("partitions need meridian processes")
class PartitionTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(proxied=True, tag="part")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.cluster.heal_all()
        self.c = {r: self.cluster.client(r) for r in NAMES}

    def tearDown(self):
        self.cluster.heal_all()

    def assert_acked_present(self, contents, acked):
        by_key = {i["pk"]["S"]: i for i in contents}
        missing = [k for k in acked if k not in by_key]
        self.assertEqual(missing[:10], [], "%d acknowledged writes missing (of %d)" % (len(missing), len(acked)))
        wrong = [k for k, item in acked.items() if by_key[k] != harness.canonical_item(item)]
        self.assertEqual(wrong[:10], [], "acknowledged writes with other values")

    def test_isolated_region_serves_and_converges_after_heal(self):
        T = "isolate"
        cl, c = self.cluster, self.c
        cl.create_global_table(T)
        for i in range(10):
            c[US].put_item(TableName=T, Item={"pk": S("seed-%02d" % i), "v": S("seed")})
        for i in range(5):
            c[US].put_item(TableName=T, Item={"pk": S("hot-%d" % i), "v": S("seed")})
        cl.wait_converged(T)
        for r in NAMES:
            for peer in NAMES:
                if peer != r:
                    wait_until(lambda: link_up(cl, r, peer) == 1, what="link %s -> %s up" % (r, peer))

        cl.isolate(AP)
        for r, peer in [(AP, US), (AP, EU), (US, AP), (EU, AP)]:
            wait_until(lambda: link_up(cl, r, peer) == 0, what="link_up{peer=%s} 0 in %s during the cut" % (peer, r))

        acked = {}
        last_hot = {r: {} for r in NAMES}
        deleted = []
        for rnd in range(3):
            for idx, r in enumerate(NAMES):
                for i in range(10):
                    pk = "own-%s-%d-%d" % (r, rnd, i)
                    item = {"pk": S(pk), "v": S("%s/%d/%d" % (r, rnd, i)), "n": N(rnd * 100 + i)}
                    c[r].put_item(TableName=T, Item=item)
                    acked[pk] = item
                    # Reading its own writes is immediate, cut off or not.
                    self.assertEqual(harness.canonical_item(get(c[r], T, pk)), harness.canonical_item(item))
                for h in range(5):
                    v = "%s-round-%d" % (r, rnd)
                    c[r].put_item(TableName=T, Item={"pk": S("hot-%d" % h), "v": S(v)})
                    last_hot[r]["hot-%d" % h] = v
                if rnd == 0:
                    # Each region deletes seed items nobody else touches.
                    for i in (3 * idx, 3 * idx + 1, 3 * idx + 2):
                        c[r].delete_item(TableName=T, Key=key("seed-%02d" % i))
                        deleted.append("seed-%02d" % i)
                        self.assertIsNone(get(c[r], T, "seed-%02d" % i))
                # An update of the same item on both sides of the partition.
                c[r].update_item(TableName=T, Key=key("seed-09"), UpdateExpression="SET w = :w, #r = :r",
                                 ExpressionAttributeNames={"#r": "by-%s" % r},
                                 ExpressionAttributeValues={":w": S(r), ":r": N(rnd)})

        # The cut-off region serves its own clients: its own values of the hot keys.
        for h, v in last_hot[AP].items():
            self.assertEqual(get(c[AP], T, h)["v"], S(v))
        # Nothing crossed the cut (every link of AP refuses connections).
        self.assertIsNone(get(c[AP], T, "own-%s-0-0" % US))
        self.assertIsNone(get(c[AP], T, "own-%s-0-0" % EU))
        self.assertIsNone(get(c[US], T, "own-%s-0-0" % AP))
        self.assertIsNone(get(c[EU], T, "own-%s-0-0" % AP))
        # The majority side keeps replicating between its two regions.
        cl.wait_item(EU, T, key("own-%s-2-9" % US), acked["own-%s-2-9" % US])
        cl.wait_item(US, T, key("own-%s-2-9" % EU), acked["own-%s-2-9" % EU])
        # AP's writes wait for its peers.
        for peer in (US, EU):
            wait_until(lambda: metric(cl, AP, "meridian_replication_pending_entries", peer=peer) > 0,
                       what="pending entries of %s for %s during the cut" % (AP, peer))

        cl.heal_all()
        contents = cl.wait_converged(T, timeout=60)
        self.assert_acked_present(contents, acked)
        by_key = {i["pk"]["S"]: i for i in contents}
        for pk in deleted:
            self.assertNotIn(pk, by_key, "deleted item came back")
        for h in last_hot[US]:
            # Last writer wins: the winner is some region's last write of that key.
            self.assertIn(by_key[h]["v"]["S"], {last_hot[r][h] for r in NAMES}, h)
        self.assertIn(by_key["seed-09"]["w"]["S"], NAMES)
        # Concurrent writes of the same keys on both sides were conflicts.
        wait_until(lambda: sum(metric(cl, r, "meridian_replication_conflicts_total", table=T) for r in NAMES) > 0,
                   what="conflicts counted for %s" % T)
        for r in NAMES:
            for peer in NAMES:
                if peer != r:
                    wait_until(lambda: link_up(cl, r, peer) == 1, what="link %s -> %s up after heal" % (r, peer))
                    wait_until(lambda: metric(cl, r, "meridian_replication_pending_entries", peer=peer) == 0,
                               what="nothing pending in %s for %s after convergence" % (r, peer))
        # And replication simply goes on.
        item = {"pk": S("after-heal"), "v": S(AP)}
        c[AP].put_item(TableName=T, Item=item)
        for r in (US, EU):
            cl.wait_item(r, T, key("after-heal"), item)

    def test_single_link_cut(self):
        T = "onelink"
        cl, c = self.cluster, self.c
        cl.create_global_table(T)
        cl.cut(US, EU, mode="blackhole")
        acked = {}
        for rnd in range(4):
            for r in NAMES:
                for i in range(8):
                    pk = "own-%s-%d-%d" % (r, rnd, i)
                    item = {"pk": S(pk), "v": S(r), "n": N(i)}
                    c[r].put_item(TableName=T, Item=item)
                    acked[pk] = item
                for i in range(4):
                    c[r].put_item(TableName=T, Item={"pk": S("same-%d" % i), "v": S("%s-%d" % (r, rnd))})
        # The links that are up carry writes during the cut (whether US's
        # writes reach EU through AP, or not, is not asserted).
        for src, dst in [(US, AP), (EU, AP), (AP, US), (AP, EU)]:
            pk = "own-%s-3-7" % src
            cl.wait_item(dst, T, key(pk), acked[pk])
        cl.heal(US, EU)
        contents = cl.wait_converged(T, timeout=60)
        self.assert_acked_present(contents, acked)
        values = {i["pk"]["S"]: i["v"]["S"] for i in contents}
        for i in range(4):
            self.assertIn(values["same-%d" % i], {"%s-3" % r for r in NAMES})

    def test_flapping_link_with_concurrent_writers(self):
        T = "flap"
        cl = self.cluster
        cl.create_global_table(T)
        writers = [Writer(cl, r, T, "flap") for r in NAMES]
        for w in writers:
            w.start()
        try:
            def progressed(n):
                base = [w.count for w in writers]
                wait_until(lambda: all(w.count >= b + n for w, b in zip(writers, base)) or
                           any(w.errors for w in writers),
                           what="every writer to make %d more writes" % n)
            for cycle in range(3):
                progressed(30)
                cl.cut(US, AP, mode="refuse" if cycle % 2 == 0 else "blackhole")
                progressed(30)
                cl.heal(US, AP)
            progressed(30)
        finally:
            for w in writers:
                w.stop.set()
            for w in writers:
                w.join(30)
        for w in writers:
            self.assertFalse(w.is_alive())
            self.assertEqual(w.errors[:3], [], "writes failed in %s" % w.region)
        acked = {}
        for w in writers:
            acked.update(w.acked)
        contents = cl.wait_converged(T, timeout=60)
        self.assert_acked_present(contents, acked)
