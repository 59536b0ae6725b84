#!/usr/bin/env python3
"""run.py - Jepsen-style fault-injection runs against real meridian processes
on 127.0.0.1 (issue 5). `tests/faults/run` is the entry point.

One run (a seed) starts N regions (3 or 5) whose every directed replication
link goes through a controllable TCP proxy (tests/integration/harness.py
LinkProxy), creates a global table in all of them, and then, for the run's
duration, drives a workload in every region while a nemesis injects faults:

  partition / one-way cut / isolate   links refused or black-holed
  slow link / throttle / flap         delay, bandwidth limit, connection resets
  kill -9 and restart                 sometimes with a new clock offset (a jump)
  pause                               SIGSTOP .. SIGCONT (a stalled process)
  disk full / slow disk               ENOSPC or slow writes and fsyncs from the
                                      preloaded libmeridian_diskfault.so
Clocks are skewed from the start (--clock-offset-ms per region).

The workload: blind puts, conditional puts (after a read), updates, deletes,
reads, read-then-write in the same region, and causal chains (read in one
region, then a write in another conditioned on the value read). Every request
is recorded with its outcome (ok / fail / unknown) and the item version the
server returned (x-meridian-version). At the end every fault is healed, the
time until all regions hold the same records is measured, `meridian verify`
and a full scan compare the regions, and checker.check() judges the history.

Exit status 0 if every seed passed; 1 if any violation was found.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
import botocore.exceptions  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from checker import FAIL, OK, UNKNOWN, Op, check, parse_version, summarize  # noqa: E402

TABLE = "faults"
REGION_NAMES = ("us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "ca-central-1")


def log(msg):
    sys.stdout.write("[faults %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


# -- the cluster under test -------------------------------------------------------

class Deployment:
    def __init__(self, rng, n_regions, grace_ms, tag):
        self.rng = rng
        self.names = REGION_NAMES[:n_regions]
        self.offsets = {n: rng.choice((0, 0, rng.randint(-4000, 4000))) for n in self.names}
        self.grace_ms = grace_ms
        self.cluster = harness.Cluster(self.names, proxied=True, tag=tag, start=False)
        self.disks = {}
        lib = harness.diskfault_library()
        if not lib:
            raise harness.ServerError("libmeridian_diskfault.so not found (build it, or set "
                                      "MERIDIAN_DISKFAULT_LIB)")
        for n in self.names:
            s = self.cluster[n]
            ctl = os.path.join(self.cluster.root, "diskfault-%s" % n)
            self.disks[n] = harness.DiskFault(ctl, s.data_dir + "/")
            asan = os.environ.get("ASAN_OPTIONS", "")
            s.env = {
                "LD_PRELOAD": lib,
                "MERIDIAN_DISKFAULT": ctl,
                # The preloaded library comes before the ASan runtime in a
                # sanitizer build; that is fine, it does not allocate.
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
            }
            self.set_args(n)
        self.cluster.start()

    def set_args(self, n):
        s = self.cluster[n]
        user = ["--clock-offset-ms", str(self.offsets[n])]
        if self.grace_ms is not None:
            user += ["--tombstone-grace-ms", str(self.grace_ms)]
        s.user_args = user
        s.extra_args = self.cluster.peer_args(n) + user

    def __getitem__(self, n):
        return self.cluster[n]

    def start_region(self, n):
        s = self.cluster[n]
        if s.running():
            return
        old = s.peer_port
        self.set_args(n)
        s.start(new_ports=False)
        self.cluster._check_ports(n, old)

    def heal_everything(self):
        self.cluster.heal_all()
        for n in self.names:
            self.disks[n].clear()
            s = self.cluster[n]
            if s.running():
                try:
                    os.kill(s.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
        for n in self.names:
            self.start_region(n)

    def stop(self, check=True):
        self.cluster.stop(check=check)


# -- the workload -------------------------------------------------------------------

def classify(ex):
    """(outcome, error) of a failed request: refused requests (4xx, or no
    connection made) certainly did nothing; anything else may have."""
    if isinstance(ex, ClientError):
        code = ex.response.get("Error", {}).get("Code", "?")
        status = ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return (UNKNOWN if status >= 500 else FAIL), code
    if isinstance(ex, botocore.exceptions.EndpointConnectionError):
        return FAIL, "connect"
    return UNKNOWN, type(ex).__name__


class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.next_id = 0

    def new(self, **kw):
        with self.lock:
            self.next_id += 1
            op = Op(self.next_id, **kw)
            self.ops.append(op)
            return op


class Worker(threading.Thread):
    MIX = (("put", 22), ("rput", 8), ("cput", 10), ("update", 18), ("delete", 10),
           ("chain", 14), ("read", 18))

    def __init__(self, dep, home, wid, seed, history, stop, keys):
        super().__init__(daemon=True, name="worker-%s" % wid)
        self.dep = dep
        self.home = home
        self.wid = wid
        self.rng = random.Random(seed)
        self.history = history
        self.stop_event = stop
        self.keys = keys
        self.seq = 0
        self.clients = {}
        self.crash = None
        self.kinds = [k for k, w in self.MIX for _ in range(w)]

    def client(self, region):
        s = self.dep[region]
        ep = s.endpoint
        cached = self.clients.get(region)
        if cached is None or cached[0] != ep:
            cached = (ep, harness.client(s, read_timeout=8, connect_timeout=2))
            self.clients[region] = cached
        return cached[1]

    def value(self):
        self.seq += 1
        return "%s-%d" % (self.wid, self.seq)

    def read(self, region, key):
        op = self.history.new(kind="read", region=region, key=key, t0=time.monotonic(),
                              worker=self.wid)
        try:
            r = self.client(region).get_item(TableName=TABLE, Key={"pk": {"S": key}},
                                             ConsistentRead=True)
            op.t1 = time.monotonic()
            item = r.get("Item")
            op.value = item["val"]["S"] if item else None
            op.version = parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version"))
            op.outcome = OK
        except Exception as ex:  # noqa: BLE001 - every failure is part of the history
            op.t1 = time.monotonic()
            op.outcome, op.error = classify(ex)
        return op

    def write(self, kind, region, key, fn, value=None, after=None, after_region=None):
        op = self.history.new(kind=kind, region=region, key=key, value=value, after=after,
                              after_region=after_region, t0=time.monotonic(), worker=self.wid)
        try:
            r = fn(self.client(region))
            op.t1 = time.monotonic()
            op.version = parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version"))
            op.outcome = OK
        except Exception as ex:  # noqa: BLE001
            op.t1 = time.monotonic()
            op.outcome, op.error = classify(ex)
        return op

    def put_fn(self, key, value, cond=None, names=None, values=None):
        item = {"pk": {"S": key}, "val": {"S": value}, "pad": {"S": "x" * self.rng.randint(0, 300)}}

        def fn(c):
            kw = {"TableName": TABLE, "Item": item}
            if cond:
                kw["ConditionExpression"] = cond
            if names:
                kw["ExpressionAttributeNames"] = names
            if values:
                kw["ExpressionAttributeValues"] = values
            return c.put_item(**kw)
        return fn

    def step(self):
        key = self.rng.choice(self.keys)
        kind = self.rng.choice(self.kinds)
        home = self.home
        op = None
        if kind == "put":
            v = self.value()
            op = self.write("put", home, key, self.put_fn(key, v), value=v)
        elif kind == "rput":
            # Read, then a blind write in the same region: HLC orders it after.
            rd = self.read(home, key)
            if rd.outcome != OK:
                return
            v = self.value()
            op = self.write("put", home, key, self.put_fn(key, v), value=v, after=rd.version,
                            after_region=home)
        elif kind == "cput":
            rd = self.read(home, key)
            if rd.outcome != OK:
                return
            v = self.value()
            if rd.value is None:
                fn = self.put_fn(key, v, cond="attribute_not_exists(pk)")
            else:
                fn = self.put_fn(key, v, cond="#v = :old", names={"#v": "val"},
                                 values={":old": {"S": rd.value}})
            op = self.write("cput", home, key, fn, value=v, after=rd.version, after_region=home)
        elif kind == "update":
            v = self.value()
            op = self.write("update", home, key, lambda c: c.update_item(
                TableName=TABLE, Key={"pk": {"S": key}},
                UpdateExpression="SET #v = :v ADD n :one",
                ExpressionAttributeNames={"#v": "val"},
                ExpressionAttributeValues={":v": {"S": v}, ":one": {"N": "1"}}), value=v)
        elif kind == "delete":
            op = self.write("delete", home, key, lambda c: c.delete_item(
                TableName=TABLE, Key={"pk": {"S": key}}))
        elif kind == "chain":
            # Read in another region, then write here only if this region has
            # what was read: the write is causally after the read.
            other = self.rng.choice([n for n in self.dep.names if n != home])
            rd = self.read(other, key)
            if rd.outcome != OK or rd.value is None:
                return
            v = self.value()
            op = self.write("chain", home, key,
                            self.put_fn(key, v, cond="#v = :old", names={"#v": "val"},
                                        values={":old": {"S": rd.value}}),
                            value=v, after=rd.version, after_region=other)
        else:
            region = home if self.rng.random() < 0.7 else self.rng.choice(self.dep.names)
            self.read(region, key)
        if op is not None and op.outcome == OK and self.rng.random() < 0.5:
            self.read(home, key)  # read-your-write probe

    def run(self):
        try:
            while not self.stop_event.is_set():
                self.step()
        except BaseException as ex:  # noqa: BLE001 - reported by the runner
            self.crash = ex


# -- the nemesis ----------------------------------------------------------------------

class Nemesis(threading.Thread):
    FAULTS = (("partition", 10), ("oneway", 8), ("isolate", 6), ("slow_link", 8), ("throttle", 5),
              ("flap", 6), ("kill", 12), ("pause", 5), ("disk_full", 8), ("slow_disk", 6))

    def __init__(self, dep, seed, stop, only=None):
        super().__init__(daemon=True, name="nemesis")
        self.dep = dep
        self.rng = random.Random(seed)
        self.stop_event = stop
        faults = [f for f in self.FAULTS if not only or f[0] in only]
        self.kinds = [k for k, w in faults for _ in range(w)]
        self.events = []
        self.crash = None

    def note(self, what):
        self.events.append((round(time.monotonic() - self.t_start, 2), self.kind, what))
        log("nemesis: %s" % what)

    def hold(self, lo, hi):
        self.stop_event.wait(self.rng.uniform(lo, hi))

    def pair(self):
        a, b = self.rng.sample(self.dep.names, 2)
        return a, b

    def inject(self, kind):
        dep, rng, cl = self.dep, self.rng, self.dep.cluster
        if kind == "partition":
            a, b = self.pair()
            mode = rng.choice(("refuse", "blackhole"))
            self.note("partition %s | %s (%s)" % (a, b, mode))
            cl.cut(a, b, mode)
            self.hold(1, 6)
            cl.heal(a, b)
        elif kind == "oneway":
            a, b = self.pair()
            mode = rng.choice(("refuse", "blackhole"))
            self.note("one-way cut %s -> %s (%s)" % (a, b, mode))
            cl.proxies[(a, b)].cut(mode)
            self.hold(1, 6)
            cl.proxies[(a, b)].heal()
        elif kind == "isolate":
            n = rng.choice(dep.names)
            self.note("isolate %s" % n)
            cl.isolate(n, rng.choice(("refuse", "blackhole")))
            self.hold(2, 7)
            cl.heal_all()
        elif kind in ("slow_link", "throttle"):
            a, b = self.pair()
            for p in (cl.proxies[(a, b)], cl.proxies[(b, a)]):
                if kind == "slow_link":
                    p.delay = rng.uniform(0.01, 0.25)
                else:
                    p.rate = rng.choice((4000, 20000, 100000))
            self.note("%s %s <-> %s (delay %.3f s, rate %s B/s)" % (
                kind, a, b, cl.proxies[(a, b)].delay, cl.proxies[(a, b)].rate or "-"))
            self.hold(2, 6)
            cl.heal(a, b)
        elif kind == "flap":
            a, b = self.pair()
            self.note("flap %s <-> %s" % (a, b))
            end = time.monotonic() + rng.uniform(2, 5)
            while time.monotonic() < end and not self.stop_event.is_set():
                for p in (cl.proxies[(a, b)], cl.proxies[(b, a)]):
                    p.reset_connections()
                self.hold(0.1, 0.8)
        elif kind == "kill":
            n = rng.choice(dep.names)
            self.note("kill -9 %s" % n)
            cl.kill9(n)
            self.hold(0.3, 3)
            if rng.random() < 0.5:
                dep.offsets[n] = rng.randint(-5000, 5000)
                self.note("restart %s with clock offset %+d ms" % (n, dep.offsets[n]))
            else:
                self.note("restart %s" % n)
            dep.start_region(n)
        elif kind == "pause":
            n = rng.choice(dep.names)
            pid = dep[n].proc.pid
            self.note("pause %s (SIGSTOP)" % n)
            os.kill(pid, signal.SIGSTOP)
            self.hold(0.5, 3)
            os.kill(pid, signal.SIGCONT)
        elif kind == "disk_full":
            n = rng.choice(dep.names)
            self.note("disk full in %s" % n)
            dep.disks[n].set(enospc=1)
            self.hold(1, 5)
            dep.disks[n].clear()
            self.note("disk of %s has space again" % n)
        elif kind == "slow_disk":
            n = rng.choice(dep.names)
            sync_us = rng.choice((20000, 80000, 200000))
            self.note("slow disk in %s (fsync +%d ms)" % (n, sync_us // 1000))
            dep.disks[n].set(write_delay_us=rng.choice((0, 500)), sync_delay_us=sync_us)
            self.hold(2, 6)
            dep.disks[n].clear()

    def run(self):
        self.t_start = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self.hold(0.5, 2.5)
                if self.stop_event.is_set():
                    break
                self.kind = self.rng.choice(self.kinds)
                self.inject(self.kind)
        except BaseException as ex:  # noqa: BLE001
            self.crash = ex


# -- one run ----------------------------------------------------------------------------

def read_final(dep, keys):
    """{region: {key: (value, version)}} from consistent GetItems."""
    out = {}
    for n in dep.names:
        c = harness.client(dep[n], read_timeout=10)
        recs = {}
        for k in keys:
            r = c.get_item(TableName=TABLE, Key={"pk": {"S": k}}, ConsistentRead=True)
            item = r.get("Item")
            recs[k] = (item["val"]["S"] if item else None,
                       parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version")))
        out[n] = recs
    return out


def same_everywhere(final):
    recs = list(final.values())

    def norm(d):
        return {k: (v if v[0] is not None else (None, None)) for k, v in d.items()}
    first = norm(recs[0])
    return all(norm(r) == first for r in recs[1:])


def run_verify(dep):
    s = dep[dep.names[0]]
    env = dict(os.environ)
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = s.credentials[0][0], s.credentials[0][1]
    cmd = [harness.meridian_bin(), "verify", "--table", TABLE]
    for n in dep.names:
        cmd += ["--endpoint", dep[n].endpoint]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_one(seed, n_regions, duration, workers_per_region, n_keys, converge_timeout, only=None,
            grace_ms="random", keep_history=None):
    rng = random.Random(seed)
    if grace_ms == "random":
        grace_ms = rng.choice((None, 1500, 4000))  # None: the default (a day)
    t_setup = time.monotonic()
    dep = Deployment(rng, n_regions, grace_ms, tag="faults-s%d" % seed)
    result = {"seed": seed, "regions": n_regions, "duration_s": duration,
              "clock_offsets_ms": dict(dep.offsets), "tombstone_grace_ms": grace_ms}
    ok = False
    try:
        dep.cluster.create_global_table(TABLE, timeout=60)
        log("seed %d: %d regions %s, offsets %s, grace %s; set up in %.1f s" % (
            seed, n_regions, ",".join(dep.names), dep.offsets, grace_ms, time.monotonic() - t_setup))
        keys = ["k%02d" % i for i in range(n_keys)]
        history = History()
        stop = threading.Event()
        workers = [Worker(dep, n, "%s.%d" % (n, i), rng.randrange(1 << 30), history, stop, keys)
                   for n in dep.names for i in range(workers_per_region)]
        nemesis = Nemesis(dep, rng.randrange(1 << 30), stop, only)
        for w in workers:
            w.start()
        nemesis.start()
        stop.wait(duration)
        stop.set()
        for w in workers:
            w.join(60)
        nemesis.join(60)
        for t in workers + [nemesis]:
            if t.is_alive():
                raise RuntimeError("%s did not stop" % t.name)
            if t.crash is not None:
                raise RuntimeError("%s failed: %r" % (t.name, t.crash)) from t.crash

        # Heal everything, then measure how long until every region agrees.
        dep.heal_everything()
        t_heal = time.monotonic()
        deadline = t_heal + converge_timeout
        final = None
        while True:
            try:
                final = read_final(dep, keys)
                if same_everywhere(final):
                    break
            except Exception as ex:  # noqa: BLE001 - a region still starting
                log("reading final state: %r" % ex)
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        converge_s = time.monotonic() - t_heal
        # Full comparison: every region's scan, and `meridian verify`'s digests.
        contents = {n: harness.table_contents(harness.client(dep[n]), TABLE) for n in dep.names}
        first = contents[dep.names[0]]
        scans_equal = all(contents[n] == first for n in dep.names)
        vrc, vout = run_verify(dep)

        ops = history.ops
        violations = check(ops, final, limit=1000000)
        if not scans_equal:
            violations.append("converged: full scans differ:\n%s" % harness.describe_contents_difference(contents))
        if vrc != 0:
            violations.append("converged: meridian verify exit %d:\n%s" % (vrc, vout.strip()[-2000:]))
        lat = [o.t1 - o.t0 for o in ops if o.outcome == OK and o.t1 is not None]
        counts = summarize(ops)
        acked_writes = sum(1 for o in ops if o.is_write and o.outcome == OK)
        result.update({
            "faults": [e for e in nemesis.events],
            "operations": len(ops),
            "by_kind": counts,
            "acknowledged_writes": acked_writes,
            "unknown_writes": sum(1 for o in ops if o.is_write and o.outcome == UNKNOWN),
            "refused_writes": sum(1 for o in ops if o.is_write and o.outcome == FAIL),
            "reads_ok": sum(1 for o in ops if o.kind == "read" and o.outcome == OK),
            "converged": same_everywhere(final) if final else False,
            "convergence_s": round(converge_s, 2),
            "verify_exit": vrc,
            "items_at_end": len(first),
            "latency_p50_ms": round(percentile(lat, 0.50) * 1000, 2) if lat else None,
            "latency_p99_ms": round(percentile(lat, 0.99) * 1000, 2) if lat else None,
            "violations_by_kind": {k: sum(1 for v in violations if v.split(":")[0] == k)
                                   for k in sorted(set(v.split(":")[0] for v in violations))},
            "violations": violations[:100],
        })
        if keep_history:
            with open(keep_history % seed, "w") as f:
                json.dump({"history": [o.to_json() for o in ops], "final": {
                    r: {k: list(v) for k, v in d.items()} for r, d in final.items()}}, f)
        ok = not violations
        log("seed %d: %d operations, %d acknowledged writes, %d unknown, converged in %.2f s, "
            "p99 %.1f ms, %d violation(s)" % (seed, len(ops), acked_writes, result["unknown_writes"],
                                               converge_s, result["latency_p99_ms"] or 0, len(violations)))
        for v in violations[:20]:
            log("  VIOLATION %s" % v)
    finally:
        if not ok:
            for n in dep.names:
                log("--- %s log tail:\n%s" % (n, dep[n].log_tail(25)))
        # SIGTERM everywhere: exit code 0 is asserted (a crash, or a leak
        # found by LeakSanitizer in a sanitizer build, fails the run).
        dep.stop(check=True)
    return result


def totals(results, t0):
    """The totals of several seeds' results (RESULTS.md's figures)."""
    total = {
        "seeds": len(results),
        "wall_s": round(time.monotonic() - t0, 1),
        "operations": sum(r["operations"] for r in results),
        "acknowledged_writes": sum(r["acknowledged_writes"] for r in results),
        "violations": sum(sum(r["violations_by_kind"].values()) for r in results),
        "max_convergence_s": max(r["convergence_s"] for r in results),
        "max_latency_p99_ms": max((r["latency_p99_ms"] or 0) for r in results),
        "median_convergence_s": sorted(r["convergence_s"] for r in results)[len(results) // 2],
        "unknown_writes": sum(r["unknown_writes"] for r in results),
        "refused_writes": sum(r["refused_writes"] for r in results),
        "reads_ok": sum(r["reads_ok"] for r in results),
        "faults_by_kind": {},
    }
    for r in results:
        for _, kind, what in r["faults"]:
            if not what.startswith(("restart", "disk of")):
                total["faults_by_kind"][kind] = total["faults_by_kind"].get(kind, 0) + 1
    total["faults"] = sum(total["faults_by_kind"].values())
    return total


def write_json(path, results, t0):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"total": totals(results, t0), "runs": results}, f, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    ap.add_argument("--regions", default="3,3,5",
                    help="region counts, one per seed, cycled (default 3,3,5)")
    ap.add_argument("--duration", type=float, default=25.0, help="seconds of faults per seed")
    ap.add_argument("--long", action="store_true",
                    help="the long run: seeds of 120 s, alternating 3 and 5 regions, for --minutes")
    ap.add_argument("--minutes", type=float, default=30.0, help="length of --long")
    ap.add_argument("--workers", type=int, default=2, help="client threads per region")
    ap.add_argument("--keys", type=int, default=24)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--only", default="", help="comma-separated fault kinds to use (default: all)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--history", help="write each seed's history to this path (%%d = seed)")
    args = ap.parse_args(argv)
    only = set(x for x in args.only.split(",") if x) or None
    if only:
        unknown = only - set(k for k, _ in Nemesis.FAULTS)
        if unknown:
            ap.error("unknown fault kinds: %s" % ",".join(sorted(unknown)))

    results = []
    t0 = time.monotonic()

    def one(*a, **kw):
        """Runs a seed; the results so far are written after each (a long run
        that stops early keeps what it did)."""
        results.append(run_one(*a, **kw))
        if args.json:
            write_json(args.json, results, t0)

    if args.long:
        seed = int(args.seeds.split(",")[0])
        i = 0
        while time.monotonic() - t0 < args.minutes * 60:
            one(seed + i, (3, 5)[i % 2], 120.0, args.workers, args.keys,
                args.converge_timeout, only, keep_history=args.history)
            i += 1
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s]
        counts = [int(r) for r in args.regions.split(",") if r]
        for i, seed in enumerate(seeds):
            one(seed, counts[i % len(counts)], args.duration, args.workers,
                args.keys, args.converge_timeout, only, keep_history=args.history)
    total = totals(results, t0)
    log("total: %s" % json.dumps(total))
    return 0 if total["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
