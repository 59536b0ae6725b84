"""SigV4 authentication: a missing Authorization header, an unknown access
key, a wrong secret, a body tampered with after signing, a timestamp more
than 15 minutes old (or ahead), a scope with the wrong region or service;
each answered with DynamoDB's error type (HTTP 400) and message, over raw
HTTP (botocore's SigV4Auth for signing) and through boto3.
"""

import datetime
import json
import re

import harness
from harness import KEY1, KEY2, ClientError, create_table

server = None
c = None
TABLE = "auth_t"

SIG_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method. Consult the service documentation for details.")


def setUpModule():
    global server, c
    server = harness.Server(name="auth").start()
    c = harness.client(server)
    create_table(c, TABLE, ("pk", "S"))
    c.put_item(TableName=TABLE, Item={"pk": {"S": "k"}, "v": {"S": "secret data"}})


def tearDownModule():
    server.close()


def body_get():
    return json.dumps({"TableName": TABLE, "Key": {"pk": {"S": "k"}}}).encode()


def message(resp):
    data = resp.json()
    return data.get("message", data.get("Message"))


class AuthTest(harness.TestCase):
    def assertAuthError(self, resp, type_name, msg=None, contains=None, regex=None):
        self.assertEqual(resp.status, 400, resp)
        data = resp.json()
        self.assertEqual(data.get("__type"), harness.NS_SERVICE + type_name, data)
        self.assertIn("x-amzn-requestid", resp.headers)
        if msg is not None:
            self.assertEqual(message(resp), msg)
        if contains is not None:
            self.assertIn(contains, message(resp))
        if regex is not None:
            self.assertRegex(message(resp), regex)
        # Nothing leaks: no item data in an auth error.
        self.assertNotIn(b"secret data", resp.body)

    def test_valid_signature_works(self):
        resp = harness.raw_request(server, "GetItem", body_get())
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["Item"]["v"], {"S": "secret data"})
        # The other account's key is valid too (but sees its own, empty, account).
        resp = harness.raw_request(server, "ListTables", b"{}", access_key=KEY2[0], secret=KEY2[1])
        self.assertEqual(resp.status, 200, resp)
        self.assertNotIn(TABLE, resp.json()["TableNames"])

    def test_missing_authorization(self):
        headers, body = harness.sign_request(server, body_get(), target="GetItem")
        del headers["Authorization"]
        resp = harness.send_raw(server, headers, body)
        self.assertAuthError(resp, "MissingAuthenticationTokenException", "Request is missing Authentication Token")
        # Not even the date header.
        resp = harness.raw_request(server, "GetItem", body_get(), sign=False)
        self.assertAuthError(resp, "MissingAuthenticationTokenException", "Request is missing Authentication Token")

    def test_unknown_access_key(self):
        resp = harness.raw_request(server, "GetItem", body_get(), access_key="AKIDNOBODYKNOWS00000", secret="x")
        self.assertAuthError(resp, "UnrecognizedClientException",
                             "The security token included in the request is invalid.")

    def test_wrong_secret(self):
        resp = harness.raw_request(server, "GetItem", body_get(), access_key=KEY1[0], secret=KEY1[1] + "x")
        self.assertAuthError(resp, "InvalidSignatureException", contains=SIG_MISMATCH)
        # Another key's secret is wrong too.
        resp = harness.raw_request(server, "GetItem", body_get(), access_key=KEY1[0], secret=KEY2[1])
        self.assertAuthError(resp, "InvalidSignatureException", contains=SIG_MISMATCH)

    def test_tampered_body(self):
        headers, body = harness.sign_request(server, body_get(), target="GetItem")
        tampered = body.replace(b'"k"', b'"j"')
        self.assertNotEqual(tampered, body)
        resp = harness.send_raw(server, headers, tampered)
        self.assertAuthError(resp, "InvalidSignatureException", contains=SIG_MISMATCH)
        # Tampering with a signed header is caught as well.
        headers, body = harness.sign_request(server, body_get(), target="GetItem")
        headers["X-Amz-Target"] = "DynamoDB_20120810.DeleteItem"
        resp = harness.send_raw(server, headers, body)
        self.assertAuthError(resp, "InvalidSignatureException", contains=SIG_MISMATCH)
        self.assertEqual(c.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})["Item"]["v"], {"S": "secret data"})

    def test_signature_expired(self):
        when = harness.utcnow() - datetime.timedelta(minutes=20)
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        resp = harness.raw_request(server, "GetItem", body_get(), when=when)
        self.assertAuthError(resp, "InvalidSignatureException",
                             regex=r"^Signature expired: %s is now earlier than \d{8}T\d{6}Z "
                                   r"\(\d{8}T\d{6}Z - 15 min\.\)$" % stamp)
        # The "now earlier than" time is the server's now minus 15 minutes.
        m = re.search(r"earlier than (\d{8}T\d{6}Z) \((\d{8}T\d{6}Z) - 15 min", message(resp))
        limit = datetime.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ")
        now = datetime.datetime.strptime(m.group(2), "%Y%m%dT%H%M%SZ")
        self.assertEqual(now - limit, datetime.timedelta(minutes=15))
        self.assertLess(when, limit)

    def test_signature_from_the_future(self):
        when = harness.utcnow() + datetime.timedelta(minutes=20)
        resp = harness.raw_request(server, "GetItem", body_get(), when=when)
        self.assertAuthError(resp, "InvalidSignatureException", contains=when.strftime("%Y%m%dT%H%M%SZ"))

    def test_small_clock_skew_is_accepted(self):
        for minutes in (-10, 10):
            when = harness.utcnow() + datetime.timedelta(minutes=minutes)
            resp = harness.raw_request(server, "GetItem", body_get(), when=when)
            self.assertEqual(resp.status, 200, resp)

    def test_wrong_region_in_scope(self):
        resp = harness.raw_request(server, "GetItem", body_get(), region="eu-west-1")
        self.assertAuthError(resp, "InvalidSignatureException",
                             contains="Credential should be scoped to a valid region")

    def test_wrong_service_in_scope(self):
        headers, body = harness.sign_request(server, body_get(), target="GetItem")
        auth = headers["Authorization"]
        # Re-sign with service "s3" using the same machinery.
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                                             headers={"Content-Type": "application/x-amz-json-1.0",
                                                      "X-Amz-Target": "DynamoDB_20120810.GetItem"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(KEY1[0], KEY1[1]), "s3",
                                server.region).add_auth(req)
        prepared = req.prepare()
        self.assertNotEqual(prepared.headers["Authorization"], auth)
        resp = harness.send_raw(server, dict(prepared.headers.items()), body)
        self.assertAuthError(resp, "InvalidSignatureException",
                             contains="Credential should be scoped to correct service")

    def test_malformed_authorization_header(self):
        headers, body = harness.sign_request(server, body_get(), target="GetItem")
        headers["Authorization"] = "AWS4-HMAC-SHA256 garbage"
        resp = harness.send_raw(server, headers, body)
        self.assertEqual(resp.status, 400, resp)
        self.assertIn(resp.json()["__type"].rsplit("#", 1)[-1],
                      ("IncompleteSignatureException", "InvalidSignatureException",
                       "MissingAuthenticationTokenException"))
        self.assertNotIn(b"secret data", resp.body)


class Boto3AuthTest(harness.TestCase):
    def test_boto3_errors(self):
        bad = harness.client(server, access_key="AKIDNOBODYKNOWS00000", secret="nope")
        self.assertClientError(lambda: bad.list_tables(), "UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        wrong = harness.client(server, access_key=KEY1[0], secret="wrong-secret")
        self.assertClientError(lambda: wrong.get_item(TableName=TABLE, Key={"pk": {"S": "k"}}),
                               "InvalidSignatureException", contains=SIG_MISMATCH)
        region = harness.client(server, region="ap-southeast-2")
        self.assertClientError(lambda: region.list_tables(), "InvalidSignatureException",
                               contains="Credential should be scoped to a valid region")
        # A failed authentication changes nothing.
        self.assertClientError(lambda: wrong.delete_item(TableName=TABLE, Key={"pk": {"S": "k"}}),
                               "InvalidSignatureException")
        self.assertEqual(c.get_item(TableName=TABLE, Key={"pk": {"S": "k"}})["Item"]["v"], {"S": "secret data"})

    def test_server_with_other_region(self):
        other = harness.Server(name="auth-region", region="eu-central-1").start()
        try:
            good = harness.client(other)
            self.assertEqual(good.list_tables()["TableNames"], [])
            bad = harness.client(other, region="us-east-1")
            with self.assertRaises(ClientError) as cm:
                bad.list_tables()
            self.assertEqual(harness.err_code(cm.exception), "InvalidSignatureException")
        finally:
            other.close()
