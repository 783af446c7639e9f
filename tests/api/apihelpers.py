"""Helpers and fixtures of the API tests (tests/api), which run the real
binary's `secretsfs serve` (and `mount -o api=`) and talk to it with
Debian's clients: boto3 in this interpreter (/usr/bin/python3, as
scripts/run-pytest runs it) and /usr/bin/aws, offline (reference §3.4: the
endpoint given, region and test credentials set, no config files, the EC2
metadata lookups off).

This folder has no conftest.py: tests/fs has one, and two conftest modules
of one name cannot live in one pytest run. Test modules import the
fixtures they use from here by name.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent.parent
# SECRETSFS_API_BIN: another build to test (a sanitized one, build-san/secretsfs).
BIN = Path(os.environ.get("SECRETSFS_API_BIN", REPO / "bin" / "secretsfs"))
AWS = "/usr/bin/aws"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ACCESS_KEY = "AKIDSECRETSFSTEST01"
SECRET_KEY = "c2VjcmV0c2ZzLXRlc3Qtc2VjcmV0LWtleQ"
PRINCIPAL = "tester"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# The suites run signed (SigV4 against a credentials file, the default);
# test_api_access.py also runs --auth none's loopback refusal.
SIGNED = True


def arn_re(name):
    return re.compile(rf"^arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                      rf"{re.escape(name)}-[A-Za-z0-9]{{6}}$")


def run(args, input=None, timeout=60, env=None):
    return subprocess.run([str(a) for a in args], input=input, capture_output=True,
                          text=True, timeout=timeout, env=env)


def sfs(*args, **kw):
    return run([BIN, *args], **kw)


def client_env(home):
    """The environment that keeps Debian's clients offline and away from
    any ~/.aws of this machine (reference §3.4)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("HOME",)}
    env.update({
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
    })
    return env


def write_private(path, text):
    path = Path(path)
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


class Store:
    """A temp dir with a key file and a store."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="secretsfs-api-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.key = self.dir / "master.key"
        self.store = self.dir / "store.tdb"
        self.log = self.dir / "secretsfs.log"
        self.home = self.dir / "home"
        self.env = client_env(self.home)
        self.credentials = write_private(
            self.dir / "api-credentials",
            f"# access key, secret key, principal\n{ACCESS_KEY} {SECRET_KEY} {PRINCIPAL}\n")
        r = sfs("keygen", self.key)
        assert r.returncode == 0, r.stderr
        r = sfs("init", self.store, "--key-file", self.key)
        assert r.returncode == 0, r.stderr

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """`secretsfs serve` of a Store, in the foreground, on a port of its
    choosing (read from the line it prints)."""

    def __init__(self, store, *extra, signed=None, env=None):
        self.store = store
        self.signed = SIGNED if signed is None else signed
        auth = (["--credentials", store.credentials] if self.signed else ["--auth", "none"])
        self.args = [BIN, "serve", store.store, "--listen", "127.0.0.1:0",
                     "--key-file", store.key, "--log-file", store.log, *auth, *extra]
        self.proc = subprocess.Popen([str(a) for a in self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env if env is not None else os.environ.copy())
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not start: {line}{self.proc.stderr.read()}"
                                 f"{store.log.read_text() if store.log.exists() else ''}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def boto(url, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """A boto3 Secrets Manager client of the endpoint: no retries, nothing
    read from files (credentials and region given)."""
    session = boto3.session.Session(aws_access_key_id=access_key,
                                    aws_secret_access_key=secret_key,
                                    region_name=REGION)
    return session.client("secretsmanager", endpoint_url=url,
                          config=Config(retries={"max_attempts": 0, "mode": "legacy"},
                                        connect_timeout=10, read_timeout=60))


def aws(server_url, env, *args, input=None):
    """/usr/bin/aws secretsmanager ARGS against the endpoint: (exit, JSON or text, stderr)."""
    r = run([AWS, "--endpoint-url", server_url, "--output", "json", "secretsmanager", *args],
            input=input, env=env)
    out = r.stdout
    try:
        out = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        pass
    return r.returncode, out, r.stderr


def raw(server, target, body=b"{}", headers=None, method="POST", path="/", sign=None,
        port=None, access_key=ACCESS_KEY, secret_key=SECRET_KEY, when=None):
    """One request as given, signed as the server expects unless sign is
    False: (status, headers, body bytes)."""
    port = port or server.port
    h = {"Content-Type": "application/x-amz-json-1.1"}
    if target:
        h["X-Amz-Target"] = f"secretsmanager.{target}"
    h.update(headers or {})
    if isinstance(body, str):
        body = body.encode()
    if (server.signed if sign is None else sign):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        import datetime
        from unittest import mock
        req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{path}", data=body,
                         headers=h)
        signer = SigV4Auth(Credentials(access_key, secret_key), "secretsmanager", REGION)
        if when is None:
            signer.add_auth(req)
        else:
            # Signed as at another time (botocore takes the clock's).
            fake = mock.Mock(wraps=datetime)
            fake.datetime.utcnow.return_value = when
            with mock.patch("botocore.auth.datetime", fake):
                signer.add_auth(req)
        h = dict(req.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    hdrs = dict(resp.getheaders())
    conn.close()
    return resp.status, hdrs, data


def raw_json(server, target, obj):
    status, _, data = raw(server, target, json.dumps(obj))
    return status, json.loads(data) if data else None


def audit_events(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def error_of(excinfo):
    """The code and message of a botocore ClientError."""
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session", autouse=False)
def offline_env():
    """This process's boto3 reads no file of this machine's user."""
    home = Path(tempfile.mkdtemp(prefix="secretsfs-api-home-", dir="/tmp"))
    env = client_env(home)
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    yield env
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def store():
    s = Store()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def server(store):
    """A `serve` shared by a module's tests (each uses names of its own)."""
    srv = Server(store)
    yield srv
    srv.stop()


@pytest.fixture
def sm(server, offline_env):
    return boto(server.url)


_names = iter(range(1, 1 << 30))


def uniq(prefix="api"):
    return f"{prefix}{next(_names)}-{os.getpid()}"


def is_mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


class MountedStore:
    """A Store mounted with -o api=127.0.0.1:PORT: files and API from one daemon."""

    def __init__(self, store, port, *opts):
        self.store = store
        self.mnt = store.dir / "mnt"
        self.mnt.mkdir(exist_ok=True)
        auth = (f"api_credentials={store.credentials}" if SIGNED else "api_auth=none")
        o = ",".join([f"key_file={store.key}", f"log_file={store.log}",
                      f"api=127.0.0.1:{port}", auth, *opts])
        r = sfs("mount", store.store, self.mnt, "-o", o)
        assert r.returncode == 0, f"mount failed: {r.stderr}"
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.signed = SIGNED

    def unmount(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        deadline = time.monotonic() + 10
        while is_mounted(self.mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
