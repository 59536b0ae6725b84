"""Collection of tombstones in global tables (`--tombstone-grace-ms`).

A delete in a global table leaves a tombstone so that an older write arriving
later cannot resurrect the item. A region collects a tombstone once every
region has applied every write up to the tombstone's version (known through
replication heartbeats, about once a second) and the grace period has passed:
version time + grace <= meridian_replication_global_frontier_ms. While a peer
is unreachable the global frontier stops, so nothing newer is collected.

Each test class runs its own three-region harness.Cluster:

- TombstoneCollectionTest (grace 500 ms): items put and deleted from every
  region; once converged, every region's meridian_tombstones gauge for the
  table drops to 0 and meridian_tombstones_collected_total counts at least
  the region's own deletes; the global frontier has passed the last delete
  + grace; deleted keys are absent everywhere, the others identical; a
  collected key can be written again; `meridian verify` reports identical
  contents with no records left beyond the live items.
- RegionAwayTest (proxied, grace 500 ms, ap-south-1's clock 20 s behind):
  with ap-south-1 cut off, a delete in us-east-1 keeps its tombstone in
  us-east-1 and eu-west-1 well beyond grace + heartbeat interval and their
  global frontier stays below the delete time; ap-south-1, still cut off,
  writes the key again with an older version (its clock is behind); after
  the heal the delete wins everywhere (no resurrection), and then the
  tombstones are collected everywhere.
- TombstoneRestartTest (default grace, a day): the tombstone gauge of a
  region killed with kill -9 and restarted reports the same count as
  before (it is recomputed at start-up) and keeps counting from there.

Every wait polls with a deadline; nothing asserts on speed.
"""

import os
import subprocess
import time
import unittest

import harness
from harness import Cluster, canonical_item, item_json, requires_meridian, table_contents, wait_until

NAMES = harness.REGIONS3
US, EU, AP = NAMES
ACCOUNT = harness.KEY1[2]  # the account of the credentials every Cluster client uses

GRACE_MS = 500
COLLECT_TIMEOUT = 60.0

M_TOMBSTONES = "meridian_tombstones"
M_COLLECTED = "meridian_tombstones_collected_total"
M_APPLIED = "meridian_replication_applied_frontier_ms"
M_GLOBAL = "meridian_replication_global_frontier_ms"


S, N, key, get = harness.S, harness.N, harness.pk_key, harness.get_pk


def now_ms():
    """The wall clock in ms (the scale of versions and frontiers of a region
    without --clock-offset-ms)."""
    return int(time.time() * 1000)


def grace_args(ms=GRACE_MS):
    return ["--tombstone-grace-ms", str(ms)]


# -- /metrics ----------------------------------------------------------------

def tombstones(cluster, region, table):
    """meridian_tombstones{account,table} of region (0 when the series is absent)."""
    samples, _ = cluster.metrics(region)
    return harness.metric_value(samples, M_TOMBSTONES, account=ACCOUNT, table=table)


def single_value(samples, name, region):
    """The value of the one (unlabelled) sample of `name`; fails if absent."""
    found = harness.metric_samples(samples, name)
    if len(found) != 1:
        raise AssertionError("expected one sample of %s in %s, found %r" % (name, region, found))
    return found[0][2]


def scalar(cluster, region, name):
    samples, _ = cluster.metrics(region)
    return single_value(samples, name, region)


link_up = harness.link_up


def wait_collected(cluster, table, regions=NAMES, timeout=COLLECT_TIMEOUT):
    """Polls every region until its tombstone gauge for table is 0."""
    for r in regions:
        wait_until(lambda: tombstones(cluster, r, table) == 0, timeout,
                   what=lambda: "meridian_tombstones of %s to drop to 0 in %s (now %s; %s %s, %s %s)" % (
                       table, r, tombstones(cluster, r, table), M_GLOBAL, scalar(cluster, r, M_GLOBAL),
                       "wall clock", now_ms()))


# -- meridian verify -----------------------------------------------------------

def run_verify(cluster, table):
    """`meridian verify --table T --endpoint ...` over every region: (rc, stdout, stderr)."""
    srv = cluster[cluster.names[0]]
    env = dict(os.environ)
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = srv.credentials[0][0], srv.credentials[0][1]
    cmd = [harness.meridian_bin(), "verify", "--table", table]
    for n in cluster.names:
        cmd += ["--endpoint", cluster[n].endpoint]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def assert_verify_identical(test, cluster, table, items):
    """`meridian verify` reports the table identical in every region, with
    exactly `items` records in each (its count includes tombstones: none may
    be left)."""
    last = []

    def identical():
        last[:] = run_verify(cluster, table)
        return last[0] == 0

    wait_until(identical, 30, what=lambda: "meridian verify to report %s identical: %r" % (table, last))
    rc, out, err = last
    test.assertIn("identical in %d regions" % len(cluster.names), out, out + err)
    for r in cluster.names:
        test.assertIn("%s: %d items" % (r, items), out, out + err)


@requires_meridian("tombstone collection needs meridian processes")
class TombstoneCollectionTest(harness.TestCase):
    """Three regions, --tombstone-grace-ms 500: tombstones are collected everywhere."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag="tomb-collect", extra_args=grace_args())

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_tombstones_are_collected_everywhere(self):
        T = "tomb_collect"
        cl = self.cluster
        c = {r: cl.client(r) for r in NAMES}
        cl.create_global_table(T)

        items = {}
        for i in range(40):
            pk = "k%02d" % i
            item = {"pk": S(pk), "v": S("put-in-%s" % NAMES[i % 3]), "n": N(i)}
            c[NAMES[i % 3]].put_item(TableName=T, Item=item)
            items[pk] = item
        # Every region has seen every put before the deletes, so each delete
        # is causally after the put it removes (and wins in every region).
        self.assertEqual(len(cl.wait_converged(T)), 40)

        # 25 deletes, spread over the key space and over the three regions
        # (also in regions other than the one that made the put).
        doomed = [pk for i, pk in enumerate(sorted(items)) if i % 8 not in (1, 4, 6)][:25]
        self.assertEqual(len(doomed), 25)
        own_deletes = {r: 0 for r in NAMES}
        last_delete_start = 0
        for j, pk in enumerate(doomed):
            r = NAMES[j % 3]
            last_delete_start = now_ms()
            c[r].delete_item(TableName=T, Key=key(pk))
            own_deletes[r] += 1
            self.assertIsNone(get(c[r], T, pk), "own delete of %s not visible at once in %s" % (pk, r))
        survivors = {pk: item for pk, item in items.items() if pk not in doomed}
        expected = sorted((canonical_item(i) for i in survivors.values()), key=item_json)
        self.assertEqual(cl.wait_converged(T), expected)

        # Collected in every region.
        wait_collected(cl, T)
        for r in NAMES:
            samples, types = cl.metrics(r)
            self.assertEqual(types.get(M_TOMBSTONES), "gauge", r)
            self.assertEqual(types.get(M_COLLECTED), "counter", r)
            self.assertEqual(harness.metric_value(samples, M_TOMBSTONES, account=ACCOUNT, table=T), 0, r)
            collected = single_value(samples, M_COLLECTED, r)
            self.assertGreater(collected, 0, "%s in %s" % (M_COLLECTED, r))
            # A region's own deletes were stored as tombstones (a new version
            # is above every frontier) and the gauge is 0 now: each of them
            # was collected.
            self.assertGreaterEqual(collected, own_deletes[r], "%s in %s" % (M_COLLECTED, r))
            # Nothing was collected early: the frontier has passed the last
            # delete's version time + grace (a version is at least the wall
            # clock at the time of its request).
            glob = single_value(samples, M_GLOBAL, r)
            self.assertGreaterEqual(glob, last_delete_start + GRACE_MS,
                                    "%s in %s vs the last delete" % (M_GLOBAL, r))
            self.assertGreater(single_value(samples, M_APPLIED, r), 0, "%s in %s" % (M_APPLIED, r))

        # Deleted keys absent everywhere, the others present and identical.
        for r in NAMES:
            self.assertEqual(table_contents(c[r], T), expected, "contents of %s after collection" % r)
            for pk in doomed[:5]:
                self.assertIsNone(get(c[r], T, pk), "%s came back in %s" % (pk, r))
        assert_verify_identical(self, cl, T, len(survivors))

        # A collected key can be written again, and the write reaches everyone.
        again = {"pk": S(doomed[0]), "v": S("again-in-%s" % AP)}
        c[AP].put_item(TableName=T, Item=again)
        for r in NAMES:
            cl.wait_item(r, T, key(doomed[0]), again)
        expected = sorted(expected + [canonical_item(again)], key=item_json)
        self.assertEqual(cl.wait_converged(T), expected)
        assert_verify_identical(self, cl, T, len(survivors) + 1)


@requires_meridian("partitions and clock offsets need meridian processes")
class RegionAwayTest(harness.TestCase):
    """Proxied cluster, --tombstone-grace-ms 500 everywhere; ap-south-1 runs
    its wall clock 20 s behind (--clock-offset-ms -20000)."""

    LAGGING = AP
    OFFSET_MS = -20000

    @classmethod
    def setUpClass(cls):
        args = {r: grace_args() for r in NAMES}
        args[cls.LAGGING] = args[cls.LAGGING] + ["--clock-offset-ms", str(cls.OFFSET_MS)]
        cls.cluster = Cluster(NAMES, proxied=True, tag="tomb-away", extra_args=args)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def tearDown(self):
        self.cluster.heal_all()

    def test_no_collection_while_a_region_is_away_and_no_resurrection(self):
        T = "tomb_away"
        A, B, C = US, EU, self.LAGGING
        cl = self.cluster
        c = {r: cl.client(r) for r in NAMES}
        cl.create_global_table(T)
        K = "K"
        k_item = {"pk": S(K), "v": S("original")}
        c[A].put_item(TableName=T, Item=k_item)
        for i in range(5):
            c[B].put_item(TableName=T, Item={"pk": S("other-%d" % i), "v": N(i)})
        self.assertEqual(len(cl.wait_converged(T)), 6)
        for r in NAMES:
            cl.wait_item(r, T, key(K), k_item)
        # The frontier machinery is running before the cut: every region
        # knows a global frontier (0 = unknown).
        for r in NAMES:
            wait_until(lambda: scalar(cl, r, M_GLOBAL) > 0, 30, what="%s known in %s" % (M_GLOBAL, r))

        cl.isolate(C)
        for r, peer in [(A, C), (B, C), (C, A), (C, B)]:
            wait_until(lambda: link_up(cl, r, peer) == 0, 30,
                       what="link_up{peer=%s} 0 in %s during the cut" % (peer, r))
        # Whatever C observed before the cut is now in the past of A's
        # clock, so A's delete carries a version above anything C can issue
        # while cut off (C's own clock is 20 s behind).
        time.sleep(1.0)
        delete_start = now_ms()  # A's delete version time is at least this
        c[A].delete_item(TableName=T, Key=key(K))
        self.assertIsNone(get(c[A], T, K), "own delete not visible at once in %s" % A)
        cl.wait_item(B, T, key(K), None)

        # Well beyond grace + heartbeat interval: A and B keep the tombstone,
        # and their global frontier stays below the delete (C has not
        # confirmed anything since the cut).
        end = time.monotonic() + 5.0
        checks = 0
        while True:
            for r in (A, B):
                self.assertGreaterEqual(tombstones(cl, r, T), 1,
                                        "tombstone of %s collected in %s while %s is away" % (K, r, C))
                glob = scalar(cl, r, M_GLOBAL)
                self.assertLess(glob, delete_start,
                                "%s in %s passed the delete time while %s is away" % (M_GLOBAL, r, C))
            checks += 1
            if time.monotonic() >= end:
                break
            time.sleep(0.5)
        self.assertGreaterEqual(checks, 2)

        # Still cut off, C writes K again: its clock is behind, so its write
        # carries an older version than A's delete and must lose.
        resurrect = {"pk": S(K), "v": S("written-in-%s-while-away" % C)}
        c[C].put_item(TableName=T, Item=resurrect)
        self.assertEqual(canonical_item(get(c[C], T, K)), canonical_item(resurrect),
                         "read-your-writes in %s" % C)
        for r in (A, B):
            self.assertIsNone(get(c[r], T, K), "%s's write crossed the cut to %s" % (C, r))
            self.assertGreaterEqual(tombstones(cl, r, T), 1, r)

        cl.heal_all()
        contents = cl.wait_converged(T, timeout=60)
        self.assertNotIn(K, {i["pk"]["S"] for i in contents}, "the deleted item came back")
        self.assertEqual(len(contents), 5)
        for r in NAMES:
            self.assertIsNone(get(c[r], T, K), "%s resurrected in %s" % (K, r))

        # Then the tombstones are collected everywhere. (If C's frontier
        # follows its own lagging clock this can take until ~20 s after the
        # delete.)
        wait_collected(cl, T)
        for r in NAMES:
            self.assertGreater(scalar(cl, r, M_COLLECTED), 0, "%s in %s" % (M_COLLECTED, r))
            self.assertIsNone(get(c[r], T, K), "%s came back in %s after collection" % (K, r))
        final = cl.wait_converged(T)
        self.assertEqual(final, contents)
        assert_verify_identical(self, cl, T, 5)


@requires_meridian("kill -9 and restarts need meridian processes")
class TombstoneRestartTest(harness.TestCase):
    """Three regions with the default grace (a day): nothing is collected
    during the test, and the gauge survives a kill -9 and restart."""

    T = "tomb_restart"

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(NAMES, tag="tomb-restart")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def wait_gauge(self, want, regions=NAMES, timeout=30.0):
        cl = self.cluster
        for r in regions:
            wait_until(lambda: tombstones(cl, r, self.T) == want, timeout,
                       what=lambda: "meridian_tombstones of %s to be %d in %s (now %s)"
                       % (self.T, want, r, tombstones(cl, r, self.T)))

    def assert_gauge_stays(self, want, regions=NAMES, seconds=2.0):
        end = time.monotonic() + seconds
        while True:
            for r in regions:
                self.assertEqual(tombstones(self.cluster, r, self.T), want, "meridian_tombstones in %s" % r)
            if time.monotonic() >= end:
                break
            time.sleep(0.5)

    def test_gauge_survives_kill9_and_restart(self):
        T = self.T
        cl = self.cluster
        victim = AP
        c = {r: cl.client(r) for r in NAMES}
        cl.create_global_table(T)
        for i in range(30):
            c[NAMES[i % 3]].put_item(TableName=T, Item={"pk": S("r%02d" % i), "v": N(i)})
        self.assertEqual(len(cl.wait_converged(T)), 30)

        doomed = ["r%02d" % i for i in range(0, 30, 2)]  # 15 keys
        for j, pk in enumerate(doomed):
            c[NAMES[j % 3]].delete_item(TableName=T, Key=key(pk))
        contents = cl.wait_converged(T)
        self.assertEqual(len(contents), 15)
        # A key deleted again still has one tombstone; a deleted key written
        # again has none.
        for r in NAMES:
            cl.wait_item(r, T, key(doomed[0]), None)
        c[victim].delete_item(TableName=T, Key=key(doomed[0]))
        reborn = {"pk": S(doomed[1]), "v": S("reborn")}
        c[US].put_item(TableName=T, Item=reborn)
        for r in NAMES:
            cl.wait_item(r, T, key(doomed[1]), reborn)
        want = len(doomed) - 1
        self.assertEqual(len(cl.wait_converged(T)), 16)
        self.wait_gauge(want)
        self.assert_gauge_stays(want)

        self.assertEqual(cl.kill9(victim), -9)
        cl.restart(victim)
        # Recomputed at start-up: the same count as before, and never more
        # on the way (nothing is counted twice).
        seen = []

        def same_count():
            seen.append(tombstones(cl, victim, T))
            return seen[-1] == want

        wait_until(same_count, 15, what=lambda: "meridian_tombstones of %s in %s after the restart to be %d "
                   "(seen %s)" % (T, victim, want, seen[-10:]))
        self.assertEqual([v for v in seen if v > want], [], "gauge values seen after the restart")
        self.assert_gauge_stays(want)

        # It keeps counting from there: a delete in the restarted region and
        # one that reaches it from another region.
        c = {r: cl.client(r) for r in NAMES}
        c[victim].delete_item(TableName=T, Key=key("r01"))
        c[EU].delete_item(TableName=T, Key=key("r03"))
        for r in NAMES:
            for pk in ("r01", "r03"):
                cl.wait_item(r, T, key(pk), None)
        self.assertEqual(len(cl.wait_converged(T)), 14)
        self.wait_gauge(want + 2)
        self.assert_gauge_stays(want + 2)
        # A clean restart (SIGTERM) keeps the count as well.
        cl.restart(victim)
        self.wait_gauge(want + 2, regions=(victim,), timeout=15)
        self.assert_gauge_stays(want + 2)


if __name__ == "__main__":
    unittest.main()
