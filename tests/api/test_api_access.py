"""Who may call the API, and what the audit trail says of each call: the
access policy (policy=, docs/policy.md) applied to API principals
(Principal {"AWS": NAME}), an explicit Deny, and the audit records with
principal, source address and outcome; --auth none only on loopback."""

import json

import pytest
from botocore.exceptions import ClientError

from apihelpers import (PRINCIPAL, SIGNED, Server, Store, audit_events, boto,  # noqa: F401
                        error_of, offline_env, raw, sfs, uniq, write_private)

# The principal the API's callers are: the credentials file's, or under
# --auth none, "anonymous".
CALLER = PRINCIPAL if SIGNED else "anonymous"


@pytest.fixture(scope="module")
def guarded():
    store = Store()
    policy = write_private(store.dir / "policy.json", json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": CALLER}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": CALLER},
         "Action": "secretsmanager:GetSecretValue", "Resource": "locked/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret",
         "Resource": "arn:aws:secretsmanager:*:*:secret:keep/*"},
        {"Effect": "Allow", "Principal": {"uid": 0}, "Action": "secretsmanager:*",
         "Resource": "*"},
    ]}))
    audit = store.dir / "audit.log"
    srv = Server(store, "--policy", policy, "--audit-log", audit)
    yield srv, audit
    srv.stop()
    store.cleanup()


def test_deny_get_for_the_principal(guarded, offline_env):
    srv, audit = guarded
    sm = boto(srv.url)
    sm.create_secret(Name="locked/one", SecretString="x")
    sm.create_secret(Name="open/one", SecretString="y")
    assert sm.get_secret_value(SecretId="open/one")["SecretString"] == "y"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="locked/one")
    code, message = error_of(e)
    assert code == "AccessDeniedException" and CALLER in message
    assert "secretsmanager:GetSecretValue" in message
    # Other actions on it are allowed.
    assert sm.describe_secret(SecretId="locked/one")["Name"] == "locked/one"
    denied = [ev for ev in audit_events(audit) if ev.get("errorCode") == "AccessDeniedException"]
    assert denied[-1]["eventName"] == "GetSecretValue"
    assert denied[-1]["requestParameters"]["name"] == "locked/one"
    assert denied[-1]["userIdentity"]["userName"] == CALLER
    assert denied[-1]["sourceIPAddress"] == "127.0.0.1"


def test_deny_by_arn_pattern(guarded, offline_env):
    srv, _ = guarded
    sm = boto(srv.url)
    sm.create_secret(Name="keep/this", SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId="keep/this")
    assert error_of(e)[0] == "AccessDeniedException"
    assert sm.get_secret_value(SecretId="keep/this")["SecretString"] == "x"


def test_batch_reports_denied_items(guarded, offline_env):
    srv, _ = guarded
    sm = boto(srv.url)
    sm.create_secret(Name="locked/two", SecretString="x")
    sm.create_secret(Name="open/two", SecretString="y")
    status, _, body = raw(srv, "BatchGetSecretValue",
                          json.dumps({"SecretIdList": ["locked/two", "open/two"]}))
    body = json.loads(body)
    assert status == 200
    assert [v["Name"] for v in body["SecretValues"]] == ["open/two"]
    assert body["Errors"][0]["ErrorCode"] == "AccessDeniedException"


def test_every_call_is_audited_without_values(guarded, offline_env):
    srv, audit = guarded
    sm = boto(srv.url)
    name = f"open/{uniq()}"
    sm.create_secret(Name=name, SecretString="very-secret-value-1")
    sm.put_secret_value(SecretId=name, SecretString="very-secret-value-2")
    sm.get_secret_value(SecretId=name)
    sm.get_random_password()
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId="bad name")
    text = audit.read_text()
    assert "very-secret-value" not in text
    events = audit_events(audit)
    mine = [(e["eventName"], e.get("errorCode")) for e in events
            if e.get("requestParameters", {}).get("name") == name]
    assert mine == [("CreateSecret", None), ("PutSecretValue", None), ("GetSecretValue", None)]
    assert any(e["eventName"] == "GetRandomPassword" for e in events)
    bad = [e for e in events if e.get("errorCode") == "ValidationException"]
    assert bad and bad[-1]["eventName"] == "GetSecretValue"
    for e in events:
        assert e["userIdentity"]["userName"] == CALLER
        assert e["eventSource"] == "secretsmanager.amazonaws.com"
        assert e["sourceIPAddress"] == "127.0.0.1"
        assert "Boto3" in e.get("userAgent", "Boto3") or "aws-cli" in e.get("userAgent", "")
    version = [e for e in events if e["eventName"] == "PutSecretValue"][-1]
    assert version["requestParameters"]["versionId"]


def test_audit_log_never_holds_the_value_log_neither(guarded):
    srv, _ = guarded
    log = srv.store.log.read_text()
    assert "very-secret-value" not in log


def test_auth_none_only_on_loopback():
    store = Store()
    try:
        r = sfs("serve", store.store, "--listen", "0.0.0.0:0", "--auth", "none",
                "--key-file", store.key)
        assert r.returncode == 1
        assert "loopback" in r.stderr
    finally:
        store.cleanup()


def test_auth_none_on_loopback(offline_env):
    store = Store()
    srv = Server(store, "--audit-log", store.dir / "audit.log", signed=False)
    try:
        assert "AUTHENTICATION IS OFF" in store.log.read_text()
        # Unsigned clients work, as the principal "anonymous".
        sm = boto(srv.url, access_key="anything", secret_key="at all")
        sm.create_secret(Name="open", SecretString="x")
        status, _, body = raw(srv, "GetSecretValue", json.dumps({"SecretId": "open"}))
        assert status == 200 and json.loads(body)["SecretString"] == "x"
        events = audit_events(store.dir / "audit.log")
        assert {e["userIdentity"]["userName"] for e in events} == {"anonymous"}
        assert {e["userIdentity"]["type"] for e in events} == {"Unknown"}
    finally:
        srv.stop()
        store.cleanup()


def test_serve_refuses_bad_arguments():
    store = Store()
    try:
        r = sfs("serve", store.store, "--auth", "none", "--key-file", store.key)
        assert r.returncode == 2
        r = sfs("serve", store.store, "--listen", "127.0.0.1:0", "--key-file", store.key)
        assert r.returncode == 2 and "--credentials" in r.stderr
        r = sfs("serve", store.store, "--listen", "nowhere", "--auth", "none",
                "--key-file", store.key)
        assert r.returncode == 1
        r = sfs("serve", store.store, "--listen", "127.0.0.1:0", "--auth", "maybe",
                "--key-file", store.key)
        assert r.returncode == 2
    finally:
        store.cleanup()
