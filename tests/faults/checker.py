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
                 blind put or update in the region that was read) carries a
                 higher version than the one observed, whatever the clocks.
                 A blind write into a region other than the one read is not
                 judged (unless causal_cross_region_blind): that region may
                 not have received what the client saw, so nothing in the
                 system orders the two; tests/faults/RESULTS.md says more.
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
WRITE_KINDS = ("put", "cput", "update", "delete", "chain")


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
    `after_region` (None otherwise). A delete of an absent item writes
    nothing: its version is what was stored already (None if nothing)."""

    __slots__ = ("id", "kind", "region", "key", "value", "outcome", "version", "after",
                 "after_region", "t0", "t1", "error", "worker")

    def __init__(self, id, kind, region, key, value=None, outcome=UNKNOWN, version=None,
                 after=None, after_region=None, t0=0.0, t1=None, error=None, worker=None):
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


def check(history, final, causal_cross_region_blind=False, limit=50):
    """history: list of Op. final: {region: {key: (value, version)}} read at
    the end from every region (value None = absent; version None = nothing
    stored, e.g. a collected tombstone). Returns a list of violation strings."""
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

    # -- causal ------------------------------------------------------------
    for op in history:
        if not op.is_write or op.outcome != OK or op.after is None or op.deletes:
            continue
        if op.kind != "chain" and op.after_region != op.region and not causal_cross_region_blind:
            continue
        if op.version is None or op.version <= op.after:
            bad("causal", "op %d (%s in %s on key %s) was made after observing %s but got %s" % (
                op.id, op.kind, op.region, op.key, _fmt(op.after), _fmt(op.version)))

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
