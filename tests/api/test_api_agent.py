"""The AWS Secrets Manager Agent's endpoint (reference aws-endpoint.md §6),
with urllib as a sidecar client would: /secretsmanager/get, /v1/ID, /ping,
the SSRF token header, X-Forwarded-For refused, the answer's shape."""

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

from apihelpers import Server, Store, audit_events, boto, offline_env, uniq  # noqa: F401

TOKEN = "agent-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def agent():
    store = Store()
    env = dict(os.environ, AWS_TOKEN=TOKEN)
    srv = Server(store, "--audit-log", store.dir / "audit.log", env=env)
    yield srv
    srv.stop()
    store.cleanup()


def get(srv, path, token=TOKEN, headers=None, port=None):
    h = dict(headers or {})
    if token is not None:
        h["X-Aws-Parameters-Secrets-Token"] = token
    req = urllib.request.Request(f"http://127.0.0.1:{port or srv.port}{path}", headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.fixture(scope="module")
def secrets(agent, offline_env):
    sm = boto(agent.url)
    name = uniq("agent")
    v1 = sm.create_secret(Name=name, SecretString='{"user":"app","password":"pw1"}')
    v2 = sm.put_secret_value(SecretId=name, SecretString='{"user":"app","password":"pw2"}')
    binary = uniq("agentbin")
    sm.create_secret(Name=binary, SecretBinary=b"\x00\x01")
    return {"name": name, "arn": v1["ARN"], "v1": v1["VersionId"], "v2": v2["VersionId"],
            "binary": binary}


def test_ping_needs_no_token(agent):
    assert get(agent, "/ping", token=None)[:2] == (200, b"healthy")


def test_get_by_query(agent, secrets):
    status, body, headers = get(agent, f"/secretsmanager/get?secretId={secrets['name']}")
    assert status == 200
    doc = json.loads(body)
    assert doc["Name"] == secrets["name"] and doc["ARN"] == secrets["arn"]
    assert json.loads(doc["SecretString"])["password"] == "pw2"
    assert doc["VersionId"] == secrets["v2"] and doc["VersionStages"] == ["AWSCURRENT"]
    # The Agent's CreatedDate is a string of epoch seconds.
    assert isinstance(doc["CreatedDate"], str) and float(doc["CreatedDate"]) > 1.7e9
    assert "Content-Type" not in headers


def test_get_by_version_and_stage(agent, secrets):
    status, body, _ = get(agent, f"/secretsmanager/get?secretId={secrets['name']}"
                          f"&versionStage=AWSPREVIOUS")
    assert status == 200 and json.loads(json.loads(body)["SecretString"])["password"] == "pw1"
    status, body, _ = get(agent, f"/secretsmanager/get?secretId={secrets['name']}"
                          f"&versionId={secrets['v1']}&refreshNow=TRUE")
    assert status == 200 and json.loads(body)["VersionId"] == secrets["v1"]


def test_get_by_path_and_arn(agent, secrets):
    status, body, _ = get(agent, f"/v1/{secrets['name']}")
    assert status == 200 and json.loads(body)["Name"] == secrets["name"]
    status, body, _ = get(agent, f"/v1/{urllib.parse.quote(secrets['arn'], safe='')}")
    assert status == 200 and json.loads(body)["Name"] == secrets["name"]
    status, body, _ = get(agent, f"/v1/{secrets['name']}?versionStage=AWSPREVIOUS")
    assert status == 200 and json.loads(body)["VersionStages"] == ["AWSPREVIOUS"]


def test_binary(agent, secrets):
    status, body, _ = get(agent, f"/v1/{secrets['binary']}")
    assert status == 200
    assert base64.b64decode(json.loads(body)["SecretBinary"]) == b"\x00\x01"


def test_token_rules(agent, secrets):
    path = f"/secretsmanager/get?secretId={secrets['name']}"
    assert get(agent, path, token=None)[:2] == (403, b"Bad Token")
    assert get(agent, path, token="wrong")[:2] == (403, b"Bad Token")
    assert get(agent, path, token=TOKEN + "x")[:2] == (403, b"Bad Token")
    status, _, _ = get(agent, path, token=None, headers={"X-Vault-Token": TOKEN})
    assert status == 200


def test_forwarded_refused(agent, secrets):
    path = f"/secretsmanager/get?secretId={secrets['name']}"
    assert get(agent, path, headers={"X-Forwarded-For": "10.0.0.1"})[:2] == (400, b"Forwarded")


def test_request_errors(agent):
    assert get(agent, "/secretsmanager/get")[:2] == (400, b"missing parameter secretId")
    assert get(agent, "/v1/")[:2] == (400, b"missing secret ID")
    assert get(agent, "/secretsmanager/get?secretId=x&colour=red")[:2] == \
        (400, b"unknown parameter: colour")
    assert get(agent, "/secretsmanager/get?secretId=x&refreshNow=maybe")[:2] == \
        (400, b"invalid refreshNow value")
    assert get(agent, "/elsewhere")[:2] == (404, b"Not found")
    status, body, _ = get(agent, "/secretsmanager/get?secretId=never-made")
    assert status == 400 and json.loads(body)["__type"] == "ResourceNotFoundException"


def test_audited_as_the_agent(agent, secrets):
    get(agent, f"/v1/{secrets['name']}")
    events = [e for e in audit_events(agent.store.dir / "audit.log")
              if e["userIdentity"].get("userName") == "agent"]
    assert events and events[-1]["eventName"] == "GetSecretValue"
    assert events[-1]["sourceIPAddress"] == "127.0.0.1"
    assert events[-1]["requestParameters"]["name"] == secrets["name"]


def test_without_a_token_only_ping_answers(offline_env):
    store = Store()
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN")}
    srv = Server(store, env=env)
    try:
        assert get(srv, "/ping", token=None)[0] == 200
        assert get(srv, "/v1/anything", token="")[:2] == (403, b"Bad Token")
    finally:
        srv.stop()
        store.cleanup()


def test_token_file_and_own_listener(offline_env):
    from apihelpers import free_port, write_private
    store = Store()
    token_file = write_private(store.dir / "token", "from-a-file\n")
    port = free_port()
    srv = Server(store, "--agent-token-file", token_file,
                 "--agent-listen", f"127.0.0.1:{port}")
    try:
        sm = boto(srv.url)
        name = uniq("own")
        sm.create_secret(Name=name, SecretString="v")
        status, body, _ = get(srv, f"/v1/{name}", token="from-a-file", port=port)
        assert status == 200 and json.loads(body)["SecretString"] == "v"
        # The Agent's own listener serves no JSON API.
        from apihelpers import raw
        status, _, _ = raw(srv, "ListSecrets", port=port)
        assert status == 405
    finally:
        srv.stop()
        store.cleanup()
