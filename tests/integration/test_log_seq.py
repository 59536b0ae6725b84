"""test_log_seq.py - the replication log never reuses a sequence number a
peer may have recorded as applied (issue 11, defect 1).

A region's log entries are numbered; a peer records the newest number it
has applied and, after a reconnect, asks for what follows. If the log were
trimmed empty while its newest reservations were holes (writes that failed:
a full disk), and the region restarted, it used to start numbering again
after the last entry left on disk, below the peer's recorded position: the
peer then skipped the new writes as already applied, silently. Now the trim
persists the log's mark in the same batch, so the log continues above it,
and a peer position beyond the log's end (a data directory restored from an
older copy) is logged, counted and repaired by re-seeding, never skipped.
"""

import os
import shutil
import unittest

import harness
from harness import S, metric_value, pk_key, wait_until

TABLE = "log_seq"


def metric_or_none(cl, region, name, **labels):
    """The metric's value, None if the region does not export it at all."""
    samples, types = cl.metrics(region)
    if name not in types:
        return None
    return metric_value(samples, name, **labels)


@harness.requires_meridian()
class LogSeqTest(harness.TestCase):
    def _put_all(self, c, prefix, n):
        for i in range(n):
            c.put_item(TableName=TABLE, Item={"pk": S("%s%d" % (prefix, i)), "v": S(str(i))})

    def _wait_all(self, cl, region, prefix, n, timeout=30.0):
        for i in range(n):
            cl.wait_item(region, TABLE, pk_key("%s%d" % (prefix, i)),
                         {"pk": S("%s%d" % (prefix, i)), "v": S(str(i))}, timeout=timeout)

    def _wait_trimmed(self, cl, region, seq):
        """Until the region's log is trimmed through seq (every peer applied
        it). A binary without the metric gets the collector's period."""
        if metric_or_none(cl, region, "meridian_replication_log_trimmed_seq") is None:
            import time
            time.sleep(12)
            return
        wait_until(lambda: metric_or_none(cl, region, "meridian_replication_log_trimmed_seq")
                   >= seq, 30, what="the log of %s trimmed through %d" % (region, seq))

    def test_failed_writes_at_the_top_then_restart(self):
        lib = harness.diskfault_library()
        if lib is None:
            raise unittest.SkipTest("libmeridian_diskfault.so not built")
        cl = harness.Cluster(("us-east-1", "eu-west-1"), tag="logseq", start=False)
        try:
            s = cl["us-east-1"]
            disk = harness.DiskFault(os.path.join(cl.root, "diskfault"), s.data_dir + "/")
            asan = os.environ.get("ASAN_OPTIONS", "")
            s.env = {"LD_PRELOAD": lib, "MERIDIAN_DISKFAULT": disk.path,
                     "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
            cl.start()
            cl.create_global_table(TABLE)
            a = cl.client("us-east-1")
            self._put_all(a, "before", 20)
            self._wait_all(cl, "eu-west-1", "before", 20)
            # Writes that fail at the top of the log leave holes there.
            disk.set(enospc=1)
            for i in range(3):
                with self.assertRaises(Exception):
                    a.put_item(TableName=TABLE, Item={"pk": S("failed%d" % i), "v": S("x")})
            disk.set()
            # The peer has applied everything that exists: the log is trimmed
            # through the last entry, below the holes.
            self._wait_trimmed(cl, "us-east-1", 20)
            cl.kill9("us-east-1")
            cl.restart("us-east-1")
            a = cl.client("us-east-1")
            self._put_all(a, "after", 10)
            self._wait_all(cl, "eu-west-1", "after", 10)
            for i in range(3):
                self.assertIsNone(
                    cl.client("eu-west-1").get_item(TableName=TABLE,
                                                    Key=pk_key("failed%d" % i)).get("Item"))
        finally:
            cl.stop()

    def test_peer_position_beyond_the_log_is_repaired(self):
        """A region restarted on an older copy of its data directory: the
        peer has applied more of its log than the copy holds."""
        cl = harness.Cluster(("us-east-1", "eu-west-1"), tag="logahead")
        try:
            cl.create_global_table(TABLE)
            a = cl.client("us-east-1")
            self._put_all(a, "old", 5)
            self._wait_all(cl, "eu-west-1", "old", 5)
            s = cl["us-east-1"]
            s.stop()
            copy = os.path.join(cl.root, "us-east-1-copy")
            shutil.copytree(s.data_dir, copy)
            cl.restart("us-east-1")
            a = cl.client("us-east-1")
            self._put_all(a, "lost", 30)  # the peer applies these; the copy lacks them
            self._wait_all(cl, "eu-west-1", "lost", 30)
            s.stop()
            shutil.rmtree(s.data_dir)
            shutil.copytree(copy, s.data_dir)
            cl.restart("us-east-1")
            a = cl.client("us-east-1")
            self._put_all(a, "new", 10)
            self._wait_all(cl, "eu-west-1", "new", 10)
            wait_until(lambda: metric_or_none(cl, "us-east-1",
                                              "meridian_replication_position_ahead_total",
                                              peer="eu-west-1") == 1,
                       30, what="the inconsistency counted")
            self.assertIn("beyond its end", s.log_text())
        finally:
            cl.stop()


if __name__ == "__main__":
    unittest.main()
