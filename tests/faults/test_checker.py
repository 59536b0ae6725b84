"""test_checker.py - the fault-run checker (checker.py) on synthetic histories:
a correct history passes, and each kind of violation it exists to find is
found (lost write, resurrection, value nobody wrote, divergence, causal
inversion, stale read after a write and after another read, a version beyond
its region's clock bound); and what is legitimate by design is not (a write
one above the version it replaced from a region that was ahead, a write on
another key below a version observed beyond the skew bound)."""

import unittest

from checker import FAIL, OK, UNKNOWN, Clocks, Op, check, parse_version

R1, R2 = "r1", "r2"


class H:
    """A tiny history builder: times are explicit, ids sequential."""

    def __init__(self):
        self.ops = []

    def add(self, kind, region, key, value=None, outcome=OK, version=None, t0=0.0, t1=None,
            after=None, after_region=None, **kw):
        op = Op(len(self.ops) + 1, kind, region, key, value=value, outcome=outcome, version=version,
                after=after, after_region=after_region, t0=t0, t1=t1 if t1 is not None else t0 + 0.1,
                **kw)
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


# -- clocks: the skew bound and causality across keys -------------------------

T0 = 1_800_000_000.0  # a wall-clock time (s) the synthetic histories start at
HOUR = 3_600_000


def ts_at(wall_s, ahead_ms=0, logical=0):
    """An HLC timestamp stamped at wall-clock time wall_s (+ ahead_ms)."""
    return ((int(wall_s * 1000) + ahead_ms) << 16) | logical


class SkewTest(unittest.TestCase):
    def kinds(self, violations):
        return sorted(set(v.split(":")[0] for v in violations))

    def clocks(self, **timeline):
        """R1 and R2 at offset 0 from T0 unless given: r1=[(t, offset), ...]."""
        tl = {R1: [(T0, 0)], R2: [(T0, 0)]}
        tl.update({k: v for k, v in timeline.items()})
        return Clocks(tl)

    def w(self, h, kind, region, key, value, at, ahead_ms=0, logical=0, **kw):
        """A write acknowledged at wall time at, stamped ahead_ms past it."""
        return h.add(kind, region, key, value, version=(ts_at(at, ahead_ms, logical), region),
                     t0=at - T0, w0=at - 0.05, w1=at, **kw)

    def test_within_bound_passes(self):
        h = H()
        self.w(h, "put", R1, "a", "v1", T0 + 1)
        self.w(h, "put", R2, "b", "v2", T0 + 2, ahead_ms=50000)  # received skew, within 60 s
        final = final_all({"a": ("v1", h.ops[0].version), "b": ("v2", h.ops[1].version)})
        self.assertEqual(check(h.ops, final, clocks=self.clocks()), [])

    def test_version_beyond_the_bound_is_reported(self):
        h = H()
        self.w(h, "put", R1, "a", "v1", T0 + 1, ahead_ms=HOUR)
        final = final_all({"a": ("v1", h.ops[0].version)})
        self.assertEqual(self.kinds(check(h.ops, final, clocks=self.clocks())), ["skew"])
        # Not judged without clocks (backward compatible).
        self.assertEqual(check(h.ops, final), [])

    def test_region_that_is_ahead_may_stamp_ahead(self):
        h = H()
        self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=HOUR)
        final = final_all({"a": ("v1", h.ops[0].version)})
        self.assertEqual(check(h.ops, final, clocks=self.clocks(r2=[(T0, HOUR)])), [])
        self.assertEqual(self.kinds(check(h.ops, final, clocks=self.clocks())), ["skew"])

    def test_offset_changed_at_a_restart(self):
        # R2 restarts at T0+10 an hour ahead, and at T0+20 back at 0: its
        # clock restarts at its persisted bound, an hour ahead, so writes
        # after T0+10 may be an hour ahead; one before may not.
        clocks = self.clocks(r2=[(T0, 0), (T0 + 10, HOUR), (T0 + 20, 0)])
        h = H()
        self.w(h, "put", R2, "a", "v1", T0 + 5, ahead_ms=HOUR)
        self.w(h, "put", R2, "b", "v2", T0 + 15, ahead_ms=HOUR)
        self.w(h, "put", R2, "c", "v3", T0 + 25, ahead_ms=HOUR)
        final = final_all({k: (o.value, o.version) for k, o in zip("abc", h.ops)})
        v = check(h.ops, final, clocks=clocks)
        self.assertEqual(self.kinds(v), ["skew"])
        self.assertEqual(len(v), 1)
        self.assertIn("op 1 ", v[0])

    def test_overwrite_of_a_version_from_ahead_is_one_above_it(self):
        # R2 is an hour ahead; R1 overwrites its version: stamped one above.
        clocks = self.clocks(r2=[(T0, HOUR)])
        h = H()
        a = self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=HOUR)
        b = h.add("put", R1, "a", "v2", version=(a.version[0] + 1, R1), t0=3, w0=T0 + 3, w1=T0 + 3.1)
        final = final_all({"a": ("v2", b.version)})
        self.assertEqual(check(h.ops, final, clocks=clocks), [])
        # Anything else beyond R1's bound is not: two above.
        h.ops[1].version = (a.version[0] + 2, R1)
        final = final_all({"a": ("v2", h.ops[1].version)})
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["skew"])

    def test_region_dragged_along_on_another_key(self):
        # Defect: after that overwrite, R1's clock follows R2's, an hour ahead.
        clocks = self.clocks(r2=[(T0, HOUR)])
        h = H()
        a = self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=HOUR)
        b = h.add("put", R1, "a", "v2", version=(a.version[0] + 1, R1), t0=3, w0=T0 + 3, w1=T0 + 3.1)
        c = h.add("update", R1, "b", "v3", version=(a.version[0] + 2, R1), t0=4, w0=T0 + 4, w1=T0 + 4.1)
        d = h.add("delete", R1, "c", version=(a.version[0] + 3, R1), t0=5, w0=T0 + 5, w1=T0 + 5.1)
        final = final_all({"a": ("v2", b.version), "b": ("v3", c.version), "c": (None, d.version)})
        v = check(h.ops, final, clocks=clocks)
        self.assertEqual(self.kinds(v), ["skew"])
        self.assertEqual(len(v), 2)

    def test_overwrite_of_an_unseen_version_of_unknown_outcome(self):
        # R2 (an hour ahead) wrote v1 with no answer (it was killed); R1 then
        # replaced v1 (ALL_OLD says so): one above a version nobody saw.
        clocks = self.clocks(r2=[(T0, HOUR)])
        h = H()
        h.add("put", R2, "a", "v1", outcome=UNKNOWN, t0=1, t1=9, w0=T0 + 1, w1=None)
        b = h.add("put", R1, "a", "v2", version=(ts_at(T0 + 2, HOUR, 7), R1), t0=10,
                  w0=T0 + 10, w1=T0 + 10.1, old="v1", old_known=True)
        final = final_all({"a": ("v2", b.version)})
        self.assertEqual(check(h.ops, final, clocks=clocks), [])
        # Had it replaced nothing, or an acknowledged write, it is reported.
        h.ops[1].old = None
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["skew"])
        h.ops[0].outcome, h.ops[0].version = OK, (ts_at(T0 + 1, HOUR), R2)
        h.ops[1].old = "v1"
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["skew"])
        # ... and so is one beyond what the unknown write's region could stamp.
        h.ops[0].outcome, h.ops[0].version = UNKNOWN, None
        self.assertEqual(check(h.ops, final, clocks=clocks), [])
        self.assertEqual(self.kinds(check(h.ops, final, clocks=self.clocks())), ["skew"])

    def test_replaced_unseen_tombstone(self):
        clocks = self.clocks(r2=[(T0, HOUR)])
        h = H()
        h.add("delete", R2, "a", outcome=UNKNOWN, t0=1, t1=9, w0=T0 + 1)
        b = h.add("put", R1, "a", "v2", version=(ts_at(T0 + 2, HOUR, 3), R1), t0=10,
                  w0=T0 + 10, w1=T0 + 10.1, old=None, old_known=True)
        final = final_all({"a": ("v2", b.version)})
        self.assertEqual(check(h.ops, final, clocks=clocks), [])
        h.ops[0].region = R1  # its own delete was within its own bound: no excuse
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["skew"])

    def test_causal_across_keys_in_one_region(self):
        # Read a (R2's version, 30 s ahead: within the skew bound) in R1, then
        # a blind write of b in R1: ordered after it.
        clocks = self.clocks()
        h = H()
        a = self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=30000)
        b = h.add("xput", R1, "b", "v2", version=(ts_at(T0 + 3), R1), t0=3, w0=T0 + 3, w1=T0 + 3.1,
                  after=a.version, after_region=R1, after_key="a")
        final = final_all({"a": ("v1", a.version), "b": ("v2", b.version)})
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["causal"])
        h.ops[1].version = (a.version[0] + 5, R1)
        final = final_all({"a": ("v1", a.version), "b": ("v2", h.ops[1].version)})
        self.assertEqual(check(h.ops, final, clocks=clocks), [])

    def test_causal_across_keys_capped_by_the_skew_bound(self):
        # R2 is an hour ahead: R1's clock is capped at its wall clock + 60 s,
        # so a write of another key after reading R2's version is lower, by
        # design; on the same key it is one above (the version it replaces).
        clocks = self.clocks(r2=[(T0, HOUR)])
        h = H()
        a = self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=HOUR)
        b = h.add("xput", R1, "b", "v2", version=(ts_at(T0 + 3, 60000), R1), t0=3, w0=T0 + 3,
                  w1=T0 + 3.1, after=a.version, after_region=R1, after_key="a")
        final = final_all({"a": ("v1", a.version), "b": ("v2", b.version)})
        self.assertEqual(check(h.ops, final, clocks=clocks), [])
        # The same on the key read is a violation (and the older write won).
        h.ops[1].after_key, h.ops[1].key = None, "a"
        final = final_all({"a": ("v1", a.version)})
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["causal"])

    def test_causal_exemption_needs_the_observed_version_beyond_the_bound_then(self):
        # R2's version is 50 s ahead when made at T0+1 (within R1's bound
        # then, so R1's clock did move past it): no exemption, even though
        # R1's write comes much later.
        clocks = self.clocks()
        h = H()
        a = self.w(h, "put", R2, "a", "v1", T0 + 1, ahead_ms=50000)
        h.add("xput", R1, "b", "v2", version=(ts_at(T0 + 40), R1), t0=40, w0=T0 + 40, w1=T0 + 40.1,
              after=a.version, after_region=R1, after_key="a")
        final = final_all({"a": ("v1", a.version), "b": ("v2", h.ops[1].version)})
        self.assertEqual(self.kinds(check(h.ops, final, clocks=clocks)), ["causal"])
        # 70 s ahead when made: beyond it, exempt.
        a.version = (ts_at(T0 + 1, 70000), R2)
        h.ops[1].after = a.version
        final = final_all({"a": ("v1", a.version), "b": ("v2", h.ops[1].version)})
        self.assertEqual(check(h.ops, final, clocks=self.clocks(r2=[(T0, 70000)])), [])

    def test_op_json_round_trip_and_old_records(self):
        op = Op(7, "xput", R1, "b", "v", version=(5, R1), after=(4, R2), after_region=R1,
                after_key="a", w0=1.5, w1=1.6, old="u", old_known=True)
        back = Op.from_json(op.to_json())
        self.assertEqual(back.to_json(), op.to_json())
        # A history written before these fields existed still loads.
        old = {k: v for k, v in op.to_json().items()
               if k not in ("after_key", "w0", "w1", "old", "old_known")}
        self.assertIsNone(Op.from_json(old).w1)


if __name__ == "__main__":
    unittest.main()
