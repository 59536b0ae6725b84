"""Robustness and protocol errors over raw HTTP (requests signed with
botocore's SigV4Auth): malformed JSON, unknown operations, wrong content
types, oversized bodies, deeply nested JSON and invalid UTF-8 are answered
with an error (or a closed connection), never a crash: the server still
serves /health and GetItem afterwards. Also: x-amzn-RequestId and
x-amz-crc32 on every response, slow clients cut off by --idle-timeout while
others are served, 500 idle connections, SIGTERM/SIGINT exiting 0, start-up
errors (credentials file, --listen) and the 0700 data directory.
"""

import http.client
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import time
import zlib

import harness
from harness import create_table, requires_meridian

server = None
c = None
TABLE = "errs"


def setUpModule():
    global server, c
    server = harness.Server(name="errors").start()
    c = harness.client(server)
    create_table(c, TABLE, ("pk", "S"))
    c.put_item(TableName=TABLE, Item={"pk": {"S": "alive"}, "v": {"N": "1"}})


def tearDownModule():
    server.close()


def send_or_closed(headers, body, method="POST", srv=None):
    """Sends a request; returns a RawResponse, or None if the server closed
    or reset the connection instead of answering."""
    try:
        return harness.send_raw(srv or server, headers, body, method=method, timeout=60)
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
            http.client.IncompleteRead, http.client.BadStatusLine):
        return None


def etype(resp):
    return resp.json().get("__type", "")


class ErrorTestCase(harness.TestCase):
    def assert_alive(self, srv=None, cl=None):
        srv = srv or server
        cl = cl or c
        if not harness.moto_mode:
            status, _, body = harness.http_get(srv.host, srv.port, "/health")
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body)["status"], "ok")
        item = cl.get_item(TableName=TABLE, Key={"pk": {"S": "alive"}})["Item"]
        self.assertEqual(item, {"pk": {"S": "alive"}, "v": {"N": "1"}})
        if srv.proc is not None:
            self.assertIsNone(srv.proc.poll(), "server process exited")

    def assert_error_or_closed(self, resp, statuses=(400, 413)):
        if resp is not None:
            self.assertIn(resp.status, statuses, resp)
            self.assertNotEqual(resp.status, 200)
        self.assert_alive()


class MalformedRequestTest(ErrorTestCase):
    def test_malformed_json(self):
        for body in (b"{not json", b'{"TableName": "errs",', b"", b"\x00\x01\x02", b"{}}", b'{"a": tru}'):
            with self.subTest(body=body):
                headers, body = harness.sign_request(server, body, target="GetItem")
                resp = harness.send_raw(server, headers, body)
                self.assertEqual(resp.status, 400, resp)
                self.assertEqual(etype(resp), harness.NS_SERVICE + "SerializationException")
                self.assertIn("x-amzn-requestid", resp.headers)
        self.assert_alive()

    def test_wrong_json_types(self):
        for body in (b'{"TableName": 5, "Key": {"pk": {"S": "x"}}}', b'{"TableName": "errs", "Key": []}',
                     b'{"TableName": "errs", "Key": {"pk": {"S": true}}}', b'{"TableName": "errs", "Key": "k"}'):
            with self.subTest(body=body):
                resp = harness.raw_request(server, "GetItem", body)
                self.assertEqual(resp.status, 400, resp)
                self.assertEqual(etype(resp), harness.NS_SERVICE + "SerializationException")
        self.assert_alive()

    def test_unknown_operation(self):
        for target in ("DynamoDB_20120810.DoesNotExist", "DynamoDB_20120810.", "Foo_20120810.GetItem",
                       "GetItem"):
            with self.subTest(target=target):
                headers, body = harness.sign_request(server, b"{}", target=target)
                if target == "GetItem":
                    headers["X-Amz-Target"] = "GetItem"
                    headers, body = harness.sign_request(server, b"{}", headers={"X-Amz-Target": "GetItem"})
                resp = harness.send_raw(server, headers, body)
                self.assertEqual(resp.status, 400, resp)
                self.assertEqual(etype(resp), harness.NS_SERVICE + "UnknownOperationException")
        # No target header at all.
        headers, body = harness.sign_request(server, b"{}")
        resp = harness.send_raw(server, headers, body)
        self.assertEqual(resp.status, 400, resp)
        self.assertEqual(etype(resp), harness.NS_SERVICE + "UnknownOperationException")
        self.assert_alive()

    def test_content_types(self):
        # application/json is accepted as well as application/x-amz-json-1.0 ...
        body = json.dumps({"TableName": TABLE, "Key": {"pk": {"S": "alive"}}}).encode()
        resp = harness.raw_request(server, "GetItem", body, content_type="application/json")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["Item"]["v"], {"N": "1"})
        resp = harness.raw_request(server, "GetItem", body, content_type="application/x-amz-json-1.0; charset=utf-8")
        self.assertEqual(resp.status, 200, resp)
        # ... anything else is an unknown operation (DynamoDB answers 404
        # "<UnknownOperationException/>"; a 400 JSON error is fine too).
        for ctype in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
            with self.subTest(ctype=ctype):
                resp = harness.raw_request(server, "GetItem", body, content_type=ctype)
                self.assertIn(resp.status, (400, 404), resp)
                self.assertIn(b"UnknownOperationException", resp.body)
        self.assert_alive()

    def test_wrong_method(self):
        headers, body = harness.sign_request(server, b"{}", target="ListTables")
        for method in ("PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                resp = send_or_closed(headers, body, method=method)
                if resp is not None:
                    self.assertGreaterEqual(resp.status, 400, resp)
                    self.assertLess(resp.status, 500, resp)
        self.assert_alive()

    def test_body_over_the_limit(self):
        # DynamoDB refuses request bodies over 16 MB.
        payload = b'{"TableName": "errs", "Item": {"pk": {"S": "huge"}, "v": {"S": "' + \
            b"x" * (17 * 1024 * 1024) + b'"}}}'
        headers, payload = harness.sign_request(server, payload, target="PutItem")
        resp = send_or_closed(headers, payload)
        self.assert_error_or_closed(resp)
        self.assertNotIn("Item", c.get_item(TableName=TABLE, Key={"pk": {"S": "huge"}}))

    def test_lying_content_length(self):
        # Announces more bytes than it sends, then closes its side: the
        # server may answer, close, or wait for its idle timeout; it must
        # not crash or stop serving others.
        s = socket.create_connection((server.host, server.port), timeout=30)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{}")
            s.shutdown(socket.SHUT_WR)
            self.assert_alive(cl=harness.client(server))
            s.settimeout(2)
            try:
                data = s.recv(65536)
                if data:
                    self.assertRegex(data[:12], rb"^HTTP/1\.[01] 4")
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()
        self.assert_alive()

    def test_deeply_nested_json(self):
        depth = 10000
        nested_item = (b'{"TableName": "errs", "Item": {"pk": {"S": "deep"}, "d": ' + b'{"M": {"a": ' * depth +
                       b'{"S": "leaf"}' + b"}}" * depth + b"}}")
        nested_list = (b'{"TableName": "errs", "Item": {"pk": {"S": "deep"}, "d": ' + b'{"L": [' * depth +
                       b'{"S": "leaf"}' + b"]}" * depth + b"}}")
        arrays = b"[" * depth + b"]" * depth
        objects = b'{"a":' * depth + b"1" + b"}" * depth
        for name, body in (("map", nested_item), ("list", nested_list), ("arrays", arrays), ("objects", objects)):
            with self.subTest(shape=name):
                headers, body = harness.sign_request(server, body, target="PutItem")
                resp = send_or_closed(headers, body)
                self.assert_error_or_closed(resp)
        self.assertNotIn("Item", c.get_item(TableName=TABLE, Key={"pk": {"S": "deep"}}))

    def test_nesting_at_the_documented_limit(self):
        # DynamoDB allows 32 levels of nested attributes: 31 is fine, 41 is not.
        v = {"S": "leaf"}
        for _ in range(30):
            v = {"M": {"a": v}}
        c.put_item(TableName=TABLE, Item={"pk": {"S": "nest30"}, "d": v})
        self.assertEqual(c.get_item(TableName=TABLE, Key={"pk": {"S": "nest30"}})["Item"]["d"], v)
        deeper = v
        for _ in range(10):
            deeper = {"M": {"a": deeper}}
        self.assertValidation(lambda: c.put_item(TableName=TABLE, Item={"pk": {"S": "nest40"}, "d": deeper}),
                              contains="Nesting Levels have exceeded supported limits")
        self.assertNotIn("Item", c.get_item(TableName=TABLE, Key={"pk": {"S": "nest40"}}))

    def test_invalid_utf8(self):
        for raw in (b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"ok\x80"):
            with self.subTest(raw=raw):
                body = b'{"TableName": "errs", "Item": {"pk": {"S": "' + raw + b'"}}}'
                headers, body = harness.sign_request(server, body, target="PutItem")
                resp = send_or_closed(headers, body)
                self.assert_error_or_closed(resp)
        # Also in a key name and the table name.
        for body in (b'{"TableName": "errs", "Item": {"pk": {"S": "x"}, "\xff": {"S": "y"}}}',
                     b'{"TableName": "err\xc0", "Key": {"pk": {"S": "x"}}}'):
            headers, body = harness.sign_request(server, body, target="PutItem")
            self.assert_error_or_closed(send_or_closed(headers, body))
        self.assertNotIn("Item", c.get_item(TableName=TABLE, Key={"pk": {"S": "x"}}))


class ResponseHeaderTest(ErrorTestCase):
    def check_headers(self, resp):
        rid = resp.headers.get("x-amzn-requestid")
        self.assertTrue(rid, "x-amzn-RequestId missing: %r" % (resp.headers,))
        self.assertIn("x-amz-crc32", resp.headers)
        self.assertEqual(int(resp.headers["x-amz-crc32"]), zlib.crc32(resp.body) & 0xFFFFFFFF)
        self.assertTrue(resp.headers.get("content-type", "").startswith("application/x-amz-json-1.0"),
                        resp.headers.get("content-type"))
        return rid

    def test_success_and_error_responses(self):
        ids = set()
        ok = harness.raw_request(server, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "alive"}}})
        self.assertEqual(ok.status, 200)
        ids.add(self.check_headers(ok))
        lt = harness.raw_request(server, "ListTables", {})
        self.assertEqual(lt.status, 200)
        ids.add(self.check_headers(lt))
        nf = harness.raw_request(server, "GetItem", {"TableName": "errs_none", "Key": {"pk": {"S": "x"}}})
        self.assertEqual(nf.status, 400)
        self.assertEqual(etype(nf), harness.NS_DYNAMO + "ResourceNotFoundException")
        ids.add(self.check_headers(nf))
        val = harness.raw_request(server, "GetItem", {"TableName": TABLE, "Key": {"pk": {"N": "1"}}})
        self.assertEqual(val.status, 400)
        self.assertEqual(etype(val), harness.NS_VALIDATE + "ValidationException")
        ids.add(self.check_headers(val))
        ccf = harness.raw_request(server, "PutItem", {"TableName": TABLE, "Item": {"pk": {"S": "alive"}},
                                                      "ConditionExpression": "attribute_not_exists(pk)"})
        self.assertEqual(ccf.status, 400)
        self.assertEqual(etype(ccf), harness.NS_DYNAMO + "ConditionalCheckFailedException")
        self.assertEqual(ccf.json().get("message", ccf.json().get("Message")), "The conditional request failed")
        ids.add(self.check_headers(ccf))
        self.assertEqual(len(ids), 5, "request ids must differ")

    def test_crc32_of_large_response(self):
        c.put_item(TableName=TABLE, Item={"pk": {"S": "large"}, "v": {"S": "\u00e9" * 150000}})
        resp = harness.raw_request(server, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "large"}}})
        self.assertEqual(resp.status, 200)
        self.check_headers(resp)
        self.assertEqual(resp.json()["Item"]["v"]["S"], "\u00e9" * 150000)


class ConnectionTest(ErrorTestCase):
    def test_many_idle_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(hard, 1200), hard), hard))
        socks = []
        try:
            for _ in range(500):
                socks.append(socket.create_connection((server.host, server.port), timeout=10))
            # A normal request on a new connection is still served.
            self.assert_alive(cl=harness.client(server))
            c.put_item(TableName=TABLE, Item={"pk": {"S": "during-500"}})
            self.assertIn("Item", c.get_item(TableName=TABLE, Key={"pk": {"S": "during-500"}}))
        finally:
            for s in socks:
                s.close()
        self.assert_alive()

    def test_keep_alive_reuse(self):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            for i in range(20):
                headers, body = harness.sign_request(server, json.dumps(
                    {"TableName": TABLE, "Item": {"pk": {"S": "ka-%d" % i}}}).encode(), target="PutItem")
                conn.request("POST", "/", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.assertEqual(resp.status, 200, data)
        finally:
            conn.close()
        self.assertEqual(c.get_item(TableName=TABLE, Key={"pk": {"S": "ka-19"}})["Item"], {"pk": {"S": "ka-19"}})


@requires_meridian("--idle-timeout needs a meridian process")
class IdleTimeoutTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(name="idle", idle_timeout=2).start()
        # With a 2 s idle timeout the server may close a pooled keep-alive
        # connection just as the client reuses it; real clients retry that
        # (botocore's default does), so this client may retry too.
        cls.cl = harness.client(cls.srv, attempts=3)
        create_table(cls.cl, TABLE, ("pk", "S"))

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def wait_closed(self, s, limit=30.0):
        """True once the server closes s (EOF or reset), within `limit` seconds."""
        s.settimeout(0.5)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                data = s.recv(4096)
                if data == b"":
                    return True
                # A 408 or similar before the close is fine: keep reading.
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    def test_slowloris_half_header(self):
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n")
            # Other clients are served meanwhile.
            for i in range(5):
                self.cl.put_item(TableName=TABLE, Item={"pk": {"S": "while-slow-%d" % i}})
            self.assertGreaterEqual(self.cl.scan(TableName=TABLE, Select="COUNT")["Count"], 5)
            self.assertTrue(self.wait_closed(s), "the server kept a half-sent request open past --idle-timeout")
        finally:
            s.close()
        self.assertEqual(self.cl.list_tables()["TableNames"], [TABLE])

    def test_trickling_header_bytes(self):
        # One byte at a time (each within the idle timeout, 3 s in total):
        # cut off during the trickle or at the latest once the bytes stop.
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        closed = False
        try:
            line = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 15
            for i in range(len(line)):
                try:
                    s.sendall(line[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.05)
            if not closed:
                closed = self.wait_closed(s)
            self.assertTrue(closed)
        finally:
            s.close()
        self.assertEqual(self.cl.list_tables()["TableNames"], [TABLE])

    def test_partial_body(self):
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 500\r\n\r\n{\"Lim")
            self.assertTrue(self.wait_closed(s), "the server kept a partial body open past --idle-timeout")
        finally:
            s.close()

    def test_idle_keep_alive_connection(self):
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        try:
            self.assertTrue(self.wait_closed(s), "an idle connection was not closed")
        finally:
            s.close()
        self.assertEqual(self.cl.list_tables()["TableNames"], [TABLE])


@requires_meridian("signals need a meridian process")
class SignalTest(harness.TestCase):
    def test_sigterm_and_sigint_exit_0(self):
        srv = harness.Server(name="signals").start()
        try:
            cl = harness.client(srv)
            create_table(cl, "sig", ("pk", "S"))
            cl.put_item(TableName="sig", Item={"pk": {"S": "before-term"}})
            self.assertEqual(srv.stop(signal.SIGTERM), 0)
            srv.start()
            cl = harness.client(srv)
            self.assertEqual(cl.get_item(TableName="sig", Key={"pk": {"S": "before-term"}})["Item"],
                             {"pk": {"S": "before-term"}})
            cl.put_item(TableName="sig", Item={"pk": {"S": "before-int"}})
            self.assertEqual(srv.stop(signal.SIGINT), 0)
            srv.start()
            cl = harness.client(srv)
            self.assertIn("Item", cl.get_item(TableName="sig", Key={"pk": {"S": "before-int"}}))
            # An idle client connection does not keep the server from exiting.
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            try:
                self.assertEqual(srv.stop(signal.SIGTERM), 0)
            finally:
                s.close()
        finally:
            srv.close()


@requires_meridian("start-up errors need a meridian process")
class StartupTest(harness.TestCase):
    def run_meridian(self, srv, **override):
        srv.port = srv.port or harness.free_port()
        srv.peer_port = srv.peer_port or harness.free_port()
        cmd = srv.command()
        for flag, value in override.items():
            flag = "--" + flag.replace("_", "-")
            i = cmd.index(flag)
            cmd[i + 1] = value
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("meridian kept running with a bad configuration: %s" % " ".join(cmd))
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def setUp(self):
        self.srv = harness.Server(name="startup")

    def tearDown(self):
        self.srv.close()

    def test_missing_credentials_file(self):
        missing = os.path.join(self.srv.root, "no-such-credentials")
        rc, err = self.run_meridian(self.srv, credentials=missing)
        self.assertNotEqual(rc, 0)
        self.assertIn(missing, err)

    def test_unreadable_credentials_file(self):
        # Tests may run as root, for whom chmod 000 does not make a file
        # unreadable: a directory in place of the file cannot be read by anyone.
        path = os.path.join(self.srv.root, "creds-dir")
        os.mkdir(path)
        rc, err = self.run_meridian(self.srv, credentials=path)
        self.assertNotEqual(rc, 0)
        self.assertIn(path, err)
        if os.geteuid() != 0:
            path2 = os.path.join(self.srv.root, "creds-000")
            with open(path2, "w") as f:
                f.write("AKID SECRET\n")
            os.chmod(path2, 0)
            rc, err = self.run_meridian(self.srv, credentials=path2)
            self.assertNotEqual(rc, 0)
            self.assertIn(path2, err)

    def test_bad_listen_address(self):
        for bad in ("127.0.0.1:notaport", "127.0.0.1:99999", "not an address"):
            with self.subTest(listen=bad):
                rc, err = self.run_meridian(self.srv, listen=bad)
                self.assertNotEqual(rc, 0)
                self.assertTrue(err.strip(), "no message on stderr")

    def test_listen_port_in_use(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            rc, err = self.run_meridian(self.srv, listen="127.0.0.1:%d" % port)
            self.assertNotEqual(rc, 0)
            self.assertTrue(err.strip(), "no message on stderr")
        finally:
            holder.close()

    def test_data_dir_created_0700(self):
        self.assertFalse(os.path.exists(self.srv.data_dir))
        old = os.umask(0)
        try:
            self.srv.start()
        finally:
            os.umask(old)
        st = os.stat(self.srv.data_dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.srv.stop()
