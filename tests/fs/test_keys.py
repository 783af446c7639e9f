"""Named keys (BRIEF section 5), managed through the mount root's xattrs:
user.sm.keys (list), user.sm.key.create / .disable / .enable, and chosen per
secret with user.sm.kms_key_id. A disabled key refuses its secrets with
EACCES (reads at open, writes at close) and harms nothing else."""

import errno
import os
import re
import shlex

import pytest

from conftest import as_uid, expect_errno, ok, run, sfs, sh
from smhelpers import (ISO_RE, KEY_ARN_RE, commit, describe, module_mount, put,
                       read, state, uniq, version_ids, xdel, xget, xset)

q = shlex.quote


@pytest.fixture(scope="module")
def mnt():
    yield from module_mount()



def keys(m):
    """{alias: (arn, state, date)} from user.sm.keys on the mount root."""
    out = {}
    for line in xget(m.mnt, "user.sm.keys").splitlines():
        parts = line.split(" ")
        assert len(parts) == 4, line
        arn, alias, st, date = parts
        assert KEY_ARN_RE.match(arn), arn
        assert alias.startswith("alias/"), alias
        assert st in ("Enabled", "Disabled"), st
        assert ISO_RE.match(date), date
        assert alias not in out
        out[alias] = (arn, st, date)
    return out


def new_key(m, prefix="team"):
    alias = f"alias/{uniq(prefix)}"
    xset(m.mnt, "user.sm.key.create", alias)
    return alias


def secret_under(m, alias):
    """A secret whose v1 is under the default key and v2 under alias."""
    p = m.p(uniq("k"))
    put(p, b"old under default")
    xset(p, "user.sm.kms_key_id", alias)
    put(p, b"new under team")
    return p


# ================================================================ the list

def test_keys_listed_on_root(mnt):
    put(mnt.p(uniq()), b"v")  # aws/secretsmanager is made on first need
    k = keys(mnt)
    assert "alias/aws/secretsmanager" in k
    assert k["alias/aws/secretsmanager"][1] == "Enabled"
    assert "user.sm.keys" in os.listxattr(mnt.mnt)


def test_keys_only_on_root(mnt):
    p = mnt.p(uniq())
    put(p, b"v")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.keys")
    os.makedirs(mnt.p("kf"), exist_ok=True)
    expect_errno(errno.ENODATA, os.getxattr, mnt.p("kf"), "user.sm.keys")
    expect_errno((errno.EOPNOTSUPP, errno.EPERM), xset, p,
                 "user.sm.key.create", "alias/onfile")
    assert "alias/onfile" not in keys(mnt)


def test_create_key_with_setfattr(mnt):
    ok(run(["setfattr", "-n", "user.sm.key.create", "-v", "alias/shellteam",
            mnt.mnt]))
    out = ok(run(["getfattr", "--only-values", "-n", "user.sm.keys", mnt.mnt]))
    lines = [l for l in out.splitlines() if " alias/shellteam " in l]
    assert len(lines) == 1
    assert re.match(r"^arn:aws:kms:us-east-1:000000000000:key/"
                    r"[0-9a-f-]{36} alias/shellteam Enabled "
                    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", lines[0])


def test_create_key_bare_name_and_uniqueness(mnt):
    name = uniq("bare")
    xset(mnt.mnt, "user.sm.key.create", name)
    k = keys(mnt)
    assert f"alias/{name}" in k
    arns = [v[0] for v in k.values()]
    assert len(arns) == len(set(arns))


def test_create_duplicate_alias_eexist(mnt):
    alias = new_key(mnt)
    before = keys(mnt)
    expect_errno(errno.EEXIST, xset, mnt.mnt, "user.sm.key.create", alias)
    assert keys(mnt) == before


@pytest.mark.parametrize("alias", [
    "", "alias/", "alias/aws/mine", "alias/aws/secretsmanager",
    "alias/has space", "alias/star*", "alias/" + "a" * 300])
def test_create_bad_alias_einval(mnt, alias):
    before = keys(mnt)
    expect_errno((errno.EINVAL, errno.EEXIST), xset, mnt.mnt,
                 "user.sm.key.create", alias)
    assert keys(mnt) == before


def test_unknown_key_verb_refused(mnt):
    before = keys(mnt)
    expect_errno((errno.EPERM, errno.EOPNOTSUPP, errno.EINVAL), xset, mnt.mnt,
                 "user.sm.key.delete", "alias/aws/secretsmanager")
    assert keys(mnt) == before


def test_set_keys_list_eperm(mnt):
    expect_errno(errno.EPERM, xset, mnt.mnt, "user.sm.keys", "x")


# ================================================================ kms_key_id

def test_kms_key_id_forms(mnt):
    alias = new_key(mnt)
    arn = keys(mnt)[alias][0]
    key_id = arn.rsplit("/", 1)[1]
    p = mnt.p(uniq())
    put(p, b"v")
    for spec in (alias, key_id, arn,
                 f"arn:aws:kms:us-east-1:000000000000:{alias}"):
        xset(p, "user.sm.kms_key_id", spec)
        assert xget(p, "user.sm.kms_key_id") == spec
        assert describe(p)["KmsKeyId"] == spec
        put(p, spec.encode())
        assert read(p) == spec.encode()
    # back to the default key
    xdel(p, "user.sm.kms_key_id")
    assert xget(p, "user.sm.kms_key_id") == ""
    assert "KmsKeyId" not in describe(p)
    xset(p, "user.sm.kms_key_id", alias)
    xset(p, "user.sm.kms_key_id", "")
    assert "KmsKeyId" not in describe(p)


def test_kms_key_id_with_setfattr(mnt):
    alias = new_key(mnt)
    p = mnt.p(uniq())
    put(p, b"v")
    ok(run(["setfattr", "-n", "user.sm.kms_key_id", "-v", alias, p]))
    out = ok(run(["getfattr", "--only-values", "-n", "user.sm.kms_key_id", p]))
    assert out == alias


def test_kms_key_id_change_writes_no_version(mnt):
    alias = new_key(mnt)
    p = mnt.p(uniq())
    put(p, b"v")
    ids = version_ids(p)
    xset(p, "user.sm.kms_key_id", alias)
    assert version_ids(p) == ids
    assert read(p) == b"v"


# ================================================================ disable

def test_disabled_key_refuses_reads_with_eacces(mnt):
    alias = new_key(mnt)
    p = secret_under(mnt, alias)
    old, new = version_ids(p)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    assert keys(mnt)[alias][1] == "Disabled"
    expect_errno(errno.EACCES, read, p)
    r = run(["cat", p])
    assert r.returncode != 0 and "Permission denied" in r.stderr
    vdir = mnt.mnt / ".versions" / p.name
    expect_errno(errno.EACCES, read, vdir / new)
    expect_errno(errno.EACCES, read, mnt.mnt / ".stages/AWSCURRENT" / p.name)
    # the old version keeps opening with its own key
    assert read(vdir / old) == b"old under default"
    assert read(mnt.mnt / ".stages/AWSPREVIOUS" / p.name) == \
        b"old under default"
    # metadata is not encrypted: still there
    assert xget(p, "user.sm.version_id") == new
    assert describe(p)["KmsKeyId"] == alias
    xset(mnt.mnt, "user.sm.key.enable", alias)
    assert keys(mnt)[alias][1] == "Enabled"
    assert read(p) == b"new under team"


def test_disabled_key_refuses_writes_at_close(mnt):
    alias = new_key(mnt)
    p = secret_under(mnt, alias)
    assert read(p) == b"new under team"
    before = state(p)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    assert commit(p, b"refused", os.O_WRONLY | os.O_TRUNC) == \
        ("close", errno.EACCES)
    # cp checks close(2) (a shell's `echo >` does not)
    src = q(str(mnt.dir / "src"))
    r = sh(f"printf refused > {src} && cp {src} {q(str(p))}")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # writing through a label is the same PutSecretValue
    assert commit(mnt.mnt / ".stages/AWSPENDING" / p.name, b"refused") == \
        ("close", errno.EACCES)
    assert state(p) == before
    xset(mnt.mnt, "user.sm.key.enable", alias)
    assert read(p) == b"new under team"
    assert state(p) == before
    put(p, b"accepted")
    assert read(p) == b"accepted"


def test_disabled_key_fields_eacces(mnt):
    alias = new_key(mnt)
    p = mnt.p(uniq("kf"))
    put(p, b'{"user":"u","password":"old"}')
    xset(p, "user.sm.kms_key_id", alias)
    put(p, b'{"user":"u","password":"new"}')
    xset(mnt.mnt, "user.sm.key.disable", alias)
    try:
        expect_errno(errno.EACCES, read,
                     mnt.mnt / ".fields" / p.name / "password")
    finally:
        xset(mnt.mnt, "user.sm.key.enable", alias)


def test_disabled_key_fields_hidden_not_leaked(mnt):
    alias = new_key(mnt)
    p = mnt.p(uniq("kf"))
    put(p, b'{"user":"u","password":"old"}')
    xset(p, "user.sm.kms_key_id", alias)
    put(p, b'{"user":"u","password":"new"}')
    assert read(mnt.mnt / ".fields" / p.name / "password") == b"new"
    xset(mnt.mnt, "user.sm.key.disable", alias)
    try:
        with pytest.raises(OSError) as ei:
            read(mnt.mnt / ".fields" / p.name / "password")
        assert ei.value.errno in (errno.EACCES, errno.ENOENT)
    finally:
        xset(mnt.mnt, "user.sm.key.enable", alias)
    assert read(mnt.mnt / ".fields" / p.name / "password") == b"new"


def test_key_chosen_before_first_write(mnt):
    alias = new_key(mnt)
    p = mnt.p(uniq("kb"))
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.setxattr(fd, "user.sm.kms_key_id", alias.encode())
        os.write(fd, b"first under team")
    finally:
        os.close(fd)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    try:
        expect_errno(errno.EACCES, read, p)
    finally:
        xset(mnt.mnt, "user.sm.key.enable", alias)
    assert read(p) == b"first under team"


def test_disable_enable_by_id_and_arn(mnt):
    alias = new_key(mnt)
    arn = keys(mnt)[alias][0]
    key_id = arn.rsplit("/", 1)[1]
    p = secret_under(mnt, alias)
    xset(mnt.mnt, "user.sm.key.disable", key_id)
    expect_errno(errno.EACCES, read, p)
    xset(mnt.mnt, "user.sm.key.enable", arn)
    assert read(p) == b"new under team"
    ok(run(["setfattr", "-n", "user.sm.key.disable", "-v", arn, mnt.mnt]))
    expect_errno(errno.EACCES, read, p)
    ok(run(["setfattr", "-n", "user.sm.key.enable", "-v", key_id, mnt.mnt]))
    assert read(p) == b"new under team"


def test_disable_twice_and_enable_enabled_are_harmless(mnt):
    alias = new_key(mnt)
    xset(mnt.mnt, "user.sm.key.enable", alias)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    assert keys(mnt)[alias][1] == "Disabled"
    xset(mnt.mnt, "user.sm.key.enable", alias)
    assert keys(mnt)[alias][1] == "Enabled"


@pytest.mark.parametrize("spec", [
    "alias/never-made", "", "garbage",
    "11111111-2222-3333-4444-555555555555",
    "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555"])
def test_disable_unknown_key_einval(mnt, spec):
    before = keys(mnt)
    expect_errno(errno.EINVAL, xset, mnt.mnt, "user.sm.key.disable", spec)
    expect_errno(errno.EINVAL, xset, mnt.mnt, "user.sm.key.enable", spec)
    assert keys(mnt) == before


def test_disabled_key_harms_nothing_else(mnt):
    alias = new_key(mnt)
    p = secret_under(mnt, alias)
    other = mnt.p(uniq())
    put(other, b"default key")
    xset(mnt.mnt, "user.sm.key.disable", alias)
    try:
        assert read(other) == b"default key"
        put(other, b"still writable")
        assert read(other) == b"still writable"
        # a secret moved off the disabled key can take new versions again
        xset(p, "user.sm.kms_key_id", "")
        put(p, b"back on default")
        assert read(p) == b"back on default"
    finally:
        xset(mnt.mnt, "user.sm.key.enable", alias)


def test_cannot_choose_disabled_key_for_writes(mnt):
    alias = new_key(mnt)
    xset(mnt.mnt, "user.sm.key.disable", alias)
    p = mnt.p(uniq())
    put(p, b"v")
    try:
        xset(p, "user.sm.kms_key_id", alias)
    except OSError as e:
        # refusing to choose it is fine too
        assert e.errno in (errno.EACCES, errno.EINVAL)
        return
    assert commit(p, b"under disabled", os.O_WRONLY | os.O_TRUNC) == \
        ("close", errno.EACCES)
    assert read(p) == b"v"


# ================================================================ persistence

def test_keys_persist_across_remount(mounted):
    m = mounted
    xset(m.mnt, "user.sm.key.create", "alias/team")
    xset(m.mnt, "user.sm.key.create", "alias/off")
    p = m.p("s")
    put(p, b"v1")
    xset(p, "user.sm.kms_key_id", "alias/team")
    put(p, b"v2")
    q2 = m.p("t")
    put(q2, b"w1")
    xset(q2, "user.sm.kms_key_id", "alias/off")
    put(q2, b"w2")
    xset(m.mnt, "user.sm.key.disable", "alias/off")
    before = keys(m)
    m.remount()
    assert keys(m) == before
    assert keys(m)["alias/team"][1] == "Enabled"
    assert keys(m)["alias/off"][1] == "Disabled"
    assert xget(p, "user.sm.kms_key_id") == "alias/team"
    assert read(p) == b"v2"
    expect_errno(errno.EACCES, read, q2)
    xset(m.mnt, "user.sm.key.enable", "alias/off")
    m.remount()
    assert read(q2) == b"w2"
    assert keys(m)["alias/off"][1] == "Enabled"


def test_cli_key_list_agrees_with_xattr(mnt):
    new_key(mnt)
    out = ok(sfs("key", "list", mnt.mnt))
    assert sorted(out.splitlines()) == \
        sorted(xget(mnt.mnt, "user.sm.keys").splitlines())


# ================================================================ non-root

def test_non_root_cannot_manage_keys(make_mount):
    m = make_mount(allow_other=True)
    os.chmod(m.mnt, 0o777)  # so the kernel lets uid 1000 ask at all
    xset(m.mnt, "user.sm.key.create", "alias/rootkey")
    before = keys(m)
    for verb, arg in [("create", "alias/userkey"), ("disable", "alias/rootkey"),
                      ("enable", "alias/rootkey")]:
        r = as_uid(1000, "setfattr", "-n", f"user.sm.key.{verb}", "-v", arg,
                   m.mnt)
        assert r.returncode != 0, verb
        assert "Permission denied" in r.stderr, r.stderr
    r = as_uid(1000, "/usr/bin/python3", "-c",
               "import os,sys\n"
               "try:\n"
               f"  os.setxattr({str(m.mnt)!r}, 'user.sm.key.create', b'alias/u')\n"
               "except OSError as e:\n"
               "  print(e.errno)\n")
    assert r.stdout.strip() == str(errno.EACCES), (r.stdout, r.stderr)
    assert keys(m) == before
