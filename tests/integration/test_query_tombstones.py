"""Query and Scan over tombstones: the work of one page is bounded.

A delete in a global table leaves a tombstone in the items column family
until tombstone collection removes it (docs/REPLICATION.md); Query and Scan
skip tombstones. A page stops, with a LastEvaluatedKey, once it has skipped
PAGE_MAX_TOMBSTONES (10,000) tombstones, or once the records it read (items
and tombstones) reach 1 MB, as well as at Limit items evaluated. The
LastEvaluatedKey is then the key of the last record examined, a tombstone's
key included, and the page may hold no item at all (DynamoDB allows that;
boto3 paginators and the aws cli keep paging while LastEvaluatedKey is
present). ScannedCount counts items evaluated, never tombstones. Before this
bound, one live item behind 100k tombstones cost a Limit=1 page a walk over
all of them.

Two regions (a table is global, and leaves tombstones, once it has a second
replica) with the default --tombstone-grace-ms (a day): nothing is collected
during the test. All traffic goes to us-east-1.

- T (pk S, sk N), one partition "p": items sk 0..10,299 written with
  BatchWriteItem, then all deleted but sk 0 and 10,297..10,299, so 10,296
  tombstones (sk 1..10,296) lie between the first live item and the others.
- TBIG (pk S, sk N), one partition whose key is 2,000 bytes long: sk 0..599
  written, 0..589 deleted. Each tombstone is over 2 KB, so 1 MB of them is
  reached after about 500, well before the tombstone budget.

Every test checks a first page that the unbounded walk could not produce
(the old code returned the live item behind the tombstones on that page,
without LastEvaluatedKey), then that paging to the end returns exactly the
live items, in order.
"""

import decimal
import unittest

import harness
from harness import Cluster, requires_meridian

US, EU = harness.REGIONS3[:2]
ACCOUNT = harness.KEY1[2]

BUDGET = 10000  # PAGE_MAX_TOMBSTONES in src/api/ops_query.c

T = "qt_tombs"
TBIG = "qt_big"
N_ITEMS = 10300
LIVE = [0, 10297, 10298, 10299]  # every other sk of T is a tombstone
BIG_PK = "b" * 2000
BIG_ITEMS, BIG_DELETED = 600, 590

S, N = harness.S, harness.N
cluster = None
c = None


def batch_write(client, table, requests):
    """BatchWriteItem in chunks of 25, resending UnprocessedItems."""
    for i in range(0, len(requests), 25):
        todo = {table: requests[i:i + 25]}
        for _ in range(100):
            resp = client.batch_write_item(RequestItems=todo)
            todo = resp.get("UnprocessedItems") or {}
            if not todo:
                break
        else:
            raise AssertionError("BatchWriteItem kept returning UnprocessedItems")


def put(item):
    return {"PutRequest": {"Item": item}}


def delete(key):
    return {"DeleteRequest": {"Key": key}}


def setUpModule():
    global cluster, c
    cluster = Cluster((US, EU), tag="query-tombs")
    try:
        c = cluster.client(US)
        cluster.create_global_table(T, hash_key=("pk", "S"), range_key=("sk", "N"))
        cluster.create_global_table(TBIG, hash_key=("pk", "S"), range_key=("sk", "N"))
        batch_write(c, T, [put({"pk": S("p"), "sk": N(i), "v": N(i), "odd": {"BOOL": i % 2 == 1}})
                           for i in range(N_ITEMS)])
        live = set(LIVE)
        batch_write(c, T, [delete({"pk": S("p"), "sk": N(i)}) for i in range(N_ITEMS) if i not in live])
        batch_write(c, TBIG, [put({"pk": S(BIG_PK), "sk": N(i)}) for i in range(BIG_ITEMS)])
        batch_write(c, TBIG, [delete({"pk": S(BIG_PK), "sk": N(i)}) for i in range(BIG_DELETED)])
        # The deletes left tombstones (none is collected for a day).
        samples, _ = cluster.metrics(US)
        for table, want in ((T, N_ITEMS - len(LIVE)), (TBIG, BIG_DELETED)):
            got = harness.metric_value(samples, "meridian_tombstones", account=ACCOUNT, table=table)
            if got != want:
                raise AssertionError("meridian_tombstones of %s is %s, not %d" % (table, got, want))
    except BaseException:
        cluster.stop(check=False)
        raise


def tearDownModule():
    cluster.stop()


def sks(items):
    return [int(decimal.Decimal(i["sk"]["N"])) for i in items]


def lek_sk(resp):
    return int(decimal.Decimal(resp["LastEvaluatedKey"]["sk"]["N"]))


def kq(expr, **vals):
    return {"KeyConditionExpression": expr,
            "ExpressionAttributeValues": {":" + k: v for k, v in vals.items()}}


def page_all(op, **kw):
    """Follows LastEvaluatedKey by hand; returns (items, pages)."""
    items, pages = [], []
    for _ in range(1000):
        resp = op(**kw)
        pages.append(resp)
        items.extend(resp.get("Items", []))
        if "LastEvaluatedKey" not in resp:
            return items, pages
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    raise AssertionError("pagination did not end within 1000 pages")


def tombstones_skipped():
    samples, types = cluster.metrics(US)
    found = harness.metric_samples(samples, "meridian_tombstones_skipped_total")
    if len(found) != 1 or types.get("meridian_tombstones_skipped_total") != "counter":
        raise AssertionError("expected one counter meridian_tombstones_skipped_total: %r" % (found,))
    return found[0][2]


@requires_meridian("tombstones exist only in meridian's global tables")
class TombstoneBudgetTest(harness.TestCase):

    def assert_empty_page(self, resp, want_lek_sk):
        """A page that skipped the budget of tombstones and found no item."""
        self.assertEqual(resp.get("Items", []), [])
        self.assertEqual((resp["Count"], resp["ScannedCount"]), (0, 0))
        self.assertIn("LastEvaluatedKey", resp, "the page did not stop after %d tombstones" % BUDGET)
        self.assertEqual(resp["LastEvaluatedKey"], {"pk": S("p"), "sk": N(want_lek_sk)})

    def test_query_forward_stops_after_budget(self):
        kw = dict(TableName=T, **kq("pk = :p AND sk >= :one", p=S("p"), one=N(1)))
        # sk 1..10,000 are the first BUDGET tombstones: the page ends there.
        first = c.query(Limit=1, **kw)
        self.assert_empty_page(first, BUDGET)
        # Without Limit too; the page is counted in /metrics.
        before = tombstones_skipped()
        self.assert_empty_page(c.query(**kw), BUDGET)
        self.assertEqual(tombstones_skipped() - before, BUDGET)
        # Resuming after the tombstone's key finds the rest.
        nxt = c.query(Limit=1, ExclusiveStartKey=first["LastEvaluatedKey"], **kw)
        self.assertEqual(sks(nxt["Items"]), [10297])
        self.assertEqual((nxt["Count"], nxt["ScannedCount"]), (1, 1))
        for limit in (1, 2, None):
            with self.subTest(limit=limit):
                extra = {"Limit": limit} if limit else {}
                items, pages = page_all(c.query, **extra, **kw)
                self.assertEqual(sks(items), [10297, 10298, 10299])
                self.assertEqual(pages[0]["Items"], [])
                self.assertEqual(sum(p["ScannedCount"] for p in pages), 3)
        # The whole partition: item 0, then the page stops in the tombstones.
        items, pages = page_all(c.query, TableName=T, **kq("pk = :p", p=S("p")))
        self.assertEqual(sks(items), LIVE)
        self.assertEqual(sks(pages[0]["Items"]), [0])
        self.assertEqual(lek_sk(pages[0]), BUDGET)

    def test_query_backward_stops_after_budget(self):
        kw = dict(TableName=T, ScanIndexForward=False, **kq("pk = :p AND sk < :x", p=S("p"), x=N(10297)))
        # Backward from sk 10,296: the BUDGET-th tombstone is sk 297.
        first = c.query(Limit=1, **kw)
        self.assert_empty_page(first, 10296 - BUDGET + 1)
        for limit in (1, None):
            with self.subTest(limit=limit):
                extra = {"Limit": limit} if limit else {}
                items, pages = page_all(c.query, **extra, **kw)
                self.assertEqual(sks(items), [0])
                self.assertEqual(pages[0]["Items"], [])
        items, pages = page_all(c.query, TableName=T, ScanIndexForward=False, Limit=1, **kq("pk = :p", p=S("p")))
        self.assertEqual(sks(items), list(reversed(LIVE)))
        # After sk 10,297 (the Limit) the page skips BUDGET tombstones
        # looking for the next item, and stops there.
        self.assertEqual([sks(p["Items"]) for p in pages[:3]], [[10299], [10298], [10297]])
        self.assertEqual(lek_sk(pages[2]), 10296 - BUDGET + 1)

    def test_scan_stops_after_budget(self):
        # One partition: the scan walks it in sort key order.
        first = c.scan(TableName=T)
        self.assertEqual(sks(first["Items"]), [0])
        self.assertEqual((first["Count"], first["ScannedCount"]), (1, 1))
        self.assertEqual(lek_sk(first), BUDGET)
        self.assert_empty_page(c.scan(TableName=T, ExclusiveStartKey={"pk": S("p"), "sk": N(0)}), BUDGET)
        for limit in (1, 3, None):
            with self.subTest(limit=limit):
                extra = {"Limit": limit} if limit else {}
                items, pages = page_all(c.scan, TableName=T, **extra)
                self.assertEqual(sks(items), LIVE)
                self.assertEqual(sum(p["ScannedCount"] for p in pages), len(LIVE))

    def test_parallel_scan_segments(self):
        for total in (2, 5):
            with self.subTest(total=total):
                seen, stopped = [], 0
                for seg in range(total):
                    items, pages = page_all(c.scan, TableName=T, Segment=seg, TotalSegments=total)
                    seen.extend(sks(items))
                    stopped += sum(1 for p in pages if "LastEvaluatedKey" in p)
                self.assertEqual(seen, LIVE)  # all in the segment of partition "p"
                self.assertEqual(stopped, 1)  # its first page stopped after BUDGET tombstones

    def test_paginators(self):
        pages = list(c.get_paginator("query").paginate(
            TableName=T, **kq("pk = :p AND sk >= :one", p=S("p"), one=N(1))))
        self.assertEqual([sks(p["Items"]) for p in pages], [[], [10297, 10298, 10299]])
        pages = list(c.get_paginator("query").paginate(
            TableName=T, ScanIndexForward=False, PaginationConfig={"PageSize": 1},
            **kq("pk = :p", p=S("p"))))
        self.assertEqual([i for p in pages for i in sks(p["Items"])], list(reversed(LIVE)))
        pages = list(c.get_paginator("scan").paginate(TableName=T))
        self.assertEqual([sks(p["Items"]) for p in pages], [[0], [10297, 10298, 10299]])
        # The resource-level pattern of the aws cli: --max-items across pages.
        res = c.get_paginator("scan").paginate(TableName=T, PaginationConfig={"MaxItems": 2}).build_full_result()
        self.assertEqual(sks(res["Items"]), [0, 10297])

    def test_select_count_and_filter(self):
        kw = dict(TableName=T, **kq("pk = :p AND sk >= :one", p=S("p"), one=N(1)))
        first = c.query(Select="COUNT", **kw)
        self.assertNotIn("Items", first)
        self.assertEqual((first["Count"], first["ScannedCount"]), (0, 0))
        self.assertEqual(lek_sk(first), BUDGET)
        _, pages = page_all(c.query, Select="COUNT", **kw)
        self.assertEqual(sum(p["Count"] for p in pages), 3)
        _, pages = page_all(c.scan, TableName=T, Select="COUNT")
        self.assertEqual(sum(p["Count"] for p in pages), len(LIVE))
        self.assertEqual(len(pages), 2)
        # A filter: sk 10,297 and 10,299 are odd. Count counts matches,
        # ScannedCount the items evaluated, neither the tombstones.
        filt = dict(FilterExpression="odd = :t", **kq("pk = :p AND sk >= :one", p=S("p"), one=N(1),
                                                      t={"BOOL": True}))
        items, pages = page_all(c.query, TableName=T, **filt)
        self.assertEqual(sks(items), [10297, 10299])
        self.assertEqual([(p["Count"], p["ScannedCount"]) for p in pages], [(0, 0), (2, 3)])
        items, pages = page_all(c.scan, TableName=T, FilterExpression="odd = :t",
                                ExpressionAttributeValues={":t": {"BOOL": False}})
        self.assertEqual(sks(items), [0, 10298])
        self.assertEqual([(p["Count"], p["ScannedCount"]) for p in pages], [(1, 1), (1, 3)])

    def test_tombstone_bytes_count_toward_1mb(self):
        # 590 tombstones of over 2 KB each: 1 MB is read before the budget.
        kw = dict(TableName=TBIG, **kq("pk = :p", p=S(BIG_PK)))
        first = c.query(Limit=1, **kw)
        self.assertEqual(sks(first["Items"]), [])
        self.assertEqual((first["Count"], first["ScannedCount"]), (0, 0))
        self.assertIn("LastEvaluatedKey", first, "the page did not stop at 1 MB of tombstones")
        stop = lek_sk(first)
        self.assertEqual(first["LastEvaluatedKey"]["pk"], S(BIG_PK))
        # 1 MB / (2,000-byte key + record header): about 500 tombstones.
        self.assertGreater(stop, 400)
        self.assertLess(stop, BIG_DELETED - 1)
        items, pages = page_all(c.query, Limit=4, **kw)
        self.assertEqual(sks(items), list(range(BIG_DELETED, BIG_ITEMS)))
        items, pages = page_all(c.query, ScanIndexForward=False, Limit=4, **kw)
        self.assertEqual(sks(items), list(range(BIG_ITEMS - 1, BIG_DELETED - 1, -1)))
        items, pages = page_all(c.scan, TableName=TBIG)
        self.assertEqual(sks(items), list(range(BIG_DELETED, BIG_ITEMS)))
        self.assertEqual(pages[0]["Items"], [])
        self.assertEqual(len(pages), 2)


if __name__ == "__main__":
    unittest.main()
