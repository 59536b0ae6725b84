"""The expression language: ConditionExpression on PutItem / UpdateItem /
DeleteItem (every comparator, BETWEEN, IN, AND/OR/NOT, parentheses and
precedence, every function), ConditionalCheckFailedException with
ReturnValuesOnConditionCheckFailure, UpdateExpression (SET with + and -,
if_not_exists, list_append, nested map paths, list indexes, REMOVE, ADD,
DELETE, several clauses), ProjectionExpression with nested paths and list
indexes, ExpressionAttributeNames/Values, and the validation errors of
expressions with DynamoDB's messages.
"""

import re

import harness
from harness import ClientError, create_table

server = None
c = None
T = "expr"

CCF = "ConditionalCheckFailedException"
CCF_MSG = "The conditional request failed"


def setUpModule():
    global server, c
    server = harness.Server(name="expressions").start()
    c = harness.client(server)
    create_table(c, T, ("pk", "S"))
    create_table(c, "expr_hr", ("pk", "S"), ("sk", "N"))


def tearDownModule():
    server.close()


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def L(*v):
    return {"L": list(v)}


def M(**kw):
    return {"M": kw}


def key(k):
    return {"pk": S(k)}


def get(k, **kw):
    return c.get_item(TableName=T, Key=key(k), ConsistentRead=True, **kw).get("Item")


# A rich item used by the condition tests.
BASE = {
    "n": N(10), "neg": N(-2.5), "s": S("hello world"), "b": {"B": b"\x01\x02\x03"},
    "t": {"BOOL": True}, "nul": {"NULL": True},
    "ss": {"SS": ["apple", "banana"]}, "ns": {"NS": ["1", "2", "3"]}, "bs": {"BS": [b"\x01", b"\x02"]},
    "l": L(S("x"), N(1), M(deep=S("d"))), "m": M(a=N(1), b=M(c=S("see")), e=S("")),
    "empty_s": S(""),
}


class ConditionTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        c.put_item(TableName=T, Item=dict(key("cond"), **BASE))

    def check(self, expr, values=None, names=None, expect=True):
        """Evaluates expr as the condition of a no-op-ish update on item 'cond':
        it succeeds iff the condition is true."""
        kw = {"ConditionExpression": expr}
        # Only the placeholders the expression uses (unused ones are an error).
        vals = {k: v for k, v in (values or {}).items() if re.search(re.escape(k) + r"\b", expr)}
        vals[":__touch"] = N(1)
        kw["ExpressionAttributeValues"] = vals
        if names:
            kw["ExpressionAttributeNames"] = names
        try:
            c.update_item(TableName=T, Key=key("cond"), UpdateExpression="SET touched = :__touch", **kw)
            result = True
        except ClientError as ex:
            if harness.err_code(ex) != CCF:
                raise
            self.assertEqual(harness.err_message(ex), CCF_MSG)
            result = False
        self.assertEqual(result, expect, "condition %r should be %s" % (expr, expect))

    def test_comparators_numbers(self):
        for expr, v, want in [("n = :v", 10, True), ("n = :v", 10.0, True), ("n = :v", 11, False),
                              ("n <> :v", 11, True), ("n <> :v", 10, False),
                              ("n < :v", 11, True), ("n < :v", 10, False),
                              ("n <= :v", 10, True), ("n <= :v", 9.99, False),
                              ("n > :v", 9, True), ("n > :v", 10, False),
                              ("n >= :v", 10, True), ("n >= :v", 10.0001, False),
                              ("neg < :v", -2.4, True), ("neg < :v", -2.5, False),
                              (":v < n", 9, True)]:
            with self.subTest(expr=expr, v=v):
                self.check(expr, {":v": N(v)}, expect=want)

    def test_comparators_strings_and_binary(self):
        self.check("s = :v", {":v": S("hello world")})
        self.check("s < :v", {":v": S("hello worle")})
        self.check("s > :v", {":v": S("hello")})
        self.check("s > :v", {":v": S("i")}, expect=False)
        self.check("b = :v", {":v": {"B": b"\x01\x02\x03"}})
        self.check("b < :v", {":v": {"B": b"\x01\x02\x04"}})
        self.check("b > :v", {":v": {"B": b"\x01\x02"}})
        # Bytes compare unsigned: 0x80 > 0x01.
        self.check("b < :v", {":v": {"B": b"\x80"}})

    def test_comparisons_across_types_are_false(self):
        self.check("n = :v", {":v": S("10")}, expect=False)
        self.check("n < :v", {":v": S("zzz")}, expect=False)
        self.check("s > :v", {":v": N(1)}, expect=False)
        self.check("n <> :v", {":v": S("10")})
        self.check("absent = :v", {":v": N(1)}, expect=False)
        self.check("absent <> :v", {":v": N(1)})

    def test_equality_of_documents_and_sets(self):
        self.check("ss = :v", {":v": {"SS": ["banana", "apple"]}})
        self.check("ns = :v", {":v": {"NS": ["3", "2", "1.0"]}})
        self.check("m.b = :v", {":v": M(c=S("see"))})
        self.check("l = :v", {":v": L(S("x"), N(1), M(deep=S("d")))})
        self.check("l = :v", {":v": L(N(1), S("x"), M(deep=S("d")))}, expect=False)
        self.check("t = :v", {":v": {"BOOL": True}})
        self.check("nul = :v", {":v": {"NULL": True}})

    def test_between(self):
        self.check("n BETWEEN :a AND :b", {":a": N(1), ":b": N(10)})
        self.check("n BETWEEN :a AND :b", {":a": N(10), ":b": N(10)})
        self.check("n BETWEEN :a AND :b", {":a": N(11), ":b": N(20)}, expect=False)
        self.check("s BETWEEN :a AND :b", {":a": S("hello"), ":b": S("help")})
        self.check("s between :a and :b", {":a": S("a"), ":b": S("b")}, expect=False)

    def test_in(self):
        self.check("n IN (:a, :b, :c)", {":a": N(1), ":b": N(10), ":c": N(100)})
        self.check("n IN (:a)", {":a": N(10)})
        self.check("n IN (:a, :b)", {":a": N(1), ":b": S("10")}, expect=False)
        self.check("s in (:a, :b)", {":a": S("hello"), ":b": S("hello world")})

    def test_and_or_not(self):
        v = {":ten": N(10), ":one": N(1), ":s": S("hello world")}
        self.check("n = :ten AND s = :s", v)
        self.check("n = :one AND s = :s", v, expect=False)
        self.check("n = :one OR s = :s", v)
        self.check("n = :one OR s = :one", v, expect=False)
        self.check("NOT n = :one", v)
        self.check("NOT n = :ten", v, expect=False)
        self.check("not (n = :one or s = :one)", v)

    def test_precedence_and_parentheses(self):
        v = {":t": N(10), ":f": N(0)}
        # AND binds tighter than OR: true OR (false AND false) = true
        self.check("n = :t OR n = :f AND n = :f", v)
        # (true OR false) AND false = false
        self.check("(n = :t OR n = :f) AND n = :f", v, expect=False)
        # NOT binds tighter than AND: (NOT false) AND true = true
        self.check("NOT n = :f AND n = :t", v)
        # NOT (false AND true) = true ; NOT (true AND true) = false
        self.check("NOT (n = :f AND n = :t)", v)
        self.check("NOT (n = :t AND n = :t)", v, expect=False)
        self.check("(n = :f OR (n = :t AND (n = :f OR n = :t)))", v)

    def test_attribute_exists_and_not_exists(self):
        self.check("attribute_exists(n)")
        self.check("attribute_exists(m.b.c)")
        self.check("attribute_exists(l[2].deep)")
        self.check("attribute_exists(l[3])", expect=False)
        self.check("attribute_exists(absent)", expect=False)
        self.check("attribute_exists(nul)")
        self.check("attribute_not_exists(absent)")
        self.check("attribute_not_exists(m.zzz)")
        self.check("attribute_not_exists(n)", expect=False)
        self.check("attribute_exists(#n)", names={"#n": "n"})

    def test_attribute_type(self):
        for attr, t in [("n", "N"), ("s", "S"), ("b", "B"), ("t", "BOOL"), ("nul", "NULL"), ("ss", "SS"),
                        ("ns", "NS"), ("bs", "BS"), ("l", "L"), ("m", "M"), ("m.b", "M"), ("l[1]", "N")]:
            with self.subTest(attr=attr):
                self.check("attribute_type(%s, :t)" % attr, {":t": S(t)})
                self.check("attribute_type(%s, :t)" % attr, {":t": S("SS" if t != "SS" else "NS")}, expect=False)
        self.check("attribute_type(absent, :t)", {":t": S("S")}, expect=False)

    def test_begins_with(self):
        self.check("begins_with(s, :p)", {":p": S("hello")})
        self.check("begins_with(s, :p)", {":p": S("hello world")})
        self.check("begins_with(s, :p)", {":p": S("world")}, expect=False)
        self.check("begins_with(s, :p)", {":p": S("")})
        self.check("begins_with(b, :p)", {":p": {"B": b"\x01\x02"}})
        self.check("begins_with(n, :p)", {":p": S("1")}, expect=False)
        self.check("begins_with(absent, :p)", {":p": S("h")}, expect=False)

    def test_contains(self):
        self.check("contains(s, :v)", {":v": S("lo wo")})
        self.check("contains(s, :v)", {":v": S("xyz")}, expect=False)
        self.check("contains(ss, :v)", {":v": S("apple")})
        self.check("contains(ss, :v)", {":v": S("app")}, expect=False)
        self.check("contains(ns, :v)", {":v": N(2)})
        self.check("contains(ns, :v)", {":v": N(4)}, expect=False)
        self.check("contains(bs, :v)", {":v": {"B": b"\x02"}})
        self.check("contains(l, :v)", {":v": S("x")})
        self.check("contains(l, :v)", {":v": N(1)})
        self.check("contains(l, :v)", {":v": S("y")}, expect=False)
        self.check("contains(b, :v)", {":v": {"B": b"\x02\x03"}})
        self.check("contains(n, :v)", {":v": N(1)}, expect=False)

    def test_size(self):
        for attr, size in [("s", 11), ("b", 3), ("ss", 2), ("ns", 3), ("bs", 2), ("l", 3), ("m", 3),
                           ("m.b.c", 3), ("empty_s", 0)]:
            with self.subTest(attr=attr):
                self.check("size(%s) = :n" % attr, {":n": N(size)})
                self.check("size(%s) > :n" % attr, {":n": N(size)}, expect=False)
        self.check("size(l) BETWEEN :a AND :b", {":a": N(2), ":b": N(4)})
        self.check("size(s) > size(ss)")
        self.check("size(absent) = :n", {":n": N(0)}, expect=False)
        # size of a number is not defined: the condition is false, not an error.
        self.check("size(n) = :n", {":n": N(2)}, expect=False)

    def test_names_and_values(self):
        self.check("#a.#b.#c = :v", {":v": S("see")}, names={"#a": "m", "#b": "b", "#c": "c"})
        self.check("#weird = :v", {":v": N(1)}, names={"#weird": "attr.with.dots"}, expect=False)
        c.put_item(TableName=T, Item={"pk": S("dots"), "attr.with.dots": N(1)})
        c.update_item(TableName=T, Key=key("dots"), UpdateExpression="SET x = :v",
                      ConditionExpression="#weird = :v", ExpressionAttributeNames={"#weird": "attr.with.dots"},
                      ExpressionAttributeValues={":v": N(1)})
        self.assertEqual(get("dots")["x"], N(1))


class ConditionalWriteTest(harness.TestCase):
    def test_put_if_not_exists(self):
        item = dict(key("create-once"), v=S("first"))
        c.put_item(TableName=T, Item=item, ConditionExpression="attribute_not_exists(pk)")
        self.assertClientError(
            lambda: c.put_item(TableName=T, Item=dict(key("create-once"), v=S("second")),
                               ConditionExpression="attribute_not_exists(pk)"),
            CCF, CCF_MSG)
        self.assertEqual(get("create-once"), item)

    def test_put_condition_on_absent_item(self):
        self.assertClientError(
            lambda: c.put_item(TableName=T, Item=dict(key("absent-put"), v=S("x")),
                               ConditionExpression="attribute_exists(pk)"),
            CCF, CCF_MSG)
        self.assertIsNone(get("absent-put"))
        # A comparison against an absent attribute is false; <> is true.
        self.assertClientError(
            lambda: c.put_item(TableName=T, Item=dict(key("absent-put"), v=S("x")),
                               ConditionExpression="v = :v", ExpressionAttributeValues={":v": S("x")}),
            CCF, CCF_MSG)
        c.put_item(TableName=T, Item=dict(key("absent-put"), v=S("x")),
                   ConditionExpression="v <> :v", ExpressionAttributeValues={":v": S("x")})
        self.assertEqual(get("absent-put")["v"], S("x"))

    def test_update_condition(self):
        c.put_item(TableName=T, Item=dict(key("ver"), version=N(1), body=S("a")))
        c.update_item(TableName=T, Key=key("ver"), UpdateExpression="SET version = :new, body = :d",
                      ConditionExpression="version = :old",
                      ExpressionAttributeValues={":new": N(2), ":old": N(1), ":d": S("b")})
        self.assertClientError(
            lambda: c.update_item(TableName=T, Key=key("ver"), UpdateExpression="SET version = :new, body = :d",
                                  ConditionExpression="version = :old",
                                  ExpressionAttributeValues={":new": N(2), ":old": N(1), ":d": S("c")}),
            CCF, CCF_MSG)
        self.assertEqual(get("ver"), dict(key("ver"), version=N(2), body=S("b")))
        # Failed condition on an absent item does not create it.
        self.assertClientError(
            lambda: c.update_item(TableName=T, Key=key("ver-absent"), UpdateExpression="SET a = :a",
                                  ConditionExpression="attribute_exists(pk)",
                                  ExpressionAttributeValues={":a": N(1)}),
            CCF, CCF_MSG)
        self.assertIsNone(get("ver-absent"))

    def test_delete_condition(self):
        c.put_item(TableName=T, Item=dict(key("del-cond"), state=S("locked")))
        self.assertClientError(
            lambda: c.delete_item(TableName=T, Key=key("del-cond"), ConditionExpression="#s = :open",
                                  ExpressionAttributeNames={"#s": "state"},
                                  ExpressionAttributeValues={":open": S("open")}),
            CCF, CCF_MSG)
        self.assertIsNotNone(get("del-cond"))
        resp = c.delete_item(TableName=T, Key=key("del-cond"), ConditionExpression="#s = :l",
                             ExpressionAttributeNames={"#s": "state"},
                             ExpressionAttributeValues={":l": S("locked")}, ReturnValues="ALL_OLD")
        self.assertEqual(resp["Attributes"], dict(key("del-cond"), state=S("locked")))
        self.assertIsNone(get("del-cond"))
        self.assertClientError(
            lambda: c.delete_item(TableName=T, Key=key("del-cond"), ConditionExpression="attribute_exists(pk)"),
            CCF, CCF_MSG)

    def test_return_values_on_condition_check_failure(self):
        old = dict(key("rvcf"), v=N(1), tag=S("old"))
        c.put_item(TableName=T, Item=old)
        cases = [
            lambda kw: c.put_item(TableName=T, Item=dict(key("rvcf"), v=N(9)),
                                  ConditionExpression="v = :x", ExpressionAttributeValues={":x": N(5)}, **kw),
            lambda kw: c.update_item(TableName=T, Key=key("rvcf"), UpdateExpression="SET v = :x",
                                     ConditionExpression="v = :x", ExpressionAttributeValues={":x": N(5)}, **kw),
            lambda kw: c.delete_item(TableName=T, Key=key("rvcf"), ConditionExpression="v = :x",
                                     ExpressionAttributeValues={":x": N(5)}, **kw),
        ]
        for fn in cases:
            ex = self.assertClientError(lambda: fn({"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}), CCF, CCF_MSG)
            self.assertEqual(ex.response.get("Item"), old)
            ex = self.assertClientError(lambda: fn({"ReturnValuesOnConditionCheckFailure": "NONE"}), CCF, CCF_MSG)
            self.assertNotIn("Item", ex.response)
            ex = self.assertClientError(lambda: fn({}), CCF, CCF_MSG)
            self.assertNotIn("Item", ex.response)
        self.assertEqual(get("rvcf"), old)
        # On a absent item there is nothing to return.
        ex = self.assertClientError(
            lambda: c.put_item(TableName=T, Item=dict(key("rvcf-absent")), ConditionExpression="attribute_exists(pk)",
                               ReturnValuesOnConditionCheckFailure="ALL_OLD"), CCF, CCF_MSG)
        self.assertNotIn("Item", ex.response)


class UpdateExpressionTest(harness.TestCase):
    def update(self, k, expr, values=None, names=None, **kw):
        args = {"TableName": T, "Key": key(k), "UpdateExpression": expr, "ReturnValues": "ALL_NEW"}
        if values:
            args["ExpressionAttributeValues"] = values
        if names:
            args["ExpressionAttributeNames"] = names
        args.update(kw)
        return c.update_item(**args).get("Attributes")

    def test_set_arithmetic(self):
        c.put_item(TableName=T, Item=dict(key("arith"), n=N(10), f=N("0.1")))
        got = self.update("arith", "SET n = n + :one, m = n - :two, f = f + :f, z = :a - :b",
                          {":one": N(1), ":two": N(2), ":f": N("0.2"), ":a": N(5), ":b": N(7)})
        # Right-hand sides see the old item: m = 10 - 2.
        self.assertEqual(got, dict(key("arith"), n=N(11), m=N(8), f=N("0.3"), z=N(-2)))
        got = self.update("arith", "SET n = :a + :b", {":a": N("50000000000000000000000000000000000000"),
                                                        ":b": N("49999999999999999999999999999999999999")})
        self.assertEqual(got["n"], N("99999999999999999999999999999999999999"))

    def test_set_arithmetic_exact_decimals(self):
        c.put_item(TableName=T, Item=dict(key("arith2"), n=N("12345678901234567890.123456789")))
        got = self.update("arith2", "SET n = n + :d", {":d": N("0.000000001")})
        self.assertEqual(got["n"], N("12345678901234567890.12345679"))
        got = self.update("arith2", "SET n = n - n")
        self.assertEqual(got["n"], N(0))

    def test_if_not_exists(self):
        c.put_item(TableName=T, Item=dict(key("ine"), a=N(1)))
        got = self.update("ine", "SET a = if_not_exists(a, :d), b = if_not_exists(b, :d)", {":d": N(42)})
        self.assertEqual(got, dict(key("ine"), a=N(1), b=N(42)))
        got = self.update("ine", "SET c = if_not_exists(c, :zero) + :inc", {":zero": N(0), ":inc": N(5)})
        self.assertEqual(got["c"], N(5))
        got = self.update("ine", "SET c = if_not_exists(c, :zero) + :inc", {":zero": N(0), ":inc": N(5)})
        self.assertEqual(got["c"], N(10))

    def test_list_append(self):
        c.put_item(TableName=T, Item=dict(key("la"), l=L(N(1), N(2))))
        got = self.update("la", "SET l = list_append(l, :tail)", {":tail": L(N(3))})
        self.assertEqual(got["l"], L(N(1), N(2), N(3)))
        got = self.update("la", "SET l = list_append(:head, l)", {":head": L(S("a"), S("b"))})
        self.assertEqual(got["l"], L(S("a"), S("b"), N(1), N(2), N(3)))
        got = self.update("la", "SET n = list_append(if_not_exists(n, :empty), :x)",
                          {":empty": L(), ":x": L(S("first"))})
        self.assertEqual(got["n"], L(S("first")))

    def test_nested_map_paths(self):
        c.put_item(TableName=T, Item=dict(key("nest"), m=M(a=M(b=N(1)), keep=S("k"))))
        got = self.update("nest", "SET m.a.b = :v, m.a.c = :w, m.#new = :x",
                          {":v": N(2), ":w": S("c"), ":x": M()}, names={"#new": "new"})
        self.assertEqual(got["m"], M(a=M(b=N(2), c=S("c")), keep=S("k"), new=M()))
        got = self.update("nest", "SET m.#new.deeper = :v", {":v": L(N(1))}, names={"#new": "new"})
        self.assertEqual(got["m"]["M"]["new"], M(deeper=L(N(1))))
        # A absent intermediate map is an error, not an implicit create.
        self.assertValidation(lambda: self.update("nest", "SET m.nothere.x = :v", {":v": N(1)}),
                              "The document path provided in the update expression is invalid for update")
        self.assertValidation(lambda: self.update("nest", "SET absent.x = :v", {":v": N(1)}),
                              "The document path provided in the update expression is invalid for update")
        # Indexing into something that is not a list is invalid too.
        self.assertValidation(lambda: self.update("nest", "SET m.keep[0] = :v", {":v": N(1)}),
                              "The document path provided in the update expression is invalid for update")

    def test_list_indexes(self):
        c.put_item(TableName=T, Item=dict(key("idx"), l=L(S("a"), S("b"), S("c")),
                                          m=M(l=L(M(x=N(1)), M(x=N(2))))))
        got = self.update("idx", "SET l[1] = :v, m.l[1].x = :w", {":v": S("B"), ":w": N(20)})
        self.assertEqual(got["l"], L(S("a"), S("B"), S("c")))
        self.assertEqual(got["m"], M(l=L(M(x=N(1)), M(x=N(20)))))
        # Setting past the end appends.
        got = self.update("idx", "SET l[10] = :v", {":v": S("z")})
        self.assertEqual(got["l"], L(S("a"), S("B"), S("c"), S("z")))

    def test_remove(self):
        c.put_item(TableName=T, Item=dict(key("rm"), a=N(1), b=N(2), m=M(x=N(1), y=N(2)),
                                          l=L(S("l0"), S("l1"), S("l2"), S("l3"))))
        got = self.update("rm", "REMOVE a, m.x, l[1], l[3], nothere")
        self.assertEqual(got, dict(key("rm"), b=N(2), m=M(y=N(2)), l=L(S("l0"), S("l2"))))
        # Out-of-range index: nothing happens.
        got = self.update("rm", "REMOVE l[7]")
        self.assertEqual(got["l"], L(S("l0"), S("l2")))

    def test_add(self):
        c.put_item(TableName=T, Item=dict(key("add"), n=N(5), ss={"SS": ["a"]}))
        got = self.update("add", "ADD n :d, ss :s, ns :ns, newn :d",
                          {":d": N(-1.5), ":s": {"SS": ["b", "a"]}, ":ns": {"NS": ["1", "2"]}})
        self.assertEqual(got["n"], N(3.5))
        self.assertEqual(sorted(got["ss"]["SS"]), ["a", "b"])
        self.assertEqual(sorted(got["ns"]["NS"]), ["1", "2"])
        self.assertEqual(got["newn"], N(-1.5))
        got = self.update("add", "ADD bs :b", {":b": {"BS": [b"\x01"]}})
        self.assertEqual(got["bs"], {"BS": [b"\x01"]})

    def test_delete_from_set(self):
        c.put_item(TableName=T, Item=dict(key("dset"), ss={"SS": ["a", "b", "c"]}, ns={"NS": ["1", "2"]}))
        got = self.update("dset", "DELETE ss :x, ns :n", {":x": {"SS": ["a", "zzz"]}, ":n": {"NS": ["1.0"]}})
        self.assertEqual(sorted(got["ss"]["SS"]), ["b", "c"])
        self.assertEqual(got["ns"], {"NS": ["2"]})
        # Deleting every element removes the attribute.
        got = self.update("dset", "DELETE ss :x", {":x": {"SS": ["b", "c"]}})
        self.assertNotIn("ss", got)
        # Deleting from a absent attribute is fine.
        got = self.update("dset", "DELETE nothere :x", {":x": {"SS": ["q"]}})
        self.assertNotIn("nothere", got)

    def test_multiple_clauses(self):
        c.put_item(TableName=T, Item=dict(key("multi"), a=N(1), b=S("x"), s={"SS": ["p", "q"]}, cnt=N(0)))
        got = self.update("multi", "SET a = a + :one, c = :c REMOVE b ADD cnt :one DELETE s :p",
                          {":one": N(1), ":c": S("new"), ":p": {"SS": ["p"]}})
        self.assertEqual(got, dict(key("multi"), a=N(2), c=S("new"), cnt=N(1), s={"SS": ["q"]}))
        # Clause order does not matter; keywords are case-insensitive.
        got = self.update("multi", "remove c set a = :v", {":v": N(7)})
        self.assertEqual(got, dict(key("multi"), a=N(7), cnt=N(1), s={"SS": ["q"]}))

    def test_updated_old_new_with_nested_paths(self):
        c.put_item(TableName=T, Item=dict(key("unew"), m=M(a=N(1), b=N(2)), other=S("o")))
        resp = c.update_item(TableName=T, Key=key("unew"), UpdateExpression="SET m.a = :v",
                             ExpressionAttributeValues={":v": N(5)}, ReturnValues="UPDATED_NEW")
        self.assertEqual(resp["Attributes"], {"m": M(a=N(5))})
        resp = c.update_item(TableName=T, Key=key("unew"), UpdateExpression="SET m.a = :v",
                             ExpressionAttributeValues={":v": N(6)}, ReturnValues="UPDATED_OLD")
        self.assertEqual(resp["Attributes"], {"m": M(a=N(5))})


class UpdateErrorTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        c.put_item(TableName=T, Item=dict(key("uerr"), s=S("str"), n=N(1), l=L(N(1)), ss={"SS": ["a"]}))

    def upd(self, expr, values=None, names=None, table=T, k=None, **kw):
        args = {"TableName": table, "Key": k or key("uerr"), "UpdateExpression": expr}
        if values is not None:
            args["ExpressionAttributeValues"] = values
        if names is not None:
            args["ExpressionAttributeNames"] = names
        args.update(kw)
        return lambda: c.update_item(**args)

    def tearDown(self):
        # No failed update may have changed the item.
        self.assertEqual(get("uerr"), dict(key("uerr"), s=S("str"), n=N(1), l=L(N(1)), ss={"SS": ["a"]}))

    def test_update_key_attribute(self):
        self.assertValidation(self.upd("SET pk = :v", {":v": S("other")}),
                              "One or more parameter values were invalid: Cannot update attribute pk. "
                              "This attribute is part of the key")
        self.assertValidation(self.upd("REMOVE pk"),
                              "One or more parameter values were invalid: Cannot update attribute pk. "
                              "This attribute is part of the key")
        self.assertValidation(self.upd("SET sk = :v", {":v": N(2)}, table="expr_hr",
                                       k={"pk": S("a"), "sk": N(1)}),
                              "One or more parameter values were invalid: Cannot update attribute sk. "
                              "This attribute is part of the key")

    def test_unused_placeholders(self):
        self.assertValidation(self.upd("SET n = :v", {":v": N(2), ":x": N(3)}),
                              "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, names={"#unused": "n"}),
                              "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}")
        # Also across request kinds: a value only used by no expression at all.
        self.assertValidation(
            lambda: c.get_item(TableName=T, Key=key("uerr"), ProjectionExpression="s",
                               ExpressionAttributeNames={"#x": "s"}),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}")

    def test_undefined_placeholders(self):
        self.assertValidation(self.upd("SET n = :nope", {":v": N(2)}),
                              "Invalid UpdateExpression: An expression attribute value used in expression is "
                              "not defined; attribute value: :nope")
        self.assertValidation(self.upd("SET #nope = :v", {":v": N(2)}),
                              "Invalid UpdateExpression: An expression attribute name used in the document path "
                              "is not defined; attribute name: #nope")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="n = :other"),
                              "Invalid ConditionExpression: An expression attribute value used in expression is "
                              "not defined; attribute value: :other")
        self.assertValidation(
            lambda: c.get_item(TableName=T, Key=key("uerr"), ProjectionExpression="#p"),
            "Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; "
            "attribute name: #p")

    def test_reserved_words(self):
        self.assertValidation(self.upd("SET name = :v", {":v": S("x")}),
                              "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name")
        self.assertValidation(self.upd("SET n = :v", {":v": S("x")}, ConditionExpression="attribute_exists(status)"),
                              "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: "
                              "status")
        self.assertValidation(
            lambda: c.get_item(TableName=T, Key=key("uerr"), ProjectionExpression="s, comment"),
            "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: comment")

    def test_syntax_errors(self):
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="foo"),
                              'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "foo"')
        self.assertValidation(self.upd("SET n = :v, ", {":v": N(2)}),
                              contains='Invalid UpdateExpression: Syntax error; token: "<EOF>"')
        self.assertValidation(self.upd("SET n == :v", {":v": N(2)}),
                              contains='Invalid UpdateExpression: Syntax error; token: "="')
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="n = = :v"),
                              contains='Invalid ConditionExpression: Syntax error; token: "="')
        self.assertValidation(self.upd("UPSERT n = :v", {":v": N(2)}),
                              contains='Invalid UpdateExpression: Syntax error; token: "UPSERT"')
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression=""),
                              "Invalid ConditionExpression: The expression can not be empty;")
        self.assertValidation(self.upd("", {":v": N(2)}),
                              "Invalid UpdateExpression: The expression can not be empty;")

    def test_function_errors(self):
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="foo(n)"),
                              "Invalid ConditionExpression: Invalid function name; function: foo")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="begins_with(s)"),
                              "Invalid ConditionExpression: Incorrect number of operands for operator or function; "
                              "operator or function: begins_with, number of operands: 1")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2), ":t": S("FOO")},
                                       ConditionExpression="attribute_type(n, :t)"),
                              contains="Invalid ConditionExpression: Invalid attribute type name found; type: FOO")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="attribute_exists(:v)"),
                              "Invalid ConditionExpression: Operator or function requires a document path; "
                              "operator or function: attribute_exists")
        self.assertValidation(self.upd("SET n = if_not_exists(:v, n)", {":v": N(2)}),
                              "Invalid UpdateExpression: Operator or function requires a document path; "
                              "operator or function: if_not_exists")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2), ":a": N(5), ":b": N(1)},
                                       ConditionExpression="n BETWEEN :a AND :b"),
                              contains="Invalid ConditionExpression: The BETWEEN operator requires upper bound to be "
                                       "greater than or equal to lower bound")
        self.assertValidation(self.upd("SET n = :v", {":v": N(2)}, ConditionExpression="if_not_exists(n, :v) = :v"),
                              # DynamoDB: "The function is not allowed in a condition expression" (wording
                              # varies between reports); it must name neither a syntax error nor succeed.
                              contains=["Invalid ConditionExpression: ", "function"])

    def test_overlapping_paths(self):
        self.assertValidation(self.upd("SET n = :v REMOVE n", {":v": N(2)}),
                              "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
                              "rewrite one of these paths; path one: [n], path two: [n]")
        self.assertValidation(self.upd("SET l = :v, l[0] = :v", {":v": L(N(1))}),
                              "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
                              "rewrite one of these paths; path one: [l], path two: [l, [0]]")
        self.assertValidation(self.upd("SET #m.a = :v, #m = :v", {":v": M()}, names={"#m": "m"}),
                              "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
                              "rewrite one of these paths; path one: [m, a], path two: [m]")
        self.assertValidation(self.upd("SET n = :v SET s = :v", {":v": N(2)}),
                              'Invalid UpdateExpression: The "SET" section can only be used once in an update '
                              'expression;')

    def test_incorrect_operand_types(self):
        # Known at parse time from the value placeholders.
        self.assertValidation(self.upd("SET n = n + :s", {":s": S("x")}),
                              "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                              "operator or function: +, operand type: S")
        self.assertValidation(self.upd("ADD n :s", {":s": S("x")}),
                              "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                              "operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND")
        self.assertValidation(self.upd("DELETE ss :s", {":s": S("a")}),
                              "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                              "operator: DELETE, operand type: STRING, typeSet: ALLOWED_FOR_DELETE_OPERAND")
        self.assertValidation(self.upd("SET l = list_append(l, :s)", {":s": S("x")}),
                              "Invalid UpdateExpression: Incorrect operand type for operator or function; "
                              "operator or function: list_append, operand type: S")
        # Known only against the stored item.
        self.assertValidation(self.upd("SET s = s + :one", {":one": N(1)}),
                              "An operand in the update expression has an incorrect data type")
        self.assertValidation(self.upd("ADD s :one", {":one": N(1)}),
                              "An operand in the update expression has an incorrect data type")
        self.assertValidation(self.upd("ADD ss :ns", {":ns": {"NS": ["1"]}}),
                              "An operand in the update expression has an incorrect data type")
        self.assertValidation(self.upd("SET l = list_append(s, :l)", {":l": L(N(1))}),
                              "An operand in the update expression has an incorrect data type")

    def test_absent_operand_attribute(self):
        self.assertValidation(self.upd("SET n = nothere + :one", {":one": N(1)}),
                              "The provided expression refers to an attribute that does not exist in the item")
        self.assertValidation(self.upd("SET n = nothere", None),
                              "The provided expression refers to an attribute that does not exist in the item")

    def test_empty_placeholder_maps(self):
        raw = harness.client(server, validate=False)
        self.assertValidation(lambda: raw.update_item(TableName=T, Key=key("uerr"), UpdateExpression="SET n = n",
                                                      ExpressionAttributeValues={}),
                              "ExpressionAttributeValues must not be empty")
        self.assertValidation(lambda: raw.update_item(TableName=T, Key=key("uerr"), UpdateExpression="SET n = n",
                                                      ExpressionAttributeNames={}),
                              "ExpressionAttributeNames must not be empty")


class ProjectionTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.item = dict(key("proj"), a=S("A"), b=N(2),
                        m=M(x=S("X"), y=M(z=N(26), w=S("W")), lst=L(N(0), N(1), N(2))),
                        l=L(M(k=S("k0"), v=N(0)), M(k=S("k1"), v=N(1)), L(S("n0"), S("n1"))))
        c.put_item(TableName=T, Item=cls.item)

    def proj(self, expr, names=None):
        kw = {"ProjectionExpression": expr}
        if names:
            kw["ExpressionAttributeNames"] = names
        return get("proj", **kw)

    def test_top_level(self):
        self.assertEqual(self.proj("a, b"), {"a": S("A"), "b": N(2)})
        self.assertEqual(self.proj("pk"), key("proj"))

    def test_nested_maps(self):
        self.assertEqual(self.proj("m.y.z"), {"m": M(y=M(z=N(26)))})
        self.assertEqual(self.proj("m.x, m.y.w"), {"m": M(x=S("X"), y=M(w=S("W")))})
        self.assertEqual(self.proj("#m.#y", {"#m": "m", "#y": "y"}), {"m": M(y=M(z=N(26), w=S("W")))})

    def test_list_indexes(self):
        self.assertEqual(self.proj("l[1]"), {"l": L(M(k=S("k1"), v=N(1)))})
        self.assertEqual(self.proj("l[0].k, l[1].v"), {"l": L(M(k=S("k0")), M(v=N(1)))})
        self.assertEqual(self.proj("l[2][1]"), {"l": L(L(S("n1")))})
        self.assertEqual(self.proj("m.lst[2], m.lst[0]"), {"m": M(lst=L(N(0), N(2)))})
        self.assertEqual(self.proj("l[9]"), {})

    def test_absent_paths_are_skipped(self):
        self.assertEqual(self.proj("a, nothere, m.nothere, b.c, l[0].zz"), {"a": S("A")})

    def test_projection_errors(self):
        self.assertValidation(lambda: self.proj("a, a"),
                              "Invalid ProjectionExpression: Two document paths overlap with each other; must remove "
                              "or rewrite one of these paths; path one: [a], path two: [a]")
        self.assertValidation(lambda: self.proj("m, m.x"),
                              "Invalid ProjectionExpression: Two document paths overlap with each other; must remove "
                              "or rewrite one of these paths; path one: [m], path two: [m, x]")
        self.assertValidation(lambda: self.proj("a,"),
                              contains='Invalid ProjectionExpression: Syntax error; token: "<EOF>"')
        self.assertValidation(lambda: self.proj("l[-1]"),
                              contains="Invalid ProjectionExpression: Syntax error")
