#!/usr/bin/env python3
"""The side-by-side benchmark (issue 4): Meridian against dynalite, moto and
redis-server on this machine, in one run. Called by bench/run after it has
installed and built everything; every section starts its own processes on
127.0.0.1 and stops them again.

Sections (--only a,b,...):
  api          Meridian one region: PutItem / GetItem max throughput, 1 KB
               items, 64 connections, durable writes (meridian-bench)
  dynalite     the same workloads against dynalite (npm, bench/.peers)
  moto         PutItem against moto in server mode (moto_server)
  redis        redis-benchmark SET/GET, same concurrency and value size, with
               appendonly yes + appendfsync always, and with everysec
  repl         three regions, a fixed write rate into one; replication lag to
               the others from an independent probe (write a key, poll the
               other regions until it is visible) and from the regions'
               commit-to-apply histograms; the same rate into a Redis primary
               with a replica, probed the same way
  catchup      one of three regions stopped for a while at that rate, then
               restarted: time until it has caught up, as a multiple of the
               write rate
  backfill     a replica added to a table of N items of ~1 KB: time until
               ACTIVE, MB/s; RSS and bytes on disk per million items
  scaling      the replication probe with 2, 3 and 5 regions

Every figure named in issue 4 goes to --json FILE (null, with the reason
printed, when a peer could not run).
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AK, SK, ACCOUNT = "AKIDBENCHMARK0000001", "bench-secret-key-0123456789abcdefghijklmn", "000000000001"
REGIONS5 = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "ca-central-1"]
JSON_KEYS = [
    "meridian_put_ops", "meridian_get_ops", "meridian_put_p99_ms", "meridian_get_p99_ms",
    "dynalite_put_ops", "dynalite_get_ops", "moto_put_ops", "redis_set_ops", "redis_get_ops",
    "repl_lag_p50_ms", "repl_lag_p99_ms", "redis_repl_lag_p50_ms", "redis_repl_lag_p99_ms",
    "catchup_rate_multiple", "backfill_mb_per_s", "rss_mb_per_million_items",
]


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d after %.0f s" % (port, timeout))


def stop(proc, sig=signal.SIGTERM, timeout=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- a minimal DynamoDB client: SigV4 over one keep-alive connection ----------

class Dynamo:
    """Signed DynamoDB JSON calls on one persistent HTTP connection: cheap
    enough (~0.1-0.2 ms a call) for polling probes, unlike boto3 (~1 ms)."""

    def __init__(self, port, region):
        self.port, self.region = port, region
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.keys = {}

    def _key(self, date):
        k = self.keys.get(date)
        if k is None:
            k = ("AWS4" + SK).encode()
            for part in (date, self.region, "dynamodb", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self.keys = {date: k}
        return k

    def call(self, op, body):
        data = json.dumps(body).encode()
        now = datetime.datetime.now(datetime.timezone.utc)
        amz, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = "127.0.0.1:%d" % self.port
        target = "DynamoDB_20120810." + op
        headers = {"content-type": "application/x-amz-json-1.0", "host": host,
                   "x-amz-date": amz, "x-amz-target": target}
        signed = ";".join(sorted(headers))
        canon = "POST\n/\n\n" + "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)) + \
            "\n" + signed + "\n" + hashlib.sha256(data).hexdigest()
        scope = "%s/%s/dynamodb/aws4_request" % (date, self.region)
        sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz, scope, hashlib.sha256(canon.encode()).hexdigest())
        sig = hmac.new(self._key(date), sts.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            AK, scope, signed, sig)
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/", body=data, headers=headers)
                r = self.conn.getresponse()
                out = json.loads(r.read() or b"{}")
                if r.status != 200:
                    raise RuntimeError("%s: HTTP %d %s" % (op, r.status, out))
                return out
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    raise

    def close(self):
        self.conn.close()


# -- Meridian regions ------------------------------------------------------------

class Deployment:
    """N Meridian regions on loopback, each its own process and data directory."""

    def __init__(self, binary, names, root, extra=()):
        self.binary, self.names, self.root, self.extra = binary, list(names), root, list(extra)
        self.cred = os.path.join(root, "credentials")
        self.key = os.path.join(root, "cluster.key")
        self.token_path = os.path.join(root, "admin.token")  # the operator's, for /metrics
        self.token = "bench-admin-token-%s" % os.urandom(16).hex()
        with open(self.cred, "w") as f:
            f.write("%s %s %s\n" % (AK, SK, ACCOUNT))
        with open(self.key, "w") as f:
            f.write("bench-cluster-key-%s\n" % os.urandom(16).hex())
        with open(self.token_path, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.cred, 0o600)
        os.chmod(self.key, 0o600)
        os.chmod(self.token_path, 0o600)
        self.port = {n: free_port() for n in self.names}
        self.peer_port = {n: free_port() for n in self.names}
        self.proc = {}
        for n in self.names:
            self.start(n)
        for n in self.names:
            wait_port(self.port[n], proc=self.proc[n])

    def start(self, name):
        args = [self.binary, "serve", "--region", name, "--data", os.path.join(self.root, name),
                "--listen", "127.0.0.1:%d" % self.port[name],
                "--peer-listen", "127.0.0.1:%d" % self.peer_port[name],
                "--credentials", self.cred, "--cluster-key", self.key, "--log-level", "warn",
                "--admin-token-file", self.token_path]
        for o in self.names:
            if o != name:
                args += ["--peer", "%s=127.0.0.1:%d" % (o, self.peer_port[o])]
        log_f = open(os.path.join(self.root, name + ".log"), "a")
        self.proc[name] = subprocess.Popen(args + self.extra, stdout=log_f, stderr=log_f)
        log_f.close()

    def endpoint(self, name):
        return "http://127.0.0.1:%d" % self.port[name]

    def client(self, name):
        return Dynamo(self.port[name], name)

    def metrics(self, name):
        c = http.client.HTTPConnection("127.0.0.1", self.port[name], timeout=10)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + self.token})
        text = c.getresponse().read().decode()
        c.close()
        return text

    def rss_mb(self, name):
        with open("/proc/%d/status" % self.proc[name].pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return None

    def stop(self):
        for p in self.proc.values():
            stop(p)


def create_table(c, name, sort_key=False):
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if sort_key:
        attrs.append({"AttributeName": "sk", "AttributeType": "N"})
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
    c.call("CreateTable", {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                           "AttributeDefinitions": attrs, "KeySchema": keys})


def replicas_active(dep, table, regions):
    for r in regions:
        try:
            t = dep.client(r).call("DescribeTable", {"TableName": table})["Table"]
        except RuntimeError:
            return False
        reps = {x["RegionName"]: x["ReplicaStatus"] for x in t.get("Replicas", [])}
        if any(reps.get(x) != "ACTIVE" for x in regions):
            return False
    return True


def make_global(dep, table, timeout=600):
    origin = dep.names[0]
    c = dep.client(origin)
    create_table(c, table)
    added = [origin]
    for r in dep.names[1:]:
        c.call("UpdateTable", {"TableName": table, "ReplicaUpdates": [{"Create": {"RegionName": r}}]})
        added.append(r)
        deadline = time.time() + timeout
        while not replicas_active(dep, table, added):
            if time.time() > deadline:
                raise RuntimeError("replica %s of %s not ACTIVE after %d s" % (r, table, timeout))
            time.sleep(0.05)


# -- the load generator ------------------------------------------------------------

def loadgen(bench, endpoint, workload, duration, args, extra=(), region="us-east-1", table="bench"):
    out = tempfile.mktemp(prefix="meridian-bench-", suffix=".json")
    cmd = [bench, "--endpoint", endpoint, "--region", region, "--table", table,
           "--workload", workload, "--duration", str(duration), "--warmup", str(args.warmup),
           "--connections", str(args.connections), "--item-size", "1024", "--json", out] + list(extra)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK)
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=duration * 4 + 600)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError("meridian-bench failed (%d): %s" % (r.returncode, r.stdout[-2000:]))
    with open(out) as f:
        res = json.load(f)
    os.unlink(out)
    if res.get("errors"):
        log("  %s: %d errors %s" % (workload, res["errors"], res.get("errors_by_type")))
    return res


def throughput_pair(name, bench, endpoint, args, region="us-east-1", put=True, get=True, get_keys=None):
    """PutItem and GetItem max throughput against one endpoint."""
    out = {}
    if put:
        r = loadgen(bench, endpoint, "put", args.duration, args, ["--create-table", "--keys", str(args.keys)],
                    region=region, table="bench_put")
        out["put"] = r
        log("  %s PutItem: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d"
            % (name, r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]))
    if get:
        r = loadgen(bench, endpoint, "get", args.duration, args,
                    ["--create-table", "--preload", "--keys", str(get_keys or args.get_keys)], region=region,
                    table="bench_get")
        out["get"] = r
        log("  %s GetItem: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d"
            % (name, r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]))
    return out


# -- sections ----------------------------------------------------------------------

def section_api(args, res, detail):
    root = tempfile.mkdtemp(prefix="bench-api-")
    dep = Deployment(args.bin, ["us-east-1"], root)
    try:
        out = throughput_pair("meridian", args.bench, dep.endpoint("us-east-1"), args)
        res["meridian_put_ops"] = out["put"]["ops_per_s"]
        res["meridian_get_ops"] = out["get"]["ops_per_s"]
        res["meridian_put_p99_ms"] = out["put"]["p99_ms"]
        res["meridian_get_p99_ms"] = out["get"]["p99_ms"]
        detail["meridian"] = out
    finally:
        dep.stop()
        shutil.rmtree(root, ignore_errors=True)


def section_dynalite(args, res, detail):
    exe = os.path.join(HERE, ".peers", "node_modules", ".bin", "dynalite")
    if not os.path.exists(exe):
        log("  dynalite skipped: not installed (npm install dynalite into bench/.peers failed)")
        return
    root = tempfile.mkdtemp(prefix="bench-dynalite-")
    port = free_port()
    # --path: LevelDB on disk, the closest dynalite comes to durable writes.
    p = subprocess.Popen([exe, "--port", str(port), "--path", root, "--createTableMs", "0",
                          "--deleteTableMs", "0", "--updateTableMs", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        out = throughput_pair("dynalite", args.bench, "http://127.0.0.1:%d" % port, args)
        res["dynalite_put_ops"] = out["put"]["ops_per_s"]
        res["dynalite_get_ops"] = out["get"]["ops_per_s"]
        detail["dynalite"] = out
    finally:
        stop(p)
        shutil.rmtree(root, ignore_errors=True)


def section_moto(args, res, detail):
    exe = shutil.which("moto_server")
    if not exe:
        log("  moto skipped: moto_server is not installed in this Python")
        return
    port = free_port()
    p = subprocess.Popen([exe, "-p", str(port), "-H", "127.0.0.1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        # moto takes ~200 writes/s: its GetItem run preloads a small key space.
        out = throughput_pair("moto", args.bench, "http://127.0.0.1:%d" % port, args, get=not args.quick,
                              get_keys=2000)
        res["moto_put_ops"] = out["put"]["ops_per_s"]
        if "get" in out:
            res["moto_get_ops"] = out["get"]["ops_per_s"]
        detail["moto"] = out
    finally:
        stop(p)


def redis_server(root, port, fsync, extra=()):
    os.makedirs(root, exist_ok=True)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", root,
            "--save", "", "--appendonly", "yes" if fsync else "no", "--protected-mode", "no"]
    if fsync:
        args += ["--appendfsync", fsync]
    p = subprocess.Popen(args + list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return p


def section_redis(args, res, detail):
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        log("  redis skipped: redis-server / redis-benchmark not installed")
        return
    n = 50000 if args.quick else 300000
    for fsync in ("always", "everysec"):
        root = tempfile.mkdtemp(prefix="bench-redis-")
        port = free_port()
        p = redis_server(root, port, fsync)
        try:
            r = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
                                "-n", str(n), "-c", str(args.connections), "-d", "1024",
                                "-r", str(args.keys), "--csv"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=600)
            rows = {}
            for line in r.stdout.splitlines():
                cells = [c.strip('"') for c in line.split(",")]
                if cells and cells[0] in ("SET", "GET"):
                    rows[cells[0]] = {"ops_per_s": float(cells[1]), "p50_ms": float(cells[4]),
                                      "p99_ms": float(cells[6]), "max_ms": float(cells[7])}
            detail["redis_" + fsync] = rows
            for op in ("SET", "GET"):
                if op in rows:
                    log("  redis (appendfsync %s) %s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms"
                        % (fsync, op, rows[op]["ops_per_s"], rows[op]["p50_ms"], rows[op]["p99_ms"]))
            if fsync == "always":
                res["redis_set_ops"] = rows.get("SET", {}).get("ops_per_s")
                res["redis_get_ops"] = rows.get("GET", {}).get("ops_per_s")
            else:
                res["redis_everysec_set_ops"] = rows.get("SET", {}).get("ops_per_s")
                res["redis_everysec_get_ops"] = rows.get("GET", {}).get("ops_per_s")
        finally:
            stop(p)
            shutil.rmtree(root, ignore_errors=True)


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def hist_quantiles(metrics_text, source, destination):
    """p50/p99 (ms) of meridian_replication_latency_seconds{source,destination},
    interpolated linearly inside the bucket (coarse: the buckets are 1, 2.5, 5,
    10 ... ms)."""
    buckets = []
    for m in re.finditer(r'meridian_replication_latency_seconds_bucket\{source="([^"]+)",'
                         r'destination="([^"]+)",le="([^"]+)"\} (\d+)', metrics_text):
        if m.group(1) == source and m.group(2) == destination:
            le = float("inf") if m.group(3) == "+Inf" else float(m.group(3))
            buckets.append((le, int(m.group(4))))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None, None, 0

    def q(x):
        want = x * total
        prev_le, prev_c = 0.0, 0
        for le, c in buckets:
            if c >= want:
                if le == float("inf"):
                    return prev_le * 1000
                return (prev_le + (le - prev_le) * (want - prev_c) / max(1, c - prev_c)) * 1000
            prev_le, prev_c = le, c
        return prev_le * 1000
    return q(0.5), q(0.99), total


class Probe(threading.Thread):
    """Every interval: write a fresh key in one place, then poll each other
    place until it is visible there; records (destination, seconds) from the
    write's acknowledgement to visibility."""

    def __init__(self, write, reads, interval=0.05):
        super().__init__(daemon=True)
        self.write, self.reads, self.interval = write, reads, interval
        self.samples = []
        self.timeouts = 0
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set():
            key = "probe-%d-%d" % (os.getpid(), i)
            i += 1
            self.write(key)
            t1 = time.perf_counter()
            pending = dict(self.reads)
            while pending and time.perf_counter() - t1 < 10:
                for name in list(pending):
                    if pending[name](key):
                        self.samples.append((name, time.perf_counter() - t1))
                        del pending[name]
            self.timeouts += len(pending)
            self.halt.wait(self.interval)

    def finish(self):
        self.halt.set()
        self.join()
        v = sorted(s for _, s in self.samples)
        return {"samples": len(v), "timeouts": self.timeouts,
                "p50_ms": percentile(v, 0.5) * 1000 if v else None,
                "p99_ms": percentile(v, 0.99) * 1000 if v else None,
                "max_ms": v[-1] * 1000 if v else None}


def meridian_probe(dep, table, src, dsts):
    w = dep.client(src)
    readers = {d: dep.client(d) for d in dsts}

    def write(key):
        w.call("PutItem", {"TableName": table, "Item": {"pk": {"S": key}, "v": {"S": "probe"}}})

    def reader(c):
        return lambda key: "Item" in c.call("GetItem", {"TableName": table, "Key": {"pk": {"S": key}}})
    return Probe(write, {d: reader(c) for d, c in readers.items()})


def replication_run(args, names, duration, rate):
    """A fixed write rate into names[0] for duration seconds, probed."""
    root = tempfile.mkdtemp(prefix="bench-repl-")
    dep = Deployment(args.bin, names, root)
    try:
        make_global(dep, "bench_repl")
        probe = meridian_probe(dep, "bench_repl", names[0], names[1:])
        probe.start()
        load = loadgen(args.bench, dep.endpoint(names[0]), "put", duration, args,
                       ["--rate", str(rate), "--keys", str(args.keys)], region=names[0], table="bench_repl")
        out = probe.finish()
        out["load_ops_per_s"] = load["ops_per_s"]
        out["load_p99_ms"] = load["p99_ms"]
        hist = {}
        for d in names[1:]:
            p50, p99, count = hist_quantiles(dep.metrics(d), names[0], d)
            hist[d] = {"p50_ms": p50, "p99_ms": p99, "count": count}
        out["histogram"] = hist
        return out
    finally:
        dep.stop()
        shutil.rmtree(root, ignore_errors=True)


class RedisWriter(threading.Thread):
    """SETs of 1 KB values at a fixed rate over one pipelined connection."""

    def __init__(self, port, rate, keys):
        super().__init__(daemon=True)
        self.port, self.rate, self.keys = port, rate, keys
        self.halt = threading.Event()
        self.sent = 0

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        value = b"x" * 1024
        t0 = time.perf_counter()
        buf = b""
        while not self.halt.is_set():
            due = int((time.perf_counter() - t0) * self.rate)
            cmds = []
            while self.sent < due:
                k = b"k%d" % (self.sent % self.keys)
                cmds.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1024\r\n%s\r\n" % (len(k), k, value))
                self.sent += 1
            if cmds:
                s.sendall(b"".join(cmds))
                need = len(cmds)
                while need:
                    buf += s.recv(65536)
                    n = buf.count(b"+OK\r\n")
                    if n:
                        need -= n
                        buf = buf.replace(b"+OK\r\n", b"", n)
            else:
                time.sleep(0.0005)
        s.close()


def redis_cmd(sock, *parts):
    msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    sock.sendall(msg)
    data = b""
    while b"\r\n" not in data:
        data += sock.recv(65536)
    if data.startswith(b"$-1"):
        return None
    if data.startswith(b"$"):
        n = int(data[1:data.index(b"\r\n")])
        head = data.index(b"\r\n") + 2
        while len(data) < head + n + 2:
            data += sock.recv(65536)
        return data[head:head + n]
    return data


def redis_replication(args, duration, rate):
    root = tempfile.mkdtemp(prefix="bench-redis-repl-")
    p1, p2 = free_port(), free_port()
    prim = redis_server(os.path.join(root, "primary"), p1, "always")
    repl = redis_server(os.path.join(root, "replica"), p2, "always", ["--replicaof", "127.0.0.1", str(p1)])
    try:
        r = socket.create_connection(("127.0.0.1", p2))
        deadline = time.time() + 30
        while b"master_link_status:up" not in redis_cmd(r, b"INFO", b"replication"):
            if time.time() > deadline:
                raise RuntimeError("redis replica did not connect")
            time.sleep(0.05)
        w = socket.create_connection(("127.0.0.1", p1))
        writer = RedisWriter(p1, rate, args.keys)
        writer.start()
        probe = Probe(lambda key: redis_cmd(w, b"SET", key.encode(), b"probe"),
                      {"replica": lambda key: redis_cmd(r, b"GET", key.encode()) is not None})
        probe.start()
        time.sleep(duration)
        out = probe.finish()
        writer.halt.set()
        writer.join()
        out["load_ops_per_s"] = writer.sent / duration
        return out
    finally:
        stop(prim)
        stop(repl)
        shutil.rmtree(root, ignore_errors=True)


def section_repl(args, res, detail):
    names = REGIONS5[:3]
    out = replication_run(args, names, args.repl_duration, args.rate)
    detail["replication_3"] = out
    res["repl_lag_p50_ms"], res["repl_lag_p99_ms"] = out["p50_ms"], out["p99_ms"]
    log("  meridian 3 regions at %d writes/s: probe p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples); "
        "histogram %s" % (args.rate, out["p50_ms"], out["p99_ms"], out["max_ms"], out["samples"],
                          json.dumps(out["histogram"])))
    hp50 = [h["p50_ms"] for h in out["histogram"].values() if h["p50_ms"] is not None]
    hp99 = [h["p99_ms"] for h in out["histogram"].values() if h["p99_ms"] is not None]
    res["repl_hist_p50_ms"] = max(hp50) if hp50 else None
    res["repl_hist_p99_ms"] = max(hp99) if hp99 else None
    if not shutil.which("redis-server"):
        log("  redis replication skipped: redis-server not installed")
        return
    r = redis_replication(args, args.repl_duration, args.rate)
    detail["redis_replication"] = r
    res["redis_repl_lag_p50_ms"], res["redis_repl_lag_p99_ms"] = r["p50_ms"], r["p99_ms"]
    log("  redis primary->replica at %d writes/s: probe p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)"
        % (args.rate, r["p50_ms"], r["p99_ms"], r["max_ms"], r["samples"]))


def pending_entries(metrics_text, peer):
    m = re.search(r'meridian_replication_pending_entries\{source="[^"]+",peer="%s"\} (\d+)' % re.escape(peer),
                  metrics_text)
    return int(m.group(1)) if m else None


def section_catchup(args, res, detail):
    names = REGIONS5[:3]
    root = tempfile.mkdtemp(prefix="bench-catchup-")
    dep = Deployment(args.bin, names, root)
    a, victim = names[0], names[2]
    try:
        make_global(dep, "bench_catchup")
        total = args.outage + 30 + args.outage * 6
        env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK)
        load = subprocess.Popen([args.bench, "--endpoint", dep.endpoint(a), "--region", a, "--table",
                                 "bench_catchup", "--workload", "put", "--rate", str(args.rate),
                                 "--duration", str(total), "--warmup", "0", "--connections",
                                 str(args.connections), "--item-size", "1024", "--keys", str(10 ** 7)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        stop(dep.proc[victim])
        t_stop = time.time()
        log("  %s stopped; writing %d/s into %s for %d s" % (victim, args.rate, a, args.outage))
        time.sleep(args.outage)
        backlog = pending_entries(dep.metrics(a), victim)
        dep.start(victim)
        wait_port(dep.port[victim], proc=dep.proc[victim])
        t_back = time.time()
        # Caught up: the victim's backlog from a is down to what 100 ms of
        # writes leave in flight.
        while True:
            p = pending_entries(dep.metrics(a), victim)
            if p is not None and p <= max(1, args.rate // 10):
                break
            if time.time() - t_back > args.outage * 6 + 30:
                raise RuntimeError("no catch-up after %.0f s (pending %s)" % (time.time() - t_back, p))
            time.sleep(0.02)
        t_done = time.time()
        stop(load)
        catchup = t_done - t_back
        drained = (backlog or 0) + args.rate * catchup
        multiple = drained / catchup / args.rate if catchup > 0 else None
        out = {"outage_s": t_back - t_stop, "backlog_entries": backlog, "catchup_s": catchup,
               "rate": args.rate, "multiple": multiple}
        detail["catchup"] = out
        res["catchup_rate_multiple"] = multiple
        log("  catch-up: %s entries behind after %.1f s away; caught up %.2f s after restart: "
            "%.1fx the write rate" % (backlog, t_back - t_stop, catchup, multiple))
    finally:
        dep.stop()
        shutil.rmtree(root, ignore_errors=True)


def du_bytes(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def section_backfill(args, res, detail):
    names = REGIONS5[:2]
    root = tempfile.mkdtemp(prefix="bench-backfill-")
    dep = Deployment(args.bin, names, root)
    a, b = names
    try:
        rss0 = dep.rss_mb(a)
        t0 = time.time()
        load = loadgen(args.bench, dep.endpoint(a), "get", 1, args,
                       ["--create-table", "--preload", "--keys", str(args.items)], region=a, table="bench_backfill")
        log("  loaded %d items of 1 KB in %.1f s (%.0f/s), then %.0f GetItem/s"
            % (args.items, time.time() - t0, args.items / max(0.001, time.time() - t0), load["ops_per_s"]))
        c = dep.client(a)
        size = c.call("DescribeTable", {"TableName": "bench_backfill"})["Table"]["TableSizeBytes"]
        rss1 = dep.rss_mb(a)
        disk = du_bytes(os.path.join(root, a))
        t1 = time.time()
        c.call("UpdateTable", {"TableName": "bench_backfill", "ReplicaUpdates": [{"Create": {"RegionName": b}}]})
        while not replicas_active(dep, "bench_backfill", names):
            if time.time() - t1 > 1800:
                raise RuntimeError("back-fill not done after 30 min")
            time.sleep(0.05)
        took = time.time() - t1
        mbps = size / took / 1e6
        per_m = 1e6 / args.items
        out = {"items": args.items, "table_bytes": size, "seconds": took, "mb_per_s": mbps,
               "rss_mb_before": rss0, "rss_mb_loaded": rss1, "disk_bytes": disk,
               "rss_mb_per_million_items": rss1 * per_m, "rss_growth_mb_per_million_items": (rss1 - rss0) * per_m,
               "disk_mb_per_million_items": disk / 1e6 * per_m}
        detail["backfill"] = out
        res["backfill_mb_per_s"] = mbps
        res["rss_mb_per_million_items"] = out["rss_mb_per_million_items"]
        res["disk_mb_per_million_items"] = out["disk_mb_per_million_items"]
        log("  back-fill of %d items (%.1f MB): ACTIVE after %.2f s, %.1f MB/s; RSS %.0f MB (%.0f MB before), "
            "disk %.1f MB" % (args.items, size / 1e6, took, mbps, rss1, rss0, disk / 1e6))
    finally:
        dep.stop()
        shutil.rmtree(root, ignore_errors=True)


def section_scaling(args, res, detail):
    for n in (2, 3, 5):
        out = replication_run(args, REGIONS5[:n], args.scaling_duration, args.rate)
        detail["scaling_%d" % n] = out
        res["repl_lag_p99_ms_%d_regions" % n] = out["p99_ms"]
        log("  %d regions at %d writes/s: probe p50 %.2f ms, p99 %.2f ms (%d samples, load %.0f/s)"
            % (n, args.rate, out["p50_ms"], out["p99_ms"], out["samples"], out["load_ops_per_s"]))


SECTIONS = [("api", section_api), ("dynalite", section_dynalite), ("moto", section_moto),
            ("redis", section_redis), ("repl", section_repl), ("catchup", section_catchup),
            ("backfill", section_backfill), ("scaling", section_scaling)]


def machine():
    mem = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory_mb": mem, "cpu": cpu, "kernel": platform.release()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-release", "meridian"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build-release", "meridian-bench"))
    ap.add_argument("--quick", action="store_true", help="a reduced run (under 3 minutes)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(n for n, _ in SECTIONS))
    ap.add_argument("--rate", type=int, default=5000, help="writes/s for the replication sections")
    args = ap.parse_args()
    q = args.quick
    args.duration = 5 if q else 20
    args.warmup = 1 if q else 3
    args.connections = 64
    args.keys = 100000
    args.get_keys = 20000 if q else 100000
    args.repl_duration = 10 if q else 30
    args.scaling_duration = 5 if q else 20
    args.outage = 10 if q else 30
    args.items = 100000 if q else 1000000
    only = set(args.only.split(",")) if args.only else None
    res = {k: None for k in JSON_KEYS}
    detail = {}
    t0 = time.time()
    for name, fn in SECTIONS:
        if only and name not in only:
            continue
        log("== %s" % name)
        try:
            fn(args, res, detail)
        except Exception as e:  # a peer that cannot run leaves its figures null
            log("  %s failed: %s" % (name, e))
            detail.setdefault("failures", {})[name] = str(e)
    took = time.time() - t0
    log("done in %.0f s" % took)
    for k in JSON_KEYS:
        if res.get(k) is None:
            log("  %s: null" % k)
    if args.json:
        doc = dict(res)
        doc["_run"] = {"quick": q, "seconds": took, "machine": machine(),
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "command": " ".join(["bench/run"] + sys.argv[1:])}
        doc["_detail"] = detail
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
        log("figures written to %s" % args.json)


if __name__ == "__main__":
    main()
