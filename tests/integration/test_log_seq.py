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

import json
import os
import shutil
import threading
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


def status(server):
    _, _, body = harness.operator_get(server, "/replication/status")
    return json.loads(body)


@harness.requires_meridian()
class DepartureTest(harness.TestCase):
    def test_concurrent_delete_table_leaves_no_hole(self):
        """Eight DeleteTable calls at once on one global table: one removes
        the replica, the others find no table, and no log seq is left
        reserved and unused at the top of the log (a hole there, trimmed and
        restarted over, used to make the peer skip later writes)."""
        cl = harness.Cluster(("us-east-1", "eu-west-1"), tag="ddlrace")
        try:
            cl.create_global_table(TABLE)
            cl.create_global_table("other")
            s = cl["us-east-1"]
            for attempt in range(3):
                name = "victim%d" % attempt
                cl.create_global_table(name)
                results = []

                def delete():
                    try:
                        cl.client("us-east-1").delete_table(TableName=name)
                        results.append("ok")
                    except Exception as ex:  # noqa: BLE001 - the error code is the result
                        results.append(harness.err_code(ex))

                threads = [threading.Thread(target=delete) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                self.assertEqual(sorted(results),
                                 ["ResourceNotFoundException"] * 7 + ["ok"], results)
                st = status(s)
                if "log_high" in st:  # (a binary without it still gets the restart below)
                    # The newest seq used is the newest entry, on disk or
                    # trimmed (peers acknowledge only entries that exist).
                    self.assertEqual(st["log_high"], max(st["log_last"], st["log_first"] - 1), st)
            cl.kill9("us-east-1")
            cl.restart("us-east-1")
            a = cl.client("us-east-1")
            for i in range(10):
                a.put_item(TableName="other", Item={"pk": S("w%d" % i), "v": S(str(i))})
            for i in range(10):
                cl.wait_item("eu-west-1", "other", pk_key("w%d" % i),
                             {"pk": S("w%d" % i), "v": S(str(i))})
        finally:
            cl.stop()

    def test_departed_writes_outlive_retention(self):
        """A region removes its replica while a peer has not received its
        latest writes, and keeps at most 1 byte of log: retention must not
        drop those writes (no back-fill from here can carry them any more);
        once the peer is back it has every one."""
        cl = harness.Cluster(("us-east-1", "eu-west-1"), proxied=True, tag="departret",
                             extra_args={"us-east-1": ["--log-retention-bytes", "1"]})
        try:
            cl.create_global_table(TABLE)
            a = cl.client("us-east-1")
            cl.cut("us-east-1", "eu-west-1")
            for i in range(10):
                a.put_item(TableName=TABLE, Item={"pk": S("d%d" % i), "v": S(str(i))})
            a.delete_table(TableName=TABLE)  # this region's replica departs
            s = cl["us-east-1"]
            if metric_or_none(cl, "us-east-1", "meridian_background_runs_total") is None:
                import time
                time.sleep(12)  # a binary without the metric: two collection periods
            else:
                wait_until(lambda: "retention held" in s.log_text(), 30,
                           what="retention to be held for the departed table's writes")
                runs = metric_value(cl.metrics("us-east-1")[0], "meridian_background_runs_total",
                                    task="log")
                wait_until(lambda: metric_value(cl.metrics("us-east-1")[0],
                                                "meridian_background_runs_total",
                                                task="log") >= runs + 2,
                           30, what="two further log collection passes")
            cl.heal_all()
            for i in range(10):
                cl.wait_item("eu-west-1", TABLE, pk_key("d%d" % i),
                             {"pk": S("d%d" % i), "v": S(str(i))}, timeout=60)
            # Once eu-west-1 has them, the log may go.
            wait_until(lambda: status(s)["log_first"] > status(s)["log_position"] - 1, 30,
                       what="the log to be collected afterwards")
        finally:
            cl.stop()


if __name__ == "__main__":
    unittest.main()
