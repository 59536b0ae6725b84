"""BatchWriteItem and BatchGetItem: puts and deletes over two tables, the 25
request limit, duplicate keys, BatchGetItem over two tables with
ProjectionExpression, missing items, the 100 key limit, and empty
UnprocessedItems / UnprocessedKeys.
"""

import harness
from harness import create_table

server = None
c = None
raw = None
A = "batch_a"    # pk S
B = "batch_b"    # id N + r S


def setUpModule():
    global server, c, raw
    server = harness.Server(name="batch").start()
    c = harness.client(server)
    raw = harness.client(server, validate=False)
    create_table(c, A, ("pk", "S"))
    create_table(c, B, ("id", "N"), ("r", "S"))


def tearDownModule():
    server.close()


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def put(item):
    return {"PutRequest": {"Item": item}}


def delete(k):
    return {"DeleteRequest": {"Key": k}}


def get_a(k):
    return c.get_item(TableName=A, Key={"pk": S(k)}, ConsistentRead=True).get("Item")


def get_b(i, r):
    return c.get_item(TableName=B, Key={"id": N(i), "r": S(r)}, ConsistentRead=True).get("Item")


class BatchWriteTest(harness.TestCase):
    def test_puts_and_deletes_over_two_tables(self):
        c.put_item(TableName=A, Item={"pk": S("w-old"), "v": S("to delete")})
        c.put_item(TableName=B, Item={"id": N(99), "r": S("x"), "v": S("to delete")})
        resp = c.batch_write_item(RequestItems={
            A: [put({"pk": S("w-%d" % i), "v": N(i)}) for i in range(10)] + [delete({"pk": S("w-old")})],
            B: [put({"id": N(i), "r": S("r%d" % i), "m": {"M": {"x": {"L": [N(i)]}}}}) for i in range(13)]
               + [delete({"id": N(99), "r": S("x")})],
        })
        self.assertEqual(resp["UnprocessedItems"], {})
        for i in range(10):
            self.assertEqual(get_a("w-%d" % i), {"pk": S("w-%d" % i), "v": N(i)})
        for i in range(13):
            self.assertEqual(get_b(i, "r%d" % i), {"id": N(i), "r": S("r%d" % i), "m": {"M": {"x": {"L": [N(i)]}}}})
        self.assertIsNone(get_a("w-old"))
        self.assertIsNone(get_b(99, "x"))

    def test_put_overwrites_and_delete_of_missing_is_fine(self):
        c.put_item(TableName=A, Item={"pk": S("ow"), "old": S("attr")})
        resp = c.batch_write_item(RequestItems={A: [put({"pk": S("ow"), "new": S("attr")}),
                                                    delete({"pk": S("never-existed")})]})
        self.assertEqual(resp["UnprocessedItems"], {})
        self.assertEqual(get_a("ow"), {"pk": S("ow"), "new": S("attr")})

    def test_exactly_25_requests(self):
        resp = c.batch_write_item(RequestItems={A: [put({"pk": S("x25-%d" % i)}) for i in range(25)]})
        self.assertEqual(resp["UnprocessedItems"], {})
        for i in range(25):
            self.assertIsNotNone(get_a("x25-%d" % i))

    def test_more_than_25_requests(self):
        self.assertValidation(
            lambda: raw.batch_write_item(RequestItems={A: [put({"pk": S("x26-%d" % i)}) for i in range(26)]}),
            contains=["1 validation error detected: Value ",
                      "at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
                      "[Member must have length less than or equal to 25"])
        for i in range(26):
            self.assertIsNone(get_a("x26-%d" % i))

    def test_duplicate_keys(self):
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={A: [put({"pk": S("dup"), "v": N(1)}),
                                                         put({"pk": S("dup"), "v": N(2)})]}),
            "Provided list of item keys contains duplicates")
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={A: [put({"pk": S("dup2")}), delete({"pk": S("dup2")})]}),
            "Provided list of item keys contains duplicates")
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={B: [put({"id": N(1), "r": S("a")}),
                                                         put({"id": N("1.0"), "r": S("a")})]}),
            "Provided list of item keys contains duplicates")
        self.assertIsNone(get_a("dup"))
        self.assertIsNone(get_a("dup2"))
        # The same key in two different tables is not a duplicate.
        resp = c.batch_write_item(RequestItems={A: [put({"pk": S("same")})],
                                                B: [put({"id": N(7), "r": S("same")})]})
        self.assertEqual(resp["UnprocessedItems"], {})

    def test_invalid_requests_write_nothing(self):
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={A: [put({"pk": S("ok-1")}), put({"pk": N(5)})]}),
            contains="The provided key element does not match the schema")
        self.assertIsNone(get_a("ok-1"))
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={A: [put({"pk": S("ok-2")}), put({"other": S("x")})]}),
            contains="The provided key element does not match the schema")
        self.assertIsNone(get_a("ok-2"))
        self.assertValidation(
            lambda: c.batch_write_item(RequestItems={A: [put({"pk": S("big"), "v": S("x" * (400 * 1024))})]}),
            "Item size has exceeded the maximum allowed size")
        self.assertIsNone(get_a("big"))

    def test_missing_table(self):
        self.assertClientError(
            lambda: c.batch_write_item(RequestItems={"batch_none": [put({"pk": S("x")})]}),
            "ResourceNotFoundException", contains="Requested resource not found")

    def test_empty_request(self):
        self.assertValidation(
            lambda: raw.batch_write_item(RequestItems={}),
            contains=["1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: "
                      "Member must have length greater than or equal to 1"])


class BatchGetTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        c.batch_write_item(RequestItems={
            A: [put({"pk": S("g-%d" % i), "v": N(i), "m": {"M": {"a": S("a%d" % i), "b": S("b%d" % i)}}})
                for i in range(20)],
        })
        c.batch_write_item(RequestItems={
            B: [put({"id": N(1000 + i), "r": S("g"), "v": N(i)}) for i in range(20)],
        })

    def test_two_tables_and_missing_items(self):
        resp = c.batch_get_item(RequestItems={
            A: {"Keys": [{"pk": S("g-1")}, {"pk": S("g-2")}, {"pk": S("g-absent")}]},
            B: {"Keys": [{"id": N(1003), "r": S("g")}, {"id": N(1003), "r": S("nope")}]},
        })
        self.assertEqual(resp["UnprocessedKeys"], {})
        got_a = sorted(resp["Responses"][A], key=lambda i: i["pk"]["S"])
        self.assertEqual(got_a, [{"pk": S("g-1"), "v": N(1), "m": {"M": {"a": S("a1"), "b": S("b1")}}},
                                 {"pk": S("g-2"), "v": N(2), "m": {"M": {"a": S("a2"), "b": S("b2")}}}])
        self.assertEqual(resp["Responses"][B], [{"id": N(1003), "r": S("g"), "v": N(3)}])

    def test_all_missing(self):
        resp = c.batch_get_item(RequestItems={A: {"Keys": [{"pk": S("nope-1")}, {"pk": S("nope-2")}]}})
        self.assertEqual(resp["Responses"], {A: []})
        self.assertEqual(resp["UnprocessedKeys"], {})

    def test_projection_expression(self):
        resp = c.batch_get_item(RequestItems={
            A: {"Keys": [{"pk": S("g-5")}], "ProjectionExpression": "#v, m.b",
                "ExpressionAttributeNames": {"#v": "v"}},
            B: {"Keys": [{"id": N(1005), "r": S("g")}], "ProjectionExpression": "v", "ConsistentRead": True},
        })
        self.assertEqual(resp["Responses"][A], [{"v": N(5), "m": {"M": {"b": S("b5")}}}])
        self.assertEqual(resp["Responses"][B], [{"v": N(5)}])

    def test_100_keys(self):
        keys = [{"pk": S("g-%d" % i)} for i in range(20)] + [{"pk": S("absent-%d" % i)} for i in range(60)]
        keys_b = [{"id": N(1000 + i), "r": S("g")} for i in range(20)]
        resp = c.batch_get_item(RequestItems={A: {"Keys": keys}, B: {"Keys": keys_b}})
        self.assertEqual(resp["UnprocessedKeys"], {})
        self.assertEqual(sorted(i["pk"]["S"] for i in resp["Responses"][A]), sorted("g-%d" % i for i in range(20)))
        self.assertEqual(len(resp["Responses"][B]), 20)

    def test_more_than_100_keys(self):
        keys = [{"pk": S("k-%d" % i)} for i in range(101)]
        # 101 keys for one table break that table's Keys constraint ...
        self.assertValidation(lambda: raw.batch_get_item(RequestItems={A: {"Keys": keys}}),
                              contains=["1 validation error detected: Value ",
                                        "failed to satisfy constraint: Member must have length less than or "
                                        "equal to 100"])
        # ... and over two tables the total is too many.
        self.assertValidation(
            lambda: raw.batch_get_item(RequestItems={
                A: {"Keys": keys[:60]}, B: {"Keys": [{"id": N(i), "r": S("g")} for i in range(41)]}}),
            "Too many items requested for the BatchGetItem call")

    def test_duplicate_keys(self):
        self.assertValidation(
            lambda: c.batch_get_item(RequestItems={A: {"Keys": [{"pk": S("g-1")}, {"pk": S("g-1")}]}}),
            "Provided list of item keys contains duplicates")

    def test_bad_key(self):
        self.assertValidation(
            lambda: c.batch_get_item(RequestItems={A: {"Keys": [{"pk": N(1)}]}}),
            "The provided key element does not match the schema")
        self.assertClientError(
            lambda: c.batch_get_item(RequestItems={"batch_none": {"Keys": [{"pk": S("x")}]}}),
            "ResourceNotFoundException", contains="Requested resource not found")
