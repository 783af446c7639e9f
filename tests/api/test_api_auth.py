"""Signed requests (SigV4, docs/api.md "Authentication") through the API
layer: what a client sees when its signature, key or clock is wrong, that
the principal is what the audit trail records, and the credentials file's
checks at start."""

import datetime
import json
import os

import pytest
from botocore.exceptions import ClientError

from apihelpers import (ACCESS_KEY, PRINCIPAL, SECRET_KEY, Server, Store, audit_events,  # noqa
                        boto, error_of, offline_env, raw, sfs, uniq, write_private)


@pytest.fixture(scope="module")
def signed():
    store = Store()
    srv = Server(store, "--audit-log", store.dir / "audit.log", signed=True)
    yield srv
    srv.stop()
    store.cleanup()


def test_signed_client_works_and_is_audited_by_principal(signed, offline_env):
    sm = boto(signed.url)
    name = uniq("signed")
    sm.create_secret(Name=name, SecretString="x")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"
    events = [e for e in audit_events(signed.store.dir / "audit.log")
              if e.get("requestParameters", {}).get("name") == name]
    assert events and all(e["userIdentity"] == {"type": "IAMUser", "userName": PRINCIPAL,
                                                "accessKeyId": ACCESS_KEY} for e in events)


def test_no_signature(signed):
    status, _, body = raw(signed, "ListSecrets", sign=False)
    assert status == 400
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"


def test_wrong_secret_key(signed, offline_env):
    sm = boto(signed.url, secret_key=SECRET_KEY + "x")
    with pytest.raises(ClientError) as e:
        sm.list_secrets()
    assert error_of(e)[0] == "InvalidSignatureException"


def test_unknown_access_key(signed, offline_env):
    sm = boto(signed.url, access_key="AKIDNOBODYKNOWS0001")
    with pytest.raises(ClientError) as e:
        sm.list_secrets()
    code, message = error_of(e)
    assert code == "UnrecognizedClientException"
    assert message == "The security token included in the request is invalid."


def test_clock_skew(signed):
    now = datetime.datetime.utcnow()
    status, _, body = raw(signed, "ListSecrets", when=now - datetime.timedelta(minutes=6))
    err = json.loads(body)
    assert status == 400 and err["__type"] == "InvalidSignatureException"
    assert err["message"].startswith("Signature expired")
    status, _, body = raw(signed, "ListSecrets", when=now + datetime.timedelta(minutes=6))
    assert json.loads(body)["message"].startswith("Signature not yet current")
    status, _, _ = raw(signed, "ListSecrets", when=now - datetime.timedelta(minutes=4))
    assert status == 200


def test_body_changed_after_signing(signed):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    h = {"Content-Type": "application/x-amz-json-1.1",
         "X-Amz-Target": "secretsmanager.DescribeSecret"}
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{signed.port}/",
                     data=b'{"SecretId": "a"}', headers=h)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "secretsmanager", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", signed.port, timeout=30)
    conn.request("POST", "/", body=b'{"SecretId": "b"}', headers=dict(req.headers.items()))
    resp = conn.getresponse()
    assert resp.status == 400
    assert json.loads(resp.read())["__type"] == "InvalidSignatureException"
    conn.close()


def test_refused_requests_are_audited(signed, offline_env):
    boto(signed.url, access_key="AKIDNOBODYKNOWS0002")
    raw(signed, "ListSecrets", sign=False)
    failed = [e for e in audit_events(signed.store.dir / "audit.log")
              if e.get("errorCode") == "MissingAuthenticationTokenException"]
    assert failed and failed[-1]["eventName"] == "ListSecrets"
    assert failed[-1]["sourceIPAddress"] == "127.0.0.1"


def test_credentials_file_checked_at_start():
    store = Store()
    try:
        os.chmod(store.credentials, 0o644)
        r = sfs("serve", store.store, "--listen", "127.0.0.1:0", "--credentials",
                store.credentials, "--key-file", store.key)
        assert r.returncode == 1 and "cannot serve the API" in r.stderr
        r = sfs("serve", store.store, "--listen", "127.0.0.1:0", "--credentials",
                store.dir / "missing", "--key-file", store.key)
        assert r.returncode == 1
    finally:
        store.cleanup()


def test_tls(offline_env):
    """--tls-cert/--tls-key: HTTPS, and boto3 checks the certificate."""
    import subprocess
    store = Store()
    cert, key = store.dir / "cert.pem", store.dir / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o600)
    srv = Server(store, "--tls-cert", cert, "--tls-key", key, signed=True)
    try:
        assert srv.url.startswith("https://127.0.0.1:")
        import boto3
        from botocore.config import Config
        sm = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                   region_name="us-east-1").client(
            "secretsmanager", endpoint_url=srv.url, verify=str(cert),
            config=Config(retries={"max_attempts": 0, "mode": "legacy"}))
        sm.create_secret(Name="over-tls", SecretString="x")
        assert sm.get_secret_value(SecretId="over-tls")["SecretString"] == "x"
        # Plain HTTP on the TLS port gets no API.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.request("POST", "/", body=b"{}")
            conn.getresponse().read()
    finally:
        srv.stop()
        store.cleanup()
