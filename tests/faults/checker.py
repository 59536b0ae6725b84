"""checker.py - the history of a fault-injection run and the checks made on it.

Every request the workload sends is one Op: what was asked (kind, region,
key, the unique value it writes), how it ended (ok / fail / unknown), and for
successful requests the item version the server returned in the
x-meridian-version header ("<HLC timestamp>/<origin region>": the version
written by a write, the version stored for a read, a tombstone's included).
Each written value is unique, so every value read or left at the end names
the one request that wrote it.

check(history, final) returns a list of violations (empty: the run passed):

  converged      every region ends with the same record for every key
                 (value and version; absent = absent)
  lost           no acknowledged write is lost: a key's final version is at
                 least the highest version an acknowledged write made there,
                 and if equal the final state is that write's (value, or
                 absent for a delete); a collected tombstone (absent, no
                 version) only if the newest acknowledged write was a delete
                 or a delete of unknown outcome may have come after it
  phantom        every value read or left at the end was written by a
                 request that was not refused (ok or unknown), with that
                 request's version when it was acknowledged
  causal         a write made after observing a version (a read, in any
                 region, then a put conditioned on the value read; or a
                 blind put or update in the region that was read, of the
                 same key or of another one) carries a higher version than
                 the one observed, whatever the clocks.
                 A blind write into a region other than the one read is not
                 judged (unless causal_cross_region_blind): that region may
                 not have received what the client saw, so nothing in the
                 system orders the two; tests/faults/RESULTS.md says more.
                 One exemption, by design (docs/REPLICATION.md, rule 2: the
                 skew bound caps causality): a write on ANOTHER key than the
                 one read may get a lower version when the version observed
                 was beyond the skew bound of the writing region, i.e. its
                 physical time is at least that region's wall clock + max
                 skew at the earliest moment the region can have received it
                 (when the write that made it was sent; the start of the
                 history if that write is not known). The region's clock
                 was capped below it. A write on the SAME key never is: it
                 replaces the version observed and is stamped above it.
                 Writes across keys are judged only when the clocks are known.
  skew           every acknowledged write made in region R carries a version
                 whose physical part HLC_MS(ts) = ts >> 16 is at most R's
                 wall clock when it was acknowledged (real time + R's
                 --clock-offset-ms; the highest offset R ever had so far,
                 since its clock never goes back and restarts at its
                 persisted bound) + max skew + a margin (SKEW_MARGIN_MS:
                 the persisted bound's 1 s step and slack). Except a write
                 that replaced a version from a region that was ahead: it is
                 stamped exactly one above that version, so ts - 1 must be a
                 version of the same key seen in the history (written, read,
                 observed or left at the end), or, when the write replaced
                 (ReturnValues ALL_OLD) the value of a write of unknown
                 outcome whose version nobody saw, a version that write's
                 region may have stamped. A region dragged along by another
                 region's clock (its own versions, on any key, beyond its
                 wall clock + skew) is what this finds. Judged only when the
                 clocks are known (check(..., clocks=Clocks(...))).
  read-your-write / monotonic
                 in one region, a read that starts after a write there was
                 acknowledged sees that version or a newer one; a read that
                 starts after another read there ended sees at least its
                 version (across kill -9 and restarts too)

Pure functions of plain data: unit-tested with synthetic histories in
test_checker.py.
"""

import json

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
WRITE_KINDS = ("put", "cput", "update", "delete", "chain", "xput")
HLC_LOGICAL_BITS = 16  # src/clock/hlc.h: ts = physical ms << 16 | logical counter
MAX_SKEW_MS = 60000    # meridian serve's default --max-clock-skew-ms
SKEW_MARGIN_MS = 2500  # the persisted clock bound's step (1 s) and scheduling slack


def parse_version(header):
    """x-meridian-version "<ts>/<origin>" -> (ts, origin), None if absent."""
    if not header:
        return None
    ts, _, origin = header.partition("/")
    return (int(ts), origin)


class Op:
    """One request. `value` is the unique value a write stores (None for a
    delete); for a read, `value` is the value seen (None: absent) and
    `version` the version seen (None: nothing stored). `after` is the
    version a causal write was made after observing, in region
    `after_region` (None otherwise), seen on key `after_key` (None: the
    op's own key). A delete of an absent item writes nothing: its version
    is what was stored already (None if nothing). t0/t1 are monotonic times
    (sent, answered); w0/w1 the same moments in wall-clock seconds
    (time.time(); None if not recorded). A write acknowledged together with
    the item it replaced (ReturnValues ALL_OLD) has old_known set and `old`
    = the value it replaced (None: nothing live, i.e. absent or a
    tombstone)."""

    __slots__ = ("id", "kind", "region", "key", "value", "outcome", "version", "after",
                 "after_region", "t0", "t1", "error", "worker", "after_key", "w0", "w1",
                 "old", "old_known")

    def __init__(self, id, kind, region, key, value=None, outcome=UNKNOWN, version=None,
                 after=None, after_region=None, t0=0.0, t1=None, error=None, worker=None,
                 after_key=None, w0=None, w1=None, old=None, old_known=False):
        self.id = id
        self.kind = kind
        self.region = region
        self.key = key
        self.value = value
        self.outcome = outcome
        self.version = version
        self.after = after
        self.after_region = after_region
        self.t0 = t0
        self.t1 = t1
        self.error = error
        self.worker = worker
        self.after_key = after_key
        self.w0 = w0
        self.w1 = w1
        self.old = old
        self.old_known = old_known

    @property
    def is_write(self):
        return self.kind in WRITE_KINDS

    @property
    def deletes(self):
        return self.kind == "delete"

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d):
        d = dict(d)
        for k in ("version", "after"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)

    def __repr__(self):
        return "Op(%s)" % json.dumps(self.to_json(), default=str)


def _fmt(v):
    return "%d/%s" % v if v else "none"


def hlc_ms(ts):
    """The physical part (milliseconds) of an HLC timestamp."""
    return ts >> HLC_LOGICAL_BITS


class Clocks:
    """What the runner knows of every region's clock: {region: [(wall_s,
    offset_ms), ...]}, the --clock-offset-ms each region runs with from
    wall-clock time wall_s on (the first entry: from the start; one more at
    each restart with a new offset). A region's wall clock at real time t is
    t + its offset then."""

    def __init__(self, timeline, max_skew_ms=MAX_SKEW_MS, margin_ms=SKEW_MARGIN_MS):
        self.timeline = {r: sorted((float(t), int(o)) for t, o in tl) for r, tl in timeline.items()}
        self.max_skew_ms = max_skew_ms
        self.margin_ms = margin_ms

    def __contains__(self, region):
        return region in self.timeline

    def offsets(self, region, t_from, t_to):
        """The offsets region had at some moment of [t_from, t_to]."""
        tl = self.timeline[region]
        out = [o for t, o in tl if t_from < t <= t_to]
        before = [o for t, o in tl if t <= t_from]
        out.append(before[-1] if before else tl[0][1])
        return out

    def bound_ms(self, region, t):
        """The highest physical time a version made by region and answered
        by real time t may carry: its wall clock (with the highest offset it
        ever had: its clock never goes back, and restarts at its persisted
        bound) + max skew + margin."""
        return int(t * 1000) + max(self.offsets(region, float("-inf"), t)) + self.max_skew_ms + self.margin_ms


def check(history, final, causal_cross_region_blind=False, limit=50, clocks=None):
    """history: list of Op. final: {region: {key: (value, version)}} read at
    the end from every region (value None = absent; version None = nothing
    stored, e.g. a collected tombstone). clocks: a Clocks, or None (then the
    skew rule and causal writes across keys are not judged). Returns a list
    of violation strings."""
    out = []

    def bad(kind, msg):
        if len(out) < limit:
            out.append("%s: %s" % (kind, msg))

    regions = sorted(final)
    keys = set()
    for r in regions:
        keys.update(final[r])
    for op in history:
        keys.add(op.key)

    # -- converged ----------------------------------------------------------
    def record(r, k):
        value, version = final[r].get(k, (None, None))
        # Absent is absent: regions collect tombstones at different times.
        return (value, version) if value is not None else (None, None)

    for k in sorted(keys):
        recs = {r: record(r, k) for r in regions}
        if len(set(recs.values())) > 1:
            bad("converged", "key %s differs: %s" % (
                k, ", ".join("%s=%s@%s" % (r, v, _fmt(ver)) for r, (v, ver) in recs.items())))

    writes_by_key = {}
    by_value = {}
    for op in history:
        if op.is_write:
            writes_by_key.setdefault(op.key, []).append(op)
            if op.value is not None:
                by_value[op.value] = op

    # -- lost / phantom (final state) -----------------------------------------
    for k in sorted(keys):
        acked = [w for w in writes_by_key.get(k, []) if w.outcome == OK and w.version is not None]
        for r in regions:
            value, version = final[r].get(k, (None, None))
            if value is not None:
                w = by_value.get(value)
                if w is None or w.key != k:
                    bad("phantom", "region %s key %s holds %r, which no request wrote" % (r, k, value))
                elif w.outcome == FAIL:
                    bad("phantom", "region %s key %s holds %r from a refused request (%s)" % (
                        r, k, value, w.error))
                elif w.outcome == OK and w.version != version:
                    bad("phantom", "region %s key %s holds %r at %s, but its write was acknowledged at %s"
                        % (r, k, value, _fmt(version), _fmt(w.version)))
            if not acked:
                continue
            top = max(acked, key=lambda w: w.version)
            if version is None:
                # A collected tombstone: the newest write must have been a
                # delete (an acknowledged one, or one whose outcome is unknown).
                unknown_delete = any(w.deletes and w.outcome == UNKNOWN for w in writes_by_key.get(k, []))
                if not top.deletes and not unknown_delete:
                    bad("lost", "region %s key %s is absent with no version, but the newest acknowledged "
                        "write (op %d, %s in %s at %s) stored %r" % (
                            r, k, top.id, top.kind, top.region, _fmt(top.version), top.value))
                continue
            if version < top.version:
                bad("lost", "region %s key %s ends at %s (%r), older than acknowledged op %d (%s in %s at %s)"
                    % (r, k, _fmt(version), value, top.id, top.kind, top.region, _fmt(top.version)))
            elif version == top.version and value != top.value:
                bad("lost", "region %s key %s ends at %s with %r, but that version is op %d's, which "
                    "stored %r" % (r, k, _fmt(version), value, top.id, top.value))

    # -- phantom reads -------------------------------------------------------------
    for op in history:
        if op.kind != "read" or op.outcome != OK or op.value is None:
            continue
        w = by_value.get(op.value)
        if w is None or w.key != op.key or w.outcome == FAIL:
            bad("phantom", "op %d read %r from key %s in %s: not written by any accepted request" % (
                op.id, op.value, op.key, op.region))
        elif w.outcome == OK and w.version != op.version:
            bad("phantom", "op %d read %r at %s, but it was acknowledged at %s" % (
                op.id, op.value, _fmt(op.version), _fmt(w.version)))

    # Every version seen of each key (made, read, observed, left at the end),
    # and which acknowledged write made each version.
    seen_ts = {}
    made_by = {}
    for op in history:
        if op.version is not None:
            seen_ts.setdefault(op.key, set()).add(op.version[0])
            if op.is_write and op.outcome == OK:
                made_by.setdefault((op.key, op.version), op)
        if op.after is not None:
            seen_ts.setdefault(op.after_key or op.key, set()).add(op.after[0])
    for r in regions:
        for k, (_, version) in final[r].items():
            if version is not None:
                seen_ts.setdefault(k, set()).add(version[0])
    walls = [op.w0 for op in history if op.w0 is not None]
    t_first = min(walls) if walls else float("-inf")

    # -- causal ------------------------------------------------------------
    for op in history:
        if not op.is_write or op.outcome != OK or op.after is None or op.deletes:
            continue
        if op.kind != "chain" and op.after_region != op.region and not causal_cross_region_blind:
            continue
        other_key = op.after_key is not None and op.after_key != op.key
        if other_key:
            # Across keys only the clock orders the two: judged with the
            # clocks known, and not when what was observed was beyond the
            # skew bound of the writing region when that region can first
            # have received it (the write that made it started): its clock
            # was then capped below it, by design.
            if clocks is None or op.region not in clocks or op.w1 is None:
                continue
            maker = made_by.get((op.after_key, op.after))
            t_lo = maker.w0 if maker is not None and maker.w0 is not None else t_first
            if t_lo == float("-inf"):
                continue
            cap = int(t_lo * 1000) + min(clocks.offsets(op.region, t_lo, op.w1)) + clocks.max_skew_ms
            if hlc_ms(op.after[0]) >= cap:
                continue
        if op.version is None or op.version <= op.after:
            bad("causal", "op %d (%s in %s on key %s) was made after observing %s%s but got %s" % (
                op.id, op.kind, op.region, op.key, _fmt(op.after),
                " on key %s" % op.after_key if other_key else "", _fmt(op.version)))

    # -- skew ----------------------------------------------------------------
    if clocks is not None:
        unknown_deletes = {}
        for op in history:
            if op.deletes and op.outcome == UNKNOWN:
                unknown_deletes.setdefault(op.key, []).append(op)

        def replaced_unseen(op, prev):
            """Whether op replaced the version of a write of unknown outcome
            (never seen, so its version is known only now: prev), which its
            region may have stamped that high."""
            if not op.old_known:
                return False
            if op.old is not None:
                u = by_value.get(op.old)
                cands = [u] if u is not None and u.key == op.key and u.outcome == UNKNOWN else []
            else:
                cands = unknown_deletes.get(op.key, [])
            return any(u.region in clocks and u.t0 <= op.t1 and
                       hlc_ms(prev) <= clocks.bound_ms(u.region, op.w1) for u in cands)

        for op in history:
            if (not op.is_write or op.outcome != OK or op.version is None or op.w1 is None
                    or op.version[1] != op.region or op.region not in clocks):
                continue
            ts = op.version[0]
            limit_ms = clocks.bound_ms(op.region, op.w1)
            if hlc_ms(ts) <= limit_ms:
                continue
            # Ordered after a version from a region that was ahead: one
            # above the version it replaced is right.
            if ts - 1 in seen_ts.get(op.key, ()) or replaced_unseen(op, ts - 1):
                continue
            bad("skew", "op %d (%s in %s on key %s) got %s, %d ms beyond %s's clock bound at its "
                "acknowledgement (wall clock + %d ms max skew + %d ms margin), and not one above a "
                "version it replaced" % (op.id, op.kind, op.region, op.key, _fmt(op.version),
                                         hlc_ms(ts) - limit_ms, op.region, clocks.max_skew_ms,
                                         clocks.margin_ms))

    # -- read-your-write / monotonic, per region and key ------------------------
    events = {}
    for op in history:
        if op.outcome != OK or op.t1 is None:
            continue
        if op.kind == "read" or op.is_write:
            events.setdefault((op.region, op.key), []).append(op)
    for (r, k), ops in events.items():
        # Floor: the highest version known to be visible in r as of a time,
        # from operations that ended before it. A read starting later must
        # see at least the floor.
        ends = sorted(ops, key=lambda o: o.t1)
        reads = sorted((o for o in ops if o.kind == "read"), key=lambda o: o.t0)
        floor, floor_op, i = None, None, 0
        for rd in reads:
            while i < len(ends) and ends[i].t1 < rd.t0:
                e = ends[i]
                i += 1
                v = e.version
                if v is not None and (floor is None or v > floor):
                    floor, floor_op = v, e
            if floor is None:
                continue
            seen = rd.version
            if seen is None:
                # Nothing stored: only a collected tombstone may vanish.
                if not (floor_op.deletes or (floor_op.kind == "read" and floor_op.value is None)):
                    bad("read-your-write", "op %d read key %s in %s as absent after op %d (%s) had %s there"
                        % (rd.id, k, r, floor_op.id, floor_op.kind, _fmt(floor)))
                continue
            if seen < floor:
                bad("read-your-write" if floor_op.is_write else "monotonic",
                    "op %d read key %s in %s at %s after op %d (%s) had %s there" % (
                        rd.id, k, r, _fmt(seen), floor_op.id, floor_op.kind, _fmt(floor)))
    return out


def summarize(history):
    """Counts by kind and outcome, for the report."""
    counts = {}
    for op in history:
        counts.setdefault(op.kind, {OK: 0, FAIL: 0, UNKNOWN: 0})[op.outcome] += 1
    return counts
