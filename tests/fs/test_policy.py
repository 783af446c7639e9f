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
