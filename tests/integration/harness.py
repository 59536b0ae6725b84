"""Shared harness of Meridian's integration tests.

A `Server` runs one real meridian process on 127.0.0.1 with free ports, a
temporary data directory and its own credentials and cluster-key files; its
stderr goes to a log file whose tail is printed when a test fails.
`client()` returns a boto3 DynamoDB client for it (retries disabled, short
timeouts), `aws()` runs the aws cli against it, and `raw_request()` sends a
hand-made (optionally SigV4-signed) HTTP request and returns status, headers
and body untouched.

Environment:
  MERIDIAN_BIN            the meridian binary (default: ../../build/meridian)
  MERIDIAN_TEST_ENDPOINT  if set (e.g. http://127.0.0.1:5000 of a moto_server
                          you started yourself), no meridian process is
                          started: every Server points at that endpoint and
                          tests decorated with @requires_meridian (process
                          control, meridian-only endpoints) are skipped. CI
                          never sets it.
  MERIDIAN_TEST_LOG_LEVEL --log-level passed to meridian (default: info)
  MERIDIAN_TEST_KEEP      if set, data directories are kept after the run
"""

import os
import sys

# The machine's python3 carries boto3; if this interpreter does not (e.g.
# ctest found another python3), re-exec the same command line under one that
# does. Guarded so that it happens at most once.
try:
    import boto3  # noqa: F401
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("MERIDIAN_HARNESS_REEXEC"):
        raise
    _argv = list(getattr(sys, "orig_argv", []) or [])
    for _cand in ("/usr/bin/python3", "/usr/local/bin/python3",
                  os.path.expanduser("~/.pyenv/shims/python3")):
        if (os.path.exists(_cand) and os.access(_cand, os.X_OK)
                and os.path.realpath(_cand) != os.path.realpath(sys.executable)):
            import subprocess as _sp
            if _sp.run([_cand, "-c", "import boto3"], stdout=_sp.DEVNULL,
                       stderr=_sp.DEVNULL).returncode != 0:
                continue
            os.environ["MERIDIAN_HARNESS_REEXEC"] = "1"
            sys.stdout.flush()
            sys.stderr.flush()
            if _argv:
                os.execv(_cand, [_cand] + _argv[1:])
            os.execv(_cand, [_cand, "-m", "unittest"] + sys.argv[1:])
    raise

import base64
import datetime
import http.client
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import zlib

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

ENDPOINT = os.environ.get("MERIDIAN_TEST_ENDPOINT", "").rstrip("/") or None

# Namespaces of DynamoDB's error types (the "__type" of an error body).
NS_DYNAMO = "com.amazonaws.dynamodb.v20120810#"
NS_VALIDATE = "com.amazon.coral.validate#"
NS_SERVICE = "com.amazon.coral.service#"

DEFAULT_REGION = "us-east-1"

# Default credentials of every Server: (access key id, secret, account).
# KEY1 and KEY3 share account "acct-one"; KEY2 is another account.
KEY1 = ("AKIDMERIDIANONE00001", "secret-one/+xyz0123456789abcdefABCDEF", "acct-one")
KEY2 = ("AKIDMERIDIANTWO00002", "secret-two/+xyz0123456789abcdefABCDEF", "acct-two")
KEY3 = ("AKIDMERIDIANTHREE003", "secret-three+abcdef0123456789", "acct-one")
DEFAULT_CREDENTIALS = (KEY1, KEY2, KEY3)

# Servers alive in this process, and those closed during the current test,
# for printing log tails when a test fails.
_LIVE_SERVERS = []
_CLOSED_DURING_TEST = []

moto_mode = ENDPOINT is not None
_ENDPOINT_RESET = False


def requires_meridian(reason="needs a meridian process (process control or meridian-only feature)"):
    """Skips a test or class only in MERIDIAN_TEST_ENDPOINT mode (never in CI)."""
    def deco(obj):
        return unittest.skipIf(moto_mode, "MERIDIAN_TEST_ENDPOINT mode: " + reason)(obj)
    return deco


def meridian_bin():
    path = os.environ.get("MERIDIAN_BIN")
    if path:
        return path
    for cand in (os.path.join(REPO, "build", "meridian"),
                 os.path.join(REPO, "build-it", "meridian")):
        if os.path.exists(cand):
            return cand
    return os.path.join(REPO, "build", "meridian")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(host, port, path, timeout=5.0):
    """GET over loopback; returns (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def _tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as ex:
        return "(cannot read %s: %s)" % (path, ex)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


class ServerError(AssertionError):
    pass


class Server:
    """One meridian process (or, in MERIDIAN_TEST_ENDPOINT mode, the external endpoint)."""

    def __init__(self, name="meridian", region=DEFAULT_REGION, credentials=DEFAULT_CREDENTIALS,
                 idle_timeout=None, max_connections=None, log_level=None, extra_args=(),
                 credentials_text=None):
        self.name = name
        self.region = region
        self.credentials = list(credentials)
        self.credentials_text = credentials_text
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.log_level = log_level or os.environ.get("MERIDIAN_TEST_LOG_LEVEL", "info")
        self.extra_args = list(extra_args)
        self.proc = None
        self.root = tempfile.mkdtemp(prefix="meridian-it-%s-" % name)
        self.data_dir = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "stderr.log")
        self.cred_path = os.path.join(self.root, "credentials")
        self.cluster_key_path = os.path.join(self.root, "cluster.key")
        self.port = None
        self.peer_port = None
        self._log = None
        self.starts = 0
        if ENDPOINT:
            u = urllib.parse.urlparse(ENDPOINT)
            if u.hostname not in ("127.0.0.1", "localhost", "::1"):
                raise ServerError("MERIDIAN_TEST_ENDPOINT must be a loopback address: %s" % ENDPOINT)
            self.host = u.hostname
            self.port = u.port or 80
        else:
            self.host = "127.0.0.1"
        self._write_files()

    # -- files ------------------------------------------------------------
    def _write_files(self):
        with open(self.cred_path, "w") as f:
            if self.credentials_text is not None:
                f.write(self.credentials_text)
            else:
                f.write("# meridian integration test credentials\n\n")
                for ak, sk, acct in self.credentials:
                    f.write("%s %s %s\n" % (ak, sk, acct))
        os.chmod(self.cred_path, 0o600)
        with open(self.cluster_key_path, "w") as f:
            f.write("integration-test-cluster-key-%d\n" % os.getpid())
        os.chmod(self.cluster_key_path, 0o600)

    @property
    def endpoint(self):
        if ENDPOINT:
            return ENDPOINT
        return "http://127.0.0.1:%d" % self.port

    @property
    def access_key(self):
        return self.credentials[0][0]

    @property
    def secret(self):
        return self.credentials[0][1]

    def command(self):
        cmd = [meridian_bin(), "serve", "--region", self.region, "--data", self.data_dir,
               "--listen", "127.0.0.1:%d" % self.port,
               "--peer-listen", "127.0.0.1:%d" % self.peer_port,
               "--credentials", self.cred_path, "--cluster-key", self.cluster_key_path,
               "--log-level", self.log_level]
        if self.idle_timeout is not None:
            cmd += ["--idle-timeout", str(self.idle_timeout)]
        if self.max_connections is not None:
            cmd += ["--max-connections", str(self.max_connections)]
        return cmd + self.extra_args

    # -- lifecycle ----------------------------------------------------------
    def start(self, timeout=30.0, new_ports=True):
        """Starts the process and waits (bounded) until /health answers 200."""
        if self not in _LIVE_SERVERS:
            _LIVE_SERVERS.append(self)
        if ENDPOINT:
            global _ENDPOINT_RESET
            if not _ENDPOINT_RESET:
                _ENDPOINT_RESET = True
                self._reset_endpoint()
            return self
        binary = meridian_bin()
        if not os.path.exists(binary):
            raise ServerError("meridian binary not found: %s (set MERIDIAN_BIN)" % binary)
        attempts = 3
        for attempt in range(attempts):
            if new_ports or self.port is None:
                self.port = free_port()
                self.peer_port = free_port()
                while self.peer_port == self.port:
                    self.peer_port = free_port()
            self._log = open(self.log_path, "ab")
            self._log.write(("\n===== start #%d: %s\n" % (self.starts + 1, " ".join(self.command()))).encode())
            self._log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=self._log,
                                         start_new_session=True)
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _, _ = http_get("127.0.0.1", self.port, "/health", timeout=2.0)
                    if status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.kill9()
                raise ServerError("meridian did not become healthy within %.0fs\n--- stderr tail:\n%s"
                                  % (timeout, _tail(self.log_path)))
            # Exited early: a port taken between free_port() and bind() is
            # retried with fresh ports; anything else is an error.
            log = _tail(self.log_path, 20).lower()
            self._close_log()
            if attempt + 1 < attempts and ("in use" in log or "bind" in log):
                new_ports = True
                time.sleep(0.2)
                continue
            raise ServerError("meridian exited with %s during start-up\n--- stderr tail:\n%s"
                              % (self.proc.returncode, _tail(self.log_path)))
        raise ServerError("meridian could not start")

    def _reset_endpoint(self):
        """External endpoint mode: start from an empty endpoint (moto's reset API if
        present, otherwise delete every table visible to the test credentials)."""
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            conn.request("POST", "/moto-api/reset")
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return
        except OSError:
            pass
        seen = set()
        for ak, sk, _ in self.credentials:
            c = client(self, access_key=ak, secret=sk)
            try:
                names = [n for p in c.get_paginator("list_tables").paginate() for n in p["TableNames"]]
            except ClientError:
                continue
            for n in names:
                if (ak, n) in seen:
                    continue
                seen.add((ak, n))
                try:
                    c.delete_table(TableName=n)
                except ClientError:
                    pass

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def send_signal(self, sig):
        if ENDPOINT or self.proc is None:
            return
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=60.0, check=True):
        """Sends SIGTERM (or sig), waits for exit; asserts exit code 0 when check."""
        if ENDPOINT or self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise ServerError("meridian did not exit within %.0fs of signal %d\n--- stderr tail:\n%s"
                                  % (timeout, sig, _tail(self.log_path)))
        rc = self.proc.returncode
        self._close_log()
        if check and rc != 0:
            raise ServerError("meridian exited with %r after signal %d (expected 0)\n--- stderr tail:\n%s"
                              % (rc, sig, _tail(self.log_path)))
        return rc

    def kill9(self):
        if ENDPOINT or self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def restart(self, timeout=30.0):
        """Stops (if running, with SIGTERM and exit 0 asserted) and starts again on
        the same data directory. Keeps the ports when it can."""
        if ENDPOINT:
            return self
        if self.running():
            self.stop()
        try:
            return self.start(timeout=timeout, new_ports=False)
        except ServerError:
            if self.running():
                raise
            return self.start(timeout=timeout, new_ports=True)

    def close(self):
        """Final teardown: stop (exit 0 asserted), remove temporary files."""
        try:
            if self.running():
                self.stop()
        finally:
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)
                _CLOSED_DURING_TEST.append(self)
            self._close_log()
            self._final_tail = _tail(self.log_path)
            if not os.environ.get("MERIDIAN_TEST_KEEP"):
                shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        if not os.path.exists(self.log_path) and getattr(self, "_final_tail", None) is not None:
            return self._final_tail
        return _tail(self.log_path, lines)

    def health(self):
        status, headers, body = http_get(self.host, self.port, "/health")
        return status, headers, body


def start_server(**kw):
    return Server(**kw).start()


# -- clients -----------------------------------------------------------------

def client(server, access_key=None, secret=None, region=None, validate=True,
           read_timeout=30, connect_timeout=5, attempts=1):
    """A boto3 DynamoDB client for server, retries disabled unless attempts > 1."""
    if access_key is None:
        access_key, secret = server.credentials[0][0], server.credentials[0][1]
    cfg = Config(
        # One attempt in total (botocore's max_attempts counts *re*tries, so
        # total_max_attempts=1 is what "retries disabled" means).
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        parameter_validation=validate,
        tcp_keepalive=False,
    )
    session = boto3.session.Session(aws_access_key_id=access_key,
                                    aws_secret_access_key=secret,
                                    region_name=region or server.region)
    return session.client("dynamodb", endpoint_url=server.endpoint, config=cfg)


def aws_env(access_key, secret, region):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": region,
        "AWS_PAGER": "",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


def aws_binary():
    found = shutil.which("aws")
    if found:
        return found
    for cand in (os.path.expanduser("~/.pyenv/shims/aws"), "/usr/bin/aws", "/usr/local/bin/aws"):
        if os.path.exists(cand):
            return cand
    raise ServerError("aws cli not found on PATH")


def aws(server, *args, access_key=None, secret=None, region=None, timeout=120):
    """Runs `aws dynamodb ARGS --endpoint-url ... --region ... --output json`.
    Returns (exit code, parsed stdout JSON or None, stderr text)."""
    if access_key is None:
        access_key, secret = server.credentials[0][0], server.credentials[0][1]
    region = region or server.region
    cmd = [aws_binary(), "dynamodb"] + [str(a) for a in args] + [
        "--endpoint-url", server.endpoint, "--region", region, "--output", "json"]
    p = subprocess.run(cmd, env=aws_env(access_key, secret, region), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace").strip()
    parsed = None
    if out:
        try:
            parsed = json.loads(out)
        except ValueError:
            parsed = out
    return p.returncode, parsed, p.stderr.decode("utf-8", "replace")


# -- raw HTTP ----------------------------------------------------------------

class _FixedTimeSigV4Auth(botocore.auth.SigV4Auth):
    """SigV4Auth that signs as of a given time (for clock-skew tests)."""

    def __init__(self, credentials, service, region, when):
        super().__init__(credentials, service, region)
        self._when = when

    def add_auth(self, request):
        request.context["timestamp"] = self._when.strftime(botocore.auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "RawResponse(%d, %r, %r)" % (self.status, self.headers, self.body[:300])


def sign_request(server, body, target=None, access_key=None, secret=None, region=None,
                 when=None, headers=None, content_type="application/x-amz-json-1.0"):
    """Builds and signs a POST / request; returns (headers dict, body bytes)."""
    if access_key is None:
        access_key, secret = server.credentials[0][0], server.credentials[0][1]
    if isinstance(body, str):
        body = body.encode("utf-8")
    h = {}
    if content_type is not None:
        h["Content-Type"] = content_type
    if target is not None:
        h["X-Amz-Target"] = target if "." in target else "DynamoDB_20120810." + target
    if headers:
        h.update(headers)
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=h)
    creds = botocore.credentials.Credentials(access_key, secret)
    if when is None:
        auth = botocore.auth.SigV4Auth(creds, "dynamodb", region or server.region)
    else:
        auth = _FixedTimeSigV4Auth(creds, "dynamodb", region or server.region, when)
    auth.add_auth(req)
    prepared = req.prepare()
    return dict(prepared.headers.items()), body


def send_raw(server, headers, body, method="POST", path="/", timeout=30.0):
    """Sends exactly these headers and body; returns a RawResponse."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        names = {k.lower() for k in headers}
        if "host" not in names:
            conn.putheader("Host", "%s:%d" % (server.host, server.port))
        for k, v in headers.items():
            if k.lower() == "content-length":
                continue
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def raw_request(server, target, body, sign=True, **kw):
    """Signs (unless sign=False) and sends a DynamoDB API request."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    if sign:
        headers, body = sign_request(server, body, target=target, **kw)
    else:
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        if target is not None:
            headers["X-Amz-Target"] = "DynamoDB_20120810." + target
    return send_raw(server, headers, body)


def error_type(resp):
    """'ResourceNotFoundException' from a RawResponse error body's __type."""
    t = resp.json().get("__type", "")
    return t.rsplit("#", 1)[-1]


# -- assertions and helpers -------------------------------------------------

def err_code(ex):
    return ex.response.get("Error", {}).get("Code")


def err_message(ex):
    return ex.response.get("Error", {}).get("Message")


def wait_table(c, name):
    c.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def create_table(c, name, hash_key=("pk", "S"), range_key=None, wait=True, **kw):
    attrs = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    if range_key:
        attrs.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    if "BillingMode" not in kw and "ProvisionedThroughput" not in kw:
        kw["BillingMode"] = "PAY_PER_REQUEST"
    resp = c.create_table(TableName=name, AttributeDefinitions=attrs, KeySchema=schema, **kw)
    if wait:
        wait_table(c, name)
    return resp


def print_server_tails(stream=None):
    stream = stream or sys.stderr
    for s in list(_LIVE_SERVERS) + list(_CLOSED_DURING_TEST):
        if ENDPOINT or s.starts == 0:
            continue
        stream.write("\n----- %s (%s) stderr tail -----\n%s\n----- end -----\n"
                     % (s.name, s.log_path, s.log_tail()))
    stream.flush()


class TestCase(unittest.TestCase):
    """unittest.TestCase that prints the tails of live servers' logs when a test
    fails, and has assertions for DynamoDB errors."""

    maxDiff = 4000

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        del _CLOSED_DURING_TEST[:]
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            print_server_tails()
        return out

    def assertClientError(self, fn, code, message=None, contains=None):
        """Calls fn() and checks the ClientError's code, HTTP status 400 and
        message (exact `message`, and/or each of `contains` a substring).
        Returns the error."""
        with self.assertRaises(ClientError) as cm:
            fn()
        ex = cm.exception
        self.assertEqual(err_code(ex), code, "error was %r" % (ex.response.get("Error"),))
        self.assertEqual(ex.response["ResponseMetadata"]["HTTPStatusCode"], 400,
                         "HTTP status of %s" % code)
        if message is not None:
            self.assertEqual(err_message(ex), message)
        if contains is not None:
            if isinstance(contains, str):
                contains = [contains]
            for part in contains:
                self.assertIn(part, err_message(ex) or "")
        return ex

    def assertValidation(self, fn, message=None, contains=None):
        return self.assertClientError(fn, "ValidationException", message, contains)


def b64(data):
    return base64.b64encode(data).decode()


def crc32_ok(resp):
    want = resp.headers.get("x-amz-crc32")
    return want is not None and int(want) == (zlib.crc32(resp.body) & 0xFFFFFFFF)


def run_threads(fns):
    threads = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in threads:
        t.start()
    return threads


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
