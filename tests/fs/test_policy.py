"""The access policy (policy=FILE): IAM-like, on top of file modes."""

import errno
import json
import os

from conftest import as_uid, expect_errno, read_file, run, sfs, write_file

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"uid": 0}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"uid": [1000]},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:List*",
                    "secretsmanager:DescribeSecret"],
         "Resource": "app/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
         "Resource": "app/admin*"},
        {"Effect": "Deny", "Principal": {"uid": 0}, "Action": "secretsmanager:DeleteSecret",
         "Resource": "arn:aws:secretsmanager:*:*:secret:app/keep-*"},
    ],
}


def mount_with_policy(make_mount, policy):
    m = make_mount(mount=False)
    path = m.dir / "policy.json"
    path.write_text(json.dumps(policy))
    m.mount(policy=str(path), allow_other=True, audit_log=str(m.dir / "audit.jsonl"))
    return m


def test_allow_deny_and_default_deny(make_mount):
    m = mount_with_policy(make_mount, POLICY)
    os.makedirs(m.p("app"))
    os.makedirs(m.p("other"))
    for name in ("app/db", "app/admin", "other/x", "app/keep"):
        write_file(m.p(name), b"v-" + name.encode())
        os.chown(m.p(name), 1000, 1000)
    os.chmod(m.p("app"), 0o755)
    os.chmod(m.p("other"), 0o755)
    # uid 1000 may read app/* but not the denied app/admin, nor other/*.
    r = as_uid(1000, "cat", m.p("app/db"))
    assert r.returncode == 0 and r.stdout == "v-app/db"
    r = as_uid(1000, "cat", m.p("app/admin"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_uid(1000, "cat", m.p("other/x"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    # ...and may not write (no PutSecretValue), though the file mode allows it.
    r = as_uid(1000, "sh", "-c", f"printf new > {m.p('app/db')}")
    assert r.returncode != 0
    assert read_file(m.p("app/db")) == b"v-app/db"
    # An explicit Deny wins even for root's Allow secretsmanager:*.
    expect_errno(errno.EACCES, read_file, m.p("app/admin"))
    expect_errno(errno.EACCES, os.unlink, m.p("app/keep"))
    assert read_file(m.p("other/x")) == b"v-other/x"
    # Refusals are audited.
    events = [json.loads(line) for line in (m.dir / "audit.jsonl").read_text().splitlines()]
    denied = [e for e in events if e.get("errorCode") == "AccessDeniedException"]
    assert any(e["eventName"] == "GetSecretValue" and e["userIdentity"]["uid"] == 1000
               for e in denied)
    assert any(e["eventName"] == "DeleteSecret" for e in denied)


def test_group_and_user_names(make_mount):
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"user": "root"}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"group": "root"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "shared/*"}]}
    m = mount_with_policy(make_mount, policy)
    os.makedirs(m.p("shared"))
    write_file(m.p("shared/s"), b"v")
    os.chmod(m.p("shared/s"), 0o644)
    r = as_uid(1000, "cat", m.p("shared/s"))  # setpriv clears groups: not in root
    assert r.returncode != 0


def test_create_refused_by_policy_leaves_nothing(make_mount):
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"uid": 0}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:CreateSecret",
         "Resource": "locked*"}]}
    m = mount_with_policy(make_mount, policy)
    src = m.dir / "src"
    src.write_bytes(b"value")
    r = run(["cp", src, m.p("locked1")])
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    expect_errno(errno.EACCES, write_file, m.p("locked2"), b"value")
    r = run(["dd", f"if={src}", f"of={m.p('locked3')}"])
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    write_file(m.p("open"), b"value")
    for name in ("locked1", "locked2", "locked3"):
        expect_errno(errno.ENOENT, os.stat, m.p(name))
    assert os.listdir(m.mnt) == ["open"]
    m.remount()
    assert os.listdir(m.mnt) == ["open"]


def test_bad_policies_refuse_the_mount(make_mount):
    m = make_mount(mount=False)
    bad = [
        "not json",
        json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*",
                                   "Action": "secretsmanager:*", "Resource": "*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"user": "no-such-user-x"},
                                   "Action": "secretsmanager:*", "Resource": "*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*",
                                   "Action": "s3:GetObject", "Resource": "*"}]}),
        json.dumps({"Version": "2012-10-17"}),
    ]
    for i, text in enumerate(bad):
        path = m.dir / f"bad{i}.json"
        path.write_text(text)
        r = sfs("mount", m.store, m.mnt, "-o", f"key_file={m.key},policy={path}")
        assert r.returncode == 1, (text, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


# A Deny on one exact secret, under an Allow of everything: no path around it.
DENY_ONE = {"Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
     "Resource": "arn:aws:secretsmanager:*:*:secret:prod/db-*"},
    {"Effect": "Deny", "Principal": {"uid": 1000}, "Action": "secretsmanager:PutSecretValue",
     "Resource": "prod/pw"},
]}


def audit_events(m):
    return [json.loads(line) for line in (m.dir / "audit.jsonl").read_text().splitlines()]


def test_writers_that_read_need_get_secret_value(make_mount):
    """O_RDWR, and any open that starts from the current value (no O_TRUNC),
    needs GetSecretValue as well as PutSecretValue; O_WRONLY|O_TRUNC only
    PutSecretValue. truncate(2) by path starts from the value too."""
    m = mount_with_policy(make_mount, DENY_ONE)
    os.makedirs(m.p("prod"))
    write_file(m.p("prod/db"), b"db-value")
    versions = m.p(".versions/prod/db")
    assert len(os.listdir(versions)) == 1
    expect_errno(errno.EACCES, read_file, m.p("prod/db"))
    for flags in (os.O_WRONLY, os.O_WRONLY | os.O_APPEND, os.O_RDWR,
                  os.O_RDWR | os.O_TRUNC, os.O_RDWR | os.O_APPEND):
        expect_errno(errno.EACCES, os.open, m.p("prod/db"), flags)
    expect_errno(errno.EACCES, os.truncate, m.p("prod/db"), 3)
    assert len(os.listdir(versions)) == 1
    # Replacing the value whole reads nothing: PutSecretValue is enough.
    write_file(m.p("prod/db"), b"db-value-2")
    assert len(os.listdir(versions)) == 2
    # An append to a secret that may be read is audited as a read, then a write.
    write_file(m.p("prod/other"), b"abc")
    first = os.getxattr(m.p("prod/other"), "user.sm.version_id").decode()
    write_file(m.p("prod/other"), b"def", flags=os.O_WRONLY | os.O_APPEND)
    assert read_file(m.p("prod/other")) == b"abcdef"
    events = [e for e in audit_events(m) if "errorCode" not in e and
              e["requestParameters"].get("name") == "prod/other"]
    assert [e["eventName"] for e in events] == [
        "CreateSecret", "GetSecretValue", "PutSecretValue", "GetSecretValue"]
    assert events[1]["readOnly"] and events[1]["requestParameters"]["versionId"] == first
    denied = [e["eventName"] for e in audit_events(m)
              if e.get("errorCode") == "AccessDeniedException"]
    assert denied.count("GetSecretValue") == 7 and "PutSecretValue" not in denied


def test_scratch_names_do_not_get_around_a_deny_on_reading(make_mount):
    """Deny GetSecretValue on prod/db (by ARN): no rename, scratch file or
    restore lets its value be read under another name."""
    m = mount_with_policy(make_mount, DENY_ONE)
    os.makedirs(m.p("prod"))
    write_file(m.p("prod/db"), b"db-value")
    write_file(m.p("other"), b"other-value")
    # Moving the value to a scratch name, a free name, over a secret, or
    # moving its folder: each would let it be read elsewhere.
    for to in ("prod/db~", "prod/.db.swp", ".db.AbC123", "prod/moved", "other", "db2"):
        expect_errno(errno.EACCES, os.rename, m.p("prod/db"), m.p(to))
    expect_errno(errno.EACCES, os.rename, m.p("prod"), m.p("prod2"))
    # An editor's backup or swap file of prod/db is read under its rules.
    for scratch in ("prod/db~", "prod/.db.swp"):
        write_file(m.p(scratch), b"an editor's copy")
        expect_errno(errno.EACCES, read_file, m.p(scratch))
        os.unlink(m.p(scratch))
    # Restored under another name it could be read there; under its own, it may be.
    os.unlink(m.p("prod/db"))
    expect_errno(errno.EACCES, os.rename, m.p(".deleted/prod/db"), m.p("prod/back"))
    os.rename(m.p(".deleted/prod/db"), m.p("prod/db"))
    assert read_file(m.p("other")) == b"other-value"
    assert sorted(os.listdir(m.p("prod"))) == ["db"]
    # A secret that may be read goes through the same paths.
    write_file(m.p("prod/ok"), b"ok-value")
    os.rename(m.p("prod/ok"), m.p("prod/ok~"))
    write_file(m.p("prod/ok"), b"ok-value-2")
    os.rename(m.p("prod/ok~"), m.p("prod/ok"))
    assert read_file(m.p("prod/ok")) == b"ok-value"


def test_scratch_names_do_not_get_around_a_deny_on_writing(make_mount):
    """Deny PutSecretValue on prod/pw for uid 1000: no scratch file, temp
    file, rename or re-create puts a value there."""
    m = mount_with_policy(make_mount, DENY_ONE)
    os.makedirs(m.p("prod"))
    write_file(m.p("prod/pw"), b"pw-value")
    write_file(m.p("mine"), b"evil")
    for path in (m.mnt, m.p("prod")):
        os.chmod(path, 0o777)
    for name in ("prod/pw", "mine"):
        os.chown(m.p(name), 1000, 1000)
    ids = sorted(os.listdir(m.p(".versions/prod/pw")))

    def as_1000(script):
        return as_uid(1000, "sh", "-c", f"cd {m.mnt} && {script}")

    refused = [
        "printf evil > prod/pw",                              # the value itself
        "printf evil > prod/pw~ && mv prod/pw~ prod/pw",      # a backup name, renamed back
        "printf evil > prod/.pw.swp && mv prod/.pw.swp prod/pw",
        "printf evil > .pw.AbC123 && mv .pw.AbC123 prod/pw",  # rsync's top-level temp
        "printf evil > prod/sedX1 && mv prod/sedX1 prod/pw",  # sed -i's temp
        "mv mine prod/pw",                                     # over it
        "mv prod/pw prod/pw~",                                 # hiding it
    ]
    refusal = b"prod/pw: refused by the access policy: uid 1000, secretsmanager:PutSecretValue"
    for script in refused:
        before = len(m.read_log())
        r = as_1000(script)
        assert r.returncode != 0, script
        assert refusal in m.read_log()[before:], script
        assert read_file(m.p("prod/pw")) == b"pw-value", script
    # Hidden by someone who may write it: the name's next create is a
    # PutSecretValue, as is a rename onto it.
    os.rename(m.p("prod/pw"), m.p("prod/pw~"))
    assert as_1000("printf evil > prod/pw").returncode != 0
    assert as_1000("mv prod/pw~ prod/pw").returncode != 0
    os.rename(m.p("prod/pw~"), m.p("prod/pw"))
    # Scheduled for deletion: creating the name again continues its history.
    assert as_1000("rm prod/pw").returncode == 0
    assert as_1000("printf evil > prod/pw").returncode != 0
    r = as_uid(1000, "/usr/bin/python3", "-c", f"import os; os.mknod({str(m.p('prod/pw'))!r})")
    assert "PermissionError" in r.stderr
    assert as_1000("mv .deleted/prod/pw prod/pw").returncode == 0
    assert read_file(m.p("prod/pw")) == b"pw-value"
    assert sorted(os.listdir(m.p(".versions/prod/pw"))) == ids
    # Nothing of uid 1000's reached prod/pw's history.
    assert "prod/pw" not in {e["requestParameters"].get("name") for e in audit_events(m)
                             if e["eventName"] in ("PutSecretValue", "CreateSecret")
                             and "errorCode" not in e and e["userIdentity"]["uid"] == 1000}
