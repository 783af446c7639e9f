"""What the real service does that a user of the filesystem runs into
(docs/aws-compat.md): a secret without a value cannot be read, and
rm .deleted/NAME is DeleteSecret with ForceDeleteWithoutRecovery.
Rotation's (any value rotates; CancelRotateSecret keeps the rules) are in
test_rotation.py."""

import errno
import json
import os
import stat

import pytest

from conftest import (as_uid, audit_events, expect_errno, ok, read_file, run, sfs, sh,
                      write_file)


@pytest.fixture
def audited(make_mount):
    """A mount with an audit log at m.audit."""
    m = make_mount(mount=False)
    m.audit = m.dir / "audit.jsonl"
    m.mount(audit_log=str(m.audit))
    return m


def test_secret_without_value_refuses_reads(audited):
    m = audited
    ok(run(["touch", m.p("empty")]))
    # GetSecretValue finds no AWSCURRENT (ResourceNotFoundException): the
    # open fails, so no script gets an empty credential, cp no empty copy.
    expect_errno(errno.ENODATA, os.open, m.p("empty"), os.O_RDONLY)
    r = run(["cat", m.p("empty")])
    assert r.returncode != 0 and r.stdout == "" and "No data available" in r.stderr
    r = sh(f'v=$(cat {m.p("empty")}) || exit 7; echo "[$v]"')
    assert r.returncode == 7
    r = run(["cp", m.p("empty"), m.dir / "copy"])
    assert r.returncode != 0 and not (m.dir / "copy").exists()
    assert "empty: refused: the secret has no value" in m.log.read_text()
    # stat, listings and metadata work.
    st = os.stat(m.p("empty"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert os.listdir(m.mnt) == ["empty"]
    os.setxattr(m.p("empty"), "user.tag.team", b"ops")
    assert os.getxattr(m.p("empty"), "user.tag.team") == b"ops"
    d = json.loads(os.getxattr(m.p("empty"), "user.sm.describe"))
    assert "VersionIdsToStages" not in d and d["Tags"] == [{"Key": "team", "Value": "ops"}]
    # The views: no version carries AWSCURRENT, there are no fields.
    expect_errno(errno.ENOENT, read_file, m.p(".stages/AWSCURRENT/empty"))
    expect_errno(errno.ENOENT, os.listdir, m.p(".fields/empty"))
    assert m.versions("empty") == []
    # Writes make the first version: O_WRONLY|O_TRUNC, or an append.
    fd = os.open(m.p("empty"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"first")
    os.close(fd)
    assert read_file(m.p("empty")) == b"first" and len(m.versions("empty")) == 1
    ok(run(["touch", m.p("appended")]))
    ok(sh(f'printf more >> {m.p("appended")}'))
    assert read_file(m.p("appended")) == b"more"
    m.unmount()
    gets = [e for e in audit_events(m.audit) if e["eventName"] == "GetSecretValue"]
    assert gets[0]["requestParameters"]["name"] == "empty"
    assert gets[0]["errorCode"] == "ResourceNotFoundException"
    assert not gets[-1].get("errorCode")


def test_rm_deleted_deletes_for_good(audited):
    m = audited
    write_file(m.p("db"), b"v1")
    write_file(m.p("db"), b"v2")
    os.mkdir(m.p("app"))
    write_file(m.p("app/key"), b"k")
    # Elsewhere than .deleted, only a live name is removed: not a version.
    version = m.versions("db")[0]
    expect_errno(errno.EPERM, os.unlink, m.p(f".versions/db/{version}"))
    assert m.versions("db")[0] == version
    os.unlink(m.p("db"))
    os.unlink(m.p("app/key"))
    assert sorted(os.listdir(m.p(".deleted"))) == ["app", "db"]
    ok(run(["rm", "-f", m.p(".deleted/db")]))
    assert os.listdir(m.p(".deleted")) == ["app"]
    expect_errno(errno.ENOENT, os.stat, m.p(".deleted/db"))
    # Only a deleted secret: not a folder of .deleted, not a name absent.
    expect_errno(errno.EISDIR, os.unlink, m.p(".deleted/app"))
    expect_errno(errno.ENOENT, os.unlink, m.p(".deleted/nothing"))
    ok(run(["rm", "-f", m.p(".deleted/app/key")]))
    assert os.listdir(m.p(".deleted")) == []
    # The name is free: a new secret without the old history.
    write_file(m.p("db"), b"new")
    assert len(m.versions("db")) == 1
    m.remount()
    assert os.listdir(m.p(".deleted")) == [] and len(m.versions("db")) == 1
    m.unmount()
    # Every version record went with the metadata.
    r = sfs("check", m.store, "--key-file", m.key)
    assert r.returncode == 0, r.stdout + r.stderr
    forced = [e for e in audit_events(m.audit) if e["eventName"] == "DeleteSecret" and
              e["requestParameters"].get("forceDeleteWithoutRecovery") is True]
    assert [e["requestParameters"]["name"] for e in forced] == ["db", "app/key"]
    assert all(not e.get("errorCode") for e in forced)


def test_rm_deleted_needs_the_rights_of_rm(make_mount):
    """The kernel checks .deleted as for a restore (sticky: the secret's
    owner or root), and the access policy asks for DeleteSecret."""
    m = make_mount(mount=False)
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"uid": 0}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"uid": 1000}, "Action": "secretsmanager:DeleteSecret",
         "Resource": "mine*"}]}
    (m.dir / "policy.json").write_text(json.dumps(policy))
    m.audit = m.dir / "audit.jsonl"
    m.mount(policy=str(m.dir / "policy.json"), allow_other=True, audit_log=str(m.audit))
    for name, uid in (("mine", 1000), ("theirs", 1000), ("other", 1001)):
        write_file(m.p(name), b"v")
        os.chown(m.p(name), uid, uid)
        os.unlink(m.p(name))
    r = as_uid(1000, "rm", "-f", m.p(".deleted/other"))
    assert r.returncode != 0 and "Operation not permitted" in r.stderr
    r = as_uid(1000, "rm", "-f", m.p(".deleted/theirs"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    ok(as_uid(1000, "rm", "-f", m.p(".deleted/mine")))
    assert sorted(os.listdir(m.p(".deleted"))) == ["other", "theirs"]
    denied = [e for e in audit_events(m.audit) if e["eventName"] == "DeleteSecret" and
              e.get("errorCode") == "AccessDeniedException"]
    assert [(e["requestParameters"]["name"], e["userIdentity"]["uid"]) for e in denied] == \
        [("theirs", 1000)]
