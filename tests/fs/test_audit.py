"""The audit trail (BRIEF §9): audit_log= and audit_required."""

import errno
import json
import os
import subprocess

import pytest

from conftest import audit_events, expect_errno, read_file, run, sfs, write_file


def test_every_operation_is_one_line_and_no_value(make_mount):
    m = make_mount(mount=False)
    log = m.dir / "audit.jsonl"
    m.mount(audit_log=str(log))
    write_file(m.p("db"), b"MARKER-AUDIT-ONE")
    write_file(m.p("db"), b"MARKER-AUDIT-TWO")
    read_file(m.p("db"))
    os.setxattr(m.p("db"), "user.tag.team", b"ops")
    os.setxattr(m.p("db"), "user.sm.description", b"orders")
    os.listdir(m.mnt)
    expect_errno(errno.EFBIG, write_file, m.p("db"), b"x" * 65537)
    os.unlink(m.p("db"))
    os.rename(m.p(".deleted/db"), m.p("db"))
    m.unmount()
    evs = audit_events(log)
    names = [e["eventName"] for e in evs]
    for want in ["CreateSecret", "PutSecretValue", "GetSecretValue", "TagResource",
                 "UpdateSecret", "ListSecrets", "DeleteSecret", "RestoreSecret"]:
        assert want in names, (want, names)
    get = next(e for e in evs if e["eventName"] == "GetSecretValue")
    assert get["readOnly"] is True
    assert get["userIdentity"]["executable"].endswith("python3") or \
        "python" in get["userIdentity"]["executable"]
    assert get["userIdentity"]["uid"] == 0 and get["userIdentity"]["pid"] > 0
    assert get["requestParameters"]["name"] == "db"
    assert get["requestParameters"]["secretId"].startswith("arn:aws:secretsmanager:")
    assert len(get["requestParameters"]["versionId"]) == 36
    failed = [e for e in evs if e.get("errorCode")]
    assert any(e["eventName"] == "PutSecretValue" and
               e["errorCode"] == "LimitExceededException" for e in failed)
    text = log.read_text()
    assert "MARKER" not in text
    assert (log.stat().st_mode & 0o777) == 0o600


def test_audit_required_refuses_what_cannot_be_recorded(make_mount, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    r = run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", small])
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr)
    try:
        m = make_mount(mount=False)
        log = small / "audit.jsonl"
        m.mount(audit_log=str(log), audit_required=True)
        write_file(m.p("s"), b"value")
        assert read_file(m.p("s")) == b"value"
        # Fill the audit log's filesystem: nothing more can be recorded.
        filler = small / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        os.close(fd)
        # The log's last page may still hold a few lines; then reads fail.
        refused = False
        for _ in range(200):
            try:
                read_file(m.p("s"))
            except OSError as e:
                assert e.errno == errno.EIO
                refused = True
                break
        assert refused, "reads went on although the audit log was full"
        expect_errno(errno.EIO, write_file, m.p("s"), b"changed")
        expect_errno(errno.EIO, os.unlink, m.p("s"))
        # A create refused at its commit leaves no name behind.
        expect_errno(errno.EIO, write_file, m.p("new"), b"value")
        expect_errno(errno.ENOENT, os.stat, m.p("new"))
        filler.unlink()
        assert os.listdir(m.mnt) == ["s"]
        assert read_file(m.p("s")) == b"value"  # nothing changed meanwhile
        write_file(m.p("s"), b"changed")
        assert read_file(m.p("s")) == b"changed"
        m.unmount()
    finally:
        subprocess.run(["umount", "-l", str(small)])


def test_audit_options_misuse(make_mount):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o", f"key_file={m.key},audit_required")
    assert r.returncode == 2


def test_a_write_is_audited_as_what_it_does(make_mount):
    """A writer seeded from a secret without a value reads nothing: no
    GetSecretValue. truncate(2) by path is one PutSecretValue (the value
    it starts from never reaches the caller). A writer seeded from a value
    is a GetSecretValue of that version, then a PutSecretValue."""
    m = make_mount(mount=False)
    log = m.dir / "audit.jsonl"
    m.mount(audit_log=str(log))
    run(["touch", m.p("empty")])
    fd = os.open(m.p("empty"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"first")
    os.close(fd)
    write_file(m.p("t"), b"abc")
    first = os.getxattr(m.p("t"), "user.sm.version_id").decode()
    os.truncate(m.p("t"), 2)
    fd = os.open(m.p("t"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"d")
    os.close(fd)
    assert read_file(m.p("t")) == b"abd"
    m.unmount()
    empty = [(e["eventName"], e.get("errorCode")) for e in audit_events(log)
             if e["requestParameters"].get("name") == "empty"]
    # touch's CreateSecret comes with its RELEASE, which the kernel sends
    # when it likes: the order of these two is not the test's.
    assert sorted(empty) == [("CreateSecret", None), ("PutSecretValue", None)], empty
    evs = [e for e in audit_events(log) if e["requestParameters"].get("name") == "t"]
    assert [(e["requestParameters"]["name"], e["eventName"], e.get("errorCode")) for e in evs] == [
        ("t", "CreateSecret", None),
        ("t", "PutSecretValue", None),                                     # truncate
        ("t", "GetSecretValue", None), ("t", "PutSecretValue", None),      # >>
        ("t", "GetSecretValue", None)], evs                                # the read
    version = [e["requestParameters"].get("versionId") for e in evs]
    assert version[0] == first and version[1] not in (None, first)
    assert version[2] == version[1]  # the append got the truncated value


def test_a_rename_the_policy_refuses_is_one_line(make_mount):
    """A rename the access policy refuses is one record, whichever check
    refused it: the rename itself (RenameSecret, RenameFolder), or what
    the move implies (reading the value at the source, creating or writing
    at the target), which for a secret or each secret below a folder is
    checked as it moves. The one record is the check's, naming what was
    refused."""
    m = make_mount(mount=False)
    log = m.dir / "audit.jsonl"
    policy = m.dir / "policy.json"
    policy.write_text(json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
         "Resource": "locked/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:CreateSecret",
         "Resource": "closed/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:RenameSecret",
         "Resource": "pinned"},
    ]}))
    m.mount(policy=str(policy), audit_log=str(log))
    for d in ("locked", "closed", "open"):
        os.makedirs(m.p(d))
    for name in ("locked/a", "open/b", "pinned"):
        write_file(m.p(name), b"v")
    refused = [
        ("locked/a", "open/a", "GetSecretValue", "locked/a"),  # the value read at the source
        ("open/b", "closed/b", "CreateSecret", "closed/b"),    # created at the target
        ("pinned", "moved", "RenameSecret", "pinned"),         # the rename itself
        ("locked", "locked2", "GetSecretValue", "locked/a"),   # a folder: each secret in it
    ]
    for src, dst, event, name in refused:
        before = len(audit_events(log))
        expect_errno(errno.EACCES, os.rename, m.p(src), m.p(dst))
        new = [(e["eventName"], e["requestParameters"].get("name"), e.get("errorCode"))
               for e in audit_events(log)[before:]]
        assert new == [(event, name, "AccessDeniedException")], (src, dst, new)
    # Nothing moved.
    assert sorted(os.listdir(m.p("locked"))) == ["a"] and os.listdir(m.p("closed")) == []
    assert sorted(os.listdir(m.mnt)) == ["closed", "locked", "open", "pinned"]
    assert read_file(m.p("open/b")) == b"v"
    # An allowed rename is one record too.
    before = len(audit_events(log))
    os.rename(m.p("open/b"), m.p("open/c"))
    new = [(e["eventName"], e["requestParameters"].get("name"), e.get("errorCode"))
           for e in audit_events(log)[before:]]
    assert new == [("RenameSecret", "open/b", None)], new
