"""RotateSecret and CancelRotateSecret over the API (reference
aws-semantics.md §5.12, 5.13): rotation commands (docs/rotation.md), the
Lambda's counterpart, set through the mount and run by the mount's daemon."""

import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from apihelpers import (MountedStore, Server, Store, boto, error_of, free_port,  # noqa: F401
                        offline_env, raw_json, uniq)

COMMAND = """#!/bin/sh
# A rotation command for the tests: createSecret writes a new value.
case "$1" in
createSecret) printf 'rotated-%s' "$SECRETSFS_TOKEN" > "$SECRETSFS_PENDING" ;;
esac
exit 0
"""


def make_command(store):
    path = store.dir / "rotate.sh"
    path.write_text(COMMAND)
    os.chmod(path, 0o755)
    return path


def wait_rotated(sm, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sm.describe_secret(SecretId=name)
        if "LastRotatedDate" in d:
            return d
        time.sleep(0.1)
    raise AssertionError(f"{name} did not rotate")


@pytest.fixture(scope="module")
def mounted():
    store = Store()
    m = MountedStore(store, free_port())
    m.command = make_command(store)
    yield m
    m.unmount()
    store.cleanup()


def test_rotate_through_the_mounts_command(mounted, offline_env):
    sm = boto(mounted.url)
    name = uniq("rot")
    first = sm.create_secret(Name=name, SecretString="original")["VersionId"]
    os.setxattr(mounted.mnt / name, "user.sm.rotation_command", str(mounted.command).encode())
    tok = str(uuid.uuid4())
    r = sm.rotate_secret(SecretId=name, ClientRequestToken=tok,
                         RotationRules={"AutomaticallyAfterDays": 30})
    assert r["VersionId"] == tok and r["Name"] == name
    d = wait_rotated(sm, name)
    assert d["RotationEnabled"] is True
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30
    # Debian's botocore model predates NextRotationDate: read raw.
    status, raw_d = raw_json(mounted, "DescribeSecret", {"SecretId": name})
    assert raw_d["NextRotationDate"] - raw_d["LastRotatedDate"] == pytest.approx(30 * 86400, 1)
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == f"rotated-{tok}" and g["VersionId"] == tok
    assert d["VersionIdsToStages"][first] == ["AWSPREVIOUS"]
    # A token already used names a version: refused.
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=name, ClientRequestToken=tok)
    assert error_of(e)[0] == "InvalidRequestException"


def test_rotate_refusals(mounted, offline_env):
    sm = boto(mounted.url)
    name = uniq("norot")
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=name)
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "rotation_command" in message
    # Nothing recorded.
    assert "RotationRules" not in sm.describe_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=name,
                         RotationLambdaARN="arn:aws:lambda:us-east-1:000000000000:function:f")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 1001})
    assert error_of(e)[0] == "ValidationException"
    status, body = raw_json(mounted, "RotateSecret", {"SecretId": name})
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert "ClientRequestToken" in body["message"]


def test_rotate_while_pending_elsewhere(mounted, offline_env):
    sm = boto(mounted.url)
    name = uniq("busy")
    sm.create_secret(Name=name, SecretString="x")
    os.setxattr(mounted.mnt / name, "user.sm.rotation_command", str(mounted.command).encode())
    sm.put_secret_value(SecretId=name, SecretString="half", VersionStages=["AWSPENDING"])
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=name)
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "AWSPENDING" in message


def test_cancel_rotation(mounted, offline_env):
    sm = boto(mounted.url)
    name = uniq("cancel")
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.cancel_rotate_secret(SecretId=name)
    assert error_of(e)[0] == "InvalidRequestException"
    os.setxattr(mounted.mnt / name, "user.sm.rotation_command", str(mounted.command).encode())
    os.setxattr(mounted.mnt / name, "user.sm.rotation_days", b"7")
    assert sm.describe_secret(SecretId=name)["RotationEnabled"] is True
    pending = sm.put_secret_value(SecretId=name, SecretString="half",
                                  VersionStages=["AWSPENDING"])["VersionId"]
    r = sm.cancel_rotate_secret(SecretId=name)
    assert r["Name"] == name and r["VersionId"] == pending
    d = sm.describe_secret(SecretId=name)
    assert d["RotationEnabled"] is False and d["RotationRules"]["AutomaticallyAfterDays"] == 7
    with pytest.raises(OSError):
        os.getxattr(mounted.mnt / name, "user.sm.rotation_command")


def test_serve_sets_the_schedule_but_runs_no_command(offline_env):
    store = Store()
    mnt = store.dir / "mnt"
    mnt.mkdir()
    command = make_command(store)
    from apihelpers import sfs
    r = sfs("mount", store.store, mnt, "-o", f"key_file={store.key}")
    assert r.returncode == 0, r.stderr
    try:
        (mnt / "db").write_text("x")
        os.setxattr(mnt / "db", "user.sm.rotation_command", str(command).encode())
    finally:
        import subprocess
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["mountpoint", "-q", str(mnt)]).returncode == 0 and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.5)
    srv = Server(store)
    try:
        sm = boto(srv.url)
        with pytest.raises(ClientError) as e:
            sm.rotate_secret(SecretId="db")
        code, message = error_of(e)
        assert code == "InvalidRequestException" and "mount" in message
        r = sm.rotate_secret(SecretId="db", RotateImmediately=False,
                             RotationRules={"ScheduleExpression": "rate(10 days)"})
        assert "VersionId" not in r
        d = sm.describe_secret(SecretId="db")
        assert d["RotationEnabled"] is True
        assert d["RotationRules"]["ScheduleExpression"] == "rate(10 days)"
    finally:
        srv.stop()
        store.cleanup()
