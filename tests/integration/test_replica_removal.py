"""Removing a region's replica must not drop the writes that region made and had
not sent yet: they still reach the remaining replicas (found in review: the
sender used to look the table up in the current catalog, where it is gone)."""
import unittest

from harness import Cluster, requires_meridian

TABLE = "departing"


def S(v):
    return {"S": v}


@requires_meridian()
class DepartedReplicaTest(unittest.TestCase):
    def test_unsent_writes_survive_the_departure_of_their_region(self):
        a, b = "us-east-1", "eu-west-1"
        cluster = Cluster(names=(a, b), tag="departing")
        try:
            cluster.create_global_table(TABLE)
            ca = cluster.client(a)
            for i in range(10):
                ca.put_item(TableName=TABLE, Item={"pk": S("before%d" % i)})
            cluster.wait_converged(TABLE)
            cluster.kill9(b)
            for i in range(100):
                ca.put_item(TableName=TABLE, Item={"pk": S("while-b-down%d" % i)})
            ca.delete_table(TableName=TABLE)  # a's replica departs; b's remains
            self.assertNotIn(TABLE, ca.list_tables()["TableNames"])
            cluster.restart(b)
            cb = cluster.client(b)

            def count():
                n, kw = 0, {}
                while True:
                    page = cb.scan(TableName=TABLE, ConsistentRead=True, **kw)
                    n += page["Count"]
                    if "LastEvaluatedKey" not in page:
                        return n
                    kw = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

            from harness import wait_until
            wait_until(lambda: count() == 110, 60, what="every acknowledged write of the departed region to reach the other")
            reps = cb.describe_table(TableName=TABLE)["Table"]["Replicas"]
            self.assertEqual([r["RegionName"] for r in reps], [b])
        finally:
            cluster.stop()


if __name__ == "__main__":
    unittest.main()
