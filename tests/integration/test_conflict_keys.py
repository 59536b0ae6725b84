"""ListConflicts (and `meridian conflicts`) with long and awkward partition
keys: a key of 1,000 characters, and one full of quotes, backslashes, control
characters and multi-byte UTF-8, each written concurrently in two regions cut
apart. The response must be valid JSON naming each key whole (the ring kept
the key's JSON cut at 255 bytes and spliced it raw into the response: an
unterminated string, or a UTF-8 sequence cut in half).
"""
import json
import os
import subprocess
import unittest

import harness
from harness import Cluster, S, requires_meridian, wait_until

TABLE = "conflict_keys"
REGIONS = ("us-east-1", "eu-west-1")

LONG = "L" + "".join("abcdefghij"[i % 10] for i in range(999))                 # 1,000 characters
AWKWARD = "".join(['"', "\\", "\u00e9", "\u2603", "\U0001d11e", "\t", "\x01"][i % 7]
                  for i in range(1000))                                         # 1,000 characters
KEYS = (LONG, AWKWARD)


@requires_meridian()
class ConflictKeysTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        assert len(LONG) == 1000 and len(AWKWARD) == 1000
        assert len(AWKWARD.encode()) <= 2048  # DynamoDB's partition key limit
        cls.cluster = Cluster(names=REGIONS, proxied=True, tag="conflict-keys")
        try:
            cls.cluster.create_global_table(TABLE)
            a, b = REGIONS
            cls.cluster.cut(a, b)
            try:
                for r in REGIONS:
                    c = cls.cluster.client(r)
                    for k in KEYS:
                        c.put_item(TableName=TABLE, Item={"pk": S(k), "from": S(r)})
            finally:
                cls.cluster.heal_all()
            cls.cluster.wait_converged(TABLE)
        except BaseException:
            cls.cluster.stop(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def list_conflicts(self, region):
        """ListConflicts of region, signed like any API request: (status, body text)."""
        resp = harness.raw_request(self.cluster[region], "Meridian_20261121.ListConflicts",
                                   {"TableName": TABLE, "Limit": 50})
        return resp.status, resp.body.decode("utf-8", "replace")

    def keys_listed(self, region):
        status, text = self.list_conflicts(region)
        self.assertEqual(status, 200, text[:300])
        try:
            data = json.loads(text)
        except ValueError as ex:
            self.fail("ListConflicts of %s is not valid JSON (%s): %r" % (region, ex, text[:600]))
        return [c["Key"] for c in data["Conflicts"]], data

    def test_api_response_is_json_with_whole_keys(self):
        def every_key_listed():
            found = set()
            for r in REGIONS:
                keys, _ = self.keys_listed(r)
                for k in keys:
                    self.assertEqual(set(k), {"S"}, k)
                    found.add(k["S"])
            return found >= set(KEYS) and (True, found)

        found = wait_until(every_key_listed, 30, what="both keys listed as conflicts")[1]
        self.assertIn(LONG, found)
        self.assertIn(AWKWARD, found)
        # Nothing but the two keys (whole) was ever in conflict.
        self.assertEqual(found, set(KEYS))
        for r in REGIONS:
            _, data = self.keys_listed(r)
            self.assertGreaterEqual(data["Total"], len(data["Conflicts"]))
            for c in data["Conflicts"]:
                self.assertIn(c["Winner"]["Region"], REGIONS)
                self.assertIn(c["Loser"]["Region"], REGIONS)

    def test_meridian_conflicts_prints_whole_keys(self):
        srv = self.cluster[REGIONS[0]]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=srv.access_key, AWS_SECRET_ACCESS_KEY=srv.secret)
        found = set()
        for r in REGIONS:
            p = subprocess.run([harness.meridian_bin(), "conflicts", "--table", TABLE,
                                "--endpoint", self.cluster[r].endpoint],
                               env=env, capture_output=True, timeout=60)
            out = p.stdout.decode("utf-8")
            self.assertEqual(p.returncode, 0, out + p.stderr.decode("utf-8", "replace"))
            self.assertIn("conflicts on table %s" % TABLE, out)
            for line in out.splitlines():
                if line.startswith("  {"):
                    key, _ = json.JSONDecoder().raw_decode(line.strip())
                    found.add(key["S"])
        self.assertEqual(found, set(KEYS))


if __name__ == "__main__":
    unittest.main()
