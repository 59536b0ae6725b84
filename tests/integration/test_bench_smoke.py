"""meridian-bench (bench/loadgen) against a real meridian: a closed-loop mix:50
run that creates and preloads its table, an open-loop (--rate) run, a query
run, and runs with a wrong secret key. Checks what the tool reports (--json)
and what it really wrote (through boto3); nothing here depends on timing.

Exit status of meridian-bench: 0 if every recorded request succeeded, 1 if
some failed (the report is still printed and written), 2 for bad options or
a failed setup (e.g. --create-table with a wrong secret).

The binary is the sibling `meridian-bench` of MERIDIAN_BIN (same build).
"""
import json
import os
import subprocess
import tempfile

import harness
from harness import create_table, requires_meridian

server = None
c = None
AUTH_TABLE = "bench_auth"


def bench_bin():
    return os.path.join(os.path.dirname(os.path.abspath(harness.meridian_bin())), "meridian-bench")


def setUpModule():
    global server, c
    if harness.moto_mode:
        return
    server = harness.Server(name="bench").start()
    c = harness.client(server)
    create_table(c, AUTH_TABLE, ("pk", "S"))


def tearDownModule():
    if server is not None:
        server.close()


@requires_meridian()
class BenchSmokeTest(harness.TestCase):
    def run_bench(self, *args, secret=None, expect_json=True):
        """Runs meridian-bench against the server; returns (exit code, JSON report
        or None, stdout + stderr)."""
        binary = bench_bin()
        self.assertTrue(os.path.exists(binary), "meridian-bench not built next to %s" % harness.meridian_bin())
        fd, path = tempfile.mkstemp(prefix="bench-", suffix=".json")
        os.close(fd)
        os.unlink(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_ACCESS_KEY_ID"] = server.access_key
        env["AWS_SECRET_ACCESS_KEY"] = secret if secret is not None else server.secret
        cmd = [binary, "--endpoint", server.endpoint, "--region", server.region, "--json", path] + list(args)
        try:
            p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=180)
            out = "$ %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr)
            report = None
            if os.path.exists(path):
                with open(path) as f:
                    report = json.load(f)
            if expect_json:
                self.assertIsNotNone(report, "no JSON report\n" + out)
            return p.returncode, report, out
        finally:
            if os.path.exists(path):
                os.unlink(path)

    def test_mix_closed_loop_creates_preloads_and_reports(self):
        rc, r, out = self.run_bench("--create-table", "--preload", "--workload", "mix:50", "--duration", "5",
                                    "--warmup", "1", "--keys", "2000", "--connections", "16",
                                    "--table", "bench_mix")
        self.assertEqual(rc, 0, out)
        self.assertEqual(r["workload"], "mix:50", out)
        self.assertEqual(r["connections"], 16)
        self.assertIsNone(r["rate"])
        self.assertEqual(r["duration_s"], 5)
        self.assertGreater(r["ops"], 0, out)
        self.assertEqual(r["errors"], 0, out)
        self.assertEqual(r["errors_by_type"], {}, out)
        self.assertGreater(r["p99_ms"], 0, out)
        self.assertGreater(r["ops_per_s"], 0, out)
        for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
            self.assertIn(k, r)
        self.assertLessEqual(r["p50_ms"], r["p90_ms"])
        self.assertLessEqual(r["p90_ms"], r["p99_ms"])
        self.assertLessEqual(r["p99_ms"], r["p999_ms"])
        self.assertLessEqual(r["p999_ms"], r["max_ms"])
        self.assertEqual(r["ops_by_type"].get("GetItem", 0) + r["ops_by_type"].get("PutItem", 0), r["ops"])
        self.assertGreater(r["ops_by_type"].get("GetItem", 0), 0, out)
        self.assertGreater(r["ops_by_type"].get("PutItem", 0), 0, out)
        # Every key was preloaded, so every GetItem found its item.
        self.assertEqual(r["get_misses"], 0, out)
        self.assertIn("ops/s", out)
        # The table exists with the documented schema, and the items are really there.
        desc = c.describe_table(TableName="bench_mix")["Table"]
        self.assertEqual(desc["KeySchema"], [{"AttributeName": "pk", "KeyType": "HASH"}])
        for key in ("k0000000000", "k0000001234", "k0000001999"):
            item = c.get_item(TableName="bench_mix", Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
            self.assertIsNotNone(item, "%s missing\n%s" % (key, out))
            self.assertEqual(len(item["v"]["B"]), 1024)
        self.assertNotIn("Item", c.get_item(TableName="bench_mix", Key={"pk": {"S": "k0000002000"}}))

        # A second run reuses the table.
        rc, r, out = self.run_bench("--create-table", "--workload", "get", "--duration", "1", "--warmup", "0",
                                    "--keys", "2000", "--connections", "4", "--table", "bench_mix")
        self.assertEqual(rc, 0, out)
        self.assertIn("reusing table bench_mix", out)
        self.assertGreater(r["ops"], 0, out)
        self.assertEqual(r["errors"], 0, out)
        self.assertEqual(r["get_misses"], 0, out)

    def test_rate_mode(self):
        rc, r, out = self.run_bench("--create-table", "--workload", "update", "--rate", "500", "--duration", "3",
                                    "--warmup", "1", "--keys", "50", "--connections", "8", "--table", "bench_rate")
        self.assertEqual(rc, 0, out)
        self.assertEqual(r["rate"], 500)
        self.assertGreater(r["ops"], 0, out)
        self.assertEqual(r["errors"], 0, out)
        self.assertGreater(r["p99_ms"], 0, out)
        # Each successful UpdateItem added 1 to its item's counter (warmup ones too).
        items = c.scan(TableName="bench_rate", ConsistentRead=True)["Items"]
        self.assertGreater(len(items), 0)
        self.assertLessEqual(len(items), 50)
        self.assertGreaterEqual(sum(int(it["c"]["N"]) for it in items), r["ops"], out)

    def test_query_workload(self):
        rc, r, out = self.run_bench("--create-table", "--preload", "--workload", "query", "--collection", "3",
                                    "--keys", "40", "--duration", "1", "--warmup", "0.5", "--connections", "4",
                                    "--threads", "2", "--table", "bench_query")
        self.assertEqual(rc, 0, out)
        self.assertGreater(r["ops"], 0, out)
        self.assertEqual(r["errors"], 0, out)
        resp = c.query(TableName="bench_query", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "k0000000039"}}, ConsistentRead=True)
        self.assertEqual([int(i["sk"]["N"]) for i in resp["Items"]], [0, 1, 2])
        # A table of the wrong schema is refused before anything is sent.
        rc, r, out = self.run_bench("--create-table", "--workload", "put", "--duration", "1",
                                    "--table", "bench_query", expect_json=False)
        self.assertEqual(rc, 2, out)
        self.assertIn("Use another --table", out)

    def test_wrong_secret_reports_errors(self):
        # Decided behaviour: the run completes, every request is an error with
        # the server's __type, the report is written, and the exit status is 1.
        rc, r, out = self.run_bench("--workload", "put", "--duration", "1", "--warmup", "0", "--keys", "100",
                                    "--connections", "4", "--table", AUTH_TABLE, secret="not-the-secret")
        self.assertEqual(rc, 1, out)
        self.assertGreater(r["errors"], 0, out)
        self.assertEqual(r["ops"], 0, out)
        self.assertEqual(r["errors_by_type"], {"InvalidSignatureException": r["errors"]}, out)
        self.assertEqual(r["errors_by_status"], {"400": r["errors"]}, out)
        self.assertIn("InvalidSignatureException", out)
        self.assertEqual(c.scan(TableName=AUTH_TABLE)["Count"], 0)
        # Setup (--create-table) with a wrong secret fails at once with status 2.
        rc, r, out = self.run_bench("--create-table", "--workload", "put", "--table", AUTH_TABLE,
                                    secret="not-the-secret", expect_json=False)
        self.assertEqual(rc, 2, out)
        self.assertIsNone(r)
        self.assertIn("InvalidSignatureException", out)
