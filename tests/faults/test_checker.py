"""test_checker.py - the fault-run checker (checker.py) on synthetic histories:
a correct history passes, and each kind of violation it exists to find is
found (lost write, resurrection, value nobody wrote, divergence, causal
inversion, stale read after a write and after another read)."""

import unittest

from checker import FAIL, OK, UNKNOWN, Op, check, parse_version

R1, R2 = "r1", "r2"


class H:
    """A tiny history builder: times are explicit, ids sequential."""

    def __init__(self):
        self.ops = []

    def add(self, kind, region, key, value=None, outcome=OK, version=None, t0=0.0, t1=None,
            after=None, after_region=None):
        op = Op(len(self.ops) + 1, kind, region, key, value=value, outcome=outcome, version=version,
                after=after, after_region=after_region, t0=t0, t1=t1 if t1 is not None else t0 + 0.1)
        self.ops.append(op)
        return op


def final_all(recs, regions=(R1, R2)):
    return {r: dict(recs) for r in regions}


class CheckerTest(unittest.TestCase):
    def kinds(self, violations):
        return sorted(set(v.split(":")[0] for v in violations))

    def test_parse_version(self):
        self.assertEqual(parse_version("117658279251017728/us-east-1"), (117658279251017728, "us-east-1"))
        self.assertIsNone(parse_version(None))
        self.assertIsNone(parse_version(""))

    def test_correct_history_passes(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("read", R1, "a", "v1", version=(10, R1), t0=2)
        h.add("put", R2, "a", "v2", version=(12, R2), t0=3)
        h.add("chain", R1, "a", "v3", version=(15, R1), t0=4, after=(12, R2), after_region=R2)
        h.add("put", R2, "a", "v4", outcome=UNKNOWN, t0=5)  # never applied
        h.add("delete", R1, "b", version=(20, R1), t0=6)
        h.add("read", R1, "b", None, version=(20, R1), t0=7)
        h.add("cput", R2, "c", "v5", outcome=FAIL, t0=8)
        self.assertEqual(check(h.ops, final_all({"a": ("v3", (15, R1)), "b": (None, (20, R1)),
                                                   "c": (None, None)})), [])

    def test_unknown_write_may_win(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("put", R2, "a", "v2", outcome=UNKNOWN, t0=2)
        self.assertEqual(check(h.ops, final_all({"a": ("v2", (11, R2))})), [])

    def test_lost_acknowledged_write(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("put", R2, "a", "v2", version=(12, R2), t0=2)
        # Ends at the older version: v2 was acknowledged and is lost.
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v1", (10, R1))}))), ["lost"])

    def test_resurrected_delete(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("delete", R2, "a", version=(12, R2), t0=2)
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v1", (10, R1))}))), ["lost"])

    def test_collected_tombstone_is_fine_only_after_a_delete(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("delete", R2, "a", version=(12, R2), t0=2)
        self.assertEqual(check(h.ops, final_all({"a": (None, None)})), [])
        h2 = H()
        h2.add("delete", R2, "a", version=(12, R2), t0=1)
        h2.add("put", R1, "a", "v1", version=(14, R1), t0=2)
        self.assertEqual(self.kinds(check(h2.ops, final_all({"a": (None, None)}))), ["lost"])

    def test_collected_tombstone_after_an_unknown_delete(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("delete", R2, "a", outcome=UNKNOWN, t0=2)
        self.assertEqual(check(h.ops, final_all({"a": (None, None)})), [])

    def test_same_version_other_value(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("put", R2, "a", "v2", outcome=UNKNOWN, t0=2)
        self.assertIn("lost", self.kinds(check(h.ops, final_all({"a": ("v2", (10, R1))}))))

    def test_phantom_value(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("zz", (30, R1))}))), ["phantom"])

    def test_refused_write_must_not_appear(self):
        h = H()
        h.add("cput", R1, "a", "v1", outcome=FAIL, t0=1)
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v1", (30, R1))}))), ["phantom"])

    def test_phantom_read(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("read", R2, "a", "v9", version=(11, R2), t0=2)
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v1", (10, R1))}))), ["phantom"])

    def test_divergence(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1)
        h.add("put", R2, "a", "v2", version=(12, R2), t0=2)
        f = {R1: {"a": ("v2", (12, R2))}, R2: {"a": ("v2", (12, R2))}, "r3": {"a": ("v1", (10, R1))}}
        self.assertIn("converged", self.kinds(check(h.ops, f)))

    def test_absent_everywhere_is_converged_whatever_tombstones(self):
        h = H()
        h.add("delete", R1, "a", version=(10, R1), t0=1)
        f = {R1: {"a": (None, (10, R1))}, R2: {"a": (None, None)}}
        self.assertEqual(check(h.ops, f), [])

    def test_causal_chain_inversion(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(100, R1), t0=1)
        # Observed v1 at 100 in R1, then wrote in R2 at a lower version.
        h.add("chain", R2, "a", "v2", version=(90, R2), t0=2, after=(100, R1), after_region=R1)
        self.assertIn("causal", self.kinds(check(h.ops, final_all({"a": ("v1", (100, R1))}))))

    def test_blind_cross_region_write_is_not_judged_by_default(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(100, R1), t0=1)
        h.add("put", R2, "a", "v2", version=(90, R2), t0=2, after=(100, R1), after_region=R1)
        final = final_all({"a": ("v1", (100, R1))})
        self.assertEqual(check(h.ops, final), [])
        self.assertIn("causal", self.kinds(check(h.ops, final, causal_cross_region_blind=True)))

    def test_read_your_write(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1, t1=1.1)
        h.add("put", R1, "a", "v2", version=(20, R1), t0=2, t1=2.1)
        h.add("read", R1, "a", "v1", version=(10, R1), t0=3)  # after v2 was acknowledged
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v2", (20, R1))}))), ["read-your-write"])

    def test_read_absent_after_write(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1, t1=1.1)
        h.add("read", R1, "a", None, version=None, t0=3)
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v1", (10, R1))}))), ["read-your-write"])

    def test_concurrent_read_may_see_older(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1, t1=1.1)
        h.add("put", R1, "a", "v2", version=(20, R1), t0=2, t1=3.0)
        h.add("read", R1, "a", "v1", version=(10, R1), t0=2.5, t1=2.6)  # overlaps the write
        self.assertEqual(check(h.ops, final_all({"a": ("v2", (20, R1))})), [])

    def test_monotonic_reads(self):
        h = H()
        h.add("put", R2, "a", "v1", version=(10, R2), t0=1)
        h.add("put", R2, "a", "v2", version=(20, R2), t0=2)
        h.add("read", R1, "a", "v2", version=(20, R2), t0=3, t1=3.1)
        h.add("read", R1, "a", "v1", version=(10, R2), t0=4, t1=4.1)  # went back
        self.assertEqual(self.kinds(check(h.ops, final_all({"a": ("v2", (20, R2))}))), ["monotonic"])

    def test_other_region_reads_may_lag(self):
        h = H()
        h.add("put", R1, "a", "v1", version=(10, R1), t0=1, t1=1.1)
        h.add("read", R2, "a", None, version=None, t0=2)  # not replicated yet: fine
        self.assertEqual(check(h.ops, final_all({"a": ("v1", (10, R1))})), [])


if __name__ == "__main__":
    unittest.main()
