"""A region cut off longer than the replication log is retained is re-seeded
from a snapshot when it returns: nothing is silently dropped, deletes made
meanwhile included (tombstones travel in the back-fill)."""
import json
import unittest

import harness
from harness import Cluster, requires_meridian, wait_until

TABLE = "retained"


def S(v):
    return {"S": v}


@requires_meridian()
class RetentionReseedTest(unittest.TestCase):
    def test_peer_beyond_retention_is_reseeded(self):
        names = harness.REGIONS3
        src = names[0]
        # The source keeps at most 1 byte of log: everything but its newest
        # entry is out of retention as soon as the next collection runs.
        cluster = Cluster(proxied=True, tag="retention",
                          extra_args={src: ["--log-retention-bytes", "1"]})
        try:
            cluster.create_global_table(TABLE)
            c = cluster.client(src)
            for i in range(20):
                c.put_item(TableName=TABLE, Item={"pk": S("old%d" % i), "v": {"N": str(i)}})
            cluster.wait_converged(TABLE)
            lone = names[1]
            cluster.isolate(lone)
            for i in range(60):
                c.put_item(TableName=TABLE, Item={"pk": S("new%d" % i), "v": {"N": str(i)}})
            for i in range(5):
                c.delete_item(TableName=TABLE, Key={"pk": S("old%d" % i)})
            srv = cluster[src]

            def collected():
                _, _, body = harness.operator_get(srv, "/replication/status")
                st = json.loads(body)
                return st["log_first"] >= st["log_position"] - 1

            wait_until(collected, 30, what="the source to collect its log beyond retention")
            cluster.heal_all()
            contents = cluster.wait_converged(TABLE, timeout=60)
            keys = {item["pk"]["S"] for item in contents}
            self.assertEqual(len(keys), 75)
            self.assertIn("new59", keys)
            self.assertNotIn("old0", keys)
            wait_until(lambda: "re-seeding" in srv.log_text(), 10, what="the re-seed to be logged")
        finally:
            cluster.stop()


if __name__ == "__main__":
    unittest.main()
