"""Query and Scan: KeyConditionExpression (=, <, <=, >, >=, BETWEEN,
begins_with on the sort key), ScanIndexForward, Limit + LastEvaluatedKey
pagination, FilterExpression (Count vs ScannedCount), Select, projection,
the ordering of NUMBER sort keys (signs, decimals, exponents, the extremes of
the range), BINARY sort keys (unsigned bytes) and STRING sort keys (UTF-8
bytes), the 1 MB page limit, parallel Scan segments, and the error cases.
"""

import decimal
import random

import harness
from harness import create_table

server = None
c = None

TN = "qs_num"      # pk S, sk N
TS = "qs_str"      # pk S, sk S
TB = "qs_bin"      # pk S, sk B
TH = "qs_hash"     # pk S only (Scan / segments)
TBIG = "qs_big"    # pk S, sk N: 100 KB items

NUMERIC_KEYS = ["-1e3", "-1.5", "-1", "0", "0.001", "1", "1E+5", "1e-130",
                "9.9999999999999999999999999999999999999E+125",
                "-9.9999999999999999999999999999999999999E+125",
                "-1e-130", "12.5", "100", "99.99", "-0.5", "1e37"]


def setUpModule():
    global server, c
    server = harness.Server(name="query-scan").start()
    c = harness.client(server)
    create_table(c, TN, ("pk", "S"), ("sk", "N"))
    create_table(c, TS, ("pk", "S"), ("sk", "S"))
    create_table(c, TB, ("pk", "S"), ("sk", "B"))
    create_table(c, TH, ("pk", "S"))
    create_table(c, TBIG, ("pk", "S"), ("sk", "N"))
    # 20 items in partition "p" with sk 0..19, noise in partitions "o" and "q".
    for i in range(20):
        c.put_item(TableName=TN, Item={"pk": S("p"), "sk": N(i), "v": N(i * 10),
                                       "even": {"BOOL": i % 2 == 0}, "tag": S("t%d" % (i % 3))})
    for part in ("o", "q"):
        for i in range(5):
            c.put_item(TableName=TN, Item={"pk": S(part), "sk": N(i), "v": N(-i)})
    for k in NUMERIC_KEYS:
        c.put_item(TableName=TN, Item={"pk": S("nums"), "sk": N(k), "orig": S(k)})


def tearDownModule():
    server.close()


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def sks(items):
    return [decimal.Decimal(i["sk"]["N"]) for i in items]


def query_all(table, **kw):
    """Follows LastEvaluatedKey; returns (items, pages)."""
    items, pages = [], []
    for _ in range(1000):
        resp = c.query(TableName=table, **kw)
        pages.append(resp)
        items.extend(resp.get("Items", []))
        if "LastEvaluatedKey" not in resp:
            return items, pages
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    raise AssertionError("Query pagination did not end within 1000 pages")


def scan_all(table, **kw):
    items, pages = [], []
    for _ in range(1000):
        resp = c.scan(TableName=table, **kw)
        pages.append(resp)
        items.extend(resp.get("Items", []))
        if "LastEvaluatedKey" not in resp:
            return items, pages
        kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    raise AssertionError("Scan pagination did not end within 1000 pages")


def kq(expr, **vals):
    return {"KeyConditionExpression": expr,
            "ExpressionAttributeValues": {":" + k: v for k, v in vals.items()}}


class KeyConditionTest(harness.TestCase):
    def q(self, expr, forward=True, **vals):
        resp = c.query(TableName=TN, ScanIndexForward=forward, **kq(expr, **vals))
        self.assertEqual(resp["Count"], len(resp["Items"]))
        self.assertEqual(resp["ScannedCount"], resp["Count"])
        self.assertNotIn("LastEvaluatedKey", resp)
        return [int(x) for x in sks(resp["Items"])]

    def test_partition_only(self):
        self.assertEqual(self.q("pk = :p", p=S("p")), list(range(20)))
        self.assertEqual(self.q("pk = :p", p=S("o")), list(range(5)))
        self.assertEqual(self.q("pk = :p", p=S("nobody")), [])

    def test_comparators(self):
        self.assertEqual(self.q("pk = :p AND sk = :v", p=S("p"), v=N(7)), [7])
        self.assertEqual(self.q("pk = :p AND sk = :v", p=S("p"), v=N("7.0")), [7])
        self.assertEqual(self.q("pk = :p AND sk = :v", p=S("p"), v=N("7.5")), [])
        self.assertEqual(self.q("pk = :p AND sk < :v", p=S("p"), v=N(3)), [0, 1, 2])
        self.assertEqual(self.q("pk = :p AND sk <= :v", p=S("p"), v=N(3)), [0, 1, 2, 3])
        self.assertEqual(self.q("pk = :p AND sk > :v", p=S("p"), v=N(16)), [17, 18, 19])
        self.assertEqual(self.q("pk = :p AND sk >= :v", p=S("p"), v=N(16)), [16, 17, 18, 19])
        self.assertEqual(self.q("pk = :p AND sk BETWEEN :a AND :b", p=S("p"), a=N(5), b=N(8)), [5, 6, 7, 8])
        self.assertEqual(self.q("pk = :p AND sk BETWEEN :a AND :b", p=S("p"), a=N("4.5"), b=N("5.5")), [5])
        self.assertEqual(self.q("sk > :v AND pk = :p", p=S("p"), v=N(18)), [19])
        self.assertEqual(self.q(":v > sk AND pk = :p", p=S("p"), v=N(2)), [0, 1])
        resp = c.query(TableName=TN, KeyConditionExpression="#k = :p and #s < :v",
                       ExpressionAttributeNames={"#k": "pk", "#s": "sk"},
                       ExpressionAttributeValues={":p": S("o"), ":v": N(2)})
        self.assertEqual([int(x) for x in sks(resp["Items"])], [0, 1])

    def test_backwards(self):
        self.assertEqual(self.q("pk = :p", forward=False, p=S("p")), list(range(19, -1, -1)))
        self.assertEqual(self.q("pk = :p AND sk BETWEEN :a AND :b", forward=False, p=S("p"), a=N(5), b=N(8)),
                         [8, 7, 6, 5])
        self.assertEqual(self.q("pk = :p AND sk < :v", forward=False, p=S("p"), v=N(3)), [2, 1, 0])

    def test_begins_with_on_string_sort_key(self):
        for sk in ("a", "ab", "abc", "abd", "ac", "b", "", "A", "ab\u00e9"):
            if sk:
                c.put_item(TableName=TS, Item={"pk": S("bw"), "sk": S(sk)})
        resp = c.query(TableName=TS, **kq("pk = :p AND begins_with(sk, :pre)", p=S("bw"), pre=S("ab")))
        self.assertEqual([i["sk"]["S"] for i in resp["Items"]], ["ab", "abc", "abd", "ab\u00e9"])
        resp = c.query(TableName=TS, ScanIndexForward=False,
                       **kq("pk = :p AND begins_with(sk, :pre)", p=S("bw"), pre=S("a")))
        self.assertEqual([i["sk"]["S"] for i in resp["Items"]], ["ac", "ab\u00e9", "abd", "abc", "ab", "a"])
        resp = c.query(TableName=TS, **kq("pk = :p AND begins_with(sk, :pre)", p=S("bw"), pre=S("z")))
        self.assertEqual(resp["Items"], [])

    def test_begins_with_on_binary_sort_key(self):
        for sk in (b"\x01", b"\x01\x00", b"\x01\xff", b"\x02", b"\x00\x01"):
            c.put_item(TableName=TB, Item={"pk": S("bw"), "sk": {"B": sk}})
        resp = c.query(TableName=TB, **kq("pk = :p AND begins_with(sk, :pre)", p=S("bw"), pre={"B": b"\x01"}))
        self.assertEqual([i["sk"]["B"] for i in resp["Items"]], [b"\x01", b"\x01\x00", b"\x01\xff"])


class OrderingTest(harness.TestCase):
    def test_numeric_sort_key_order(self):
        expected = sorted((decimal.Decimal(k) for k in NUMERIC_KEYS))
        resp = c.query(TableName=TN, **kq("pk = :p", p=S("nums")))
        self.assertEqual(sks(resp["Items"]), expected)
        resp = c.query(TableName=TN, ScanIndexForward=False, **kq("pk = :p", p=S("nums")))
        self.assertEqual(sks(resp["Items"]), list(reversed(expected)))
        # Each item is stored under the key it was written with.
        for item in resp["Items"]:
            self.assertEqual(decimal.Decimal(item["sk"]["N"]), decimal.Decimal(item["orig"]["S"]))

    def test_numeric_range_conditions_across_signs(self):
        resp = c.query(TableName=TN, **kq("pk = :p AND sk BETWEEN :a AND :b", p=S("nums"), a=N("-1.5"), b=N("0.001")))
        self.assertEqual(sks(resp["Items"]), [decimal.Decimal(x) for x in
                                              ("-1.5", "-1", "-0.5", "-1e-130", "0", "1e-130", "0.001")])
        resp = c.query(TableName=TN, **kq("pk = :p AND sk > :a", p=S("nums"), a=N("1e5")))
        self.assertEqual(sks(resp["Items"]), [decimal.Decimal(x) for x in
                                              ("1e37", "9.9999999999999999999999999999999999999E+125")])
        resp = c.query(TableName=TN, **kq("pk = :p AND sk < :a", p=S("nums"), a=N("-1000")))
        self.assertEqual(sks(resp["Items"]), [decimal.Decimal("-9.9999999999999999999999999999999999999E+125")])

    def test_binary_sort_key_order(self):
        keys = [b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\x00\x00", b"\xff\x00", b"\x80\x01",
                b"\x7f\xff\xff", b"\xfe", b"\x00\xff"]
        for k in keys:
            c.put_item(TableName=TB, Item={"pk": S("order"), "sk": {"B": k}})
        resp = c.query(TableName=TB, **kq("pk = :p", p=S("order")))
        self.assertEqual([i["sk"]["B"] for i in resp["Items"]], sorted(keys))
        resp = c.query(TableName=TB, ScanIndexForward=False, **kq("pk = :p", p=S("order")))
        self.assertEqual([i["sk"]["B"] for i in resp["Items"]], sorted(keys, reverse=True))
        resp = c.query(TableName=TB, **kq("pk = :p AND sk > :v", p=S("order"), v={"B": b"\x7f\xff"}))
        self.assertEqual([i["sk"]["B"] for i in resp["Items"]],
                         [k for k in sorted(keys) if k > b"\x7f\xff"])

    def test_string_sort_key_order_is_utf8_bytes(self):
        keys = ["a", "B", "b", "aa", "Z", "\u00e9", "\u4e16", "\U0001F600", "\uff5e", "~", "0", " "]
        for k in keys:
            c.put_item(TableName=TS, Item={"pk": S("order"), "sk": S(k)})
        want = sorted(keys, key=lambda s: s.encode("utf-8"))
        resp = c.query(TableName=TS, **kq("pk = :p", p=S("order")))
        self.assertEqual([i["sk"]["S"] for i in resp["Items"]], want)
        resp = c.query(TableName=TS, ScanIndexForward=False, **kq("pk = :p", p=S("order")))
        self.assertEqual([i["sk"]["S"] for i in resp["Items"]], list(reversed(want)))


class PaginationTest(harness.TestCase):
    def test_query_limit_pagination(self):
        for limit in (1, 3, 7, 20, 25):
            for forward in (True, False):
                with self.subTest(limit=limit, forward=forward):
                    items, pages = query_all(TN, Limit=limit, ScanIndexForward=forward, **kq("pk = :p", p=S("p")))
                    want = list(range(20)) if forward else list(range(19, -1, -1))
                    self.assertEqual([int(x) for x in sks(items)], want)
                    for p in pages[:-1]:
                        self.assertEqual(p["Count"], limit)
                        last = p["Items"][-1]
                        self.assertEqual(p["LastEvaluatedKey"], {"pk": last["pk"], "sk": last["sk"]})
                    # ceil(20 / limit) pages, plus possibly one empty page when the
                    # last full page could not know it was the last.
                    self.assertIn(len(pages), (-(-20 // limit), -(-20 // limit) + 1))

    def test_query_limit_with_range_condition(self):
        items, pages = query_all(TN, Limit=2, **kq("pk = :p AND sk BETWEEN :a AND :b", p=S("p"), a=N(3), b=N(9)))
        self.assertEqual([int(x) for x in sks(items)], [3, 4, 5, 6, 7, 8, 9])
        self.assertGreaterEqual(len(pages), 4)

    def test_scan_pagination(self):
        for i in range(37):
            c.put_item(TableName=TH, Item={"pk": S("scan-%03d" % i), "n": N(i)})
        full = c.scan(TableName=TH)
        self.assertNotIn("LastEvaluatedKey", full)
        for limit in (1, 5, 36, 100):
            with self.subTest(limit=limit):
                items, pages = scan_all(TH, Limit=limit)
                self.assertEqual(items, full["Items"])
                for p in pages[:-1]:
                    self.assertEqual(p["Count"], limit)
                    self.assertEqual(p["LastEvaluatedKey"], {"pk": p["Items"][-1]["pk"]})

    def test_paginator(self):
        pages = list(c.get_paginator("query").paginate(TableName=TN, PaginationConfig={"PageSize": 6},
                                                       **kq("pk = :p", p=S("p"))))
        items = [i for p in pages for i in p["Items"]]
        self.assertEqual([int(x) for x in sks(items)], list(range(20)))
        self.assertGreaterEqual(len(pages), 4)


class FilterSelectTest(harness.TestCase):
    def test_filter_count_vs_scanned(self):
        resp = c.query(TableName=TN, FilterExpression="even = :t", **dict(
            kq("pk = :p", p=S("p"), t={"BOOL": True})))
        self.assertEqual(resp["Count"], 10)
        self.assertEqual(resp["ScannedCount"], 20)
        self.assertEqual([int(x) for x in sks(resp["Items"])], list(range(0, 20, 2)))
        resp = c.query(TableName=TN, FilterExpression="v > :min AND tag = :t", **kq(
            "pk = :p AND sk < :s", p=S("p"), s=N(10), min=N(30), t=S("t1")))
        # sk 4, 7 have tag t1 and v > 30 (sk 1 has v = 10).
        self.assertEqual([int(x) for x in sks(resp["Items"])], [4, 7])
        self.assertEqual(resp["ScannedCount"], 10)
        self.assertEqual(resp["Count"], 2)

    def test_filter_with_limit_counts_scanned_items(self):
        resp = c.query(TableName=TN, Limit=5, FilterExpression="even = :t",
                       **kq("pk = :p", p=S("p"), t={"BOOL": True}))
        self.assertEqual(resp["ScannedCount"], 5)
        self.assertEqual(resp["Count"], 3)
        self.assertEqual([int(x) for x in sks(resp["Items"])], [0, 2, 4])
        self.assertEqual(resp["LastEvaluatedKey"], {"pk": S("p"), "sk": N(4)})
        # Paging with a filter still finds everything.
        items, pages = query_all(TN, Limit=3, FilterExpression="even = :t",
                                 **kq("pk = :p", p=S("p"), t={"BOOL": True}))
        self.assertEqual([int(x) for x in sks(items)], list(range(0, 20, 2)))
        self.assertEqual(sum(p["ScannedCount"] for p in pages), 20)

    def test_scan_filter(self):
        resp = c.scan(TableName=TN, FilterExpression="pk = :o OR (pk = :q AND sk >= :three)",
                      ExpressionAttributeValues={":o": S("o"), ":q": S("q"), ":three": N(3)})
        self.assertEqual(resp["Count"], 7)
        self.assertEqual(resp["ScannedCount"], 20 + 10 + len(NUMERIC_KEYS))
        self.assertEqual(sorted((i["pk"]["S"], int(i["sk"]["N"])) for i in resp["Items"]),
                         [("o", 0), ("o", 1), ("o", 2), ("o", 3), ("o", 4), ("q", 3), ("q", 4)])

    def test_select(self):
        resp = c.query(TableName=TN, Select="COUNT", **kq("pk = :p", p=S("p")))
        self.assertEqual(resp["Count"], 20)
        self.assertEqual(resp["ScannedCount"], 20)
        self.assertNotIn("Items", resp)
        resp = c.query(TableName=TN, Select="COUNT", FilterExpression="even = :t",
                       **kq("pk = :p", p=S("p"), t={"BOOL": False}))
        self.assertEqual((resp["Count"], resp["ScannedCount"]), (10, 20))
        resp = c.query(TableName=TN, Select="ALL_ATTRIBUTES", **kq("pk = :p AND sk = :s", p=S("p"), s=N(3)))
        self.assertEqual(resp["Items"], [{"pk": S("p"), "sk": N(3), "v": N(30), "even": {"BOOL": False},
                                          "tag": S("t0")}])
        resp = c.query(TableName=TN, Select="SPECIFIC_ATTRIBUTES", ProjectionExpression="v, tag",
                       **kq("pk = :p AND sk = :s", p=S("p"), s=N(3)))
        self.assertEqual(resp["Items"], [{"v": N(30), "tag": S("t0")}])
        resp = c.scan(TableName=TN, Select="COUNT")
        self.assertEqual(resp["Count"], 30 + len(NUMERIC_KEYS))
        self.assertNotIn("Items", resp)

    def test_projection(self):
        resp = c.query(TableName=TN, ProjectionExpression="sk, #t", ExpressionAttributeNames={"#t": "tag"},
                       **kq("pk = :p AND sk < :s", p=S("p"), s=N(3)))
        self.assertEqual(resp["Items"], [{"sk": N(0), "tag": S("t0")}, {"sk": N(1), "tag": S("t1")},
                                         {"sk": N(2), "tag": S("t2")}])
        # Pagination keys are full keys even when the projection omits them.
        resp = c.query(TableName=TN, ProjectionExpression="v", Limit=2, **kq("pk = :p", p=S("p")))
        self.assertEqual(resp["Items"], [{"v": N(0)}, {"v": N(10)}])
        self.assertEqual(resp["LastEvaluatedKey"], {"pk": S("p"), "sk": N(1)})
        resp = c.scan(TableName=TN, ProjectionExpression="pk", FilterExpression="v = :v",
                      ExpressionAttributeValues={":v": N(-4)})
        self.assertEqual(sorted(i["pk"]["S"] for i in resp["Items"]), ["o", "q"])


class BigPageTest(harness.TestCase):
    """30 items of ~100 KB: more than the 1 MB a single Query/Scan page may read."""

    ITEM_BYTES = 100 * 1024

    @classmethod
    def setUpClass(cls):
        for i in range(30):
            c.put_item(TableName=TBIG, Item={"pk": S("big"), "sk": N(i),
                                            "blob": S(chr(ord("a") + i % 26) * cls.ITEM_BYTES)})

    def check_pages(self, pages, items):
        self.assertGreaterEqual(len(pages), 3)
        first = pages[0]
        self.assertIn("LastEvaluatedKey", first)
        # A page stops at about 1 MB: 10 items of 100 KB (one more may be the
        # one that crossed the limit), certainly not all 30 nor only a couple.
        self.assertGreaterEqual(first["Count"], 5)
        self.assertLessEqual(first["Count"], 11)
        for p in pages:
            self.assertLessEqual(sum(len(i["blob"]["S"]) for i in p["Items"]), 11 * self.ITEM_BYTES)
        self.assertEqual([int(i["sk"]["N"]) for i in items], list(range(30)))
        for i in items:
            self.assertEqual(i["blob"]["S"], chr(ord("a") + int(i["sk"]["N"]) % 26) * self.ITEM_BYTES)

    def test_query_pages_at_1mb(self):
        items, pages = query_all(TBIG, **kq("pk = :p", p=S("big")))
        self.check_pages(pages, items)

    def test_scan_pages_at_1mb(self):
        items, pages = scan_all(TBIG)
        items.sort(key=lambda i: int(i["sk"]["N"]))
        self.check_pages(pages, items)

    def test_count_over_1mb_is_paged_too(self):
        resp = c.query(TableName=TBIG, Select="COUNT", **kq("pk = :p", p=S("big")))
        self.assertIn("LastEvaluatedKey", resp)
        self.assertLess(resp["Count"], 30)
        total = resp["Count"]
        kw = kq("pk = :p", p=S("big"))
        for _ in range(100):
            if "LastEvaluatedKey" not in resp:
                break
            resp = c.query(TableName=TBIG, Select="COUNT", ExclusiveStartKey=resp["LastEvaluatedKey"], **kw)
            total += resp["Count"]
        self.assertEqual(total, 30)


class SegmentTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        create_table(c, "qs_seg", ("pk", "S"))
        rnd = random.Random(7)
        cls.keys = set()
        for i in range(200):
            k = "seg-%d-%08x" % (i, rnd.getrandbits(32))
            cls.keys.add(k)
            c.put_item(TableName="qs_seg", Item={"pk": S(k), "i": N(i)})

    def test_segments_partition_the_table(self):
        for total in (1, 2, 4, 7):
            with self.subTest(total=total):
                seen = []
                for seg in range(total):
                    items, _ = scan_all("qs_seg", Segment=seg, TotalSegments=total)
                    seen.extend(i["pk"]["S"] for i in items)
                self.assertEqual(len(seen), len(set(seen)), "an item was returned by two segments")
                self.assertEqual(set(seen), self.keys)

    def test_segments_with_pagination(self):
        seen = []
        nonempty = 0
        for seg in range(4):
            items, pages = scan_all("qs_seg", Segment=seg, TotalSegments=4, Limit=7)
            nonempty += 1 if items else 0
            seen.extend(i["pk"]["S"] for i in items)
        self.assertEqual(sorted(seen), sorted(self.keys))
        # 200 random keys over 4 segments: every segment has some.
        self.assertEqual(nonempty, 4)

    def test_segment_errors(self):
        raw = harness.client(server, validate=False)
        self.assertValidation(lambda: c.scan(TableName="qs_seg", Segment=4, TotalSegments=4),
                              "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                              "Segment: 4 is not less than TotalSegments: 4")
        self.assertValidation(lambda: c.scan(TableName="qs_seg", Segment=1),
                              "The TotalSegments parameter is required but was not present in the request when "
                              "Segment parameter is present")
        self.assertValidation(lambda: c.scan(TableName="qs_seg", TotalSegments=2),
                              "The Segment parameter is required but was not present in the request when parameter "
                              "TotalSegments is present")
        self.assertValidation(lambda: raw.scan(TableName="qs_seg", Segment=0, TotalSegments=1000001),
                              contains=["Value '1000001' at 'totalSegments' failed to satisfy constraint",
                                        "Member must have value less than or equal to 1000000"])


class QueryScanErrorTest(harness.TestCase):
    def test_missing_partition_key_condition(self):
        self.assertValidation(lambda: c.query(TableName=TN, **kq("sk = :v", v=N(1))),
                              "Query condition missed key schema element: pk")
        self.assertValidation(lambda: c.query(TableName=TN, **kq("sk > :v", v=N(1))),
                              "Query condition missed key schema element: pk")
        self.assertValidation(lambda: c.query(TableName=TN, **kq("pk = :p AND extra = :v", p=S("p"), v=N(1))),
                              "Query condition missed key schema element: sk")

    def test_bad_key_conditions(self):
        self.assertValidation(lambda: c.query(TableName=TN, **kq("pk = :p OR sk = :v", p=S("p"), v=N(1))),
                              "Invalid operator used in KeyConditionExpression: OR")
        self.assertValidation(lambda: c.query(TableName=TN, **kq("pk < :p", p=S("p"))),
                              "Query key condition not supported")
        self.assertValidation(
            lambda: c.query(TableName=TN, **kq("pk = :p AND sk > :a AND sk < :b", p=S("p"), a=N(1), b=N(5))),
            "KeyConditionExpressions must only contain one condition per key")
        self.assertValidation(lambda: c.query(TableName=TN, **kq("pk = :p AND begins_with(sk, :v)",
                                                                  p=S("p"), v=N(1))),
                              contains="begins_with")
        self.assertValidation(lambda: c.query(TableName=TN, **kq("pk = :p", p=N(1))),
                              "One or more parameter values were invalid: Condition parameter type does not match "
                              "schema type")
        self.assertValidation(lambda: c.query(TableName=TN, KeyConditionExpression="pk = :p",
                                              FilterExpression="sk > :v",
                                              ExpressionAttributeValues={":p": S("p"), ":v": N(1)}),
                              "Filter Expression can only contain non-primary key attributes: Primary key "
                              "attribute: sk")
        self.assertValidation(lambda: c.query(TableName=TN),
                              "Either the KeyConditions or KeyConditionExpression parameter must be specified in the "
                              "request.")

    def test_nonexistent_table(self):
        self.assertClientError(lambda: c.query(TableName="qs_nope", **kq("pk = :p", p=S("p"))),
                               "ResourceNotFoundException", contains="Requested resource not found")
        self.assertClientError(lambda: c.scan(TableName="qs_nope"),
                               "ResourceNotFoundException", contains="Requested resource not found")

    def test_invalid_exclusive_start_key(self):
        self.assertValidation(lambda: c.scan(TableName=TN, ExclusiveStartKey={"pk": S("p")}),
                              "The provided starting key is invalid: The provided key element does not match the "
                              "schema")
        self.assertValidation(lambda: c.scan(TableName=TN, ExclusiveStartKey={"pk": S("p"), "sk": S("x")}),
                              "The provided starting key is invalid: The provided key element does not match the "
                              "schema")
        self.assertValidation(lambda: c.scan(TableName=TH, ExclusiveStartKey={"other": S("p")}),
                              "The provided starting key is invalid: The provided key element does not match the "
                              "schema")
        self.assertValidation(lambda: c.query(TableName=TN, ExclusiveStartKey={"pk": S("p"), "zz": N(1)},
                                              **kq("pk = :p", p=S("p"))),
                              contains="The provided starting key is invalid")
        self.assertValidation(lambda: c.query(TableName=TN, ExclusiveStartKey={"pk": S("p")},
                                              **kq("pk = :p", p=S("p"))),
                              contains="The provided starting key is invalid")

    def test_limit_must_be_positive(self):
        raw = harness.client(server, validate=False)
        self.assertValidation(lambda: raw.query(TableName=TN, Limit=0, **kq("pk = :p", p=S("p"))),
                              "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
                              "Member must have value greater than or equal to 1")
        self.assertValidation(lambda: raw.scan(TableName=TN, Limit=0),
                              "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
                              "Member must have value greater than or equal to 1")
