"""The wire protocol, by raw HTTP (reference aws-endpoint.md §1, §5.3 W4-W7):
error shapes and statuses, empty bodies, bodies over the limit, malformed
JSON, X-Amz-Target, missing ClientRequestToken, base64, timestamps."""

import base64
import json
import socket

import pytest
from botocore.exceptions import ClientError

from apihelpers import (error_of, offline_env, raw, raw_json, server, sm, store,  # noqa: F401
                        uniq)


def test_error_shape_and_headers(server):
    status, headers, body = raw(server, "GetSecretValue", json.dumps({"SecretId": "nope"}))
    assert status == 400
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers.get("x-amzn-RequestId")
    assert "Date" in headers
    err = json.loads(body)
    assert err["__type"] == "ResourceNotFoundException" and err["message"]


def test_empty_body_is_no_parameters(server):
    status, _, body = raw(server, "ListSecrets", b"")
    assert status == 200 and "SecretList" in json.loads(body)
    status, _, body = raw(server, "GetRandomPassword", b"")
    assert status == 200 and len(json.loads(body)["RandomPassword"]) == 32


def test_unknown_or_missing_target(server):
    status, _, body = raw(server, "FlyToTheMoon")
    assert status == 400 and json.loads(body)["__type"] == "UnknownOperationException"
    status, _, body = raw(server, None)
    # Signed, the operation's name must be signed too (docs/api.md).
    want = "InvalidSignatureException" if server.signed else "UnknownOperationException"
    assert status == 400 and json.loads(body)["__type"] == want
    status, _, body = raw(server, "ListSecrets", path="/other")
    assert status == 404


def test_malformed_json_and_wrong_types(server):
    for body in ("{", "[]", "\"x\"", "{\"SecretId\": }", "{} trailing"):
        status, _, data = raw(server, "DescribeSecret", body)
        assert status == 400, body
        assert json.loads(data)["__type"] == "SerializationException", body
    status, data = raw_json(server, "DescribeSecret", {"SecretId": 5})
    assert status == 400 and data["__type"] == "SerializationException"
    status, data = raw_json(server, "ListSecrets", {"MaxResults": "5"})
    assert status == 400 and data["__type"] == "SerializationException"
    status, data = raw_json(server, "CreateSecret", {"Name": uniq(), "SecretString": 5,
                                                     "ClientRequestToken": "t" * 32})
    assert status == 400 and data["__type"] == "SerializationException"


def test_missing_required_member(server):
    status, data = raw_json(server, "GetSecretValue", {})
    assert status == 400 and data["__type"] == "ValidationException"
    assert "secretId" in data["message"]


def test_missing_client_request_token_on_raw_requests(server):
    name = uniq()
    status, data = raw_json(server, "CreateSecret", {"Name": name, "SecretString": "x"})
    assert status == 400 and data["__type"] == "InvalidRequestException"
    assert "ClientRequestToken" in data["message"]
    # A create without a value needs none.
    status, data = raw_json(server, "CreateSecret", {"Name": name})
    assert status == 200 and "VersionId" not in data
    # Asked for before the secret is looked up, as the service does.
    status, data = raw_json(server, "PutSecretValue", {"SecretId": "no-such", "SecretString": "x"})
    assert status == 400 and data["__type"] == "InvalidRequestException"
    status, data = raw_json(server, "UpdateSecret", {"SecretId": name, "SecretString": "x"})
    assert status == 400 and data["__type"] == "InvalidRequestException"


def test_secret_binary_is_base64_on_the_wire(server):
    name = uniq()
    status, data = raw_json(server, "CreateSecret", {
        "Name": name, "SecretBinary": "AAEC/w==", "ClientRequestToken": "b" * 32})
    assert status == 200
    status, data = raw_json(server, "GetSecretValue", {"SecretId": name})
    assert data["SecretBinary"] == "AAEC/w==" and "SecretString" not in data
    assert base64.b64decode(data["SecretBinary"]) == b"\x00\x01\x02\xff"
    for bad in ("AAEC/w=", "AAEC/w==\n", "A===", "AAEC_w==", "AAEC/x=="):
        status, data = raw_json(server, "CreateSecret", {
            "Name": uniq(), "SecretBinary": bad, "ClientRequestToken": "c" * 32})
        assert status == 400 and data["__type"] == "SerializationException", bad


def test_timestamps_are_epoch_numbers(server):
    name = uniq()
    raw_json(server, "CreateSecret", {"Name": name, "SecretString": "x",
                                      "ClientRequestToken": "d" * 32})
    status, _, body = raw(server, "DescribeSecret", json.dumps({"SecretId": name}))
    text = body.decode()
    created = json.loads(text)["CreatedDate"]
    assert isinstance(created, float) and created > 1.7e9
    # At most milliseconds, printed as such.
    fraction = text.split('"CreatedDate":')[1].split("}")[0].split(",")[0]
    assert len(fraction.split(".")[1]) <= 3


def test_unicode_escapes_and_surrogates(server):
    name = uniq()
    body = ('{"Name": "%s", "SecretString": "caf\\u00e9 \\ud83d\\udd11 \\u0000 end", '
            '"ClientRequestToken": "%s"}' % (name, "e" * 32))
    status, _, _ = raw(server, "CreateSecret", body)
    assert status == 200
    status, data = raw_json(server, "GetSecretValue", {"SecretId": name})
    assert data["SecretString"] == "caf\u00e9 \U0001f511 \x00 end"
    status, _, data = raw(server, "CreateSecret", '{"Name": "%s", "SecretString": "\\ud83d", '
                          '"ClientRequestToken": "%s"}' % (uniq(), "f" * 32))
    assert status == 400 and json.loads(data)["__type"] == "SerializationException"


def test_duplicate_value_member_refused(server):
    body = '{"Name": "%s", "SecretString": "a", "SecretString": "b", "ClientRequestToken": "%s"}'
    status, _, data = raw(server, "CreateSecret", body % (uniq(), "g" * 32))
    assert status == 400 and json.loads(data)["__type"] == "SerializationException"


def test_worst_case_legitimate_body_is_accepted(server):
    # 65,536 control characters, each sent as a 6-byte escape: ~393 KB.
    name = uniq()
    value = "\x01" * 65536
    body = json.dumps({"Name": name, "SecretString": value, "ClientRequestToken": "h" * 32})
    assert len(body) > 390000
    status, _, data = raw(server, "CreateSecret", body)
    assert status == 200, data
    status, data = raw_json(server, "GetSecretValue", {"SecretId": name})
    assert data["SecretString"] == value


def test_oversized_body_is_refused_early(sm):
    # Refused on its Content-Length, before the body is read; boto3 reads
    # the answer as the error it names.
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="x" * (600 << 10))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    code, message = error_of(e)
    assert code == "RequestEntityTooLargeException" and "524288" in message


def test_oversized_body_without_content_length(server):
    # Chunked: the limit holds as the body arrives.
    chunk = b"x" * 65536
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
              b"X-Amz-Target: secretsmanager.ListSecrets\r\n"
              b"Content-Type: application/x-amz-json-1.1\r\n\r\n")
    try:
        for _ in range(10):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close as soon as it answered
    answer = b""
    while True:
        try:
            got = s.recv(65536)
        except OSError:
            break
        if not got:
            break
        answer += got
        if b"\r\n\r\n" in answer and b"}" in answer.split(b"\r\n\r\n", 1)[1]:
            break
    s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_post_with_query_string_refused(server):
    status, _, _ = raw(server, "ListSecrets", path="/?x=1")
    assert status == 404


def test_other_methods(server):
    status, _, body = raw(server, None, method="PUT", body=b"")
    assert status == 405 and body == b"Not allowed"


def test_limits_on_connections_and_time():
    """--timeout: an idle connection and a trickling body are cut;
    --max-body: the limit given."""
    import time
    from apihelpers import Server, Store
    store = Store()
    srv = Server(store, "--timeout", "2", "--max-body", "8192")
    try:
        status, _, data = raw(srv, "ListSecrets", json.dumps({"x": "y" * 9000}))
        assert status == 413 and b"8192" in data
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
                  b"X-Amz-Target: secretsmanager.ListSecrets\r\n\r\n{")
        start = time.monotonic()
        closed = False
        for _ in range(40):
            time.sleep(0.25)
            try:
                s.sendall(b" ")
            except OSError:
                closed = True
                break
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        s.close()
        assert closed and time.monotonic() - start < 8
    finally:
        srv.stop()
        store.cleanup()
