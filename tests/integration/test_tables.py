"""Table operations: CreateTable (key schemas of S/N/B, every validation error),
DescribeTable (all the fields a client relies on), ListTables with
pagination, DeleteTable, UpdateTable of billing mode / provisioned
throughput, and account isolation between access keys of different accounts.
"""

import datetime

import harness
from harness import KEY1, KEY2, KEY3, create_table

server = None


def setUpModule():
    global server
    server = harness.Server(name="tables").start()


def tearDownModule():
    server.close()


def schema(*keys):
    return [{"AttributeName": n, "KeyType": t} for n, t in keys]


def attrs(*defs):
    return [{"AttributeName": n, "AttributeType": t} for n, t in defs]


class CreateTableTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server)
        # parameter_validation off: botocore would refuse these requests itself.
        cls.raw = harness.client(server, validate=False)

    def test_hash_only_string_key(self):
        resp = self.c.create_table(TableName="t_hash_s", AttributeDefinitions=attrs(("pk", "S")),
                                   KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST")
        desc = resp["TableDescription"]
        self.assertEqual(desc["TableName"], "t_hash_s")
        self.assertIn(desc["TableStatus"], ("CREATING", "ACTIVE"))
        self.assertEqual(desc["KeySchema"], schema(("pk", "HASH")))
        self.assertEqual(desc["AttributeDefinitions"], attrs(("pk", "S")))
        harness.wait_table(self.c, "t_hash_s")
        self.assertEqual(self.c.describe_table(TableName="t_hash_s")["Table"]["TableStatus"], "ACTIVE")

    def test_hash_and_range_keys_of_every_type(self):
        for i, (ht, rt) in enumerate([("S", "N"), ("N", "B"), ("B", "S"), ("N", "N")]):
            name = "t_hr_%d_%s%s" % (i, ht, rt)
            create_table(self.c, name, ("h", ht), ("r", rt))
            t = self.c.describe_table(TableName=name)["Table"]
            self.assertEqual(t["KeySchema"], schema(("h", "HASH"), ("r", "RANGE")))
            self.assertEqual(sorted(t["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                             attrs(("h", ht), ("r", rt)))
            # The key types are enforced on items.
            vals = {"S": {"S": "x"}, "N": {"N": "1"}, "B": {"B": b"\x01"}}
            self.c.put_item(TableName=name, Item={"h": vals[ht], "r": vals[rt]})
            got = self.c.get_item(TableName=name, Key={"h": vals[ht], "r": vals[rt]})
            self.assertEqual(got["Item"], {"h": vals[ht], "r": vals[rt]})

    def test_provisioned_table(self):
        self.c.create_table(TableName="t_prov", AttributeDefinitions=attrs(("pk", "N")),
                            KeySchema=schema(("pk", "HASH")),
                            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7})
        harness.wait_table(self.c, "t_prov")
        t = self.c.describe_table(TableName="t_prov")["Table"]
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 5)
        self.assertEqual(t["ProvisionedThroughput"]["WriteCapacityUnits"], 7)
        if "BillingModeSummary" in t:
            self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PROVISIONED")

    def test_duplicate_table(self):
        create_table(self.c, "t_dup")
        self.assertClientError(
            lambda: create_table(self.c, "t_dup", wait=False),
            "ResourceInUseException", "Table already exists: t_dup")
        # Even with a different schema.
        self.assertClientError(
            lambda: create_table(self.c, "t_dup", ("other", "N"), ("r", "S"), wait=False),
            "ResourceInUseException", "Table already exists: t_dup")

    def test_missing_key_schema(self):
        self.assertValidation(
            lambda: self.raw.create_table(TableName="t_nokeys", AttributeDefinitions=attrs(("pk", "S")),
                                          BillingMode="PAY_PER_REQUEST"),
            "1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: "
            "Member must not be null")
        self.assertNotIn("t_nokeys", self.c.list_tables()["TableNames"])

    def test_missing_attribute_definitions(self):
        self.assertValidation(
            lambda: self.raw.create_table(TableName="t_noattrs", KeySchema=schema(("pk", "HASH")),
                                          BillingMode="PAY_PER_REQUEST"),
            "1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy "
            "constraint: Member must not be null")

    def test_key_not_in_attribute_definitions(self):
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_badattr", AttributeDefinitions=attrs(("other", "S")),
                                        KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST"),
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            "AttributeDefinitions. Keys: [pk], AttributeDefinitions: [other]")
        self.assertClientError(lambda: self.c.describe_table(TableName="t_badattr"),
                               "ResourceNotFoundException")

    def test_extra_attribute_definition(self):
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_extraattr",
                                        AttributeDefinitions=attrs(("pk", "S"), ("unused", "N")),
                                        KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST"),
            "One or more parameter values were invalid: Number of attributes in KeySchema does not "
            "exactly match number of attributes defined in AttributeDefinitions")

    def test_bad_key_schema_shapes(self):
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_range_first",
                                        AttributeDefinitions=attrs(("pk", "S"), ("sk", "S")),
                                        KeySchema=schema(("sk", "RANGE"), ("pk", "HASH")),
                                        BillingMode="PAY_PER_REQUEST"),
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_same_names",
                                        AttributeDefinitions=attrs(("pk", "S"), ("sk", "S")),
                                        KeySchema=schema(("pk", "HASH"), ("pk", "RANGE")),
                                        BillingMode="PAY_PER_REQUEST"),
            "Both the Hash Key and the Range Key element in the KeySchema have the same name")
        self.assertValidation(
            lambda: self.raw.create_table(TableName="t_empty_schema", AttributeDefinitions=attrs(("pk", "S")),
                                          KeySchema=[], BillingMode="PAY_PER_REQUEST"),
            contains=["Value '[]' at 'keySchema' failed to satisfy constraint",
                      "Member must have length greater than or equal to 1"])

    def test_bad_attribute_type(self):
        self.assertValidation(
            lambda: self.raw.create_table(TableName="t_badtype", AttributeDefinitions=attrs(("pk", "BOOL")),
                                          KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST"),
            "1 validation error detected: Value 'BOOL' at 'attributeDefinitions.1.member.attributeType' "
            "failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]")

    def test_table_name_length(self):
        for name in ("ab", "x" * 256, ""):
            self.assertValidation(
                lambda: self.raw.create_table(TableName=name, AttributeDefinitions=attrs(("pk", "S")),
                                              KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST"),
                "TableName must be at least 3 characters long and at most 255 characters long")
        # The limits themselves are fine.
        for name in ("abc", "L" * 255):
            create_table(self.c, name)
            self.assertEqual(self.c.describe_table(TableName=name)["Table"]["TableName"], name)

    def test_table_name_characters(self):
        for name in ("bad name", "bad/name", "naïve", "tab:le", "a*b"):
            self.assertValidation(
                lambda: self.raw.create_table(TableName=name, AttributeDefinitions=attrs(("pk", "S")),
                                              KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST"),
                "1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+" % name)
        name = "Az09_.-ok"
        create_table(self.c, name)
        self.assertIn(name, self.c.list_tables()["TableNames"])

    def test_billing_mode_conflicts(self):
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_ppr_pt", AttributeDefinitions=attrs(("pk", "S")),
                                        KeySchema=schema(("pk", "HASH")), BillingMode="PAY_PER_REQUEST",
                                        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}),
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits "
            "can be specified when BillingMode is PAY_PER_REQUEST")
        self.assertValidation(
            lambda: self.c.create_table(TableName="t_prov_nopt", AttributeDefinitions=attrs(("pk", "S")),
                                        KeySchema=schema(("pk", "HASH")), BillingMode="PROVISIONED"),
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must "
            "both be specified when BillingMode is PROVISIONED")


class DescribeDeleteTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server)

    def test_describe_fields(self):
        before = datetime.datetime.now(datetime.timezone.utc)
        create_table(self.c, "d_fields", ("id", "S"), ("ts", "N"))
        after = datetime.datetime.now(datetime.timezone.utc)
        t = self.c.describe_table(TableName="d_fields")["Table"]
        self.assertEqual(t["TableName"], "d_fields")
        self.assertEqual(t["TableStatus"], "ACTIVE")
        self.assertEqual(t["KeySchema"], schema(("id", "HASH"), ("ts", "RANGE")))
        self.assertEqual(sorted(t["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                         attrs(("id", "S"), ("ts", "N")))
        self.assertEqual(t["ItemCount"], 0)
        self.assertEqual(t["TableSizeBytes"], 0)
        self.assertTrue(t["TableArn"].startswith("arn:aws:dynamodb:%s:" % server.region), t["TableArn"])
        self.assertTrue(t["TableArn"].endswith(":table/d_fields"), t["TableArn"])
        created = t["CreationDateTime"]
        self.assertIsInstance(created, datetime.datetime)
        # Clock sanity, not a timing assertion: the creation time lies within
        # the test's own window (with a minute of slack for clock granularity).
        slack = datetime.timedelta(seconds=60)
        self.assertTrue(before - slack <= created <= after + slack, (before, created, after))
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 0)
        self.assertEqual(t["ProvisionedThroughput"]["WriteCapacityUnits"], 0)

    def test_describe_missing(self):
        self.assertClientError(lambda: self.c.describe_table(TableName="d_nope"),
                               "ResourceNotFoundException",
                               "Requested resource not found: Table: d_nope not found")

    def test_delete_table(self):
        create_table(self.c, "d_gone")
        self.c.put_item(TableName="d_gone", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        resp = self.c.delete_table(TableName="d_gone")
        self.assertEqual(resp["TableDescription"]["TableName"], "d_gone")
        self.assertIn(resp["TableDescription"]["TableStatus"], ("DELETING", "ACTIVE"))
        self.c.get_waiter("table_not_exists").wait(TableName="d_gone",
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.assertClientError(lambda: self.c.describe_table(TableName="d_gone"),
                               "ResourceNotFoundException",
                               "Requested resource not found: Table: d_gone not found")
        self.assertNotIn("d_gone", self.c.list_tables()["TableNames"])
        self.assertClientError(lambda: self.c.get_item(TableName="d_gone", Key={"pk": {"S": "a"}}),
                               "ResourceNotFoundException", contains="Requested resource not found")
        self.assertClientError(lambda: self.c.delete_table(TableName="d_gone"),
                               "ResourceNotFoundException",
                               "Requested resource not found: Table: d_gone not found")
        # A new table of the same name starts empty.
        create_table(self.c, "d_gone")
        self.assertNotIn("Item", self.c.get_item(TableName="d_gone", Key={"pk": {"S": "a"}}))
        self.assertEqual(self.c.scan(TableName="d_gone")["Count"], 0)


class ListTablesTest(harness.TestCase):
    """Runs in its own account (KEY2's) so that other tests' tables do not interfere."""

    NAMES = ["lt_%02d" % i for i in range(12)]

    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server, access_key=KEY2[0], secret=KEY2[1])
        for n in reversed(cls.NAMES):
            create_table(cls.c, n, wait=False)
        for n in cls.NAMES:
            harness.wait_table(cls.c, n)

    def pages(self, limit, start=None):
        pages = []
        kw = {"Limit": limit}
        if start:
            kw["ExclusiveStartTableName"] = start
        for _ in range(50):
            resp = self.c.list_tables(**kw)
            pages.append(resp)
            if "LastEvaluatedTableName" not in resp:
                return pages
            kw["ExclusiveStartTableName"] = resp["LastEvaluatedTableName"]
        self.fail("ListTables pagination did not end within 50 pages")

    def test_all_sorted(self):
        names = self.c.list_tables()["TableNames"]
        for n in self.NAMES:
            self.assertIn(n, names)
        self.assertEqual(names, sorted(names))

    def test_pagination_limit_5(self):
        full = self.c.list_tables()["TableNames"]
        pages = self.pages(5)
        got = [n for p in pages for n in p["TableNames"]]
        self.assertEqual(got, full)
        self.assertGreaterEqual(len(pages), 3)
        for p in pages[:-1]:
            self.assertEqual(len(p["TableNames"]), 5)
            self.assertEqual(p["LastEvaluatedTableName"], p["TableNames"][-1])
        self.assertLessEqual(len(pages[-1]["TableNames"]), 5)

    def test_exclusive_start(self):
        full = self.c.list_tables()["TableNames"]
        resp = self.c.list_tables(ExclusiveStartTableName="lt_05", Limit=3)
        self.assertEqual(resp["TableNames"], ["lt_06", "lt_07", "lt_08"])
        self.assertEqual(resp["LastEvaluatedTableName"], "lt_08")
        # A start name that is not a table: listing resumes after it.
        resp = self.c.list_tables(ExclusiveStartTableName="lt_05x")
        self.assertEqual(resp["TableNames"], [n for n in full if n > "lt_05x"])
        resp = self.c.list_tables(ExclusiveStartTableName=full[-1])
        self.assertEqual(resp["TableNames"], [])
        self.assertNotIn("LastEvaluatedTableName", resp)

    def test_limit_one_walks_everything(self):
        full = self.c.list_tables()["TableNames"]
        got = [n for p in self.pages(1) for n in p["TableNames"]]
        self.assertEqual(got, full)

    def test_paginator(self):
        full = self.c.list_tables()["TableNames"]
        got = [n for p in self.c.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 4})
               for n in p["TableNames"]]
        self.assertEqual(got, full)

    def test_limit_out_of_range(self):
        raw = harness.client(server, access_key=KEY2[0], secret=KEY2[1], validate=False)
        self.assertValidation(
            lambda: raw.list_tables(Limit=0),
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1")
        self.assertValidation(
            lambda: raw.list_tables(Limit=101),
            "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 100")


class UpdateTableTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server)

    def test_provisioned_throughput_then_on_demand(self):
        self.c.create_table(TableName="u_prov", AttributeDefinitions=attrs(("pk", "S")),
                            KeySchema=schema(("pk", "HASH")),
                            ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
        harness.wait_table(self.c, "u_prov")
        self.c.put_item(TableName="u_prov", Item={"pk": {"S": "keep"}})
        resp = self.c.update_table(TableName="u_prov",
                                   ProvisionedThroughput={"ReadCapacityUnits": 10, "WriteCapacityUnits": 11})
        self.assertEqual(resp["TableDescription"]["TableName"], "u_prov")
        harness.wait_table(self.c, "u_prov")
        t = self.c.describe_table(TableName="u_prov")["Table"]
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 10)
        self.assertEqual(t["ProvisionedThroughput"]["WriteCapacityUnits"], 11)
        self.c.update_table(TableName="u_prov", BillingMode="PAY_PER_REQUEST")
        harness.wait_table(self.c, "u_prov")
        t = self.c.describe_table(TableName="u_prov")["Table"]
        self.assertEqual(t["TableStatus"], "ACTIVE")
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 0)
        self.assertEqual(t["ProvisionedThroughput"]["WriteCapacityUnits"], 0)
        # Data survives.
        self.assertEqual(self.c.get_item(TableName="u_prov", Key={"pk": {"S": "keep"}})["Item"],
                         {"pk": {"S": "keep"}})

    def test_on_demand_to_provisioned(self):
        create_table(self.c, "u_ppr")
        self.c.update_table(TableName="u_ppr", BillingMode="PROVISIONED",
                            ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
        harness.wait_table(self.c, "u_ppr")
        t = self.c.describe_table(TableName="u_ppr")["Table"]
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PROVISIONED")
        self.assertEqual(t["ProvisionedThroughput"]["ReadCapacityUnits"], 3)
        self.assertEqual(t["ProvisionedThroughput"]["WriteCapacityUnits"], 4)

    def test_update_errors(self):
        create_table(self.c, "u_err")
        self.assertClientError(
            lambda: self.c.update_table(TableName="u_missing", BillingMode="PAY_PER_REQUEST"),
            "ResourceNotFoundException", "Requested resource not found: Table: u_missing not found")
        self.assertValidation(
            lambda: self.c.update_table(TableName="u_err"),
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
            "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")
        self.assertValidation(
            lambda: self.c.update_table(TableName="u_err",
                                        ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 2}),
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits "
            "can be specified when BillingMode is PAY_PER_REQUEST")
        self.assertValidation(
            lambda: self.c.update_table(TableName="u_err", BillingMode="PROVISIONED"),
            "One or more parameter values were invalid: ProvisionedThroughput must be specified when "
            "BillingMode is PROVISIONED")
        t = self.c.describe_table(TableName="u_err")["Table"]
        self.assertEqual(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")


class AccountIsolationTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.one = harness.client(server, access_key=KEY1[0], secret=KEY1[1])
        cls.two = harness.client(server, access_key=KEY2[0], secret=KEY2[1])
        cls.one_again = harness.client(server, access_key=KEY3[0], secret=KEY3[1])
        create_table(cls.one, "iso_private")
        cls.one.put_item(TableName="iso_private", Item={"pk": {"S": "k"}, "owner": {"S": "one"}})

    def test_other_account_cannot_see(self):
        self.assertNotIn("iso_private", self.two.list_tables()["TableNames"])
        self.assertClientError(lambda: self.two.describe_table(TableName="iso_private"),
                               "ResourceNotFoundException",
                               "Requested resource not found: Table: iso_private not found")
        self.assertClientError(lambda: self.two.get_item(TableName="iso_private", Key={"pk": {"S": "k"}}),
                               "ResourceNotFoundException", contains="Requested resource not found")
        self.assertClientError(lambda: self.two.scan(TableName="iso_private"),
                               "ResourceNotFoundException", contains="Requested resource not found")

    def test_other_account_cannot_touch(self):
        self.assertClientError(
            lambda: self.two.put_item(TableName="iso_private", Item={"pk": {"S": "k"}, "owner": {"S": "two"}}),
            "ResourceNotFoundException", contains="Requested resource not found")
        self.assertClientError(lambda: self.two.delete_item(TableName="iso_private", Key={"pk": {"S": "k"}}),
                               "ResourceNotFoundException", contains="Requested resource not found")
        self.assertClientError(lambda: self.two.delete_table(TableName="iso_private"),
                               "ResourceNotFoundException",
                               "Requested resource not found: Table: iso_private not found")
        self.assertClientError(
            lambda: self.two.update_table(TableName="iso_private", BillingMode="PAY_PER_REQUEST"),
            "ResourceNotFoundException", "Requested resource not found: Table: iso_private not found")
        item = self.one.get_item(TableName="iso_private", Key={"pk": {"S": "k"}})["Item"]
        self.assertEqual(item["owner"], {"S": "one"})

    def test_same_account_other_key_sees_it(self):
        self.assertIn("iso_private", self.one_again.list_tables()["TableNames"])
        item = self.one_again.get_item(TableName="iso_private", Key={"pk": {"S": "k"}})["Item"]
        self.assertEqual(item["owner"], {"S": "one"})

    def test_same_name_in_both_accounts(self):
        create_table(self.one, "iso_shared", ("pk", "S"))
        create_table(self.two, "iso_shared", ("id", "N"), ("r", "S"))
        t1 = self.one.describe_table(TableName="iso_shared")["Table"]
        t2 = self.two.describe_table(TableName="iso_shared")["Table"]
        self.assertEqual(t1["KeySchema"], schema(("pk", "HASH")))
        self.assertEqual(t2["KeySchema"], schema(("id", "HASH"), ("r", "RANGE")))
        self.assertNotEqual(t1["TableArn"], t2["TableArn"])
        self.one.put_item(TableName="iso_shared", Item={"pk": {"S": "a"}, "who": {"S": "one"}})
        self.two.put_item(TableName="iso_shared", Item={"id": {"N": "1"}, "r": {"S": "x"}, "who": {"S": "two"}})
        self.assertEqual([i["who"]["S"] for i in self.one.scan(TableName="iso_shared")["Items"]], ["one"])
        self.assertEqual([i["who"]["S"] for i in self.two.scan(TableName="iso_shared")["Items"]], ["two"])
        self.two.delete_table(TableName="iso_shared")
        self.two.get_waiter("table_not_exists").wait(TableName="iso_shared",
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        # Account one's table of the same name is untouched.
        self.assertEqual(self.one.describe_table(TableName="iso_shared")["Table"]["TableStatus"], "ACTIVE")
        self.assertEqual(self.one.get_item(TableName="iso_shared", Key={"pk": {"S": "a"}})["Item"]["who"],
                         {"S": "one"})
