"""Table features Meridian does not have yet (DynamoDB Streams, encryption
at rest with a KMS key, the Standard-IA table class) are refused by
CreateTable and UpdateTable with a ValidationException instead of being
accepted and silently ignored; the values SDKs and object mappers send to
mean "off" or "the default" (StreamSpecification {StreamEnabled: false},
SSESpecification {Enabled: false}, TableClass STANDARD) are accepted.
"""

import harness
from harness import create_table, requires_meridian

server = None

NOT_SUPPORTED = "is not supported by this Meridian version"


def setUpModule():
    global server
    server = harness.Server(name="features").start()


def tearDownModule():
    server.close()


def schema():
    return dict(AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST")


class DefaultsAcceptedTest(harness.TestCase):
    """What SDKs and mappers send on their own must keep working."""

    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server)

    def test_create_with_every_feature_off(self):
        self.c.create_table(TableName="f_off", StreamSpecification={"StreamEnabled": False},
                            SSESpecification={"Enabled": False}, TableClass="STANDARD", **schema())
        harness.wait_table(self.c, "f_off")
        self.c.put_item(TableName="f_off", Item={"pk": {"S": "a"}})
        self.assertIn("Item", self.c.get_item(TableName="f_off", Key={"pk": {"S": "a"}}))

    def test_create_with_each_default_alone(self):
        for i, kw in enumerate([{"StreamSpecification": {"StreamEnabled": False}},
                                {"SSESpecification": {"Enabled": False}},
                                {"SSESpecification": {}},
                                {"TableClass": "STANDARD"}]):
            name = "f_default_%d" % i
            self.c.create_table(TableName=name, **kw, **schema())
            harness.wait_table(self.c, name)

    def test_update_with_defaults(self):
        create_table(self.c, "f_upd_off")
        self.c.update_table(TableName="f_upd_off", StreamSpecification={"StreamEnabled": False})
        self.c.update_table(TableName="f_upd_off", SSESpecification={"Enabled": False})
        self.c.update_table(TableName="f_upd_off", TableClass="STANDARD")
        harness.wait_table(self.c, "f_upd_off")


@requires_meridian("Meridian refuses features it does not have")
class UnsupportedRefusedTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = harness.client(server)
        cls.raw = harness.client(server, validate=False)

    def assertNoTable(self, name):
        self.assertNotIn(name, self.c.list_tables()["TableNames"])

    def test_create_with_stream_enabled(self):
        ex = self.assertValidation(
            lambda: self.c.create_table(TableName="f_stream", **schema(), StreamSpecification={
                "StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}),
            contains=["StreamSpecification", "StreamEnabled true", NOT_SUPPORTED])
        self.assertIn("Streams", harness.err_message(ex))
        self.assertNoTable("f_stream")

    def test_create_with_sse_enabled_or_kms(self):
        for i, sse in enumerate([{"Enabled": True},
                                 {"Enabled": True, "SSEType": "KMS"},
                                 {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "alias/mine"},
                                 {"SSEType": "KMS"}]):
            name = "f_sse_%d" % i
            self.assertValidation(
                lambda: self.c.create_table(TableName=name, SSESpecification=sse, **schema()),
                contains=["SSESpecification", NOT_SUPPORTED])
            self.assertNoTable(name)

    def test_create_with_infrequent_access_class(self):
        self.assertValidation(
            lambda: self.c.create_table(TableName="f_ia", TableClass="STANDARD_INFREQUENT_ACCESS",
                                        **schema()),
            "TableClass STANDARD_INFREQUENT_ACCESS " + NOT_SUPPORTED)
        self.assertNoTable("f_ia")

    def test_create_with_unknown_class_or_missing_stream_flag(self):
        self.assertValidation(
            lambda: self.raw.create_table(TableName="f_bad", TableClass="GLACIER", **schema()),
            "1 validation error detected: Value 'GLACIER' at 'tableClass' failed to satisfy "
            "constraint: Member must satisfy enum value set: [STANDARD_INFREQUENT_ACCESS, STANDARD]")
        self.assertValidation(
            lambda: self.raw.create_table(TableName="f_bad", StreamSpecification={}, **schema()),
            "1 validation error detected: Value null at 'streamSpecification.streamEnabled' failed "
            "to satisfy constraint: Member must not be null")
        self.assertNoTable("f_bad")

    def test_update_refuses_and_changes_nothing(self):
        create_table(self.c, "f_upd")
        before = self.c.describe_table(TableName="f_upd")["Table"]
        self.assertValidation(
            lambda: self.c.update_table(TableName="f_upd", StreamSpecification={
                "StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}),
            contains=["StreamEnabled true", NOT_SUPPORTED])
        self.assertValidation(
            lambda: self.c.update_table(TableName="f_upd", SSESpecification={
                "Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": "alias/x"}),
            contains=["SSESpecification", NOT_SUPPORTED])
        self.assertValidation(
            lambda: self.c.update_table(TableName="f_upd", TableClass="STANDARD_INFREQUENT_ACCESS"),
            "TableClass STANDARD_INFREQUENT_ACCESS " + NOT_SUPPORTED)
        # Refused even beside a change that would be accepted alone.
        self.assertValidation(
            lambda: self.c.update_table(TableName="f_upd", BillingMode="PROVISIONED",
                                        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
                                        TableClass="STANDARD_INFREQUENT_ACCESS"),
            contains=NOT_SUPPORTED)
        after = self.c.describe_table(TableName="f_upd")["Table"]
        self.assertEqual(after["BillingModeSummary"], before["BillingModeSummary"])
        self.assertNotIn("StreamSpecification", after)
        self.assertNotIn("SSEDescription", after)


if __name__ == "__main__":
    import unittest
    unittest.main()
