"""test_skew_bound.py - a region whose clock is an hour ahead cannot take
over last-writer-wins in the others (issue 11, defect 2).

ap-south-1's clock runs an hour ahead; us-east-1 allows the default 60 s of
skew. us-east-1 overwrites an item that ap-south-1 wrote: that one write is
stamped just above the version it replaces (it must order after it, or the
regions would never agree), and is counted. But us-east-1's clock stays
within its wall clock + the skew bound: its writes to other keys, before and
after a restart, carry versions near its own wall clock. Before the fix the
overwrite dragged the clock (and its persisted bound) an hour ahead, for
every later write, also after a restart.
"""

import time
import unittest

import harness
from harness import S, metric_value, pk_key

US, AP = "us-east-1", "ap-south-1"
TABLE = "skew_bound"
HOUR_MS = 3600 * 1000
MAX_SKEW_MS = 60000
# The persisted clock bound runs up to a second ahead of the clock, and
# requests take time: slack for "near the wall clock".
SLACK_MS = 5000


def version_of(resp):
    ts, _, origin = resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-version"].partition("/")
    return int(ts), origin


@harness.requires_meridian("clock offsets need meridian processes")
class SkewBoundTest(harness.TestCase):
    def check_near_wall(self, c, key, what):
        t0 = time.time()
        ts, origin = version_of(c.put_item(TableName=TABLE, Item={"pk": S(key), "v": S(what)}))
        self.assertEqual(origin, US)
        ahead_ms = (ts >> 16) - int(t0 * 1000)
        self.assertLessEqual(ahead_ms, MAX_SKEW_MS + SLACK_MS,
                             "%s: us-east-1 stamped a write %d ms ahead of its wall clock"
                             % (what, ahead_ms))

    def test_overwrite_of_a_runaway_version_keeps_the_clock(self):
        cl = harness.Cluster((US, AP), tag="skewbound",
                             extra_args={AP: ["--clock-offset-ms", str(HOUR_MS)]})
        try:
            cl.create_global_table(TABLE, regions=[US, AP], origin=US)
            ap, us = cl.client(AP), cl.client(US)
            remote_ts, _ = version_of(ap.put_item(TableName=TABLE,
                                                  Item={"pk": S("k"), "v": S("from-ap")}))
            cl.wait_item(US, TABLE, pk_key("k"), {"pk": S("k"), "v": S("from-ap")})
            ts, origin = version_of(us.put_item(TableName=TABLE,
                                                Item={"pk": S("k"), "v": S("from-us")}))
            self.assertEqual((ts, origin), (remote_ts + 1, US))  # ordered just after it
            cl.wait_item(AP, TABLE, pk_key("k"), {"pk": S("k"), "v": S("from-us")})
            samples, _ = cl.metrics(US)
            if "meridian_clock_skew_overwrites_total" in {n for n, _, _ in samples}:
                self.assertEqual(metric_value(samples, "meridian_clock_skew_overwrites_total"), 1)
            self.check_near_wall(us, "other", "a write to another key")
            cl.restart(US)
            self.check_near_wall(cl.client(US), "other2", "a write after a restart")
            self.assertEqual(len(cl.wait_converged(TABLE)), 3)
        finally:
            cl.stop()


if __name__ == "__main__":
    unittest.main()
