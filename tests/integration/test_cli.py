"""The aws cli end to end against one server: create-table, wait
table-exists, describe-table, list-tables, put-item, get-item, update-item
(--update-expression, --return-values), query (--key-condition-expression),
scan with the cli's automatic pagination (--page-size) and --max-items,
batch-write-item, batch-get-item, delete-item with a failing
--condition-expression (non-zero exit, ConditionalCheckFailedException on
stderr), delete-table, and an authentication failure. Each invocation costs
about half a second, so they are few and each checks a lot.
"""

import json

import harness
from harness import KEY1, aws

server = None
T = "cli_t"


def setUpModule():
    global server
    server = harness.Server(name="cli").start()


def tearDownModule():
    server.close()


def j(obj):
    return json.dumps(obj, separators=(",", ":"))


class CliTest(harness.TestCase):
    """One ordered scenario: each step depends on the previous ones."""

    def ok(self, *args):
        rc, out, err = aws(server, *args)
        self.assertEqual(rc, 0, "aws %s failed (%d): %s" % (" ".join(map(str, args)), rc, err))
        return out

    def fails(self, *args):
        rc, out, err = aws(server, *args)
        self.assertNotEqual(rc, 0, "aws %s should have failed: %r" % (" ".join(map(str, args)), out))
        return err

    def test_cli_scenario(self):
        # create-table + wait + describe-table + list-tables
        out = self.ok("create-table", "--table-name", T,
                      "--attribute-definitions", "AttributeName=pk,AttributeType=S", "AttributeName=sk,AttributeType=N",
                      "--key-schema", "AttributeName=pk,KeyType=HASH", "AttributeName=sk,KeyType=RANGE",
                      "--billing-mode", "PAY_PER_REQUEST")
        self.assertEqual(out["TableDescription"]["TableName"], T)
        self.assertIn(out["TableDescription"]["TableStatus"], ("CREATING", "ACTIVE"))
        self.ok("wait", "table-exists", "--table-name", T)
        out = self.ok("describe-table", "--table-name", T)
        self.assertEqual(out["Table"]["TableStatus"], "ACTIVE")
        self.assertEqual(out["Table"]["KeySchema"], [{"AttributeName": "pk", "KeyType": "HASH"},
                                                     {"AttributeName": "sk", "KeyType": "RANGE"}])
        self.assertEqual(out["Table"]["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        out = self.ok("list-tables")
        self.assertIn(T, out["TableNames"])

        # put-item (conditional, succeeds) + get-item
        out = self.ok("put-item", "--table-name", T,
                      "--item", j({"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "first"}, "n": {"N": "1.50"}}),
                      "--condition-expression", "attribute_not_exists(pk)")
        self.assertIn(out, (None, {}))
        out = self.ok("get-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                      "--consistent-read")
        self.assertEqual(out["Item"], {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "first"}, "n": {"N": "1.5"}})

        # update-item with an expression and --return-values
        out = self.ok("update-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                      "--update-expression", "SET v = :v, n = n + :inc, c = if_not_exists(c, :zero) REMOVE gone",
                      "--expression-attribute-values", j({":v": {"S": "second"}, ":inc": {"N": "2"},
                                                          ":zero": {"N": "0"}}),
                      "--return-values", "ALL_NEW")
        self.assertEqual(out["Attributes"], {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "second"},
                                             "n": {"N": "3.5"}, "c": {"N": "0"}})
        out = self.ok("update-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                      "--update-expression", "ADD c :one", "--expression-attribute-values", j({":one": {"N": "1"}}),
                      "--return-values", "UPDATED_OLD")
        self.assertEqual(out["Attributes"], {"c": {"N": "0"}})

        # batch-write-item: 20 items in partition "p", 5 in "q"
        requests = [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"N": str(i)}, "v": {"N": str(i * i)}}}}
                    for i in range(20)]
        out = self.ok("batch-write-item", "--request-items", j({T: requests}))
        self.assertEqual(out["UnprocessedItems"], {})
        out = self.ok("batch-write-item", "--request-items", j({T: [
            {"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"N": str(i)}}}} for i in range(5)]}))
        self.assertEqual(out["UnprocessedItems"], {})

        # query with a key condition (the cli follows pages on its own too)
        out = self.ok("query", "--table-name", T,
                      "--key-condition-expression", "pk = :p AND sk BETWEEN :a AND :b",
                      "--expression-attribute-values", j({":p": {"S": "p"}, ":a": {"N": "5"}, ":b": {"N": "9"}}),
                      "--no-scan-index-forward", "--page-size", "2")
        self.assertEqual([i["sk"]["N"] for i in out["Items"]], ["9", "8", "7", "6", "5"])
        self.assertEqual(out["Count"], 5)
        self.assertEqual([i["v"]["N"] for i in out["Items"]], ["81", "64", "49", "36", "25"])

        # scan: small pages, the cli collects all of them
        out = self.ok("scan", "--table-name", T, "--page-size", "3")
        self.assertEqual(len(out["Items"]), 26)
        self.assertEqual(out["Count"], 26)
        self.assertEqual(sorted((i["pk"]["S"], int(i["sk"]["N"])) for i in out["Items"]),
                         sorted([("a", 1)] + [("p", i) for i in range(20)] + [("q", i) for i in range(5)]))
        out = self.ok("scan", "--table-name", T, "--page-size", "4", "--max-items", "6",
                      "--filter-expression", "pk = :p", "--expression-attribute-values", j({":p": {"S": "p"}}))
        self.assertEqual(len(out["Items"]), 6)
        self.assertIn("NextToken", out)

        # batch-get-item
        out = self.ok("batch-get-item", "--request-items", j({T: {
            "Keys": [{"pk": {"S": "p"}, "sk": {"N": "3"}}, {"pk": {"S": "q"}, "sk": {"N": "4"}},
                     {"pk": {"S": "zz"}, "sk": {"N": "0"}}],
            "ProjectionExpression": "pk, sk"}}))
        self.assertEqual(sorted((i["pk"]["S"], i["sk"]["N"]) for i in out["Responses"][T]), [("p", "3"), ("q", "4")])
        self.assertEqual(out["UnprocessedKeys"], {})

        # delete-item: a failing condition, then a real delete
        err = self.fails("delete-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                         "--condition-expression", "v = :x", "--expression-attribute-values", j({":x": {"S": "no"}}))
        self.assertIn("ConditionalCheckFailedException", err)
        self.assertIn("The conditional request failed", err)
        out = self.ok("delete-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}),
                      "--condition-expression", "v = :x", "--expression-attribute-values",
                      j({":x": {"S": "second"}}), "--return-values", "ALL_OLD")
        self.assertEqual(out["Attributes"]["v"], {"S": "second"})
        out = self.ok("get-item", "--table-name", T, "--key", j({"pk": {"S": "a"}, "sk": {"N": "1"}}))
        self.assertIn(out, (None, {}))

        # a validation error and an authentication error surface on stderr
        err = self.fails("get-item", "--table-name", T, "--key", j({"pk": {"S": "a"}}))
        self.assertIn("ValidationException", err)
        self.assertIn("The provided key element does not match the schema", err)
        rc, out, err = aws(server, "list-tables", access_key=KEY1[0], secret="not-the-secret")
        self.assertNotEqual(rc, 0)
        self.assertIn("InvalidSignatureException", err)

        # update-table: switch to provisioned capacity; bad input is refused
        out = self.ok("update-table", "--table-name", T, "--billing-mode", "PROVISIONED",
                      "--provisioned-throughput", "ReadCapacityUnits=7,WriteCapacityUnits=3")
        self.assertEqual(out["TableDescription"]["ProvisionedThroughput"]["ReadCapacityUnits"], 7)
        self.assertEqual(out["TableDescription"]["BillingModeSummary"]["BillingMode"], "PROVISIONED")
        err = self.fails("update-table", "--table-name", T)
        self.assertIn("ValidationException", err)

        # delete-table; then it is gone
        out = self.ok("delete-table", "--table-name", T)
        self.assertEqual(out["TableDescription"]["TableName"], T)
        self.ok("wait", "table-not-exists", "--table-name", T)
        err = self.fails("describe-table", "--table-name", T)
        self.assertIn("ResourceNotFoundException", err)
        self.assertIn("Requested resource not found: Table: %s not found" % T, err)
