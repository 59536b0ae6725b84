"""test_disk.py - a full disk and a slow disk, seen by clients, by peers and
by the operator (issue 5).

The disk of one region is made full (every write and fsync under its data
directory fails with ENOSPC) or slow by libmeridian_diskfault.so, preloaded
into that process (tests/faults/diskfault.c). While its disk is full the
region keeps serving reads, refuses writes with InternalServerError, says so
once in its log, shows meridian_disk_full 1, and keeps what other regions
write pending at their side; when space returns it writes again, logs it,
and catches up. Nothing acknowledged is lost, across a kill -9 too.
Also: the x-meridian-version header of single-item operations.
"""

import os
import unittest

import harness
from harness import S, get_pk, metric_value, pk_key, wait_until
from botocore.exceptions import ClientError

TABLE = "disk_faults"


@harness.requires_meridian()
class DiskFaultTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        lib = harness.diskfault_library()
        if lib is None:
            raise unittest.SkipTest("libmeridian_diskfault.so not built")
        cls.cl = harness.Cluster(("us-east-1", "eu-west-1"), tag="disk", start=False)
        s = cls.cl["eu-west-1"]
        cls.disk = harness.DiskFault(os.path.join(cls.cl.root, "diskfault"), s.data_dir + "/")
        asan = os.environ.get("ASAN_OPTIONS", "")
        s.env = {"LD_PRELOAD": lib, "MERIDIAN_DISKFAULT": cls.disk.path,
                 "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
        cls.cl.start()
        cls.cl.create_global_table(TABLE)

    @classmethod
    def tearDownClass(cls):
        cls.disk.set()
        cls.cl.stop()

    def tearDown(self):
        self.disk.set()

    def test_full_disk(self):
        a, b = self.cl.client("us-east-1"), self.cl.client("eu-west-1")
        b.put_item(TableName=TABLE, Item={"pk": S("before"), "v": S("1")})
        self.cl.wait_item("us-east-1", TABLE, pk_key("before"), {"pk": S("before"), "v": S("1")})

        self.disk.set(enospc=1)
        with self.assertRaises(ClientError) as cm:
            b.put_item(TableName=TABLE, Item={"pk": S("during"), "v": S("x")})
        self.assertEqual(cm.exception.response["Error"]["Code"], "InternalServerError")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        # Reads are still served; the refused write is not there.
        self.assertEqual(get_pk(b, TABLE, "before")["v"], S("1"))
        self.assertIsNone(get_pk(b, TABLE, "during"))
        m = self.cl.metrics("eu-west-1")[0]
        self.assertEqual(metric_value(m, "meridian_disk_full"), 1)
        self.assertGreater(metric_value(m, "meridian_storage_write_errors_total"), 0)
        wait_until(lambda: "disk full: writes to" in self.cl["eu-west-1"].log_text(), 10,
                   what="the disk-full log line")

        # The other region goes on acknowledging writes; they wait for eu-west-1.
        for i in range(20):
            a.put_item(TableName=TABLE, Item={"pk": S("a%d" % i), "v": S(str(i))})
        wait_until(lambda: metric_value(self.cl.metrics("us-east-1")[0],
                                        "meridian_replication_pending_entries", peer="eu-west-1") > 0,
                   10, what="writes pending for eu-west-1")
        self.assertIsNone(get_pk(b, TABLE, "a19"))
        self.assertTrue(self.cl["eu-west-1"].running())

        # Space again: writes succeed, the log says so, replication catches up.
        self.disk.set()
        wait_until(lambda: self._put_ok(b, "after"), 30, what="a write to succeed again in eu-west-1")
        wait_until(lambda: "succeed again after" in self.cl["eu-west-1"].log_text(), 10,
                   what="the recovery log line")
        self.assertEqual(metric_value(self.cl.metrics("eu-west-1")[0], "meridian_disk_full"), 0)
        for i in range(20):
            self.cl.wait_item("eu-west-1", TABLE, pk_key("a%d" % i), {"pk": S("a%d" % i), "v": S(str(i))})
        contents = self.cl.wait_converged(TABLE)
        self.assertEqual(len(contents), 22)

        # Everything acknowledged survives kill -9 of the region that was full.
        self.cl.kill9("eu-west-1")
        self.cl.start()
        self.assertEqual(self.cl.wait_converged(TABLE), contents)

    def _put_ok(self, c, pk):
        try:
            c.put_item(TableName=TABLE, Item={"pk": S(pk), "v": S("2")})
            return True
        except ClientError:
            return False

    def test_slow_disk(self):
        b = self.cl.client("eu-west-1")
        # (After a full disk, RocksDB takes a few seconds to resume writing.)
        wait_until(lambda: self._put_ok(b, "slow"), 30, what="writes to succeed in eu-west-1")
        self.disk.set(write_delay_us=2000, sync_delay_us=100000)
        harness.run_threads([lambda i=i: b.put_item(TableName=TABLE, Item={"pk": S("slow%d" % i)})
                             for i in range(8)])
        self.disk.set()
        for i in range(8):
            self.cl.wait_item("us-east-1", TABLE, pk_key("slow%d" % i), {"pk": S("slow%d" % i)})
        self.assertEqual(metric_value(self.cl.metrics("eu-west-1")[0], "meridian_disk_full"), 0)


@harness.requires_meridian()
class VersionHeaderTest(harness.TestCase):
    """x-meridian-version: "<HLC timestamp>/<origin region>" of the version a
    single-item write stored or a GetItem found (a tombstone's included)."""

    @classmethod
    def setUpClass(cls):
        cls.cl = harness.Cluster(("us-east-1", "eu-west-1"), tag="versions")
        cls.cl.create_global_table("versions")

    @classmethod
    def tearDownClass(cls):
        cls.cl.stop()

    @staticmethod
    def version(resp):
        h = resp["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version")
        if h is None:
            return None
        ts, origin = h.split("/", 1)
        return int(ts), origin

    def test_versions(self):
        a, b = self.cl.client("us-east-1"), self.cl.client("eu-west-1")
        t = "versions"
        self.assertIsNone(self.version(a.get_item(TableName=t, Key=pk_key("k"))))
        v1 = self.version(a.put_item(TableName=t, Item={"pk": S("k"), "n": S("1")}))
        self.assertEqual(v1[1], "us-east-1")
        self.assertEqual(self.version(a.get_item(TableName=t, Key=pk_key("k"))), v1)
        self.cl.wait_item("eu-west-1", t, pk_key("k"), {"pk": S("k"), "n": S("1")})
        self.assertEqual(self.version(b.get_item(TableName=t, Key=pk_key("k"))), v1)
        # A write in the other region after seeing v1 orders after it.
        v2 = self.version(b.update_item(TableName=t, Key=pk_key("k"), UpdateExpression="SET n = :n",
                                        ExpressionAttributeValues={":n": S("2")}))
        self.assertGreater(v2, v1)
        self.assertEqual(v2[1], "eu-west-1")
        v3 = self.version(b.delete_item(TableName=t, Key=pk_key("k")))
        self.assertGreater(v3, v2)
        # The tombstone's version is reported where the item is gone.
        self.assertEqual(self.version(b.get_item(TableName=t, Key=pk_key("k"))), v3)
        # A refused write has none.
        with self.assertRaises(ClientError) as cm:
            b.put_item(TableName=t, Item={"pk": S("k")}, ConditionExpression="attribute_exists(pk)")
        self.assertNotIn("x-meridian-version", cm.exception.response["ResponseMetadata"]["HTTPHeaders"])


if __name__ == "__main__":
    unittest.main()
