#!/usr/bin/env python3
"""run.py - Jepsen-style fault-injection runs against real meridian processes
on 127.0.0.1 (issue 5). `tests/faults/run` is the entry point.

One run (a seed) starts N regions (3 or 5) whose every directed replication
link goes through a controllable TCP proxy (tests/integration/harness.py
LinkProxy), creates a global table (the main table, `faults`) in all of
them, and then, for the run's duration, drives a workload in every region
while a nemesis injects faults, one at a time:

  partition / one-way cut / isolate   links refused or black-holed
  slow link / throttle / flap         delay, bandwidth limit, connection resets
  kill -9 and restart                 sometimes with a new clock offset (a jump)
  pause                               SIGSTOP .. SIGCONT (a stalled process)
  disk full / slow disk               ENOSPC or slow writes and fsyncs from the
                                      preloaded libmeridian_diskfault.so
  hole_ddl                            failed writes at the top of one region's
                                      replication log from STORM (8) concurrent
                                      DeleteTable calls on one global table
                                      (all but one lose the race after
                                      reserving a log position), then a log
                                      collection pass, kill -9 and restart
  hole_disk                           the disk fills while the region's writes
                                      are in flight (they fail: holes at the
                                      top of its log); its writes stop, space
                                      returns, and it is killed and restarted
                                      with no successful client write in
                                      between: at once, or (targeted) after
                                      storage writes succeed again and a log
                                      collection pass has run
  clock_ahead                         kill -9 and restart one region with its
                                      clock an hour ahead (--clock-offset-ms
                                      3600000)
Clocks are skewed from the start (--clock-offset-ms per region, a few
seconds). A seed may also have one region an hour ahead, from the start or
from an early clock_ahead restart (--ahead; by default by the seed: of the CI
seeds 1, 2, 3, seed 1 from a restart, seed 3 from the start). Its own writes
are legitimately an hour ahead; the other regions must not be dragged along.

The hole faults make sure the condition they exist for happened: the region's
clients are held back (Gate), the DDL churn paused and the region's own new
replicas left to become ACTIVE (an activation is a log entry) while the top
of its log is made of failed reservations, which the region's metrics
confirm (pending bytes 0 but pending entries > 0 on every link: every
existing entry acknowledged, positions beyond them not) before and after the
log collection pass; if not, the step is done again (bounded). The storm
runs with the region's fsyncs slowed down (the winner's commit still in
flight while the others reserve). Their table first gets LOG_PAD items (a
region with a long history), and after every restart the nemesis writes a
probe: a key of its own that nothing overwrites, so a write that never
reaches the other regions shows at the end. Every seed has one hole fault
early (hole_disk for odd seeds, hole_ddl for even ones; its table prepared
before the clock starts) and the clock_ahead restart, if any, before it;
more are drawn at random like the other faults.

Meanwhile the DDL churn (DdlChurn, in every region, under load): global
tables created with replicas in other regions, replicas added and removed
(UpdateTable ReplicaUpdates Create/Delete), DeleteTable in one region,
STORM concurrent DeleteTable of one global table in one region, and a few
writes to churned tables. It never touches the main table; its outcomes are
counted (`ddl`, `ddl_events` in the JSON), not judged.

The workload: blind puts, conditional puts (after a read), updates, deletes,
reads, read-then-write in the same region (same key, or another key: xput),
and causal chains (read in one region, then a write in another conditioned on
the value read). Every write asks for the item it replaced (ReturnValues
ALL_OLD). Every request is recorded with its outcome (ok / fail / unknown),
its wall-clock times and the item version the server returned
(x-meridian-version). At the end every fault is healed, the time until all
regions hold the same records is measured (given up early, `stalled`, when
they differ while no region has a log entry left to send for 10 s), `meridian
verify` and a full scan compare the regions, and checker.check() judges the
history, with every region's clock offsets over time (checker.Clocks) for the
skew check.

Exit status 0 if every seed passed; 1 if any violation was found.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
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

from checker import (FAIL, MAX_SKEW_MS, OK, SKEW_MARGIN_MS, UNKNOWN, Clocks, Op, check,  # noqa: E402
                     parse_version, summarize)

TABLE = "faults"         # the main table: every request of the history; never deleted
CHURN_PREFIX = "churn-"  # tables created, changed and deleted by the DDL churn
REGION_NAMES = ("us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "ca-central-1")
AHEAD_MS = 3600000       # the clock offset of a region that is an hour ahead
LOG_COLLECT_S = 5.0      # how often a region deletes the log its peers have (repl.c collect_log)
STORM = 8                # concurrent DeleteTable calls on one global table
LOG_PAD = 500            # log entries a hole fault adds first (see Nemesis.prepare_hole)


def log(msg):
    sys.stdout.write("[faults %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


# -- the cluster under test -------------------------------------------------------

class Gate:
    """Lets the nemesis stop the client writes of one region for a while (a
    region whose clients are quiet): close() waits until the writes in
    flight have been answered; workers skip writes while it is closed."""

    def __init__(self):
        self.cv = threading.Condition()
        self.closed = False
        self.inflight = 0

    def enter(self):
        with self.cv:
            if self.closed:
                return False
            self.inflight += 1
            return True

    def leave(self):
        with self.cv:
            self.inflight -= 1
            self.cv.notify_all()

    def close(self, timeout=20.0):
        with self.cv:
            self.closed = True
            return self.cv.wait_for(lambda: self.inflight == 0, timeout)

    def open(self):
        with self.cv:
            self.closed = False


class Deployment:
    def __init__(self, rng, n_regions, grace_ms, tag, ahead=None):
        self.rng = rng
        self.names = REGION_NAMES[:n_regions]
        self.offsets = {n: rng.choice((0, 0, rng.randint(-4000, 4000))) for n in self.names}
        # A region whose clock is an hour ahead (from the start, or from a
        # restart: set by the nemesis's clock_ahead).
        self.ahead = ahead
        if ahead:
            self.offsets[ahead] = AHEAD_MS
        # {region: [[wall time, offset ms], ...]}: each region's offset from
        # then on (checker.Clocks), one entry more at each restart.
        self.clock_log = {n: [] for n in self.names}
        self.gates = {n: Gate() for n in self.names}
        # Held by the DDL churn during each of its actions, and by the
        # nemesis while a region's log must not grow (hole_ddl, hole_disk).
        self.ddl_lock = threading.Lock()
        # Keys written once each by the nemesis (Nemesis.probe), read at the
        # end with the workload's keys.
        self.extra_keys = []
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
        for n in self.names:
            self.note_clock(n)
        self.cluster.start()

    def note_clock(self, n):
        """Records the offset region n starts with (before it starts: every
        answer after this comes from the process with that offset)."""
        tl = self.clock_log[n]
        if not tl or tl[-1][1] != self.offsets[n]:
            tl.append([time.time(), self.offsets[n]])

    def set_args(self, n):
        s = self.cluster[n]
        user = ["--clock-offset-ms", str(self.offsets[n]), "--max-clock-skew-ms", str(MAX_SKEW_MS)]
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
        self.note_clock(n)
        s.start(new_ports=False)
        self.cluster._check_ports(n, old)

    def heal_everything(self):
        self.cluster.heal_all()
        for g in self.gates.values():
            g.open()
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
    MIX = (("put", 20), ("rput", 8), ("cput", 10), ("update", 17), ("delete", 10),
           ("chain", 13), ("xput", 6), ("read", 16))

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
                              w0=time.time(), worker=self.wid)
        try:
            r = self.client(region).get_item(TableName=TABLE, Key={"pk": {"S": key}},
                                             ConsistentRead=True)
            op.t1, op.w1 = time.monotonic(), time.time()
            item = r.get("Item")
            op.value = item["val"]["S"] if item else None
            op.version = parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version"))
            op.outcome = OK
        except Exception as ex:  # noqa: BLE001 - every failure is part of the history
            op.t1 = time.monotonic()
            op.outcome, op.error = classify(ex)
        return op

    def write(self, kind, region, key, fn, value=None, after=None, after_region=None, after_key=None):
        """One write (None if the region's writes are stopped: nothing sent).
        Every write asks for the item it replaced (ReturnValues ALL_OLD), so
        the skew check knows which version a write replaced."""
        gate = self.dep.gates[region]
        if not gate.enter():
            return None
        try:
            op = self.history.new(kind=kind, region=region, key=key, value=value, after=after,
                                  after_region=after_region, after_key=after_key,
                                  t0=time.monotonic(), w0=time.time(), worker=self.wid)
            try:
                r = fn(self.client(region))
                op.t1, op.w1 = time.monotonic(), time.time()
                op.version = parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version"))
                old = r.get("Attributes")
                op.old = old["val"]["S"] if old and "val" in old else None
                op.old_known = True
                op.outcome = OK
            except Exception as ex:  # noqa: BLE001
                op.t1 = time.monotonic()
                op.outcome, op.error = classify(ex)
            return op
        finally:
            gate.leave()

    def put_fn(self, key, value, cond=None, names=None, values=None):
        item = {"pk": {"S": key}, "val": {"S": value}, "pad": {"S": "x" * self.rng.randint(0, 300)}}

        def fn(c):
            kw = {"TableName": TABLE, "Item": item, "ReturnValues": "ALL_OLD"}
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
                ExpressionAttributeValues={":v": {"S": v}, ":one": {"N": "1"}},
                ReturnValues="ALL_OLD"), value=v)
        elif kind == "delete":
            op = self.write("delete", home, key, lambda c: c.delete_item(
                TableName=TABLE, Key={"pk": {"S": key}}, ReturnValues="ALL_OLD"))
        elif kind == "xput":
            # Read one key, then a blind write of another key in the same
            # region: ordered after what was read by the clock alone (the
            # causal rule across keys, capped by the skew bound).
            rd = self.read(home, key)
            if rd.outcome != OK or rd.version is None:
                return
            other = self.rng.choice([k for k in self.keys if k != key])
            v = self.value()
            op = self.write("xput", home, other, self.put_fn(other, v), value=v, after=rd.version,
                            after_region=home, after_key=key)
            key = other
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
            return
        if op is None:
            # This region's writes are stopped for now (Gate): read instead.
            self.stop_event.wait(0.02)
            self.read(home, key)
        elif op.outcome == OK and self.rng.random() < 0.5:
            self.read(home, key)  # read-your-write probe

    def run(self):
        try:
            while not self.stop_event.is_set():
                self.step()
        except BaseException as ex:  # noqa: BLE001 - reported by the runner
            self.crash = ex


# -- the nemesis ----------------------------------------------------------------------

class Nemesis(threading.Thread):
    """Injects one fault at a time, drawn at random (FAULTS, weighted), and
    the scheduled ones at their time: `schedule` is a list of (seconds after
    the start, kind), e.g. the clock_ahead restart and one hole fault early
    in every seed, so that a 25-second seed has time for the writes after
    them."""

    FAULTS = (("partition", 10), ("oneway", 8), ("isolate", 6), ("slow_link", 8), ("throttle", 5),
              ("flap", 6), ("kill", 12), ("pause", 5), ("disk_full", 8), ("slow_disk", 6),
              ("hole_ddl", 3), ("hole_disk", 3))
    # Kinds that are not drawn at random: scheduled (clock_ahead), or not the
    # nemesis's (ddl: the DdlChurn thread).
    OTHER_KINDS = ("clock_ahead", "ddl")

    def __init__(self, dep, seed, stop, only=None, schedule=(), history=None):
        super().__init__(daemon=True, name="nemesis")
        self.dep = dep
        self.history = history
        self.n_probe = 0
        self.rng = random.Random(seed)
        self.stop_event = stop
        faults = [f for f in self.FAULTS if not only or f[0] in only]
        self.kinds = [k for k, w in faults for _ in range(w)]
        self.schedule = sorted(schedule)
        self.events = []
        self.crash = None
        self.n_hole = 0
        self.prepared = {}  # region -> a table prepare_hole made in advance
        self.t_start = time.monotonic()
        self.kind = None

    def note(self, what):
        """Records an event; follow-ups of a fault already noted start with
        "... " (not counted as faults of their own)."""
        self.events.append((round(time.monotonic() - self.t_start, 2), self.kind, what))
        log("nemesis: %s" % what)

    def hold(self, lo, hi):
        self.stop_event.wait(self.rng.uniform(lo, hi))

    def pair(self):
        a, b = self.rng.sample(self.dep.names, 2)
        return a, b

    def inject(self, kind, region=None):
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
            self.restart(n)
        elif kind == "clock_ahead":
            n = dep.ahead
            self.note("kill -9 %s, to restart it with its clock an hour ahead" % n)
            cl.kill9(n)
            time.sleep(rng.uniform(0.2, 1.0))
            dep.offsets[n] = AHEAD_MS
            self.note("restart %s with clock offset %+d ms" % (n, dep.offsets[n]))
            dep.start_region(n)
            self.probe(n)
        elif kind == "hole_ddl":
            self.hole_ddl(region or rng.choice(dep.names))
        elif kind == "hole_disk":
            self.hole_disk(region or rng.choice(dep.names), targeted=self.scheduled or rng.random() < 0.7)
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

    def restart(self, n, quick=False):
        """Starts region n again (after a kill), sometimes with its clock
        moved; the region that is an hour ahead stays so."""
        if n != self.dep.ahead and self.rng.random() < 0.5:
            self.dep.offsets[n] = self.rng.randint(-5000, 5000)
            self.note("%srestart %s with clock offset %+d ms" % ("... " if quick else "", n,
                                                                 self.dep.offsets[n]))
        else:
            self.note("%srestart %s" % ("... " if quick else "", n))
        self.dep.start_region(n)
        self.probe(n)

    def probe(self, n, timeout=10.0):
        """The first write after a restart, on a key of its own that nothing
        else writes: a write lost on its way to the other regions is always
        visible at the end (one the workload made may be overwritten before
        then). Retried until acknowledged (bounded); every attempt is part
        of the history."""
        if self.history is None:
            return
        self.n_probe += 1
        key = "probe-%d" % self.n_probe
        self.dep.extra_keys.append(key)
        c = harness.client(self.dep[n], read_timeout=8, connect_timeout=2)
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            value = "nemesis-%d.%d" % (self.n_probe, attempt)
            op = self.history.new(kind="put", region=n, key=key, value=value, t0=time.monotonic(),
                                  w0=time.time(), worker="nemesis")
            try:
                r = c.put_item(TableName=TABLE, Item={"pk": {"S": key}, "val": {"S": value}},
                               ReturnValues="ALL_OLD")
                op.t1, op.w1 = time.monotonic(), time.time()
                op.version = parse_version(r["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-version"))
                old = r.get("Attributes")
                op.old = old["val"]["S"] if old and "val" in old else None
                op.old_known = True
                op.outcome = OK
                self.note("... probe write %s in %s" % (key, n))
                return
            except Exception as ex:  # noqa: BLE001 - part of the history
                op.t1 = time.monotonic()
                op.outcome, op.error = classify(ex)
            if time.monotonic() > deadline:
                self.note("... probe write %s in %s failed: %s" % (key, n, op.error))
                return
            time.sleep(0.2)

    def prepare_hole(self, n, pad=LOG_PAD):
        """A global churn table in region n (replicated to one other region)
        with LOG_PAD items written to it in n: LOG_PAD more entries in n's
        log. A region in a 25-second seed has logged only a few hundred
        entries, so a restart that reuses log positions would reuse fewer
        than the workload writes afterwards, and writes overwritten later
        would hide the loss; with the pad, as with a region's long history,
        the reused range covers the rest of the seed. Returns the table's
        name, or None if the region could not do it (down, cut off)."""
        dep, rng = self.dep, self.rng
        self.n_hole += 1
        name = "%shole-%d" % (CHURN_PREFIX, self.n_hole)
        peer = rng.choice([r for r in dep.names if r != n])
        pool = client_pool(dep[n], 4)
        c = pool[0]

        def write(c, part):
            for i in range(part * 25, pad, 25 * len(pool)):
                c.batch_write_item(RequestItems={name: [
                    {"PutRequest": {"Item": {"pk": {"S": "p%d" % j}}}}
                    for j in range(i, min(i + 25, pad))]})
        try:
            churn_create(c, name)
            c.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": peer}}])
        except Exception as ex:  # noqa: BLE001 - the region may be down or cut off
            self.note("... setting up %s failed (%s)" % (name, describe_error(ex)))
            return None
        outcomes = in_parallel([lambda c=c, i=i: write(c, i) for i, c in enumerate(pool)])
        if any(o != "ok" for o in outcomes):
            self.note("... writing to %s failed (%s)" % (name, summary(outcomes)))
            return None
        self.note("... global table %s (replicas %s, %s), %d items written in %s" % (
            name, n, peer, pad, n))
        return name

    def wait_log_acked(self, n, timeout=10.0):
        """Waits until every peer of region n has acknowledged every entry
        of n's log (meridian_replication_pending_bytes 0 on every link);
        then returns how many log positions at the top of n's log are failed
        reservations (/replication/status: log_high, the newest seq used,
        past the newest entry on disk or trimmed). None if that did not
        happen within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                samples, _ = harness.scrape_metrics(self.dep[n])
                nbytes = [harness.metric_value(samples, "meridian_replication_pending_bytes", peer=p)
                          for p in self.dep.names if p != n]
                if not any(nbytes):
                    _, _, body = harness.operator_get(self.dep[n], "/replication/status")
                    st = json.loads(body)
                    return int(st["log_high"] - max(st["log_last"], st["log_first"] - 1))
            except Exception:  # noqa: BLE001 - busy: try again
                pass
            time.sleep(0.2)
        return None

    def settle(self, n, timeout=10.0):
        """Waits (bounded) until region n holds no replica of its own that is
        still CREATING: its activation, when its back-fill ends, is a log
        entry of n's, which would cover the holes a hole fault makes."""
        c = harness.client(self.dep[n], read_timeout=5, connect_timeout=2)
        deadline = time.monotonic() + timeout
        creating = []
        while time.monotonic() < deadline:
            creating = []
            try:
                for t in c.list_tables()["TableNames"]:
                    if t.startswith(CHURN_PREFIX):
                        reps = c.describe_table(TableName=t)["Table"].get("Replicas", [])
                        creating += [t for r in reps
                                     if r["RegionName"] == n and r.get("ReplicaStatus") == "CREATING"]
            except Exception:  # noqa: BLE001 - a table deleted meanwhile, a busy region
                creating = ["?"]
            if not creating:
                return
            time.sleep(0.3)
        self.note("... %s still has replicas being created: %s" % (n, ",".join(creating)))

    def holes_kept(self, n, holes):
        """After the log collection pass: whether the top of n's log still
        is the failed reservations (nothing was logged since)."""
        if not holes:
            return False
        now = self.wait_log_acked(n, timeout=3)
        if not now:
            self.note("... the top of %s's log is no longer a hole (something was logged)" % n)
        return bool(now)

    def kill_restart(self, n):
        self.note("... kill -9 %s" % n)
        self.dep.cluster.kill9(n)
        time.sleep(self.rng.uniform(0.1, 0.5))
        self.restart(n, quick=True)

    def hole_ddl(self, n, rounds=4, budget_s=30.0):
        """Failed log reservations at the top of region n's log, from STORM
        concurrent DeleteTable calls on one global table: those that lose
        the race after reserving a log position leave holes. n's fsyncs are
        made slow for the storm, so that the winner's commit is still in
        flight while the others reserve theirs (on an idle or fast disk the
        winner may finish before the others even look the table up). Then
        a log collection pass, kill -9 and restart, and writes again. Done
        again with a new table (up to `rounds` times, within budget_s) while
        the metrics do not show holes at the top of the log, before or after
        the collection pass."""
        dep, rng = self.dep, self.rng
        self.note("%d concurrent DeleteTable of a global table in %s, then kill -9 and restart"
                  % (STORM, n))
        t0 = time.monotonic()
        self.dep.ddl_lock.acquire()
        try:
            name = self.prepared.pop(n, None) or self.prepare_hole(n)
            self.settle(n)
            for attempt in range(rounds):
                if attempt:
                    if time.monotonic() - t0 > budget_s:
                        break
                    name = self.prepare_hole(n, pad=0)
                if name is None:
                    return
                if not self.dep.gates[n].close(timeout=20):
                    log("nemesis: writes in flight in %s did not end within 20 s" % n)
                dep.disks[n].set(sync_delay_us=rng.choice((100000, 200000)))
                try:
                    outcomes = delete_storm(dep[n], name)
                finally:
                    dep.disks[n].clear()
                holes = self.wait_log_acked(n)
                self.note("... %s in %s (slow fsync): %s; %s" % (
                    name, n, summary(outcomes),
                    "peers did not acknowledge the log within 10 s" if holes is None else
                    "%d failed reservation(s) at the top of the log" % holes))
                if not holes:
                    continue
                # A log collection pass while the newest reservations are holes.
                time.sleep(LOG_COLLECT_S + rng.uniform(0.6, 1.5))
                if self.holes_kept(n, holes):
                    break
            self.kill_restart(n)
        finally:
            self.dep.disks[n].clear()
            self.dep.gates[n].open()
            self.dep.ddl_lock.release()

    def hole_disk(self, n, targeted, rounds=2, budget_s=20.0):
        """Client writes failing on a full disk (holes at the top of region
        n's log), then region n's writes stop, space returns, and region n is
        killed and restarted with no successful client write in between:
        at once, or (targeted) after storage writes succeed again and a log
        collection pass has run (done again, within budget_s, if the metrics
        do not show holes at the top of the log then)."""
        dep, rng = self.dep, self.rng
        self.note("disk full in %s while its writes are in flight, then kill -9 and restart%s" % (
            n, " after a log collection pass" if targeted else " at once"))
        t0 = time.monotonic()
        self.dep.ddl_lock.acquire()
        try:
            if targeted:
                if not (self.prepared.pop(n, None) or self.prepare_hole(n)):
                    return
                self.settle(n)
            for attempt in range(rounds if targeted else 1):
                if attempt and time.monotonic() - t0 > budget_s:
                    break
                dep.gates[n].open()
                dep.disks[n].set(enospc=1)
                time.sleep(rng.uniform(1, 3))
                if not dep.gates[n].close(timeout=20):
                    log("nemesis: writes in flight in %s did not end within 20 s" % n)
                if not targeted:
                    self.note("... kill -9 %s (disk still full)" % n)
                    dep.cluster.kill9(n)
                    dep.disks[n].clear()
                    self.note("disk of %s has space again" % n)
                    time.sleep(rng.uniform(0.1, 1.0))
                    self.restart(n, quick=True)
                    return
                dep.disks[n].clear()
                self.note("disk of %s has space again" % n)
                t_clear = time.monotonic()
                while time.monotonic() < t_clear + 15 and disk_full_metric(dep[n]) != 0:
                    time.sleep(0.2)
                holes = self.wait_log_acked(n)
                self.note("... storage writes succeed again in %s after %.1f s; %s" % (
                    n, time.monotonic() - t_clear,
                    "peers did not acknowledge the log within 10 s" if holes is None else
                    "%d failed reservation(s) at the top of the log" % holes))
                if not holes:
                    continue
                time.sleep(LOG_COLLECT_S + rng.uniform(0.6, 1.5))
                if self.holes_kept(n, holes):
                    break
            self.kill_restart(n)
        finally:
            dep.disks[n].clear()
            dep.gates[n].open()
            self.dep.ddl_lock.release()

    def run(self):
        self.t_start = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self.hold(0.5, 2.5)
                if self.stop_event.is_set():
                    break
                self.scheduled = False
                region = None
                now = time.monotonic() - self.t_start
                if self.schedule and now + 8 >= self.schedule[0][0]:
                    # Due soon: nothing else first, so it starts on time.
                    at, self.kind, region = self.schedule.pop(0)
                    self.stop_event.wait(max(0.0, at - now))
                    self.scheduled = True
                elif self.kinds:
                    self.kind = self.rng.choice(self.kinds)
                else:
                    continue
                self.inject(self.kind, region)
        except BaseException as ex:  # noqa: BLE001
            self.crash = ex


# -- DDL churn --------------------------------------------------------------------------

def describe_error(ex):
    if isinstance(ex, ClientError):
        return ex.response.get("Error", {}).get("Code", "?")
    if isinstance(ex, botocore.exceptions.EndpointConnectionError):
        return "connect"
    return type(ex).__name__


def summary(outcomes):
    """'1 ok, 7 ResourceNotFoundException' from a list of outcomes."""
    counts = {}
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    return ", ".join("%d %s" % (n, o) for o, n in sorted(counts.items(), key=lambda x: (x[0] != "ok", x[0])))


def churn_table(name):
    """Guards every DDL call of the churn: only its own tables."""
    if not name.startswith(CHURN_PREFIX) or name == TABLE:
        raise AssertionError("the DDL churn must not touch table %r" % name)
    return name


def churn_create(c, name):
    c.create_table(TableName=churn_table(name),
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                   KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                   BillingMode="PAY_PER_REQUEST")


_POOLS = {}
_POOLS_LOCK = threading.Lock()


def client_pool(server, n):
    """n boto3 clients of server (made once per endpoint: making one takes
    tens of milliseconds), for calls made at once from n threads. Used under
    Deployment.ddl_lock, so by one caller at a time."""
    with _POOLS_LOCK:
        pool = _POOLS.setdefault(server.endpoint, [])
        while len(pool) < n:
            pool.append(harness.client(server, read_timeout=8, connect_timeout=2))
        return pool[:n]


def in_parallel(fns):
    """Runs the callables in threads at once (a barrier releases them
    together); their outcomes ("ok" or an error code)."""
    n = len(fns)
    barrier = threading.Barrier(n)
    outcomes = [None] * n

    def one(i):
        try:
            barrier.wait(10)
            fns[i]()
            outcomes[i] = "ok"
        except Exception as ex:  # noqa: BLE001 - every outcome is reported
            outcomes[i] = describe_error(ex)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return [o or "hung" for o in outcomes]


def delete_storm(server, name, n=STORM):
    """n DeleteTable calls of one table in one region at once; their
    outcomes. Each request is signed and its connection opened first, then
    all are sent in one go: boto3 clients in threads, signing each request
    under the GIL on a busy machine, would reach the server one after the
    other (each finding the table already gone) rather than at once."""
    churn_table(name)
    body = json.dumps({"TableName": name}).encode()
    reqs = []
    for _ in range(n):
        headers, _ = harness.sign_request(server, body, target="DeleteTable")
        lines = ["POST / HTTP/1.1", "Host: %s:%d" % (server.host, server.port)]
        lines += ["%s: %s" % (k, v) for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        lines += ["Content-Length: %d" % len(body), "", ""]
        reqs.append("\r\n".join(lines).encode() + body)
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection((server.host, server.port), timeout=10))
        time.sleep(0.05)  # the server's thread of each connection is up
        for sock, req in zip(socks, reqs):
            sock.sendall(req)
        outcomes = []
        for sock in socks:
            try:
                resp = http.client.HTTPResponse(sock)
                resp.begin()
                data = resp.read()
                if resp.status == 200:
                    outcomes.append("ok")
                else:
                    try:
                        outcomes.append(json.loads(data).get("__type", "?").rsplit("#", 1)[-1])
                    except ValueError:
                        outcomes.append("HTTP %d" % resp.status)
            except Exception as ex:  # noqa: BLE001 - every outcome is reported
                outcomes.append(type(ex).__name__)
        return outcomes
    except OSError as ex:
        return ["connect: %s" % ex.__class__.__name__] * n
    finally:
        for sock in socks:
            sock.close()


def disk_full_metric(server):
    try:
        samples, _ = harness.scrape_metrics(server)
        return harness.metric_value(samples, "meridian_disk_full")
    except Exception:  # noqa: BLE001 - down or busy: unknown
        return None


class DdlChurn(threading.Thread):
    """Table DDL under load, in every region, while the workload writes to
    the main table (which it never touches: churn_table()): global tables
    created in one region with replicas added in others, replicas added and
    removed (UpdateTable ReplicaUpdates Create/Delete), DeleteTable in one
    region (a global table's own replica only), STORM concurrent DeleteTable
    calls of one global table in one region, and a few writes to churned
    tables. Every outcome is tolerated and counted (a region may be down,
    cut off, paused or out of disk); what is checked is the main table and
    that every region still serves and exits cleanly."""

    ACTIONS = (("create", 3), ("add_replica", 3), ("remove_replica", 2), ("delete", 2),
               ("storm", 2), ("write", 4))
    MAX_TABLES = 4

    def __init__(self, dep, seed, stop):
        super().__init__(daemon=True, name="ddl-churn")
        self.dep = dep
        self.rng = random.Random(seed)
        self.stop_event = stop
        self.kinds = [k for k, w in self.ACTIONS for _ in range(w)]
        self.tables = {}  # name -> regions believed to hold a replica
        self.n_created = 0
        self.counts = {}  # action -> {outcome: count}
        self.events = []
        self.clients = {}
        self.crash = None

    def client(self, region):
        s = self.dep[region]
        cached = self.clients.get(region)
        if cached is None or cached[0] != s.endpoint:
            cached = (s.endpoint, harness.client(s, read_timeout=5, connect_timeout=2))
            self.clients[region] = cached
        return cached[1]

    def count(self, action, outcome, what):
        self.counts.setdefault(action, {})
        self.counts[action][outcome] = self.counts[action].get(outcome, 0) + 1
        self.events.append((round(time.monotonic() - self.t_start, 2), action, what, outcome))

    def call(self, action, what, fn):
        try:
            fn()
            outcome = "ok"
        except Exception as ex:  # noqa: BLE001 - every outcome is counted
            outcome = describe_error(ex)
        self.count(action, outcome, what)
        return outcome == "ok"

    def pick(self, min_regions=1):
        names = [t for t, rs in self.tables.items() if len(rs) >= min_regions]
        return self.rng.choice(names) if names else None

    def act(self, action):
        rng, names = self.rng, self.dep.names
        if action == "create" and len(self.tables) >= self.MAX_TABLES:
            action = "delete"
        if action == "create" or not self.tables:
            self.n_created += 1
            name = "%s%d" % (CHURN_PREFIX, self.n_created)
            origin = rng.choice(names)
            if not self.call("create", "%s in %s" % (name, origin),
                             lambda: churn_create(self.client(origin), name)):
                return
            self.tables[name] = {origin}
            for r in rng.sample([x for x in names if x != origin], rng.randint(1, min(2, len(names) - 1))):
                if self.call("add_replica", "%s: %s from %s" % (name, r, origin),
                             lambda r=r: self.client(origin).update_table(
                                 TableName=name, ReplicaUpdates=[{"Create": {"RegionName": r}}])):
                    self.tables[name].add(r)
            return
        name = self.pick()
        holders = sorted(self.tables[name])
        h = rng.choice(holders)
        if action == "add_replica":
            targets = [x for x in names if x not in holders]
            if not targets:
                action = "remove_replica"
            else:
                r = rng.choice(targets)
                if self.call("add_replica", "%s: %s from %s" % (name, r, h),
                             lambda: self.client(h).update_table(
                                 TableName=churn_table(name),
                                 ReplicaUpdates=[{"Create": {"RegionName": r}}])):
                    self.tables[name].add(r)
                return
        if action == "remove_replica":
            others = [x for x in holders if x != h]
            if not others:
                action = "delete"
            else:
                r = rng.choice(others)
                if self.call("remove_replica", "%s: %s from %s" % (name, r, h),
                             lambda: self.client(h).update_table(
                                 TableName=churn_table(name),
                                 ReplicaUpdates=[{"Delete": {"RegionName": r}}])):
                    self.tables[name].discard(r)
                return
        if action == "delete":
            self.call("delete", "%s in %s" % (name, h),
                      lambda: self.client(h).delete_table(TableName=churn_table(name)))
            self.tables[name].discard(h)  # gone there, whatever the answer (or soon)
        elif action == "storm":
            outcomes = delete_storm(self.dep[h], name)
            self.count("storm", "ok" if "ok" in outcomes else outcomes[0],
                       "%d DeleteTable of %s in %s: %s" % (STORM, name, h, summary(outcomes)))
            self.tables[name].discard(h)
        elif action == "write":
            for i in range(rng.randint(1, 5)):
                if not self.call("write", "%s in %s" % (name, h),
                                 lambda i=i: self.client(h).put_item(
                                     TableName=churn_table(name),
                                     Item={"pk": {"S": "k%d" % rng.randrange(20)},
                                           "v": {"S": "%s-%d" % (h, i)}})):
                    break
        if not self.tables[name]:
            del self.tables[name]

    def run(self):
        self.t_start = time.monotonic()
        try:
            while not self.stop_event.wait(self.rng.uniform(0.2, 0.8)):
                action = self.rng.choice(self.kinds)
                with self.dep.ddl_lock:
                    if self.stop_event.is_set():
                        break
                    self.act(action)
        except BaseException as ex:  # noqa: BLE001 - reported by the runner
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


def pending_bytes(dep):
    """{(region, peer): bytes of log entries region has not had
    acknowledged by peer} (meridian_replication_pending_bytes: entries that
    exist, not positions); None if a region does not answer."""
    out = {}
    for n in dep.names:
        try:
            samples, _ = harness.scrape_metrics(dep[n])
        except Exception:  # noqa: BLE001
            return None
        for _, labels, v in harness.metric_samples(samples, "meridian_replication_pending_bytes"):
            out[(n, labels.get("peer"))] = v
    return out


def ahead_plan(seed, mode, only):
    """How a seed has a region an hour ahead: "start", "restart" (the
    nemesis's clock_ahead, early) or None. "auto" goes by the seed: seeds
    1, 2, 3 (CI) get restart, none and start."""
    if only and "clock_ahead" not in only:
        return None
    if mode == "auto":
        return {0: "start", 1: "restart", 2: None}[seed % 3]
    return None if mode == "none" else mode


def hole_plan(seed, only):
    """The hole fault every seed has early: hole_disk for odd seeds,
    hole_ddl for even ones (or the one --only allows; None if neither)."""
    kinds = [k for k in (("hole_disk", "hole_ddl") if seed % 2 else ("hole_ddl", "hole_disk"))
             if not only or k in only]
    return kinds[0] if kinds else None


def run_one(seed, n_regions, duration, workers_per_region, n_keys, converge_timeout, only=None,
            grace_ms="random", keep_history=None, ahead="auto", stall_s=10.0):
    rng = random.Random(seed)
    if grace_ms == "random":
        grace_ms = rng.choice((None, 1500, 4000))  # None: the default (a day)
    ahead_mode = ahead_plan(seed, ahead, only)
    ahead_region = rng.choice(REGION_NAMES[:n_regions]) if ahead_mode else None
    t_setup = time.monotonic()
    dep = Deployment(rng, n_regions, grace_ms, tag="faults-s%d" % seed,
                     ahead=ahead_region if ahead_mode == "start" else None)
    dep.ahead = ahead_region
    result = {"seed": seed, "regions": n_regions, "duration_s": duration,
              "clock_offsets_ms": dict(dep.offsets), "tombstone_grace_ms": grace_ms,
              "max_clock_skew_ms": MAX_SKEW_MS, "ahead_region": ahead_region, "ahead_mode": ahead_mode}
    ok = False
    try:
        # Created (and its replicas added) by a region whose clock is not
        # ahead: a replica added by a region an hour ahead waits for its
        # back-fill until the other replicas' clocks reach the addition
        # minus the tombstone grace (backfill_ready), i.e. for up to an hour
        # with a short grace (tests/faults/RESULTS.md).
        dep.cluster.create_global_table(TABLE, timeout=60,
                                        origin=[n for n in dep.names if n != dep.ahead][0])
        log("seed %d: %d regions %s, offsets %s, grace %s%s; set up in %.1f s" % (
            seed, n_regions, ",".join(dep.names), dep.offsets, grace_ms,
            ", %s an hour ahead (%s)" % (ahead_region, "from the start" if ahead_mode == "start"
                                         else "after a restart") if ahead_mode else "",
            time.monotonic() - t_setup))
        keys = ["k%02d" % i for i in range(n_keys)]
        history = History()
        stop = threading.Event()
        workers = [Worker(dep, n, "%s.%d" % (n, i), rng.randrange(1 << 30), history, stop, keys)
                   for n in dep.names for i in range(workers_per_region)]
        # Early in every seed: the restart an hour ahead, then a hole fault,
        # so that writes follow them for most of the seed.
        schedule = []
        if ahead_mode == "restart":
            schedule.append((rng.uniform(0.02, 0.08) * duration, "clock_ahead", ahead_region))
        hole = hole_plan(seed, only)
        hole_region = rng.choice(dep.names)
        if hole:
            schedule.append((rng.uniform(0.06, 0.15) * duration, hole, hole_region))
        nemesis = Nemesis(dep, rng.randrange(1 << 30), stop, only, schedule, history)
        if hole:
            # Its table, with the log pad, before the clock starts.
            nemesis.kind = hole
            name = nemesis.prepare_hole(hole_region)
            if name:
                nemesis.prepared[hole_region] = name
        churn = DdlChurn(dep, rng.randrange(1 << 30), stop) if not only or "ddl" in only else None
        threads = workers + [nemesis] + ([churn] if churn else [])
        for t in threads:
            t.start()
        stop.wait(duration)
        stop.set()
        for t in threads:
            t.join(150)  # a hole fault started late may run on for a while
        for t in threads:
            if t.is_alive():
                raise RuntimeError("%s did not stop" % t.name)
            if t.crash is not None:
                raise RuntimeError("%s failed: %r" % (t.name, t.crash)) from t.crash

        # Heal everything, then measure how long until every region agrees.
        # Stop waiting early when the regions differ while no region has
        # anything left to send for stall_s seconds: nothing more is coming.
        dep.heal_everything()
        t_heal = time.monotonic()
        deadline = t_heal + converge_timeout
        final = None
        stalled_since, stalled = None, False
        while True:
            try:
                final = read_final(dep, keys + dep.extra_keys)
                if same_everywhere(final):
                    break
            except Exception as ex:  # noqa: BLE001 - a region still starting
                log("reading final state: %r" % ex)
            if time.monotonic() > deadline:
                break
            pending = pending_bytes(dep) if final is not None else None
            if pending is not None and not any(pending.values()):
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > stall_s:
                    stalled = True
                    log("regions differ and nothing is pending anywhere for %.0f s: not waiting longer"
                        % stall_s)
                    break
            else:
                stalled_since = None
                if pending and int(time.monotonic() - t_heal) % 15 == 14:
                    log("still pending: %s" % {"%s->%s" % k: v for k, v in pending.items() if v})
            time.sleep(0.2)
        converge_s = time.monotonic() - t_heal
        # Full comparison: every region's scan, and `meridian verify`'s digests.
        contents = {n: harness.table_contents(harness.client(dep[n]), TABLE) for n in dep.names}
        first = contents[dep.names[0]]
        scans_equal = all(contents[n] == first for n in dep.names)
        vrc, vout = run_verify(dep)

        ops = history.ops
        clocks = Clocks(dep.clock_log, MAX_SKEW_MS, SKEW_MARGIN_MS)
        violations = check(ops, final, limit=1000000, clocks=clocks)
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
            "stalled": stalled,
            "clock_timeline": {n: tl for n, tl in dep.clock_log.items()},
            "ddl": churn.counts if churn else {},
            "ddl_events": churn.events if churn else [],
            "ddl_tables_at_end": churn_tables_at_end(dep),
        })
        if keep_history:
            with open(keep_history % seed, "w") as f:
                json.dump({"history": [o.to_json() for o in ops], "final": {
                    r: {k: list(v) for k, v in d.items()} for r, d in final.items()},
                    "clocks": dep.clock_log, "max_clock_skew_ms": MAX_SKEW_MS}, f)
        ok = not violations
        log("seed %d: %d operations, %d acknowledged writes, %d unknown, %s in %.2f s, "
            "p99 %.1f ms, %d DDL calls, %d violation(s) %s" % (
                seed, len(ops), acked_writes, result["unknown_writes"],
                "converged" if result["converged"] else "NOT converged", converge_s,
                result["latency_p99_ms"] or 0, sum(sum(c.values()) for c in result["ddl"].values()),
                len(violations), json.dumps(result["violations_by_kind"])))
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


def churn_tables_at_end(dep):
    """{region: [churned tables it lists]} (informative: not checked)."""
    out = {}
    for n in dep.names:
        try:
            names = harness.client(dep[n], read_timeout=10).list_tables()["TableNames"]
            out[n] = [t for t in names if t.startswith(CHURN_PREFIX)]
        except Exception as ex:  # noqa: BLE001
            out[n] = "error: %s" % describe_error(ex)
    return out


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
            if not what.startswith(("restart", "disk of", "...")):
                total["faults_by_kind"][kind] = total["faults_by_kind"].get(kind, 0) + 1
    total["faults"] = sum(total["faults_by_kind"].values())
    total["violations_by_kind"] = {}
    total["ddl_calls"] = {}
    for r in results:
        for k, n in r["violations_by_kind"].items():
            total["violations_by_kind"][k] = total["violations_by_kind"].get(k, 0) + n
        for action, outcomes in r.get("ddl", {}).items():
            for o, n in outcomes.items():
                d = total["ddl_calls"].setdefault(action, {})
                d[o] = d.get(o, 0) + n
    total["seeds_with_violations"] = {}
    for r in results:
        for k in r["violations_by_kind"]:
            total["seeds_with_violations"].setdefault(k, []).append(r["seed"])
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
    ap.add_argument("--only", default="", help="comma-separated fault kinds to use (default: all): "
                    + ",".join([k for k, _ in Nemesis.FAULTS] + list(Nemesis.OTHER_KINDS)))
    ap.add_argument("--ahead", default="auto", choices=("auto", "start", "restart", "none"),
                    help="a region an hour ahead: from the start, from an early restart, none, or "
                         "by the seed (auto, the default: seeds 1, 2, 3 get restart, none, start)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--history", help="write each seed's history to this path (%%d = seed)")
    args = ap.parse_args(argv)
    only = set(x for x in args.only.split(",") if x) or None
    if only:
        unknown = only - set(k for k, _ in Nemesis.FAULTS) - set(Nemesis.OTHER_KINDS)
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
                args.converge_timeout, only, keep_history=args.history, ahead=args.ahead)
            i += 1
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s]
        counts = [int(r) for r in args.regions.split(",") if r]
        for i, seed in enumerate(seeds):
            one(seed, counts[i % len(counts)], args.duration, args.workers,
                args.keys, args.converge_timeout, only, keep_history=args.history, ahead=args.ahead)
    total = totals(results, t0)
    log("total: %s" % json.dumps(total))
    return 0 if total["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
