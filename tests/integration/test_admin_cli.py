"""Operator commands against a running three-region deployment:
`meridian verify` (digest comparison that names differing keys),
`meridian status` (links, tables, replicas) and `meridian conflicts`.
A proxied cluster lets the test cut a region off to create real differences."""
import os
import subprocess
import unittest

import harness
from harness import Cluster, requires_meridian, wait_until

TABLE = "admin_verified"


def S(v):
    return {"S": v}


@requires_meridian()
class AdminCommandsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(proxied=True, tag="admin")
        cls.names = cls.cluster.names
        cls.cluster.create_global_table(TABLE)
        c = cls.cluster.client(cls.names[0])
        for i in range(40):
            c.put_item(TableName=TABLE, Item={"pk": S("k%d" % i), "v": {"N": str(i)}})
        cls.cluster.wait_converged(TABLE)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def run_cmd(self, *args):
        srv = self.cluster[self.names[0]]
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = srv.credentials[0][0], srv.credentials[0][1]
        p = subprocess.run([harness.meridian_bin()] + list(args), env=env, capture_output=True,
                           text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def endpoints(self):
        out = []
        for n in self.names:
            out += ["--endpoint", self.cluster[n].endpoint]
        return out

    def test_1_verify_identical(self):
        rc, out, err = self.run_cmd("verify", "--table", TABLE, *self.endpoints())
        self.assertEqual(rc, 0, out + err)
        self.assertIn("identical in 3 regions", out)
        self.assertIn("40 items", out)

    def test_2_verify_names_the_differing_key_then_converges(self):
        lone = self.names[2]
        self.cluster.isolate(lone)
        try:
            self.cluster.client(self.names[0]).put_item(TableName=TABLE, Item={"pk": S("only-here"), "v": S("x")})
            wait_until(lambda: "Item" in self.cluster.client(self.names[1]).get_item(
                TableName=TABLE, Key={"pk": S("only-here")}), 30, what="write to reach the connected peer")
            rc, out, err = self.run_cmd("verify", "--table", TABLE, *self.endpoints())
            self.assertEqual(rc, 1, out + err)
            self.assertIn('DIFFERS {"pk":{"S":"only-here"}}', out)
            self.assertIn("%s=absent" % lone, out)
            self.assertNotIn('"k1"}', out)
        finally:
            self.cluster.heal_all()
        self.cluster.wait_converged(TABLE)
        rc, out, err = self.run_cmd("verify", "--table", TABLE, *self.endpoints())
        self.assertEqual(rc, 0, out + err)

    def test_3_conflicts_are_listed(self):
        a, b = self.names[0], self.names[1]
        self.cluster.cut(a, b)
        self.cluster.isolate(self.names[2])
        try:
            self.cluster.client(a).put_item(TableName=TABLE, Item={"pk": S("contested"), "v": S("from-a")})
            self.cluster.client(b).put_item(TableName=TABLE, Item={"pk": S("contested"), "v": S("from-b")})
        finally:
            self.cluster.heal_all()
        self.cluster.wait_converged(TABLE)
        # Each region that received the losing write (or saw its own lose)
        # counted the conflict: together the regions name the key.
        found = False
        for n in self.names:
            rc, out, err = self.run_cmd("conflicts", "--table", TABLE, "--endpoint", self.cluster[n].endpoint)
            self.assertEqual(rc, 0, out + err)
            self.assertIn("conflicts on table %s" % TABLE, out)
            if '{"S":"contested"}' in out:
                found = True
        self.assertTrue(found, "no region listed the conflicting key")

    def test_4_status_shows_links_and_replicas(self):
        # Links cut by the earlier tests reconnect with a backoff of up to 2 s.
        srv = self.cluster[self.names[0]]
        args = ("status", "--endpoint", srv.endpoint, "--admin-token-file", srv.admin_token_path)
        wait_until(lambda: self.run_cmd(*args)[1].count(" up ") == 2, 30,
                   what="both links of %s to be up" % self.names[0])
        rc, out, err = self.run_cmd(*args)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("region %s" % self.names[0], out)
        for n in self.names[1:]:
            self.assertRegex(out, r"%s\s+up" % n)
        self.assertIn(TABLE, out)
        for n in self.names:
            self.assertIn("%s ACTIVE" % n, out)

    def test_5_bad_usage_and_unknown_table(self):
        rc, out, err = self.run_cmd("verify", "--table", TABLE)
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)
        rc, out, err = self.run_cmd("verify", "--table", "no_such_table", *self.endpoints())
        self.assertNotEqual(rc, 0)
        self.assertIn("ResourceNotFoundException", err)


if __name__ == "__main__":
    unittest.main()
