"""Shared harness of Meridian's integration tests.

A `Server` runs one real meridian process on 127.0.0.1 with free ports, a
temporary data directory and its own credentials and cluster-key files; its
stderr goes to a log file whose tail is printed when a test fails.
`client()` returns a boto3 DynamoDB client for it (retries disabled, short
timeouts), `aws()` runs the aws cli against it, and `raw_request()` sends a
hand-made (optionally SigV4-signed) HTTP request and returns status, headers
and body untouched. Every Server has an operator token (--admin-token-file,
`server.admin_token_path`): `operator_get()` and `scrape_metrics()` send it
as `Authorization: Bearer` to read /metrics and /replication/status.

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
import re
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


def http_get(host, port, path, timeout=5.0, headers=None):
    """GET over loopback; returns (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
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


# What ThreadSanitizer, AddressSanitizer, LeakSanitizer and UBSan print when
# they find something (builds with -DMERIDIAN_TSAN=ON / -DMERIDIAN_SANITIZE=ON).
_SANITIZER_REPORT = re.compile(
    r"^(WARNING: ThreadSanitizer:|ThreadSanitizer: CHECK failed|==\d+==ERROR: \w+Sanitizer"
    r"|\S+:\d+:\d+: runtime error: )", re.M)


def sanitizer_report(path, limit=6000):
    """The first sanitizer report in the file at path (up to limit
    characters), or None. Server.close() fails when its log holds one: an
    exit code alone is lost when a test kills the process with SIGKILL."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    m = _SANITIZER_REPORT.search(text)
    return text[m.start():m.start() + limit] if m else None


class Server:
    """One meridian process (or, in MERIDIAN_TEST_ENDPOINT mode, the external endpoint)."""

    def __init__(self, name="meridian", region=DEFAULT_REGION, credentials=DEFAULT_CREDENTIALS,
                 idle_timeout=None, max_connections=None, log_level=None, extra_args=(),
                 credentials_text=None, admin_token=True, admin_listen=False):
        """admin_token: pass --admin-token-file (a random token in the
        server's directory); admin_listen: also an admin listener
        (--admin-listen) on a free port, server.admin_port."""
        self.name = name
        self.use_admin_token = admin_token
        self.admin_listen = admin_listen
        self.admin_port = None
        self.admin_token = "it-operator-token-" + base64.b16encode(os.urandom(16)).decode().lower()
        self.region = region
        self.credentials = list(credentials)
        self.credentials_text = credentials_text
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.log_level = log_level or os.environ.get("MERIDIAN_TEST_LOG_LEVEL", "info")
        self.extra_args = list(extra_args)
        self.proc = None
        self.env = {}  # extra environment variables of the process (e.g. LD_PRELOAD)
        self.wrapper = []  # command prefix (e.g. ["valgrind", ...]; test_valgrind.py)
        self.root = tempfile.mkdtemp(prefix="meridian-it-%s-" % name)
        self.data_dir = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "stderr.log")
        self.cred_path = os.path.join(self.root, "credentials")
        self.cluster_key_path = os.path.join(self.root, "cluster.key")
        self.admin_token_path = os.path.join(self.root, "admin.token")
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
        with open(self.admin_token_path, "w") as f:
            f.write(self.admin_token + "\n")
        os.chmod(self.admin_token_path, 0o600)

    def admin_headers(self):
        """The header that carries the operator's token."""
        return {"Authorization": "Bearer " + self.admin_token}

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
        if self.use_admin_token:
            cmd += ["--admin-token-file", self.admin_token_path]
        if self.admin_listen:
            cmd += ["--admin-listen", "127.0.0.1:%d" % self.admin_port]
        return list(self.wrapper) + cmd + self.extra_args

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
            if self.admin_listen and (new_ports or self.admin_port is None):
                self.admin_port = free_port()
                while self.admin_port in (self.port, self.peer_port):
                    self.admin_port = free_port()
            self._log = open(self.log_path, "ab")
            self._log.write(("\n===== start #%d: %s\n" % (self.starts + 1, " ".join(self.command()))).encode())
            self._log.flush()
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=self._log,
                                         start_new_session=True, env=env)
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
        """Final teardown: stop (exit 0 asserted), remove temporary files.
        Fails too if the log holds a sanitizer report (sanitizer_report()),
        e.g. of a process that was later killed with SIGKILL."""
        report = None
        try:
            if self.running():
                self.stop()
        finally:
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)
                _CLOSED_DURING_TEST.append(self)
            self._close_log()
            self._final_tail = _tail(self.log_path)
            report = sanitizer_report(self.log_path)
            if not os.environ.get("MERIDIAN_TEST_KEEP"):
                shutil.rmtree(self.root, ignore_errors=True)
        if report:
            raise ServerError("%s: sanitizer report in the server's log (%s):\n%s"
                              % (self.name, self.log_path, report))

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


# ===========================================================================
# Multi-region clusters (global tables)
#
# `Cluster` runs one meridian process per region, all sharing one credentials
# file and one cluster key, each started with `--peer` for every other
# region. With proxied=True every directed peer link A→B (A's connection to
# B's --peer-listen, which carries A's replication log to B and B's acks
# back) goes through its own `LinkProxy`, so that tests can cut and heal
# links. `wait_until` polls a condition with a deadline; `table_contents`
# returns a table's items in a canonical, comparable form.
# ===========================================================================

import decimal as _decimal
import re as _re
import select as _select
import struct as _struct

REGIONS3 = ("us-east-1", "eu-west-1", "ap-south-1")
GLOBAL_TABLE_VERSION = "2019.11.21"


def _short(text, limit=1500):
    return text if len(text) <= limit else text[:limit] + "...(%d more characters)" % (len(text) - limit)


def wait_until(fn, timeout=30.0, what=None, interval=0.05, max_interval=0.5):
    """Calls fn() until it returns something truthy and returns that value.
    Exceptions raised by fn count as "not yet" (the last one is reported).
    After `timeout` seconds raises AssertionError naming `what` (a string, or
    a callable returning one, evaluated only on failure) and fn's last
    result or exception. Conditions that may legitimately be falsy (an empty
    list) should be wrapped, e.g. `lambda: (cond(), value)`."""
    deadline = time.monotonic() + timeout
    delay = interval
    last_value, last_error = None, None
    while True:
        try:
            value = fn()
        except Exception as ex:  # noqa: BLE001 - reported on timeout
            last_error, last_value = ex, None
        else:
            if value:
                return value
            last_value, last_error = value, None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
    if callable(what):
        try:
            what = what()
        except Exception as ex:  # noqa: BLE001
            what = "(description failed: %r)" % (ex,)
    msg = "timed out after %gs waiting for %s" % (timeout, what or getattr(fn, "__name__", "a condition"))
    if last_error is not None:
        msg += "\nlast error: %s" % _short(repr(last_error))
    else:
        msg += "\nlast value: %s" % _short(repr(last_value))
    raise AssertionError(msg)


def canonical_value(v):
    """An attribute value with set members sorted (sets have no order) and
    binaries as bytes, recursively; everything else unchanged."""
    (t, x), = v.items()
    if t == "SS":
        return {t: sorted(x)}
    if t == "NS":
        return {t: sorted(x, key=_decimal.Decimal)}
    if t == "BS":
        return {t: sorted(bytes(b) for b in x)}
    if t == "B":
        return {t: bytes(x)}
    if t == "M":
        return {t: {k: canonical_value(e) for k, e in x.items()}}
    if t == "L":
        return {t: [canonical_value(e) for e in x]}
    return {t: x}


def canonical_item(item):
    return {k: canonical_value(v) for k, v in item.items()}


def _json_default(o):
    if isinstance(o, (bytes, bytearray)):
        return "b64:" + base64.b64encode(bytes(o)).decode()
    raise TypeError(type(o))


def item_json(item):
    """A canonical item as one deterministic JSON string (for sorting, sets, diffs)."""
    return json.dumps(item, sort_keys=True, default=_json_default, ensure_ascii=True)


def table_contents(c, table, consistent=True, max_pages=100000):
    """Every item of `table` through client c (paginated Scan, ConsistentRead
    by default), canonicalised (canonical_item) and sorted by item_json: two
    regions hold the same data exactly when their table_contents are equal."""
    items = []
    kw = {"TableName": table, "ConsistentRead": consistent}
    for _ in range(max_pages):
        resp = c.scan(**kw)
        items.extend(canonical_item(i) for i in resp.get("Items", []))
        lek = resp.get("LastEvaluatedKey")
        if not lek:
            break
        kw["ExclusiveStartKey"] = lek
    else:
        raise AssertionError("Scan of %s did not finish within %d pages" % (table, max_pages))
    items.sort(key=item_json)
    return items


def describe_contents_difference(contents, key_names=("pk", "sk"), limit=5):
    """Human-readable summary of how {region: table_contents} differ."""
    regions = list(contents)
    if not regions:
        return "(no regions)"
    base = regions[0]
    base_set = {item_json(i) for i in contents[base]}
    lines = ["%s: %d items" % (r, len(contents[r])) for r in regions]

    def key_of(js):
        item = json.loads(js)
        return {k: item[k] for k in key_names if k in item}

    for r in regions[1:]:
        other = {item_json(i) for i in contents[r]}
        only_base = sorted(base_set - other)[:limit]
        only_other = sorted(other - base_set)[:limit]
        if only_base or only_other:
            lines.append("  %s has, %s has not (first %d): %s" % (base, r, limit, [key_of(j) for j in only_base]))
            lines.append("  %s has, %s has not (first %d): %s" % (r, base, limit, [key_of(j) for j in only_other]))
    return "\n".join(lines)


# -- /metrics ----------------------------------------------------------------

_METRIC_SAMPLE = _re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_METRIC_LABEL = _re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def operator_get(server, path, port=None, timeout=5.0):
    """GET of an operator endpoint (/metrics, /replication/status) of server
    with its operator token, on its API port (or `port`): (status, headers, body)."""
    return http_get(server.host, port or server.port, path, timeout=timeout,
                    headers=server.admin_headers())


def scrape_metrics(server):
    """GET /metrics of server: (samples [(name, labels dict, float)], {name: TYPE})."""
    status, _, body = operator_get(server, "/metrics")
    if status != 200:
        raise AssertionError("/metrics answered %d: %r" % (status, body[:200]))
    samples, types = [], {}
    for line in body.decode("utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("# TYPE "):
            parts = line.split(None, 3)
            if len(parts) == 4:
                types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = _METRIC_SAMPLE.match(line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        samples.append((m.group(1), dict(_METRIC_LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return samples, types


def link_up(cluster, region, peer):
    """meridian_replication_link_up of region's link to peer (1 or 0)."""
    samples, _ = cluster.metrics(region)
    found = metric_samples(samples, "meridian_replication_link_up", peer=peer)
    if not found:
        raise AssertionError("no meridian_replication_link_up{peer=%r} in %s" % (peer, region))
    return found[0][2]


def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def pk_key(pk):
    """The key of an item of a table whose only key attribute is pk (S)."""
    return {"pk": S(pk)}


def get_pk(c, table, pk):
    """Strongly consistent GetItem by pk_key(pk); the item or None."""
    return c.get_item(TableName=table, Key=pk_key(pk), ConsistentRead=True).get("Item")


def metric_samples(samples, name, **labels):
    return [(n, l, v) for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]


def metric_value(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    return sum(v for _, _, v in metric_samples(samples, name, **labels))


# -- a full or slow disk (tests/faults/diskfault.c) ----------------------------

class DiskFault:
    """The control file of libmeridian_diskfault.so, preloaded into one
    meridian process (layout: tests/faults/diskfault.c). The process maps it
    shared and reads it at each write and fsync, so it is rewritten in place
    and never truncated: a read of a mapped page past the end of the file is
    SIGBUS in the process."""

    FORMAT = "<IIII240s"

    def __init__(self, path, prefix):
        self.path = path
        self.prefix = prefix.encode()
        if len(self.prefix) >= 240:
            raise ValueError("data directory path too long for the disk-fault library")
        self.state = (0, 0, 0)
        self.set()

    def set(self, enospc=0, write_delay_us=0, sync_delay_us=0):
        self.state = (enospc, write_delay_us, sync_delay_us)
        data = _struct.pack(self.FORMAT, enospc, write_delay_us, sync_delay_us, 0, self.prefix)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def clear(self):
        self.set()


def diskfault_library():
    """libmeridian_diskfault.so: $MERIDIAN_DISKFAULT_LIB, else next to the
    meridian binary; None if not built."""
    lib = os.environ.get("MERIDIAN_DISKFAULT_LIB")
    if lib:
        return lib
    cand = os.path.join(os.path.dirname(meridian_bin()), "libmeridian_diskfault.so")
    return cand if os.path.exists(cand) else None


# -- TCP proxy of one directed peer link ------------------------------------

def _abort_socket(sock):
    """Closes sock with a reset (SO_LINGER 0): the peer sees the connection
    refused/reset at once instead of a graceful end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _ProxyPair:
    """One proxied connection: the accepted client socket and its upstream,
    pumped by two threads (one per direction, so that neither direction can
    block the other). When either direction ends, both sockets are shut down;
    the last pump thread closes them."""

    def __init__(self, proxy, client_sock):
        self.proxy = proxy
        self.client = client_sock
        self.upstream = None
        self.closed = False
        self.threads = []
        self._running = 0

    def shutdown(self):
        """Ends the connection (from any thread): both sockets are shut down,
        which wakes the pump threads; they close the sockets."""
        self.closed = True
        for s in (self.client, self.upstream):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in list(self.threads):
            try:
                t.join(max(0.0, deadline - time.monotonic()))
            except RuntimeError:
                # Appended but not started yet: it starts on sockets that are
                # already shut down (or sees self.closed) and ends by itself.
                pass

    def run(self):
        """First thread: connects upstream, starts the reverse pump, pumps client → upstream."""
        p = self.proxy
        try:
            target = p.target
            if target is None:
                raise OSError("proxy has no target")
            up = socket.create_connection(target, timeout=p.connect_timeout)
        except OSError:
            with p._lock:
                p.upstream_failures += 1
                p._pairs.discard(self)
            _abort_socket(self.client)
            return
        for s in (self.client, up):
            try:
                s.settimeout(p.io_timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        with p._lock:
            self.upstream = up
            self._running = 2
            cut = self.closed or p._mode is not None or p._stopping
        if cut:
            self.shutdown()
        back = threading.Thread(target=self._pump, args=(up, self.client), daemon=True,
                                name="proxy-%s-back" % p.name)
        self.threads.append(back)
        back.start()
        self._pump(self.client, up)

    def _pump(self, src, dst):
        p = self.proxy
        try:
            while not self.closed:
                readable, _, _ = _select.select([src], [], [], 0.5)
                if not readable:
                    continue
                data = src.recv(p.bufsize)
                if not data or self.closed:
                    break
                # Counted before sending, so a reader that has received the
                # bytes always sees them counted.
                with p._lock:
                    p.bytes_forwarded += len(data)
                # A slow link: every chunk waits `delay` seconds, and at most
                # `rate` bytes a second pass (0: no limit).
                delay, rate = p.delay, p.rate
                if delay or rate:
                    time.sleep(delay + (len(data) / rate if rate else 0.0))
                    if self.closed:
                        break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            self.shutdown()
            with p._lock:
                self._running -= 1
                last = self._running == 0
                if last:
                    p._pairs.discard(self)
            if last:
                for s in (self.client, self.upstream):
                    try:
                        s.close()
                    except OSError:
                        pass


class LinkProxy:
    """A TCP forwarder on 127.0.0.1:<self.port> (a port the kernel chose) to
    `target` (host, port), for one directed peer link.

    Daemon threads only: one accepting, one per proxied connection (at most
    max_connections at a time; more are refused). cut() shuts down every
    current connection and then refuses new ones (mode "refuse": accepted and
    reset at once) or black-holes them (mode "blackhole": accepted and held
    open without ever reaching the target, as if packets were dropped);
    heal() forwards new connections again and closes held ones. stop() ends
    everything; it is bounded and idempotent. The target may change
    (retarget) when the destination restarts on another port."""

    def __init__(self, target=None, name="proxy", max_connections=64, connect_timeout=5.0,
                 io_timeout=60.0, bufsize=65536):
        self.name = name
        self.target = target
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self.bufsize = bufsize
        self.accepted = 0           # connections accepted (any mode)
        self.refused = 0            # connections reset because of a cut or the limit
        self.upstream_failures = 0  # target did not accept
        self.bytes_forwarded = 0    # both directions
        self.delay = 0.0            # seconds each forwarded chunk waits (slow link)
        self.rate = 0               # bytes per second (0: unlimited)
        self._lock = threading.Lock()
        self._mode = None           # None (forwarding), "refuse" or "blackhole"
        self._pairs = set()
        self._held = []
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="proxy-%s" % name)
        self._thread.start()

    def __repr__(self):
        return "LinkProxy(%s :%d -> %r, mode=%s)" % (self.name, self.port, self.target, self._mode)

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    @property
    def mode(self):
        return self._mode

    @property
    def is_cut(self):
        return self._mode is not None

    def connection_count(self):
        with self._lock:
            return len(self._pairs)

    def held_count(self):
        with self._lock:
            return len(self._held)

    def retarget(self, target):
        """New connections go to target; current ones are closed."""
        self.target = target
        self._close_pairs()

    def _accept_loop(self):
        try:
            while not self._stopping:
                try:
                    conn, _ = self._listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    if self._stopping:
                        break
                    time.sleep(0.05)
                    continue
                conn.settimeout(self.io_timeout)
                pair = None
                drop = None
                with self._lock:
                    self.accepted += 1
                    if self._stopping or self._mode == "refuse" or len(self._pairs) >= self.max_connections:
                        self.refused += 1
                        drop = conn
                    elif self._mode == "blackhole":
                        self._held.append(conn)
                        if len(self._held) > self.max_connections:
                            drop = self._held.pop(0)
                    else:
                        pair = _ProxyPair(self, conn)
                        self._pairs.add(pair)
                if drop is not None:
                    _abort_socket(drop)
                if pair is not None:
                    t = threading.Thread(target=pair.run, daemon=True, name="proxy-%s-conn" % self.name)
                    pair.threads.append(t)
                    t.start()
        finally:
            try:
                self._listener.close()
            except OSError:
                pass

    def _close_pairs(self, timeout=5.0):
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.shutdown()
        deadline = time.monotonic() + timeout
        for pair in pairs:
            pair.join(max(0.0, deadline - time.monotonic()))

    def _close_held(self):
        with self._lock:
            held, self._held = self._held, []
        for s in held:
            _abort_socket(s)

    def cut(self, mode="refuse"):
        """Closes every current connection; new ones are refused ("refuse") or
        black-holed ("blackhole") until heal()."""
        if mode not in ("refuse", "blackhole"):
            raise ValueError("mode must be 'refuse' or 'blackhole'")
        with self._lock:
            self._mode = mode
        if mode == "refuse":
            self._close_held()
        self._close_pairs()

    def heal(self):
        """Forwards new connections again; black-holed ones are closed (so
        their owners reconnect instead of waiting for their own timeouts).
        A slow link (delay, rate) is made fast again."""
        with self._lock:
            self._mode = None
        self.delay, self.rate = 0.0, 0
        self._close_held()

    def reset_connections(self):
        """Closes every current connection (a flapping link); new ones are
        forwarded as before."""
        self._close_pairs()

    def stop(self, timeout=5.0):
        with self._lock:
            self._stopping = True
        self._thread.join(timeout)
        self._close_held()
        self._close_pairs(timeout)

    def stopped(self):
        return self._stopping and not self._thread.is_alive()


def _distinct_free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    ports = []
    for _ in range(n * 20):
        p = free_port()
        if p not in ports:
            ports.append(p)
        if len(ports) == n:
            return ports
    raise ServerError("could not find %d distinct free ports" % n)


class Cluster:
    """One meridian process per region, wired to each other as peers.

    cluster[name] is that region's Server; cluster.client(name) a boto3
    client for it. extra_args is a list of arguments for every region or a
    dict {region: [arguments]}. With proxied=True each directed link A→B is
    a LinkProxy (cluster.proxies[(A, B)]) and cut()/heal() control links.
    stop() ends everything (each region with SIGTERM, exit code 0 asserted)
    and removes temporary files."""

    def __init__(self, names=REGIONS3, proxied=False, extra_args=None, tag="cluster",
                 log_level=None, start=True):
        if ENDPOINT:
            raise ServerError("a Cluster needs meridian processes (MERIDIAN_TEST_ENDPOINT is set)")
        self.names = tuple(names)
        if len(set(self.names)) != len(self.names) or len(self.names) < 2:
            raise ValueError("a Cluster needs at least two distinct region names: %r" % (names,))
        self.proxied = proxied
        self.tag = tag
        self._stopped = False
        self.servers = {}
        self.proxies = {}
        self.root = tempfile.mkdtemp(prefix="meridian-it-%s-" % tag)
        self.cred_path = os.path.join(self.root, "credentials")
        self.cluster_key_path = os.path.join(self.root, "cluster.key")
        with open(self.cred_path, "w") as f:
            f.write("# meridian integration test credentials (cluster %s)\n\n" % tag)
            for ak, sk, acct in DEFAULT_CREDENTIALS:
                f.write("%s %s %s\n" % (ak, sk, acct))
        os.chmod(self.cred_path, 0o600)
        with open(self.cluster_key_path, "w") as f:
            f.write("it-cluster-key-%s\n" % base64.b16encode(os.urandom(24)).decode().lower())
        os.chmod(self.cluster_key_path, 0o600)
        try:
            # Proxies first: their listeners hold their ports, so the ports
            # picked for the servers below cannot collide with them.
            if proxied:
                for a in self.names:
                    for b in self.names:
                        if a != b:
                            self.proxies[(a, b)] = LinkProxy(name="%s->%s" % (a, b))
            ports = _distinct_free_ports(2 * len(self.names))
            for i, n in enumerate(self.names):
                if isinstance(extra_args, dict):
                    user_args = list(extra_args.get(n, ()))
                else:
                    user_args = list(extra_args or ())
                s = Server(name="%s-%s" % (tag, n), region=n, log_level=log_level)
                s.cred_path = self.cred_path
                s.cluster_key_path = self.cluster_key_path
                s.port, s.peer_port = ports[2 * i], ports[2 * i + 1]
                s.user_args = user_args
                self.servers[n] = s
            for n in self.names:
                s = self.servers[n]
                s.extra_args = self.peer_args(n) + s.user_args
            if proxied:
                for (a, b), p in self.proxies.items():
                    p.target = ("127.0.0.1", self.servers[b].peer_port)
            if start:
                self.start()
        except BaseException:
            self.stop(check=False)
            raise

    # -- wiring ---------------------------------------------------------------
    def peer_address(self, a, b):
        """(host, port) that region a is told to reach peer b at."""
        if self.proxied:
            return self.proxies[(a, b)].address
        return ("127.0.0.1", self.servers[b].peer_port)

    def peer_args(self, name):
        args = []
        for other in self.names:
            if other != name:
                host, port = self.peer_address(name, other)
                args += ["--peer", "%s=%s:%d" % (other, host, port)]
        return args

    def _check_ports(self, name, old_peer_port):
        s = self.servers[name]
        if s.peer_port == old_peer_port:
            return
        if self.proxied:
            for (a, b), p in self.proxies.items():
                if b == name:
                    p.retarget(("127.0.0.1", s.peer_port))
            return
        raise ServerError("region %s had to move its peer port (%d -> %d); its peers still use the old "
                          "one" % (name, old_peer_port, s.peer_port))

    # -- access ---------------------------------------------------------------
    def __getitem__(self, name):
        return self.servers[name]

    def __iter__(self):
        return iter(self.names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False

    def client(self, name, **kw):
        return client(self.servers[name], **kw)

    def metrics(self, name):
        return scrape_metrics(self.servers[name])

    # -- lifecycle ------------------------------------------------------------
    def start(self, timeout=30.0):
        for n in self.names:
            s = self.servers[n]
            if not s.running():
                old = s.peer_port
                s.start(timeout=timeout, new_ports=False)
                self._check_ports(n, old)
        return self

    def kill9(self, name):
        s = self.servers[name]
        s.kill9()
        return s.proc.returncode if s.proc is not None else None

    def restart(self, name, timeout=30.0):
        """Stops the region (SIGTERM, exit 0 asserted) if it runs, then starts
        it again on the same data directory and ports. Clients made before
        should be replaced (the API port may change if it was taken)."""
        s = self.servers[name]
        if s.running():
            s.stop()
        old = s.peer_port
        s.start(timeout=timeout, new_ports=False)
        self._check_ports(name, old)
        return s

    def stop(self, check=True):
        """Stops every region (SIGTERM; exit code 0 asserted when check) and
        every proxy, removes temporary files. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors = []
        for n in self.names:
            s = self.servers.get(n)
            if s is None:
                continue
            try:
                s.close()
            except Exception as ex:  # noqa: BLE001 - re-raised below
                errors.append(ex)
        for p in self.proxies.values():
            try:
                p.stop()
            except Exception as ex:  # noqa: BLE001
                errors.append(ex)
        if not os.environ.get("MERIDIAN_TEST_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
        if errors and check:
            raise errors[0]

    # -- links (proxied clusters) ---------------------------------------------
    def _link(self, a, b):
        if not self.proxied:
            raise ServerError("cut/heal need Cluster(proxied=True)")
        if a == b or a not in self.servers or b not in self.servers:
            raise ValueError("no link %s <-> %s" % (a, b))
        return self.proxies[(a, b)], self.proxies[(b, a)]

    def cut(self, a, b, mode="refuse"):
        """Partitions a and b: both directed links lose their connections and
        refuse (or black-hole) new ones."""
        for p in self._link(a, b):
            p.cut(mode)

    def heal(self, a, b):
        for p in self._link(a, b):
            p.heal()

    def isolate(self, name, mode="refuse"):
        for other in self.names:
            if other != name:
                self.cut(name, other, mode)

    def heal_all(self):
        for p in self.proxies.values():
            p.heal()

    # -- global tables ----------------------------------------------------------
    def replica_statuses(self, name, table):
        """{region: ReplicaStatus} and GlobalTableVersion from DescribeTable in region name."""
        desc = self.client(name).describe_table(TableName=table)["Table"]
        return ({r["RegionName"]: r.get("ReplicaStatus") for r in desc.get("Replicas", [])},
                desc.get("GlobalTableVersion"))

    def wait_replicas(self, table, regions, timeout=30.0):
        """Waits until DescribeTable in every one of `regions` lists exactly
        `regions` as replicas, all ACTIVE, with GlobalTableVersion 2019.11.21."""
        regions = list(regions)
        want = ({r: "ACTIVE" for r in regions}, GLOBAL_TABLE_VERSION)
        for r in regions:
            wait_until(lambda: self.replica_statuses(r, table) == want, timeout,
                       what="%s in %s to list replicas %s all ACTIVE" % (table, r, regions))

    def create_global_table(self, table, regions=None, origin=None, hash_key=("pk", "S"),
                            range_key=None, timeout=30.0, **kw):
        """Creates `table` in origin (default: the first region) and adds the
        other regions as replicas one UpdateTable at a time, each time waiting
        until every replica so far reports every replica ACTIVE."""
        regions = list(regions or self.names)
        origin = origin or regions[0]
        c = self.client(origin)
        create_table(c, table, hash_key, range_key, **kw)
        added = [origin]
        for r in regions:
            if r == origin:
                continue
            c.update_table(TableName=table, ReplicaUpdates=[{"Create": {"RegionName": r}}])
            added.append(r)
            self.wait_replicas(table, added, timeout)
        return added

    def wait_converged(self, table, regions=None, timeout=60.0):
        """Polls until table_contents of `table` is identical in every one of
        `regions` (default: all); returns those contents."""
        regions = list(regions or self.names)
        clients = {r: self.client(r) for r in regions}
        seen = {}

        def check():
            seen.clear()
            for r in regions:
                seen[r] = table_contents(clients[r], table)
            first = seen[regions[0]]
            if all(seen[r] == first for r in regions[1:]):
                return (True, first)
            return None

        return wait_until(check, timeout,
                          what=lambda: "%s to converge in %s\n%s" % (
                              table, regions, describe_contents_difference(seen)))[1]

    def wait_item(self, name, table, key, expected, timeout=30.0):
        """Polls GetItem (consistent) of key in region name until the item is
        `expected` (compared canonically; None = absent)."""
        c = self.client(name)
        want = canonical_item(expected) if expected is not None else None

        def check():
            got = c.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            got = canonical_item(got) if got is not None else None
            if got != want:
                raise AssertionError("item is %r" % (got,))
            return (True, got)

        return wait_until(check, timeout, what="%s of %s in %s to be %r" % (key, table, name, expected))[1]
