"""The operator's endpoints (/metrics, /replication/status) name every
account's tables, so they are not for anyone who can reach the API port:

- with --admin-token-file, both the API listener and the admin listener
  (--admin-listen) serve them only to `Authorization: Bearer <token>`; no
  token or a wrong one gets 401 with a JSON error that names no table, no
  account, no key;
- without a token file, the API listener does not serve them at all (404:
  no credential would open them there), only the admin listener does, at an
  address the operator chose;
- /health stays open on both listeners and names no table;
- the admin listener serves nothing of the DynamoDB API;
- `meridian status` reads /replication/status with the token
  (--admin-token-file, --admin-endpoint), and `meridian up` generates the
  token and starts an admin listener per region.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import types
import unittest

import harness
from harness import KEY1, KEY2, create_table, requires_meridian, wait_until

OPERATOR_PATHS = ("/metrics", "/replication/status")
# Table names, accounts and a key that an outsider must not learn.
SECRET_ONE = "payroll_secret_one"
SECRET_TWO = "medical_secret_two"
SECRET_KEY = "patient-4711-key"
SECRETS = (SECRET_ONE, SECRET_TWO, SECRET_KEY, KEY1[2], KEY2[2])

guarded = None  # token file and admin listener
open_admin = None  # admin listener, no token file


def fill(server):
    c1 = harness.client(server, access_key=KEY1[0], secret=KEY1[1])
    c2 = harness.client(server, access_key=KEY2[0], secret=KEY2[1])
    create_table(c1, SECRET_ONE)
    create_table(c2, SECRET_TWO)
    c1.put_item(TableName=SECRET_ONE, Item={"pk": {"S": SECRET_KEY}})
    c2.put_item(TableName=SECRET_TWO, Item={"pk": {"S": SECRET_KEY}})
    c1.delete_item(TableName=SECRET_ONE, Key={"pk": {"S": SECRET_KEY}})


def setUpModule():
    global guarded, open_admin
    if harness.moto_mode:
        return
    guarded = harness.Server(name="admin-guarded", admin_listen=True).start()
    open_admin = harness.Server(name="admin-open", admin_token=False, admin_listen=True).start()
    for s in (guarded, open_admin):
        fill(s)


def tearDownModule():
    for s in (guarded, open_admin):
        if s is not None:
            s.close()


def get(server, port, path, headers=None):
    return harness.http_get(server.host, port, path, headers=headers)


@requires_meridian("meridian's own operator endpoints")
class AdminAuthTest(harness.TestCase):
    def assertRevealsNothing(self, body, what):
        text = body.decode("utf-8", "replace")
        for s in SECRETS:
            self.assertNotIn(s, text, "%s reveals %r: %r" % (what, s, text[:400]))
        self.assertNotIn("meridian_", text, what)
        self.assertNotIn("links", text, what)

    def assertJsonError(self, status, headers, body, code, type_suffix, what):
        self.assertEqual(status, code, "%s: %r" % (what, body[:300]))
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        data = json.loads(body)
        self.assertTrue(data["__type"].endswith("#" + type_suffix), data)
        self.assertTrue(data.get("message"), data)
        self.assertRevealsNothing(body, what)

    def listeners(self):
        return (("API", guarded.port), ("admin", guarded.admin_port))

    def test_no_token_is_401_and_reveals_nothing(self):
        for name, port in self.listeners():
            for path in OPERATOR_PATHS:
                status, headers, body = get(guarded, port, path)
                self.assertJsonError(status, headers, body, 401, "MissingAuthenticationTokenException",
                                     "%s %s without a token" % (name, path))
                self.assertTrue(headers.get("www-authenticate", "").startswith("Bearer"), headers)

    def test_wrong_token_is_401_and_reveals_nothing(self):
        tok = guarded.admin_token
        wrong = ["Bearer " + tok + "x", "Bearer " + tok[:-1], "Bearer " + tok.upper(),
                 "Bearer not-the-token-at-all-0000", "Bearer " + "x" * 5000]
        # Not a bearer token at all: as good as none.
        missing = ["Basic " + harness.b64(("operator:" + tok).encode()), tok, "Bearer", "Bearer   ",
                   "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/dynamodb/aws4_request" % KEY1[0]]
        for name, port in self.listeners():
            for path in OPERATOR_PATHS:
                for h in wrong:
                    status, headers, body = get(guarded, port, path, {"Authorization": h})
                    self.assertJsonError(status, headers, body, 401, "UnrecognizedClientException",
                                         "%s %s with %r" % (name, path, h[:40]))
                for h in missing:
                    status, headers, body = get(guarded, port, path, {"Authorization": h})
                    self.assertJsonError(status, headers, body, 401, "MissingAuthenticationTokenException",
                                         "%s %s with %r" % (name, path, h[:40]))

    def test_right_token_shows_every_account(self):
        for name, port in self.listeners():
            for scheme in ("Bearer", "bearer"):
                status, headers, body = get(guarded, port, "/metrics",
                                            {"Authorization": "%s  %s " % (scheme, guarded.admin_token)})
                self.assertEqual(status, 200, (name, body[:300]))
                self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
                text = body.decode()
                for table, acct in ((SECRET_ONE, KEY1[2]), (SECRET_TWO, KEY2[2])):
                    self.assertIn('meridian_tombstones{account="%s",table="%s"}' % (acct, table), text)
                # The API listener's connection figures, on either listener.
                self.assertIn("meridian_http_connections ", text)
            status, _, body = harness.operator_get(guarded, "/replication/status", port=port)
            self.assertEqual(status, 200, body[:300])
            self.assertEqual(json.loads(body)["region"], guarded.region)

    def test_api_port_without_token_file_does_not_serve_them(self):
        # 404, not 401: with no token configured, no credential opens them on the
        # API listener; they exist only on the admin listener the operator chose.
        for path in OPERATOR_PATHS:
            for headers in (None, {"Authorization": "Bearer " + open_admin.admin_token},
                            {"Authorization": "Bearer anything-at-all-12345"}):
                status, h, body = get(open_admin, open_admin.port, path, headers)
                self.assertJsonError(status, h, body, 404, "UnknownOperationException",
                                     "API %s without a token file" % path)
        # The admin listener serves them as they are: its address is the protection.
        status, _, body = get(open_admin, open_admin.admin_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('table="%s"' % SECRET_TWO, body.decode())
        status, _, body = get(open_admin, open_admin.admin_port, "/replication/status")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["region"], open_admin.region)

    def test_health_is_open_and_names_no_table(self):
        for s in (guarded, open_admin):
            for port in (s.port, s.admin_port):
                status, _, body = get(s, port, "/health")
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["region"], s.region)
                self.assertRevealsNothing(body, "/health")

    def test_admin_listener_serves_no_api(self):
        headers, body = harness.sign_request(guarded, b"{}", target="ListTables")
        admin = types.SimpleNamespace(host=guarded.host, port=guarded.admin_port)
        resp = harness.send_raw(admin, headers, body)
        self.assertEqual(resp.status, 405, resp)
        self.assertRevealsNothing(resp.body, "POST / on the admin listener")
        status, _, body = get(guarded, guarded.admin_port, "/")
        self.assertEqual(status, 404)

    def status_cmd(self, *args):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY1[0], AWS_SECRET_ACCESS_KEY=KEY1[1])
        p = subprocess.run([harness.meridian_bin(), "status"] + list(args), env=env,
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_meridian_status_with_the_token(self):
        ep = guarded.endpoint
        admin_ep = "http://127.0.0.1:%d" % guarded.admin_port
        for extra in (["--admin-endpoint", admin_ep], []):
            rc, out, err = self.status_cmd("--endpoint", ep, *extra,
                                           "--admin-token-file", guarded.admin_token_path)
            self.assertEqual(rc, 0, out + err)
            self.assertIn("region %s" % guarded.region, out)
            self.assertIn(SECRET_ONE, out)  # the caller's own tables (signed ListTables)
            self.assertNotIn(SECRET_TWO, out)
        rc, out, err = self.status_cmd("--endpoint", ep)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("answered 401", err)
        rc, out, err = self.status_cmd("--endpoint", open_admin.endpoint)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("answered 404", err)
        rc, out, err = self.status_cmd("--endpoint", open_admin.endpoint, "--admin-endpoint",
                                       "http://127.0.0.1:%d" % open_admin.admin_port)
        self.assertEqual(rc, 0, out + err)


def free_base_port():
    """A base port P with P+i, P+100+i and P+200+i (i < 2) all free now."""
    for _ in range(50):
        base = 20000 + int.from_bytes(os.urandom(2), "big") % 30000
        ports = [base + off + i for off in (0, 100, 200) for i in range(2)]
        try:
            socks = []
            for p in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free base port")


@requires_meridian("meridian up")
class MeridianUpTest(harness.TestCase):
    def test_up_starts_admin_listeners_behind_a_generated_token(self):
        root = tempfile.mkdtemp(prefix="meridian-it-up-")
        base = free_base_port()
        log_path = os.path.join(root, "up.log")
        log = open(log_path, "w")
        p = subprocess.Popen([harness.meridian_bin(), "up", "--regions", "up-a,up-b", "--dir",
                              os.path.join(root, "d"), "--base-port", str(base)],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            def text():
                with open(log_path) as f:
                    return f.read()
            wait_until(lambda: "Meridian is running" in text() and "--admin-token-file" in text(), 60,
                       what="meridian up to start (log: %s)" % log_path)
            out = text()
            token_path = os.path.join(root, "d", "admin.token")
            self.assertEqual(os.stat(token_path).st_mode & 0o777, 0o600)
            with open(token_path) as f:
                token = f.read().strip()
            self.assertGreaterEqual(len(token), 32)
            self.assertIn(token_path, out)
            self.assertNotIn(token, out)
            for i in range(2):
                self.assertRegex(out, r"up-%s\s+http://127\.0\.0\.1:%d\s+http://127\.0\.0\.1:%d"
                                 % ("ab"[i], base + i, base + 200 + i))
                for port in (base + i, base + 200 + i):
                    status, _, body = harness.http_get("127.0.0.1", port, "/metrics")
                    self.assertEqual(status, 401, body[:200])
                    status, _, body = harness.http_get("127.0.0.1", port, "/metrics",
                                                       headers={"Authorization": "Bearer " + token})
                    self.assertEqual(status, 200)
                    self.assertIn("meridian_replication_link_up", body.decode())
                    status, _, _ = harness.http_get("127.0.0.1", port, "/health")
                    self.assertEqual(status, 200)
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                rc = None
            log.close()
            if not os.environ.get("MERIDIAN_TEST_KEEP"):
                shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
