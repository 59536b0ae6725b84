"""Memcheck: a two-region cluster of the plain (uninstrumented) meridian
binary, each region under `valgrind --leak-check=full`, serves a few puts,
gets, updates, conditional writes, batch writes, queries, scans and deletes
of a global table, replicates them, and is stopped with SIGTERM. Each region
must exit 0 with no definite leak and no invalid read, write or free (any
memcheck error makes valgrind exit with VALGRIND_ERROR_EXIT instead).

Skipped when valgrind is not installed, and when MERIDIAN_BIN is a sanitizer
build (the ASan/TSan ctest runs: their runtimes cannot run under valgrind, and
those builds are checked by their own sanitizers). Slow by nature: about
30-60 s on a 2-core machine.
"""

import re
import shutil
import unittest

import harness
from harness import S, N

VALGRIND = shutil.which("valgrind")
VALGRIND_ERROR_EXIT = 99
REGIONS = ("us-east-1", "eu-west-1")
T = "vg_items"  # pk S + sk N, global table in both regions


def _sanitized(path):
    """True if the binary at path was built with ASan or TSan."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


BIN = harness.meridian_bin()
SKIP = None
if harness.moto_mode:
    SKIP = "MERIDIAN_TEST_ENDPOINT mode: needs meridian processes"
elif not VALGRIND:
    SKIP = "valgrind is not installed (apt-get install valgrind): memcheck test skipped"
elif _sanitized(BIN):
    SKIP = ("%s is a sanitizer build: valgrind runs against the plain build (ctest in build/)"
            % BIN)


def valgrind_command():
    return [VALGRIND, "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--error-exitcode=%d" % VALGRIND_ERROR_EXIT,
            # RocksDB's write queue spins and yields: without fair scheduling
            # a spinning thread can hold valgrind's big lock for long.
            "--fair-sched=yes", "--num-callers=30", "--child-silent-after-fork=yes"]


@unittest.skipIf(SKIP is not None, SKIP or "")
class ValgrindTest(harness.TestCase):
    def test_cluster_under_memcheck(self):
        cl = harness.Cluster(names=REGIONS, tag="vg", start=False)
        try:
            for n in cl:
                cl[n].wrapper = valgrind_command()
            cl.start(timeout=120)
            self.exercise(cl)
            # SIGTERM each region; the exit code is checked below with the log.
            logs = {}
            for n in cl:
                rc = cl[n].stop(timeout=120, check=False)
                logs[n] = (rc, cl[n].log_text())
        except BaseException:
            cl.stop(check=False)
            raise
        cl.stop()
        for n, (rc, log) in logs.items():
            self.check_memcheck(n, rc, log)

    def exercise(self, cl):
        east, west = cl.client("us-east-1"), cl.client("eu-west-1")
        cl.create_global_table(T, hash_key=("pk", "S"), range_key=("sk", "N"), timeout=120)
        for i in range(6):
            east.put_item(TableName=T, Item={"pk": S("p%d" % (i % 2)), "sk": N(i), "v": S("east-%d" % i),
                                             "m": {"M": {"l": {"L": [N(i), S("x")]}}}})
        west.put_item(TableName=T, Item={"pk": S("w"), "sk": N(1), "v": S("west")})
        east.batch_write_item(RequestItems={T: [
            {"PutRequest": {"Item": {"pk": S("b"), "sk": N(i), "n": N(i * 1.5)}}} for i in range(10)]})
        east.update_item(TableName=T, Key={"pk": S("p0"), "sk": N(0)},
                         UpdateExpression="SET v = :v, c = if_not_exists(c, :z) + :one REMOVE m",
                         ExpressionAttributeValues={":v": S("updated"), ":z": N(0), ":one": N(1)})
        # An error path: the condition fails.
        self.assertClientError(
            lambda: east.put_item(TableName=T, Item={"pk": S("p0"), "sk": N(0)},
                                  ConditionExpression="attribute_not_exists(pk)"),
            "ConditionalCheckFailedException")
        got = east.get_item(TableName=T, Key={"pk": S("p0"), "sk": N(0)}, ConsistentRead=True)["Item"]
        self.assertEqual(got["v"], S("updated"))
        self.assertEqual(got["c"], N(1))
        q = east.query(TableName=T, KeyConditionExpression="pk = :p AND sk > :s",
                       FilterExpression="begins_with(v, :e)",
                       ExpressionAttributeValues={":p": S("p1"), ":s": N(1), ":e": S("east")},
                       ConsistentRead=True)
        self.assertEqual([it["sk"]["N"] for it in q["Items"]], ["3", "5"])
        east.delete_item(TableName=T, Key={"pk": S("b"), "sk": N(0)})
        west.delete_item(TableName=T, Key={"pk": S("b"), "sk": N(1)})
        contents = cl.wait_converged(T, timeout=120)
        self.assertEqual(len(contents), 6 + 1 + 10 - 2)
        scan = west.scan(TableName=T, Limit=5)
        self.assertEqual(len(scan["Items"]), 5)
        bg = west.batch_get_item(RequestItems={T: {"Keys": [
            {"pk": S("w"), "sk": N(1)}, {"pk": S("b"), "sk": N(9)}, {"pk": S("none"), "sk": N(0)}]}})
        self.assertEqual(len(bg["Responses"][T]), 2)

    def check_memcheck(self, region, rc, log):
        """rc 0 and a clean memcheck summary in the region's stderr log."""
        def excerpt(pattern):
            m = re.search(pattern, log, re.M)
            return log[max(0, m.start() - 200):m.start() + 4000] if m else None

        for pattern, what in ((r"^==\d+== Invalid (read|write|free)", "an invalid access"),
                              (r"^==\d+== Mismatched free", "a mismatched free"),
                              (r"^==\d+== .* definitely lost in loss record", "a definite leak")):
            found = excerpt(pattern)
            if found is not None:
                self.fail("%s: valgrind found %s:\n%s" % (region, what, found))
        summary = re.search(r"^==\d+== ERROR SUMMARY: (\d+) errors", log, re.M)
        self.assertIsNotNone(summary, "%s: no valgrind ERROR SUMMARY in its log (exit code %r):\n%s"
                             % (region, rc, log[-3000:]))
        self.assertEqual(summary.group(1), "0", "%s: valgrind errors:\n%s"
                         % (region, excerpt(r"^==\d+== (?!(Memcheck|Copyright|Using Valgrind|Command|"
                                            r"HEAP SUMMARY|LEAK SUMMARY|ERROR SUMMARY)).*\S")))
        self.assertEqual(rc, 0, "%s: exit code %r after SIGTERM (valgrind errors: %d)\n%s"
                         % (region, rc, VALGRIND_ERROR_EXIT, log[-3000:]))
        self.assertRegex(log, r"definitely lost: 0 bytes|no leaks are possible|All heap blocks were freed",
                         "%s: no clean leak summary" % region)


if __name__ == "__main__":
    unittest.main()
