"""Item operations: PutItem / GetItem / DeleteItem / UpdateItem with every
attribute type (S, N, B, BOOL, NULL, M, L, SS, NS, BS, nested), ReturnValues,
ConsistentRead, ProjectionExpression on GetItem, number normalisation and
limits (38 digits, overflow/underflow), size limits (400 KB items, 2048-byte
partition keys, 1024-byte sort keys), the validation errors of keys and
attribute values with DynamoDB's messages, and single-item atomicity under
concurrent clients (ADD, conditional create, optimistic locking).
"""

import decimal
import threading

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

import harness
from harness import ClientError, create_table

server = None
c = None
raw = None

T = "items_h"       # hash key pk (S)
TR = "items_hr"     # pk (S) + sk (S)
TN = "items_n"      # pk (N)
TB = "items_b"      # pk (B) + sk (B)

INVALID = "One or more parameter values were invalid: "


def setUpModule():
    global server, c, raw
    server = harness.Server(name="items").start()
    c = harness.client(server)
    raw = harness.client(server, validate=False)
    create_table(c, T, ("pk", "S"))
    create_table(c, TR, ("pk", "S"), ("sk", "S"))
    create_table(c, TN, ("pk", "N"))
    create_table(c, TB, ("pk", "B"), ("sk", "B"))


def tearDownModule():
    server.close()


def S(v):
    return {"S": v}


def N(v):
    return {"N": v}


EVERY_TYPE = {
    "pk": S("every"),
    "s": S("hello \u00e9\u4e16\U0001F600 \"quoted\" \\ slash\n"),
    "empty_s": S(""),
    "n_int": N("42"),
    "n_neg": N("-17.25"),
    "n_zero": N("0"),
    "b": {"B": b"\x00\x01\xfe\xffbinary"},
    "empty_b": {"B": b""},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "nul": {"NULL": True},
    "ss": {"SS": ["b", "a", "c"]},
    "ns": {"NS": ["3", "1.5", "-2"]},
    "bs": {"BS": [b"\x02", b"\x01", b"\xff"]},
    "l": {"L": [S("x"), N("1"), {"BOOL": False}, {"NULL": True}, {"L": []}, {"M": {}}]},
    "m": {"M": {"inner": S("v"), "num": N("7"), "deep": {"M": {"list": {"L": [{"M": {"k": {"SS": ["z"]}}}]}}}}},
    "empty_l": {"L": []},
    "empty_m": {"M": {}},
}


def norm_sets(item):
    """Sets come back in any order: sort their members for comparison."""
    out = {}
    for k, v in item.items():
        (t, x), = v.items()
        if t in ("SS", "BS"):
            out[k] = {t: sorted(x)}
        elif t == "NS":
            out[k] = {t: sorted(x, key=decimal.Decimal)}
        elif t == "M":
            out[k] = {"M": norm_sets(x)}
        elif t == "L":
            out[k] = {"L": [list(norm_sets({"_": e}).values())[0] for e in x]}
        else:
            out[k] = v
    return out


class PutGetTest(harness.TestCase):
    def test_every_type_round_trip(self):
        self.assertEqual(c.put_item(TableName=T, Item=EVERY_TYPE).get("Attributes"), None)
        got = c.get_item(TableName=T, Key={"pk": S("every")})["Item"]
        self.assertEqual(norm_sets(got), norm_sets(EVERY_TYPE))
        got = c.get_item(TableName=T, Key={"pk": S("every")}, ConsistentRead=True)["Item"]
        self.assertEqual(norm_sets(got), norm_sets(EVERY_TYPE))

    def test_deeply_nested_round_trip(self):
        v = S("leaf")
        for i in range(30):
            v = {"M": {"k%d" % i: v}} if i % 2 else {"L": [v, N(str(i))]}
        item = {"pk": S("nested"), "deep": v}
        c.put_item(TableName=T, Item=item)
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("nested")})["Item"], item)

    def test_missing_item(self):
        resp = c.get_item(TableName=T, Key={"pk": S("never-written")})
        self.assertNotIn("Item", resp)
        resp = c.get_item(TableName=T, Key={"pk": S("never-written")}, ConsistentRead=True)
        self.assertNotIn("Item", resp)

    def test_put_replaces_whole_item(self):
        c.put_item(TableName=T, Item={"pk": S("replace"), "a": S("1"), "b": S("2")})
        c.put_item(TableName=T, Item={"pk": S("replace"), "c": S("3")})
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("replace")})["Item"],
                         {"pk": S("replace"), "c": S("3")})

    def test_hash_range_and_key_types(self):
        for sk in ("a", "b", "c"):
            c.put_item(TableName=TR, Item={"pk": S("p"), "sk": S(sk), "v": S(sk * 2)})
        self.assertEqual(c.get_item(TableName=TR, Key={"pk": S("p"), "sk": S("b")})["Item"],
                         {"pk": S("p"), "sk": S("b"), "v": S("bb")})
        self.assertNotIn("Item", c.get_item(TableName=TR, Key={"pk": S("p"), "sk": S("d")}))
        # Numeric keys are compared numerically: 1.0 and 1 are the same key.
        c.put_item(TableName=TN, Item={"pk": N("1.0"), "v": S("first")})
        c.put_item(TableName=TN, Item={"pk": N("1"), "v": S("second")})
        self.assertEqual(c.get_item(TableName=TN, Key={"pk": N("1.000")})["Item"],
                         {"pk": N("1"), "v": S("second")})
        # Binary keys.
        key = {"pk": {"B": b"\x00\xff"}, "sk": {"B": b"\x80"}}
        c.put_item(TableName=TB, Item=dict(key, v=S("bin")))
        self.assertEqual(c.get_item(TableName=TB, Key=key)["Item"]["v"], S("bin"))
        self.assertNotIn("Item", c.get_item(TableName=TB, Key={"pk": {"B": b"\x00\xff"}, "sk": {"B": b"\x81"}}))

    def test_projection_expression(self):
        c.put_item(TableName=T, Item={"pk": S("proj"), "a": S("A"), "b": N("2"),
                                      "m": {"M": {"x": S("X"), "y": S("Y")}},
                                      "l": {"L": [S("l0"), S("l1"), S("l2")]}})
        got = c.get_item(TableName=T, Key={"pk": S("proj")}, ProjectionExpression="a, m.y, l[1]")["Item"]
        self.assertEqual(got, {"a": S("A"), "m": {"M": {"y": S("Y")}}, "l": {"L": [S("l1")]}})
        got = c.get_item(TableName=T, Key={"pk": S("proj")}, ProjectionExpression="#k, #b, nope",
                         ExpressionAttributeNames={"#k": "pk", "#b": "b"})["Item"]
        self.assertEqual(got, {"pk": S("proj"), "b": N("2")})
        # Projecting only missing attributes of an existing item gives an empty Item.
        got = c.get_item(TableName=T, Key={"pk": S("proj")}, ProjectionExpression="zzz")
        self.assertEqual(got.get("Item", {}), {})


class NumberTest(harness.TestCase):
    def put_get(self, text):
        c.put_item(TableName=T, Item={"pk": S("num"), "n": N(text)})
        return c.get_item(TableName=T, Key={"pk": S("num")})["Item"]["n"]["N"]

    def test_normalisation(self):
        cases = [("1.50", "1.5"), ("0001", "1"), ("1.0", "1"), ("-0", "0"), ("-0.000", "0"),
                 ("0012.3400", "12.34"), ("1e3", "1000"), ("1E+3", "1000"), ("1E-5", "0.00001"),
                 ("-1.2300e2", "-123"), ("0.000", "0"), ("100", "100"), ("1.23e1", "12.3")]
        for text, want in cases:
            with self.subTest(text=text):
                self.assertEqual(self.put_get(text), want)

    def test_decimal_round_trip_via_deserializer(self):
        got = self.put_get("1.50")
        value = TypeDeserializer().deserialize({"N": got})
        self.assertIsInstance(value, decimal.Decimal)
        self.assertEqual(value, decimal.Decimal("1.5"))
        self.assertEqual(str(value), "1.5")
        ser = TypeSerializer().serialize(decimal.Decimal("3.14159"))
        c.put_item(TableName=T, Item={"pk": S("dec"), "n": ser})
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("dec")})["Item"]["n"], N("3.14159"))

    def test_38_digits(self):
        for text in ("12345678901234567890123456789012345678",
                     "-0.12345678901234567890123456789012345678",
                     "99999999999999999999999999999999999999",
                     "1234567890123456789012345678901234567800000"):
            with self.subTest(text=text):
                self.assertEqual(self.put_get(text), text)

    def test_range_limits(self):
        self.assertEqual(self.put_get("9.9999999999999999999999999999999999999E+125"), "9" * 38 + "0" * 88)
        self.assertEqual(self.put_get("-9.9999999999999999999999999999999999999E+125"), "-" + "9" * 38 + "0" * 88)
        self.assertEqual(self.put_get("1E-130"), "0." + "0" * 129 + "1")
        self.assertEqual(self.put_get("-1e-130"), "-0." + "0" * 129 + "1")

    def test_too_many_digits(self):
        self.assertValidation(
            lambda: c.put_item(TableName=T, Item={"pk": S("num"), "n": N("123456789012345678901234567890123456789")}),
            "Attempting to store more than 38 significant digits in a Number")

    def test_overflow_underflow(self):
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("num"), "n": N("1e126")}),
                              "Number overflow. Attempting to store a number with magnitude larger than "
                              "supported range")
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("num"), "n": N("-1e126")}),
                              "Number overflow. Attempting to store a number with magnitude larger than "
                              "supported range")
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("num"), "n": N("1e-131")}),
                              "Number underflow. Attempting to store a number with magnitude smaller than "
                              "supported range")

    def test_not_a_number(self):
        for text in ("abc", "1.2.3", "1e", "--1", "0x10", "NaN", "Infinity", " 1", ""):
            with self.subTest(text=text):
                # DynamoDB's wording has changed over time ("The parameter cannot be
                # converted to a numeric value" / "A value provided cannot be converted
                # into a number"); both contain this.
                self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("num"), "n": N(text)}),
                                      contains="cannot be converted")
        # Nothing was written by the failed requests.
        c.put_item(TableName=T, Item={"pk": S("num"), "n": N("5")})
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("num")})["Item"]["n"], N("5"))

    def test_number_set_normalised(self):
        c.put_item(TableName=T, Item={"pk": S("ns"), "ns": {"NS": ["1.50", "0010", "-0.5e1"]}})
        got = c.get_item(TableName=T, Key={"pk": S("ns")})["Item"]["ns"]["NS"]
        self.assertEqual(sorted(got, key=decimal.Decimal), ["-5", "1.5", "10"])


class ReturnValuesTest(harness.TestCase):
    def test_put_return_values(self):
        key = {"pk": S("rv-put")}
        resp = c.put_item(TableName=T, Item=dict(key, v=S("one")), ReturnValues="ALL_OLD")
        self.assertNotIn("Attributes", resp)
        resp = c.put_item(TableName=T, Item=dict(key, v=S("two")), ReturnValues="ALL_OLD")
        self.assertEqual(resp["Attributes"], dict(key, v=S("one")))
        resp = c.put_item(TableName=T, Item=dict(key, v=S("three")), ReturnValues="NONE")
        self.assertNotIn("Attributes", resp)
        for bad in ("ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
            self.assertValidation(lambda: c.put_item(TableName=T, Item=dict(key, v=S("x")), ReturnValues=bad),
                                  "ReturnValues can only be ALL_OLD or NONE")
        self.assertEqual(c.get_item(TableName=T, Key=key)["Item"], dict(key, v=S("three")))

    def test_delete_return_values(self):
        key = {"pk": S("rv-del")}
        c.put_item(TableName=T, Item=dict(key, v=S("gone")))
        resp = c.delete_item(TableName=T, Key=key, ReturnValues="ALL_OLD")
        self.assertEqual(resp["Attributes"], dict(key, v=S("gone")))
        self.assertNotIn("Item", c.get_item(TableName=T, Key=key))
        # Deleting a missing item succeeds and returns nothing.
        resp = c.delete_item(TableName=T, Key=key, ReturnValues="ALL_OLD")
        self.assertNotIn("Attributes", resp)
        self.assertValidation(lambda: c.delete_item(TableName=T, Key=key, ReturnValues="ALL_NEW"),
                              "ReturnValues can only be ALL_OLD or NONE")

    def test_update_return_values(self):
        key = {"pk": S("rv-upd")}
        c.put_item(TableName=T, Item=dict(key, a=N("1"), b=S("keep")))
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET a = :v", ReturnValues="NONE",
                             ExpressionAttributeValues={":v": N("2")})
        self.assertNotIn("Attributes", resp)
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET a = :v", ReturnValues="ALL_OLD",
                             ExpressionAttributeValues={":v": N("3")})
        self.assertEqual(resp["Attributes"], dict(key, a=N("2"), b=S("keep")))
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET a = :v", ReturnValues="ALL_NEW",
                             ExpressionAttributeValues={":v": N("4")})
        self.assertEqual(resp["Attributes"], dict(key, a=N("4"), b=S("keep")))
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET a = :v, c = :c",
                             ReturnValues="UPDATED_OLD", ExpressionAttributeValues={":v": N("5"), ":c": S("new")})
        self.assertEqual(resp["Attributes"], {"a": N("4")})
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET a = :v REMOVE c",
                             ReturnValues="UPDATED_NEW", ExpressionAttributeValues={":v": N("6")})
        self.assertEqual(resp["Attributes"], {"a": N("6")})
        self.assertEqual(c.get_item(TableName=T, Key=key)["Item"], dict(key, a=N("6"), b=S("keep")))

    def test_update_creates_missing_item(self):
        key = {"pk": S("upsert")}
        resp = c.update_item(TableName=T, Key=key, UpdateExpression="SET v = :v",
                             ExpressionAttributeValues={":v": S("made")}, ReturnValues="ALL_OLD")
        self.assertNotIn("Attributes", resp)
        self.assertEqual(c.get_item(TableName=T, Key=key)["Item"], dict(key, v=S("made")))
        # An update of a missing item that only removes creates an item holding just the key.
        key2 = {"pk": S("upsert-remove")}
        c.update_item(TableName=T, Key=key2, UpdateExpression="REMOVE nothing")
        self.assertEqual(c.get_item(TableName=T, Key=key2)["Item"], key2)


class SizeLimitTest(harness.TestCase):
    MAX = 400 * 1024

    def test_item_of_exactly_400kb(self):
        # size = len("pk") + len("big400") + len("data") + len(value)
        value = "x" * (self.MAX - len("pk") - len("big400") - len("data"))
        item = {"pk": S("big400"), "data": S(value)}
        c.put_item(TableName=T, Item=item)
        got = c.get_item(TableName=T, Key={"pk": S("big400")})["Item"]
        self.assertEqual(len(got["data"]["S"]), len(value))
        self.assertEqual(got, item)

    def test_item_just_over_400kb(self):
        value = "x" * (self.MAX - len("pk") - len("big401") - len("data") + 1)
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("big401"), "data": S(value)}),
                              "Item size has exceeded the maximum allowed size")
        self.assertNotIn("Item", c.get_item(TableName=T, Key={"pk": S("big401")}))

    def test_binary_and_multibyte_size_accounting(self):
        # Binary counts raw bytes (not base64); strings count UTF-8 bytes.
        value = b"\xab" * (self.MAX - len("pk") - len("bin400") - len("b"))
        c.put_item(TableName=T, Item={"pk": S("bin400"), "b": {"B": value}})
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("bin400")})["Item"]["b"]["B"], value)
        # 3-byte characters: one character too many is over.
        n = (self.MAX - len("pk") - len("utf401") - len("u")) // 3 + 1
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("utf401"), "u": S("\u4e16" * n)}),
                              "Item size has exceeded the maximum allowed size")

    def test_update_over_limit(self):
        key = {"pk": S("grow")}
        half = "y" * (self.MAX // 2)
        c.put_item(TableName=T, Item=dict(key, a=S(half)))
        self.assertValidation(
            lambda: c.update_item(TableName=T, Key=key, UpdateExpression="SET b = :v",
                                  ExpressionAttributeValues={":v": S(half)}),
            "Item size to update has exceeded the maximum allowed size")
        self.assertEqual(c.get_item(TableName=T, Key=key)["Item"], dict(key, a=S(half)))

    def test_partition_key_size(self):
        c.put_item(TableName=T, Item={"pk": S("k" * 2048)})
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("k" * 2048)})["Item"], {"pk": S("k" * 2048)})
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("k" * 2049)}),
                              INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")
        c.put_item(TableName=TB, Item={"pk": {"B": b"\x01" * 2048}, "sk": {"B": b"\x01"}})
        self.assertValidation(lambda: c.put_item(TableName=TB, Item={"pk": {"B": b"\x01" * 2049},
                                                                    "sk": {"B": b"\x01"}}),
                              INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")

    def test_sort_key_size(self):
        c.put_item(TableName=TR, Item={"pk": S("p"), "sk": S("s" * 1024)})
        self.assertEqual(len(c.get_item(TableName=TR, Key={"pk": S("p"), "sk": S("s" * 1024)})["Item"]["sk"]["S"]),
                         1024)
        self.assertValidation(lambda: c.put_item(TableName=TR, Item={"pk": S("p"), "sk": S("s" * 1025)}),
                              INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")
        # Multi-byte characters count as their UTF-8 bytes: 342 * 3 = 1026 bytes.
        self.assertValidation(lambda: c.put_item(TableName=TR, Item={"pk": S("p"), "sk": S("\u4e16" * 342)}),
                              INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")


class KeyValidationTest(harness.TestCase):
    def test_type_mismatch(self):
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": N("1")}),
                              INVALID + "Type mismatch for key pk expected: S actual: N")
        self.assertValidation(lambda: c.put_item(TableName=TN, Item={"pk": S("1")}),
                              INVALID + "Type mismatch for key pk expected: N actual: S")
        self.assertValidation(lambda: c.put_item(TableName=TR, Item={"pk": S("a"), "sk": {"B": b"1"}}),
                              INVALID + "Type mismatch for key sk expected: S actual: B")
        self.assertValidation(lambda: c.get_item(TableName=T, Key={"pk": N("1")}),
                              "The provided key element does not match the schema")
        self.assertValidation(lambda: c.delete_item(TableName=T, Key={"pk": N("1")}),
                              "The provided key element does not match the schema")

    def test_missing_key_attribute(self):
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"other": S("x")}),
                              INVALID + "Missing the key pk in the item")
        self.assertValidation(lambda: c.put_item(TableName=TR, Item={"pk": S("x")}),
                              INVALID + "Missing the key sk in the item")
        self.assertValidation(lambda: c.get_item(TableName=TR, Key={"pk": S("x")}),
                              "The provided key element does not match the schema")
        self.assertValidation(lambda: c.get_item(TableName=T, Key={"pk": S("x"), "extra": S("y")}),
                              "The provided key element does not match the schema")
        self.assertValidation(lambda: c.update_item(TableName=TR, Key={"pk": S("x")},
                                                    UpdateExpression="SET a = :a",
                                                    ExpressionAttributeValues={":a": S("1")}),
                              "The provided key element does not match the schema")

    def test_empty_key_values(self):
        self.assertValidation(lambda: c.put_item(TableName=T, Item={"pk": S("")}),
                              "One or more parameter values are not valid. The AttributeValue for a key "
                              "attribute cannot contain an empty string value. Key: pk")
        self.assertValidation(lambda: c.put_item(TableName=TR, Item={"pk": S("a"), "sk": S("")}),
                              "One or more parameter values are not valid. The AttributeValue for a key "
                              "attribute cannot contain an empty string value. Key: sk")
        self.assertValidation(lambda: c.put_item(TableName=TB, Item={"pk": {"B": b""}, "sk": {"B": b"1"}}),
                              "One or more parameter values are not valid. The AttributeValue for a key "
                              "attribute cannot contain an empty binary value. Key: pk")
        # (GetItem's prefix has been seen both as "...are not valid." and
        # "...were invalid:"; the rest is fixed.)
        self.assertValidation(lambda: c.get_item(TableName=T, Key={"pk": S("")}),
                              contains="The AttributeValue for a key attribute cannot contain an empty "
                                       "string value. Key: pk")

    def test_empty_non_key_strings_allowed(self):
        item = {"pk": S("empty-ok"), "s": S(""), "b": {"B": b""}, "m": {"M": {"e": S("")}}, "l": {"L": [S("")]}}
        c.put_item(TableName=T, Item=item)
        self.assertEqual(c.get_item(TableName=T, Key={"pk": S("empty-ok")})["Item"], item)

    def test_nonexistent_table(self):
        for fn in (lambda: c.put_item(TableName="items_missing", Item={"pk": S("a")}),
                   lambda: c.get_item(TableName="items_missing", Key={"pk": S("a")}),
                   lambda: c.delete_item(TableName="items_missing", Key={"pk": S("a")}),
                   lambda: c.update_item(TableName="items_missing", Key={"pk": S("a")},
                                         UpdateExpression="SET a = :a",
                                         ExpressionAttributeValues={":a": S("1")})):
            self.assertClientError(fn, "ResourceNotFoundException", contains="Requested resource not found")


class AttributeValueValidationTest(harness.TestCase):
    def put(self, value):
        return raw.put_item(TableName=T, Item={"pk": S("bad"), "v": value})

    def test_empty_sets(self):
        self.assertValidation(lambda: self.put({"SS": []}), INVALID + "An string set  may not be empty")
        self.assertValidation(lambda: self.put({"NS": []}), INVALID + "An number set  may not be empty")
        self.assertValidation(lambda: self.put({"BS": []}), INVALID + "Binary sets should not be empty")
        self.assertValidation(lambda: self.put({"M": {"inner": {"SS": []}}}),
                              INVALID + "An string set  may not be empty")

    def test_duplicate_set_elements(self):
        self.assertValidation(lambda: self.put({"SS": ["a", "b", "a"]}),
                              INVALID + "Input collection [a, b, a] contains duplicates.")
        self.assertValidation(lambda: self.put({"NS": ["1", "2", "1"]}), contains="contains duplicates")
        # 1 and 1.0 are the same number.
        self.assertValidation(lambda: self.put({"NS": ["1", "1.0"]}), contains="contains duplicates")
        self.assertValidation(lambda: self.put({"BS": [b"\x01", b"\x01"]}), contains="contains duplicates")
        self.assertValidation(lambda: self.put({"L": [{"SS": ["x", "x"]}]}), contains="contains duplicates")
        self.assertNotIn("Item", c.get_item(TableName=T, Key={"pk": S("bad")}))

    def test_null_false(self):
        self.assertValidation(lambda: self.put({"NULL": False}),
                              INVALID + "Null attribute value types must have the value of true")

    def test_malformed_attribute_values(self):
        self.assertValidation(lambda: self.put({}),
                              "Supplied AttributeValue is empty, must contain exactly one of the supported "
                              "datatypes")
        self.assertValidation(lambda: self.put({"S": "a", "N": "1"}),
                              "Supplied AttributeValue has more than one datatypes set, must contain exactly "
                              "one of the supported datatypes")

    def test_missing_table_name_and_item(self):
        self.assertValidation(lambda: raw.put_item(Item={"pk": S("x")}),
                              "1 validation error detected: Value null at 'tableName' failed to satisfy "
                              "constraint: Member must not be null")
        self.assertValidation(lambda: raw.put_item(TableName=T),
                              "1 validation error detected: Value null at 'item' failed to satisfy "
                              "constraint: Member must not be null")


class ConcurrencyTest(harness.TestCase):
    """Single-item atomicity under concurrent clients (bounded request counts)."""

    THREADS = 4
    PER_THREAD = 50

    def run_threads(self, fn):
        errors = []

        def wrap(tid):
            try:
                fn(tid, harness.client(server))
            except Exception as ex:  # reported below
                errors.append(repr(ex))

        threads = [threading.Thread(target=wrap, args=(t,), daemon=True) for t in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
            self.assertFalse(t.is_alive(), "worker thread hung")
        self.assertEqual(errors, [])

    def test_concurrent_add_loses_no_increment(self):
        def work(tid, cl):
            for _ in range(self.PER_THREAD):
                cl.update_item(TableName=T, Key={"pk": S("atomic-counter")}, UpdateExpression="ADD n :one, ss :me",
                               ExpressionAttributeValues={":one": N("1"), ":me": {"SS": ["t%d" % tid]}})

        self.run_threads(work)
        item = c.get_item(TableName=T, Key={"pk": S("atomic-counter")}, ConsistentRead=True)["Item"]
        self.assertEqual(item["n"], N(str(self.THREADS * self.PER_THREAD)))
        self.assertEqual(sorted(item["ss"]["SS"]), ["t%d" % i for i in range(self.THREADS)])

    def test_conditional_create_has_one_winner(self):
        wins = {}
        lock = threading.Lock()

        def work(tid, cl):
            for i in range(self.PER_THREAD):
                try:
                    cl.put_item(TableName=T, Item={"pk": S("race-%d" % i), "owner": S("t%d" % tid)},
                                ConditionExpression="attribute_not_exists(pk)")
                    with lock:
                        wins.setdefault(i, []).append(tid)
                except ClientError as ex:
                    if harness.err_code(ex) != "ConditionalCheckFailedException":
                        raise

        self.run_threads(work)
        self.assertEqual(sorted(wins), list(range(self.PER_THREAD)))
        for i, winners in wins.items():
            self.assertEqual(len(winners), 1, "key race-%d created by %r" % (i, winners))
            item = c.get_item(TableName=T, Key={"pk": S("race-%d" % i)}, ConsistentRead=True)["Item"]
            self.assertEqual(item["owner"], S("t%d" % winners[0]))

    def test_optimistic_locking(self):
        c.put_item(TableName=T, Item={"pk": S("versioned"), "version": N("0")})
        won = []
        lock = threading.Lock()

        def work(tid, cl):
            for _ in range(self.PER_THREAD):
                cur = cl.get_item(TableName=T, Key={"pk": S("versioned")}, ConsistentRead=True)["Item"]["version"]["N"]
                try:
                    cl.update_item(TableName=T, Key={"pk": S("versioned")}, UpdateExpression="SET version = :new",
                                   ConditionExpression="version = :cur",
                                   ExpressionAttributeValues={":cur": N(cur), ":new": N(str(int(cur) + 1))})
                    with lock:
                        won.append(int(cur))
                except ClientError as ex:
                    if harness.err_code(ex) != "ConditionalCheckFailedException":
                        raise

        self.run_threads(work)
        # Every version number was won exactly once, in sequence.
        self.assertEqual(sorted(won), list(range(len(won))))
        final = c.get_item(TableName=T, Key={"pk": S("versioned")}, ConsistentRead=True)["Item"]["version"]
        self.assertEqual(final, N(str(len(won))))
        self.assertGreaterEqual(len(won), self.PER_THREAD)
