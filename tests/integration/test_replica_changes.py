"""Replica-set and settings changes made while back-fills are still running must
all survive (found in review: descriptors used to merge as a whole, so a new
replica's own activation undid a replica added or a setting changed meanwhile)."""
import unittest

from harness import Cluster, requires_meridian, wait_until

TABLE = "changing"


def S(v):
    return {"S": v}


@requires_meridian()
class ConcurrentReplicaChangesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(tag="changes")
        cls.a, cls.b, cls.c = cls.cluster.names
        ca = cls.cluster.client(cls.a)
        ca.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        with_items = [{"PutRequest": {"Item": {"pk": S("k%05d" % i), "pad": S("x" * 200)}}}
                      for i in range(3000)]
        for i in range(0, len(with_items), 25):
            ca.batch_write_item(RequestItems={TABLE: with_items[i:i + 25]})

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_back_to_back_changes_all_survive(self):
        ca = self.cluster.client(self.a)
        # No waiting between the calls: each back-fill is still running.
        ca.update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": self.b}}])
        ca.update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": self.c}}])
        ca.update_table(TableName=TABLE, DeletionProtectionEnabled=True)
        self.cluster.wait_replicas(TABLE, [self.a, self.b, self.c], timeout=90)
        for n in self.cluster.names:
            wait_until(lambda: self.cluster.client(n).describe_table(TableName=TABLE)["Table"]
                       ["DeletionProtectionEnabled"] is True, 30,
                       what="deletion protection to reach %s" % n)
        contents = self.cluster.wait_converged(TABLE, timeout=90)
        self.assertEqual(len(contents), 3000)

        # Remove a replica and add it straight back: it comes back complete.
        ca.update_table(TableName=TABLE, ReplicaUpdates=[{"Delete": {"RegionName": self.c}}])
        ca.update_table(TableName=TABLE, ReplicaUpdates=[{"Create": {"RegionName": self.c}}])
        ca.put_item(TableName=TABLE, Item={"pk": S("after-readd")})
        self.cluster.wait_replicas(TABLE, [self.a, self.b, self.c], timeout=90)
        contents = self.cluster.wait_converged(TABLE, timeout=90)
        self.assertEqual(len(contents), 3001)
        ca.update_table(TableName=TABLE, DeletionProtectionEnabled=False)


if __name__ == "__main__":
    unittest.main()
