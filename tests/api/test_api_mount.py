"""Files and API from one daemon: `secretsfs mount -o api=` (docs/api.md).
A value written through the mount is what the API returns, and the other
way round; metadata set on one side shows on the other."""

import errno
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from apihelpers import (MountedStore, Store, audit_events, boto, error_of, free_port,  # noqa: F401
                        offline_env, sfs, uniq)


@pytest.fixture(scope="module")
def mounted():
    store = Store()
    m = MountedStore(store, free_port(), f"audit_log={store.dir / 'audit.log'}")
    yield m
    m.unmount()
    store.cleanup()


@pytest.fixture
def sm(mounted, offline_env):
    return boto(mounted.url)


def test_file_written_is_read_through_the_api(mounted, sm):
    name = uniq("file")
    path = mounted.mnt / name
    path.write_text("from a file")
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == "from a file" and g["VersionStages"] == ["AWSCURRENT"]
    path.write_bytes(b"\x00binary\xff")
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretBinary"] == b"\x00binary\xff"
    arn = os.getxattr(path, "user.sm.arn").decode()
    assert sm.describe_secret(SecretId=name)["ARN"] == arn


def test_api_written_is_read_through_the_mount(mounted, sm):
    name = f"app/{uniq('api')}"
    r = sm.create_secret(Name=name, SecretString='{"user":"u","password":"p1"}',
                         Tags=[{"Key": "owner", "Value": "api"}], Description="by the API")
    path = mounted.mnt / name
    assert json.loads(path.read_text())["password"] == "p1"
    assert os.getxattr(path, "user.sm.arn").decode() == r["ARN"]
    assert os.getxattr(path, "user.sm.version_id").decode() == r["VersionId"]
    assert os.getxattr(path, "user.tag.owner") == b"api"
    assert os.getxattr(path, "user.sm.description") == b"by the API"
    assert (mounted.mnt / ".fields" / name / "password").read_text() == "p1"
    p = sm.put_secret_value(SecretId=name, SecretString='{"user":"u","password":"p2"}')
    assert json.loads(path.read_text())["password"] == "p2"
    assert os.getxattr(path, "user.sm.version_id").decode() == p["VersionId"]
    assert sorted(os.listdir(mounted.mnt / ".versions" / name)) == \
        sorted([r["VersionId"], p["VersionId"]])
    # A secret the API made is the mounting user's, mode 0600.
    st = os.stat(path)
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, os.getuid())


def test_labels_and_tags_cross(mounted, sm):
    name = uniq("cross")
    path = mounted.mnt / name
    path.write_text("one")
    v1 = os.getxattr(path, "user.sm.version_id").decode()
    path.write_text("two")
    os.setxattr(path, "user.tag.team", b"ops")
    d = sm.describe_secret(SecretId=name)
    assert d["Tags"] == [{"Key": "team", "Value": "ops"}]
    assert d["VersionIdsToStages"][v1] == ["AWSPREVIOUS"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="PINNED", MoveToVersionId=v1)
    assert os.getxattr(path, "user.sm.stage.PINNED").decode() == v1
    assert (mounted.mnt / ".stages" / "PINNED" / name).read_text() == "one"


def test_delete_and_restore_cross(mounted, sm):
    name = uniq("life")
    path = mounted.mnt / name
    path.write_text("v")
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert not path.exists()
    assert (mounted.mnt / ".deleted" / name).exists()
    sm.restore_secret(SecretId=name)
    assert path.read_text() == "v"
    os.unlink(path)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert error_of(e)[0] == "InvalidRequestException"


def test_a_file_being_written_is_not_seen_by_the_api(mounted, sm):
    name = uniq("open")
    fd = os.open(mounted.mnt / name, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(ClientError) as e:
            sm.describe_secret(SecretId=name)
        assert error_of(e)[0] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as e:
            sm.create_secret(Name=name, SecretString="api")
        assert error_of(e)[0] == "ResourceExistsException"
        os.write(fd, b"file")
    finally:
        os.close(fd)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "file"


def test_one_audit_trail_for_both(mounted, sm):
    name = uniq("audit")
    (mounted.mnt / name).write_text("v")
    sm.get_secret_value(SecretId=name)
    events = [e for e in audit_events(mounted.store.dir / "audit.log")
              if e.get("requestParameters", {}).get("name") == name]
    kinds = [(e["eventName"], e["userIdentity"]["type"]) for e in events]
    assert ("CreateSecret", "LocalUser") in kinds
    api = [e for e in events if e["userIdentity"]["type"] != "LocalUser"]
    assert api and api[-1]["eventName"] == "GetSecretValue"
    assert api[-1]["sourceIPAddress"] == "127.0.0.1"


def test_store_is_busy_for_a_second_daemon(mounted):
    r = sfs("serve", mounted.store.store, "--listen", "127.0.0.1:0", "--auth", "none",
            "--key-file", mounted.store.key)
    assert r.returncode == 1 and "mounted" in r.stderr


def test_mount_refuses_an_api_it_cannot_serve(offline_env):
    store = Store()
    try:
        port = free_port()
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()
            mnt = store.dir / "mnt"
            mnt.mkdir()
            r = sfs("mount", store.store, mnt, "-o",
                    f"key_file={store.key},api=127.0.0.1:{port},api_auth=none")
            assert r.returncode == 1 and "cannot serve the API" in r.stderr
            assert subprocess.run(["mountpoint", "-q", str(mnt)]).returncode != 0
        r = sfs("mount", store.store, mnt, "-o", f"key_file={store.key},api_auth=none")
        assert r.returncode == 2 and "api=" in r.stderr
        r = sfs("mount", store.store, mnt, "-o", f"key_file={store.key},api=127.0.0.1:1")
        assert r.returncode == 2 and "api_credentials" in r.stderr
    finally:
        store.cleanup()
