#!/usr/bin/python3
"""Captures one Secrets Manager request signed by Debian's botocore (python3-botocore
1.29.27, what boto3 1.26 sends), for tests/unit/test_sigv4.c.

The client is a real boto3 client pointed at http://127.0.0.1:8080; a before-send hook
takes the request botocore would put on the wire and answers it, so nothing is sent.
SigV4's clock is pinned so that the file is the same on every run. Writes, beside this
script:
  header-signed-request.txt  the request as HTTP/1.1 on the wire (CRLF lines, botocore's
                             headers in its order, among them the "host" it signs, a
                             blank line, the exact body)
  context.json               the credentials, region, service and time it was signed at
Run it again with: /usr/bin/python3 tests/unit/data/sigv4/botocore/make-request.py
"""
import datetime
import json
import os
from unittest import mock

import boto3
import botocore
import botocore.auth
from botocore.awsrequest import AWSResponse

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = "http://127.0.0.1:8080"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example key
REGION = "eu-west-3"
WHEN = datetime.datetime(2026, 11, 27, 19, 57, 2)


class PinnedClock(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return WHEN


captured = {}


def keep(request, **kwargs):
    captured["request"] = request
    return AWSResponse(request.url, 200, {}, None)


def main():
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    region_name=REGION)
    client = session.client("secretsmanager", endpoint_url=ENDPOINT)
    client.meta.events.register("before-send.secrets-manager.*", keep)
    with mock.patch.object(botocore.auth.datetime, "datetime", PinnedClock):
        try:
            client.get_secret_value(SecretId="prod/db/password", VersionStage="AWSCURRENT")
        except Exception:  # the empty answer does not parse; the request is what we want
            pass
    req = captured["request"]
    body = req.body if isinstance(req.body, bytes) else (req.body or "").encode()
    lines = ["POST / HTTP/1.1"]
    if "host" not in req.headers:  # botocore 1.29 adds its own; http.client then adds none
        lines.append("Host: 127.0.0.1:8080")
    for name, value in req.headers.items():
        if isinstance(value, bytes):
            value = value.decode()
        lines.append(f"{name}: {value}")
    wire = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with open(os.path.join(HERE, "header-signed-request.txt"), "wb") as f:
        f.write(wire)
    context = {
        "source": f"botocore {botocore.__version__}, boto3 {boto3.__version__}",
        "credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
        "region": REGION,
        "service": "secretsmanager",
        "timestamp": WHEN.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(HERE, "context.json"), "w") as f:
        json.dump(context, f, indent=4)
        f.write("\n")


if __name__ == "__main__":
    main()
