"""Extended attributes of secrets (BRIEF section 3): identity, dates,
description, KMS key, versions and staging labels, client request tokens,
tags, DescribeSecret, limits and errors. Driven with the xattr syscalls and
with getfattr/setfattr from the attr package.

Most tests share one mount (module scope) and work on their own secret
names; the tests that remount or need a read-only mount use their own."""

import errno
import json
import os
import shlex
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import as_uid, expect_errno, ok, read_file, run, sh
from smhelpers import (ISO_RE, arn_re, commit, describe, labels_of,
                       module_mount, put, raw_getxattr, raw_listxattr, read,
                       stage, state, uniq, version_ids, version_lines, xdel,
                       xget, xlist, xset)

q = shlex.quote
TOKEN = "user.sm.client_request_token"


@pytest.fixture(scope="module")
def mnt():
    yield from module_mount()


@pytest.fixture
def sec(mnt):
    """A fresh secret with two versions: v1 (AWSPREVIOUS), v2 (AWSCURRENT)."""
    p = mnt.p(uniq("x"))
    put(p, b"v1")
    put(p, b"v2")
    return p



def parse_iso(text):
    assert ISO_RE.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc)


# ================================================================ identity

def test_arn_and_name(mnt):
    put(mnt.p("plain"), b"v")
    assert arn_re("plain").match(xget(mnt.p("plain"), "user.sm.arn"))
    assert xget(mnt.p("plain"), "user.sm.name") == "plain"
    os.makedirs(mnt.p("app/db"), exist_ok=True)
    put(mnt.p("app/db/pw"), b"v")
    arn = xget(mnt.p("app/db/pw"), "user.sm.arn")
    assert arn_re("app/db/pw").match(arn), arn
    assert xget(mnt.p("app/db/pw"), "user.sm.name") == "app/db/pw"


def test_arn_is_stable_across_writes_and_differs_between_secrets(sec, mnt):
    arn = xget(sec, "user.sm.arn")
    put(sec, b"v3")
    assert xget(sec, "user.sm.arn") == arn
    other = mnt.p(uniq())
    put(other, b"v")
    assert xget(other, "user.sm.arn") != arn


def test_dates_are_iso8601_utc(sec):
    created = parse_iso(xget(sec, "user.sm.created_date"))
    changed = parse_iso(xget(sec, "user.sm.last_changed_date"))
    now = datetime.now(timezone.utc)
    assert created <= changed <= now + timedelta(seconds=5)
    assert now - created < timedelta(minutes=5)


def test_last_changed_moves_created_stays(sec):
    created = xget(sec, "user.sm.created_date")
    changed = xget(sec, "user.sm.last_changed_date")
    time.sleep(0.01)
    put(sec, b"v3")
    assert xget(sec, "user.sm.created_date") == created
    assert parse_iso(xget(sec, "user.sm.last_changed_date")) > parse_iso(changed)


def test_last_accessed_date_after_first_read(mnt):
    p = mnt.p(uniq())
    put(p, b"v")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.last_accessed_date")
    assert "user.sm.last_accessed_date" not in xlist(p)
    assert "LastAccessedDate" not in describe(p)
    assert read(p) == b"v"
    acc = xget(p, "user.sm.last_accessed_date")
    d = parse_iso(acc)
    # Secrets Manager keeps LastAccessedDate as a day (UTC midnight).
    now = datetime.now(timezone.utc)
    assert d <= now and now - d < timedelta(days=1, minutes=1)
    assert acc.endswith("T00:00:00.000Z"), acc
    assert describe(p)["LastAccessedDate"] == acc
    assert "user.sm.last_accessed_date" in xlist(p)


def test_deleted_date_only_on_deleted(mnt):
    name = uniq("del")
    p = mnt.p(name)
    put(p, b"v")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.deleted_date")
    os.unlink(p)
    d = mnt.mnt / ".deleted" / name
    dd = parse_iso(xget(d, "user.sm.deleted_date"))
    expected = datetime.now(timezone.utc) + timedelta(days=30)
    assert abs((dd - expected).total_seconds()) < 300
    assert describe(d)["DeletedDate"] == xget(d, "user.sm.deleted_date")
    os.rename(d, p)
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.deleted_date")
    assert "DeletedDate" not in describe(p)


# ================================================================ read-only

RO_ATTRS = ["user.sm.arn", "user.sm.name", "user.sm.version_id",
            "user.sm.version_stages", "user.sm.versions",
            "user.sm.created_date", "user.sm.last_changed_date",
            "user.sm.last_accessed_date", "user.sm.deleted_date",
            "user.sm.describe"]


@pytest.mark.parametrize("attr", RO_ATTRS)
def test_read_only_attrs_refuse_set_and_remove(sec, attr):
    read(sec)  # so last_accessed_date exists
    before = state(sec)
    expect_errno(errno.EPERM, xset, sec, attr, "x")
    expect_errno(errno.EPERM, xset, sec, attr, "")
    # Derived attributes are recomputed: removing one succeeds and changes
    # nothing, so that rsync -X can drop what its source lacks.
    xdel(sec, attr)
    assert state(sec) == before


def test_read_only_set_with_setfattr(sec):
    r = run(["setfattr", "-n", "user.sm.arn", "-v", "x", sec])
    assert r.returncode != 0
    assert "not permitted" in r.stderr, r.stderr


# ================================================================ description

def test_description_set_get_remove(sec):
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.description")
    assert "Description" not in describe(sec)
    xset(sec, "user.sm.description", "the prod db")
    assert xget(sec, "user.sm.description") == "the prod db"
    assert describe(sec)["Description"] == "the prod db"
    assert "user.sm.description" in xlist(sec)
    xdel(sec, "user.sm.description")
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.description")
    assert "Description" not in describe(sec)
    assert "user.sm.description" not in xlist(sec)


def test_description_with_setfattr_getfattr(sec):
    ok(run(["setfattr", "-n", "user.sm.description", "-v", "made by setfattr",
            sec]))
    out = ok(run(["getfattr", "--only-values", "-n", "user.sm.description",
                  sec]))
    assert out == "made by setfattr"
    ok(run(["setfattr", "-x", "user.sm.description", sec]))
    r = run(["getfattr", "-n", "user.sm.description", sec])
    assert r.returncode != 0 and "No such attribute" in r.stderr


def test_description_empty_value_clears(sec):
    xset(sec, "user.sm.description", "x")
    xset(sec, "user.sm.description", "")
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.description")


def test_description_2048_characters_accepted(sec):
    xset(sec, "user.sm.description", "d" * 2048)
    assert xget(sec, "user.sm.description") == "d" * 2048
    # characters, not bytes: 2,048 two-byte characters fit
    xset(sec, "user.sm.description", "é" * 2048)
    assert xget(sec, "user.sm.description") == "é" * 2048


def test_description_2049_characters_e2big_and_unchanged(sec):
    xset(sec, "user.sm.description", "keep me")
    before = state(sec)
    expect_errno(errno.E2BIG, xset, sec, "user.sm.description", "d" * 2049)
    expect_errno(errno.E2BIG, xset, sec, "user.sm.description", "é" * 2049)
    assert state(sec) == before
    assert xget(sec, "user.sm.description") == "keep me"


def test_description_must_be_utf8(sec):
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.description", b"\xff\xfe")
    assert state(sec) == before


def test_description_survives_value_updates(sec):
    xset(sec, "user.sm.description", "stays")
    put(sec, b"v3")
    assert xget(sec, "user.sm.description") == "stays"


@pytest.mark.parametrize("attr", ["user.sm.description", "user.sm.kms_key_id"])
def test_remove_absent_attr_is_enodata_and_changes_nothing(sec, attr):
    before = state(sec)
    time.sleep(0.01)
    expect_errno(errno.ENODATA, xdel, sec, attr)
    assert state(sec) == before


# ================================================================ kms key id

def test_kms_key_id_default_is_empty(sec):
    assert xget(sec, "user.sm.kms_key_id") == ""
    assert "KmsKeyId" not in describe(sec)


@pytest.mark.parametrize("spec", [
    "alias/no-such-key",
    "garbage",
    "11111111-2222-3333-4444-555555555555",
    "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555",
    "arn:aws:kms:eu-west-1:000000000000:alias/aws/secretsmanager",
    "arn:aws:kms:us-east-1:999999999999:alias/aws/secretsmanager",
])
def test_kms_key_id_unknown_is_einval(sec, spec):
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.kms_key_id", spec)
    assert state(sec) == before


def test_kms_key_id_default_alias_is_shown_as_default(sec):
    xset(sec, "user.sm.kms_key_id", "alias/aws/secretsmanager")
    assert xget(sec, "user.sm.kms_key_id") == ""
    assert "KmsKeyId" not in describe(sec)
    put(sec, b"v3")
    assert read(sec) == b"v3"


# ================================================================ versions

def test_version_id_and_stages_of_main_file(sec):
    vid = xget(sec, "user.sm.version_id")
    assert vid == stage(sec, "AWSCURRENT")
    assert xget(sec, "user.sm.version_stages") == "AWSCURRENT"
    assert sorted(version_ids(sec)) == sorted(os.listdir(
        sec.parent / ".versions" / sec.name))


def test_versions_lines(sec):
    lines = version_lines(sec)
    assert len(lines) == 2
    (v1, d1, l1), (v2, d2, l2) = lines
    assert ISO_RE.match(d1) and ISO_RE.match(d2) and d1 <= d2
    assert l1 == ["AWSPREVIOUS"] and l2 == ["AWSCURRENT"]
    assert v2 == xget(sec, "user.sm.version_id")
    # shown by the ids of .versions
    assert set(os.listdir(sec.parent / ".versions" / sec.name)) == {v1, v2}


def test_versions_line_for_unlabelled_version(sec):
    v1 = version_ids(sec)[0]
    put(sec, b"v3")
    lines = {v: l for v, _, l in version_lines(sec)}
    assert lines[v1] == []  # deprecated: listed without labels
    raw = xget(sec, "user.sm.versions").splitlines()
    assert any(line.startswith(v1 + " ") for line in raw)


def test_version_stages_lists_all_labels(sec):
    cur = stage(sec, "AWSCURRENT")
    xset(sec, "user.sm.stage.MINE", cur)
    assert set(xget(sec, "user.sm.version_stages").split(",")) == \
        {"AWSCURRENT", "MINE"}


def test_secret_without_value_has_no_version_attrs(mnt):
    p = mnt.p(uniq("touched"))
    ok(run(["touch", p]))
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.version_id")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.version_stages")
    assert xget(p, "user.sm.versions") == ""
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.stage.AWSCURRENT")
    assert "VersionIdsToStages" not in describe(p)
    names = xlist(p)
    assert "user.sm.version_id" not in names
    assert "user.sm.arn" in names


# ================================================================ stage labels

def test_stage_get(sec):
    v1, v2 = version_ids(sec)
    assert stage(sec, "AWSCURRENT") == v2
    assert stage(sec, "AWSPREVIOUS") == v1
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.stage.AWSPENDING")
    # The stage family is read by name, not listed (docs/semantics.md).
    names = xlist(sec)
    assert not [n for n in names if n.startswith("user.sm.stage.")]
    assert xget(sec, "user.sm.version_stages") == "AWSCURRENT"


def test_stage_set_custom_label_and_move_it(sec):
    v1, v2 = version_ids(sec)
    xset(sec, "user.sm.stage.TEST", v1)
    assert stage(sec, "TEST") == v1
    assert describe(sec)["VersionIdsToStages"][v1] == ["AWSPREVIOUS", "TEST"]
    xset(sec, "user.sm.stage.TEST", v2)  # a label sits on one version
    assert stage(sec, "TEST") == v2
    assert labels_of(sec) == {"AWSCURRENT": v2, "AWSPREVIOUS": v1, "TEST": v2}
    assert read(sec) == b"v2"


def test_stage_set_accepts_trailing_newline(sec):
    v1, _ = version_ids(sec)
    xset(sec, "user.sm.stage.NL", v1 + "\n")
    assert stage(sec, "NL") == v1


def test_stage_same_version_again_is_a_no_op(sec):
    v1, _ = version_ids(sec)
    xset(sec, "user.sm.stage.X", v1)
    before = state(sec)
    time.sleep(0.01)
    xset(sec, "user.sm.stage.X", v1)
    assert state(sec) == before


def test_stage_move_awscurrent(sec):
    v1, v2 = version_ids(sec)
    put(sec, b"v3")
    v3 = xget(sec, "user.sm.version_id")
    xset(sec, "user.sm.stage.AWSPENDING", v1)
    xset(sec, "user.sm.stage.AWSCURRENT", v1)
    labels = labels_of(sec)
    # old current gets AWSPREVIOUS; AWSPENDING stays on the target
    assert labels == {"AWSCURRENT": v1, "AWSPENDING": v1, "AWSPREVIOUS": v3}
    assert read(sec) == b"v1"
    assert xget(sec, "user.sm.version_id") == v1
    assert set(xget(sec, "user.sm.version_stages").split(",")) == \
        {"AWSCURRENT", "AWSPENDING"}
    # v2 lost AWSPREVIOUS: deprecated, gone from DescribeSecret's map
    assert v2 not in describe(sec)["VersionIdsToStages"]


def test_stage_remove(sec):
    v1, _ = version_ids(sec)
    xset(sec, "user.sm.stage.GONE", v1)
    xdel(sec, "user.sm.stage.GONE")
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.stage.GONE")
    assert "GONE" not in labels_of(sec)
    xdel(sec, "user.sm.stage.AWSPREVIOUS")
    assert labels_of(sec) == {"AWSCURRENT": version_ids(sec)[1]}
    assert list(describe(sec)["VersionIdsToStages"]) == [version_ids(sec)[1]]


def test_stage_remove_awscurrent_einval(sec):
    before = state(sec)
    expect_errno(errno.EINVAL, xdel, sec, "user.sm.stage.AWSCURRENT")
    assert state(sec) == before
    assert read(sec) == b"v2"


def test_stage_remove_missing_label_enodata(sec):
    before = state(sec)
    expect_errno(errno.ENODATA, xdel, sec, "user.sm.stage.NOT_THERE")
    assert state(sec) == before


@pytest.mark.parametrize("value", [
    "0" * 36,
    "11111111-2222-3333-4444-555555555555",
    "",
    "x" * 65,
])
def test_stage_to_unknown_version_einval(sec, value):
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.stage.AWSCURRENT", value)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.stage.NEW", value)
    assert state(sec) == before


def test_stage_bad_label_name_einval(sec):
    v1, _ = version_ids(sec)
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.stage.has space", v1)
    expect_errno(errno.EINVAL, xset, sec, "user.sm.stage.", v1)
    assert state(sec) == before


def test_long_stage_label(sec):
    v1, _ = version_ids(sec)
    label = "L" * 241  # xattr names stop at 255 bytes, "user.sm.stage." included
    xset(sec, f"user.sm.stage.{label}", v1)
    assert stage(sec, label) == v1


def fill_labels(p, upto=20):
    """Put custom labels on the current version until p carries `upto`."""
    cur = stage(p, "AWSCURRENT")
    n = len(labels_of(p))
    i = 0
    while n < upto:
        xset(p, f"user.sm.stage.C{i:02d}", cur)
        i += 1
        n += 1
    assert len(labels_of(p)) == upto
    return cur


def test_21st_label_enospc_and_changes_nothing(sec):
    cur = fill_labels(sec)
    v1 = stage(sec, "AWSPREVIOUS")
    before = state(sec)
    expect_errno(errno.ENOSPC, xset, sec, "user.sm.stage.TWENTYONE", cur)
    expect_errno(errno.ENOSPC, xset, sec, "user.sm.stage.TWENTYONE", v1)
    assert state(sec) == before
    # moving a label that exists is fine at 20
    xset(sec, "user.sm.stage.C00", v1)
    assert stage(sec, "C00") == v1
    # and after one comes off there is room again
    xdel(sec, "user.sm.stage.C01")
    xset(sec, "user.sm.stage.TWENTYONE", v1)
    assert len(labels_of(sec)) == 20


def test_moving_awscurrent_refused_when_awsprevious_would_be_21st(mnt):
    p = mnt.p(uniq())
    put(p, b"only")
    put(p, b"second")
    xdel(p, "user.sm.stage.AWSPREVIOUS")
    cur = fill_labels(p)
    old = [v for v in version_ids(p) if v != cur][0]
    before = state(p)
    expect_errno(errno.ENOSPC, xset, p, "user.sm.stage.AWSCURRENT", old)
    assert state(p) == before
    assert read(p) == b"second"


def test_rollback_recipe(mnt):
    p = mnt.p(uniq("rb"))
    put(p, b"good")
    good = xget(p, "user.sm.version_id")
    put(p, b"bad")
    bad = xget(p, "user.sm.version_id")
    f = q(str(p))
    ok(sh(f'setfattr -n user.sm.stage.AWSCURRENT -v '
          f'"$(getfattr --only-values -n user.sm.stage.AWSPREVIOUS {f})" {f}'))
    assert ok(run(["cat", p])) == "good"
    assert stage(p, "AWSPREVIOUS") == bad
    assert stage(p, "AWSCURRENT") == good
    assert len(version_ids(p)) == 2  # no new version: a label moved
    # and back again
    ok(sh(f'setfattr -n user.sm.stage.AWSCURRENT -v '
          f'"$(getfattr --only-values -n user.sm.stage.AWSPREVIOUS {f})" {f}'))
    assert read(p) == b"bad"


def test_versions_line_with_20_long_labels(mnt):
    p = mnt.p(uniq("longlabels"))
    put(p, b"v")
    vid = xget(p, "user.sm.version_id")
    labels = {"AWSCURRENT"}
    for i in range(19):
        label = chr(ord("A") + i) * 230
        xset(p, f"user.sm.stage.{label}", vid)
        labels.add(label)
    assert set(xget(p, "user.sm.version_stages").split(",")) == labels
    raw = xget(p, "user.sm.versions")
    assert raw.endswith("\n")
    (v, _, got), = version_lines(p)
    assert v == vid and set(got) == labels


def test_stage_changes_moves_last_changed_date_not_value(sec):
    v1, _ = version_ids(sec)
    lc = xget(sec, "user.sm.last_changed_date")
    time.sleep(0.01)
    xset(sec, "user.sm.stage.AWSCURRENT", v1)
    assert read(sec) == b"v1"
    assert xget(sec, "user.sm.last_changed_date") >= lc


# ================================================================ tokens

def test_token_is_write_only(sec):
    xset(sec, TOKEN, "a" * 40)
    expect_errno(errno.ENODATA, os.getxattr, sec, TOKEN)
    assert TOKEN not in xlist(sec)


@pytest.mark.parametrize("length", [0, 1, 31, 65, 100])
def test_token_length_einval(sec, length):
    expect_errno(errno.EINVAL, xset, sec, TOKEN, "t" * length)


@pytest.mark.parametrize("token", [
    "t" * 32,
    "t" * 64,
    "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
    "01234567-89ab-cdef-0123-456789abcdef",
])
def test_token_becomes_version_id(sec, token):
    xset(sec, TOKEN, token)
    put(sec, b"with token")
    assert xget(sec, "user.sm.version_id") == token
    assert stage(sec, "AWSCURRENT") == token
    assert token in os.listdir(sec.parent / ".versions" / sec.name)
    assert read_file(sec.parent / ".versions" / sec.name / token) == \
        b"with token"


def test_token_is_consumed_by_its_commit(sec):
    xset(sec, TOKEN, "k" * 40)
    put(sec, b"v3")
    put(sec, b"v4")
    vid = xget(sec, "user.sm.version_id")
    assert vid != "k" * 40
    assert stage(sec, "AWSPREVIOUS") == "k" * 40


def test_token_replay_same_value_commits_nothing(sec):
    tok = "r" * 36
    xset(sec, TOKEN, tok)
    put(sec, b"replayed")
    before = state(sec)
    xset(sec, TOKEN, tok)
    assert commit(sec, b"replayed") is None
    assert state(sec) == before
    assert xget(sec, "user.sm.version_id") == tok
    assert len(version_ids(sec)) == 3


def test_token_replay_different_value_eexist_at_close(sec):
    tok = "d" * 36
    xset(sec, TOKEN, tok)
    put(sec, b"first")
    assert read(sec) == b"first"
    before = state(sec)
    xset(sec, TOKEN, tok)
    assert commit(sec, b"different", os.O_WRONLY | os.O_TRUNC) == \
        ("close", errno.EEXIST)
    assert read(sec) == b"first"
    assert state(sec) == before
    # the token was used up by the failed commit
    put(sec, b"different")
    assert xget(sec, "user.sm.version_id") != tok
    assert read(sec) == b"different"


def test_token_kept_for_a_retry_after_a_commit_refused_for_size(sec):
    """A refused commit does not spend the token set for it: the retry
    makes the version it names, and a second replay makes nothing."""
    tok = "z" * 40
    xset(sec, TOKEN, tok)
    step = commit(sec, b"x" * 65537, os.O_WRONLY | os.O_TRUNC)
    assert step is not None and step[1] == errno.EFBIG
    assert read(sec) == b"v2"
    put(sec, b"the retry")
    assert xget(sec, "user.sm.version_id") == tok
    before = state(sec)
    xset(sec, TOKEN, tok)
    put(sec, b"the retry")
    assert state(sec) == before
    put(sec, b"later, without a token")
    assert xget(sec, "user.sm.version_id") != tok


def test_token_kept_after_a_refused_commit_is_given_up_by_removal(sec):
    """Removing user.sm.client_request_token drops a pending token (and
    import date): what a caller that will not retry does."""
    tok = "k" * 40
    xset(sec, TOKEN, tok)
    step = commit(sec, b"x" * 65537, os.O_WRONLY | os.O_TRUNC)
    assert step is not None and step[1] == errno.EFBIG
    assert read(sec) == b"v2"
    xdel(sec, TOKEN)
    put(sec, b"no token now")
    assert xget(sec, "user.sm.version_id") != tok
    xdel(sec, TOKEN)  # nothing pending: still fine


def test_token_on_new_file_before_first_write(mnt):
    p = mnt.p(uniq("newtok"))
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.setxattr(fd, TOKEN, b"n" * 40)
        os.write(fd, b"first")
    finally:
        os.close(fd)
    assert xget(p, "user.sm.version_id") == "n" * 40


def test_token_with_setfattr(sec):
    tok = "S" * 48
    ok(run(["setfattr", "-n", TOKEN, "-v", tok, sec]))
    ok(sh(f"printf from-shell > {q(str(sec))}"))
    assert xget(sec, "user.sm.version_id") == tok


# ================================================================ tags

def test_tags_set_get_overwrite_remove(sec):
    assert "Tags" not in describe(sec)  # never tagged
    xset(sec, "user.tag.team", "payments")
    xset(sec, "user.tag.env", "prod")
    assert xget(sec, "user.tag.team") == "payments"
    assert "user.tag.team" in xlist(sec)
    xset(sec, "user.tag.team", "billing")  # TagResource overwrites by key
    assert xget(sec, "user.tag.team") == "billing"
    tags = describe(sec)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == \
        [("env", "prod"), ("team", "billing")]
    xdel(sec, "user.tag.team")
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.tag.team")
    assert describe(sec)["Tags"] == [{"Key": "env", "Value": "prod"}]
    xdel(sec, "user.tag.env")
    assert describe(sec)["Tags"] == []  # [] once tags existed


def test_tags_with_setfattr_getfattr(sec):
    ok(run(["setfattr", "-n", "user.tag.owner", "-v", "alice", sec]))
    out = ok(run(["getfattr", "--only-values", "-n", "user.tag.owner", sec]))
    assert out == "alice"
    out = ok(run(["getfattr", "-d", "-m", "^user.tag.", sec]))
    assert 'user.tag.owner="alice"' in out
    ok(run(["setfattr", "-x", "user.tag.owner", sec]))
    assert "user.tag.owner" not in xlist(sec)


def test_tag_keys_case_sensitive(sec):
    xset(sec, "user.tag.Env", "A")
    xset(sec, "user.tag.env", "b")
    assert xget(sec, "user.tag.Env") == "A"
    assert xget(sec, "user.tag.env") == "b"


def test_tag_value_bounds(sec):
    xset(sec, "user.tag.empty", "")
    assert xget(sec, "user.tag.empty") == ""
    xset(sec, "user.tag.v256", "v" * 256)
    assert xget(sec, "user.tag.v256") == "v" * 256
    xset(sec, "user.tag.mb256", "é" * 256)  # characters, not bytes
    assert xget(sec, "user.tag.mb256") == "é" * 256
    before = state(sec)
    expect_errno(errno.E2BIG, xset, sec, "user.tag.v257", "v" * 257)
    expect_errno(errno.E2BIG, xset, sec, "user.tag.v256", "v" * 257)
    expect_errno(errno.E2BIG, xset, sec, "user.tag.mb257", "é" * 257)
    assert state(sec) == before


def test_tag_key_bounds(sec):
    xset(sec, "user.tag." + "k" * 128, "v")
    assert xget(sec, "user.tag." + "k" * 128) == "v"
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.tag." + "k" * 129, "v")
    expect_errno(errno.EINVAL, xset, sec, "user.tag.", "v")
    assert state(sec) == before


@pytest.mark.parametrize("key", ["aws:x", "aws:", "aws:cloudformation:stack"])
def test_tag_aws_prefix_einval(sec, key):
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, f"user.tag.{key}", "v")
    assert state(sec) == before


def test_tag_value_must_be_utf8(sec):
    before = state(sec)
    expect_errno(errno.EINVAL, xset, sec, "user.tag.bin", b"\xff")
    assert state(sec) == before


def test_tag_flags(sec):
    xset(sec, "user.tag.a", "1", os.XATTR_CREATE)
    assert xget(sec, "user.tag.a") == "1"
    before = state(sec)
    expect_errno(errno.EEXIST, xset, sec, "user.tag.a", "2", os.XATTR_CREATE)
    expect_errno(errno.ENODATA, xset, sec, "user.tag.b", "2", os.XATTR_REPLACE)
    assert state(sec) == before
    xset(sec, "user.tag.a", "3", os.XATTR_REPLACE)
    assert xget(sec, "user.tag.a") == "3"


def test_remove_missing_tag_enodata(sec):
    xset(sec, "user.tag.here", "x")
    before = state(sec)
    expect_errno(errno.ENODATA, xdel, sec, "user.tag.nothere")
    assert state(sec) == before


def test_50_tags_and_51st_enospc(sec):
    for i in range(50):
        xset(sec, f"user.tag.k{i:02d}", f"v{i}")
    assert len(describe(sec)["Tags"]) == 50
    before = state(sec)
    expect_errno(errno.ENOSPC, xset, sec, "user.tag.k50", "v")
    assert state(sec) == before
    xset(sec, "user.tag.k00", "changed")  # overwriting at 50 is fine
    assert xget(sec, "user.tag.k00") == "changed"
    xdel(sec, "user.tag.k01")
    xset(sec, "user.tag.k50", "room again")
    assert len(describe(sec)["Tags"]) == 50


def test_tags_survive_value_updates(sec):
    xset(sec, "user.tag.keep", "me")
    put(sec, b"v3")
    assert xget(sec, "user.tag.keep") == "me"


# ================================================================ done when

def test_done_when_refused_changes_change_nothing(sec):
    """The issue's 'Done when': a 21st label, an aws: tag, a 51st tag and a
    2,049-character description are refused, and nothing changes."""
    cur = fill_labels(sec)
    for i in range(50):
        xset(sec, f"user.tag.t{i:02d}", "v")
    xset(sec, "user.sm.description", "original")
    value = read(sec)
    before = state(sec)
    f = q(str(sec))
    for cmd, err in [
        (f"setfattr -n user.sm.stage.L21 -v {cur} {f}", errno.ENOSPC),
        (f"setfattr -n user.tag.aws:owner -v x {f}", errno.EINVAL),
        (f"setfattr -n user.tag.t50 -v x {f}", errno.ENOSPC),
        (f"setfattr -n user.sm.description -v {'d' * 2049} {f}", errno.E2BIG),
    ]:
        r = sh(cmd)
        assert r.returncode != 0, cmd
        assert os.strerror(err) in r.stderr, (cmd, r.stderr)
    expect_errno(errno.ENOSPC, xset, sec, "user.sm.stage.L21", cur)
    expect_errno(errno.EINVAL, xset, sec, "user.tag.aws:owner", "x")
    expect_errno(errno.ENOSPC, xset, sec, "user.tag.t50", "x")
    expect_errno(errno.E2BIG, xset, sec, "user.sm.description", "d" * 2049)
    assert state(sec) == before
    assert read(sec) == value


def test_done_when_json_fields_and_previous(mnt):
    os.makedirs(mnt.p("prod"), exist_ok=True)
    p = mnt.p("prod/db")
    db = {"engine": "postgres", "host": "h", "username": "u", "password": "p",
          "port": 5432}
    put(p, json.dumps(db).encode())
    assert ok(run(["cat", mnt.mnt / ".fields/prod/db/password"])) == "p"
    assert ok(run(["cat", mnt.mnt / ".fields/prod/db/port"])) == "5432"
    put(p, json.dumps(dict(db, password="p2")).encode())
    assert ok(run(["cat", mnt.mnt / ".fields/prod/db/password"])) == "p2"
    prev = ok(run(["cat", mnt.mnt / ".stages/AWSPREVIOUS/prod/db"]))
    assert json.loads(prev) == db


# ================================================================ describe

def test_describe_fields(sec):
    xset(sec, "user.sm.description", "desc")
    xset(sec, "user.tag.k", "v")
    v1, v2 = version_ids(sec)
    d = describe(sec)
    assert d["ARN"] == xget(sec, "user.sm.arn")
    assert d["Name"] == sec.name
    assert d["Description"] == "desc"
    assert "KmsKeyId" not in d
    assert d["CreatedDate"] == xget(sec, "user.sm.created_date")
    assert d["LastChangedDate"] == xget(sec, "user.sm.last_changed_date")
    assert "LastAccessedDate" not in d
    assert "DeletedDate" not in d
    assert d["Tags"] == [{"Key": "k", "Value": "v"}]
    assert d["VersionIdsToStages"] == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    for k in ("CreatedDate", "LastChangedDate"):
        assert ISO_RE.match(d[k])


def test_describe_only_labelled_versions(sec):
    v1, v2 = version_ids(sec)
    put(sec, b"v3")
    v3 = xget(sec, "user.sm.version_id")
    assert describe(sec)["VersionIdsToStages"] == {
        v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}
    assert v1 in version_ids(sec)


def test_describe_with_getfattr(sec):
    out = ok(run(["getfattr", "--only-values", "-n", "user.sm.describe", sec]))
    assert json.loads(out)["Name"] == sec.name


# ================================================================ listing

EXPECTED_LISTED = {"user.sm.arn", "user.sm.name", "user.sm.versions",
                   "user.sm.created_date", "user.sm.last_changed_date",
                   "user.sm.describe", "user.sm.version_id",
                   "user.sm.version_stages"}


def test_listxattr_names(sec):
    names = set(xlist(sec))
    assert EXPECTED_LISTED <= names
    assert TOKEN not in names
    for n in names:
        assert n.startswith("user."), n
        xget(sec, n)  # every listed name is readable


def test_getfattr_dump_lists_readable_ones(sec):
    xset(sec, "user.sm.description", "d")
    xset(sec, "user.tag.t", "v")
    r = run(["getfattr", "--absolute-names", "-d", "-m", "-", sec])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    dumped = {line.split("=", 1)[0] for line in r.stdout.splitlines()
              if "=" in line}
    assert EXPECTED_LISTED | {"user.sm.description", "user.tag.t"} <= dumped
    assert dumped == set(xlist(sec))
    assert 'user.sm.name="%s"' % sec.name in r.stdout


def test_erange_when_buffer_too_small(sec):
    n, err = raw_getxattr(sec, "user.sm.name", 0)
    assert err == 0 and n == len(sec.name)
    n, err = raw_getxattr(sec, "user.sm.name", 1)
    assert err == errno.ERANGE
    n, err = raw_listxattr(sec, 0)
    assert err == 0 and n > 0
    n2, err = raw_listxattr(sec, 4)
    assert err == errno.ERANGE


@pytest.mark.parametrize("name", [
    "security.capability", "security.selinux", "system.posix_acl_access",
    "system.posix_acl_default", "trusted.overlay.opaque"])
def test_kernel_probes_fast_enodata(sec, name):
    t0 = time.monotonic()
    for _ in range(100):
        expect_errno(errno.ENODATA, os.getxattr, sec, name)
    assert time.monotonic() - t0 < 2.0


def test_foreign_namespaces(sec):
    before = state(sec)
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.other")
    expect_errno(errno.ENODATA, os.getxattr, sec, "user.sm.no_such_attr")
    expect_errno((errno.EOPNOTSUPP, errno.EPERM), xset, sec, "user.other", "x")
    expect_errno((errno.EOPNOTSUPP, errno.EPERM), xset, sec,
                 "security.test", "x")
    expect_errno((errno.EOPNOTSUPP, errno.EPERM), xset, sec,
                 "trusted.test", "x")
    expect_errno((errno.ENODATA, errno.EOPNOTSUPP), xdel, sec, "user.other")
    assert state(sec) == before


def test_folders_carry_no_secret_attrs(mnt):
    os.makedirs(mnt.p("folder1"), exist_ok=True)
    expect_errno(errno.ENODATA, os.getxattr, mnt.p("folder1"), "user.sm.name")
    assert xlist(mnt.p("folder1")) == []
    expect_errno((errno.EOPNOTSUPP, errno.EPERM), xset, mnt.p("folder1"),
                 "user.tag.x", "y")


def test_refused_changes_on_deleted_secret(mnt):
    name = uniq("gone")
    p = mnt.p(name)
    put(p, b"v")
    xset(p, "user.tag.t", "v")
    os.unlink(p)
    d = mnt.mnt / ".deleted" / name
    before = state(d)
    assert "user.sm.deleted_date" in before
    for n, v in [("user.tag.t", "w"), ("user.tag.new", "w"),
                 ("user.sm.description", "x"),
                 ("user.sm.stage.AWSCURRENT", before["user.sm.version_id"]),
                 (TOKEN, "t" * 40)]:
        expect_errno((errno.EPERM, errno.EACCES, errno.EINVAL), xset, d, n, v)
    expect_errno((errno.EPERM, errno.EACCES, errno.EINVAL), xdel, d,
                 "user.tag.t")
    assert state(d) == before


# ================================================================ other mounts

def test_metadata_set_on_new_file_before_close_persists(mounted):
    """cp -a and tar --xattrs set xattrs on the file they are creating."""
    m = mounted
    fd = os.open(m.p("early"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.setxattr(fd, "user.tag.before", b"1")
        os.setxattr(fd, "user.sm.description", b"set early")
        os.write(fd, b"value")
        os.setxattr(fd, "user.tag.after", b"2")
    finally:
        os.close(fd)
    fd = os.open(m.p("touched"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.setxattr(fd, "user.tag.t", b"3")
    finally:
        os.close(fd)
    m.remount()
    d = describe(m.p("early"))
    assert sorted((t["Key"], t["Value"]) for t in d["Tags"]) == \
        [("after", "2"), ("before", "1")]
    assert d["Description"] == "set early"
    assert read(m.p("early")) == b"value"
    assert describe(m.p("touched"))["Tags"] == [{"Key": "t", "Value": "3"}]


def test_kernel_checks_permissions_on_metadata(make_mount):
    m = make_mount(allow_other=True)
    os.chmod(m.mnt, 0o777)
    mine, theirs = m.p("mine"), m.p("theirs")
    put(mine, b"v")
    put(theirs, b"v")
    os.chown(theirs, 1000, 1000)
    r = as_uid(1000, "getfattr", "-n", "user.sm.name", mine)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_uid(1000, "setfattr", "-n", "user.tag.x", "-v", "y", mine)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert "user.tag.x" not in xlist(mine)
    ok(as_uid(1000, "setfattr", "-n", "user.tag.x", "-v", "y", theirs))
    out = ok(as_uid(1000, "getfattr", "--only-values", "-n", "user.tag.x",
                    theirs))
    assert out == "y"
    ok(as_uid(1000, "setfattr", "-n", "user.sm.description", "-v", "d",
              theirs))
    assert xget(theirs, "user.sm.description") == "d"


def test_everything_persists_across_remount(mounted):
    m = mounted
    p = m.p("persist")
    put(p, b"one")
    put(p, b"two")
    put(p, b"three")
    v1, v2, v3 = version_ids(p)
    xset(p, "user.sm.stage.AWSCURRENT", v2)  # roll back
    xset(p, "user.sm.stage.CUSTOM", v1)
    xset(p, "user.tag.team", "ops")
    xset(p, "user.tag.gone", "x")
    xdel(p, "user.tag.gone")
    xset(p, "user.sm.description", "kept")
    xset(m.mnt, "user.sm.key.create", "alias/persisted")
    xset(p, "user.sm.kms_key_id", "alias/persisted")
    put(p, b"four")
    read(p)
    before = state(p)
    versions = version_lines(p)
    m.remount()
    assert state(p) == before
    assert version_lines(p) == versions
    assert read(p) == b"four"
    assert read(m.mnt / ".stages/CUSTOM/persist") == b"one"
    assert read(m.mnt / ".stages/AWSPREVIOUS/persist") == b"two"
    assert xget(p, "user.sm.kms_key_id") == "alias/persisted"
    assert describe(p)["Tags"] == [{"Key": "team", "Value": "ops"}]


def test_read_only_mount_refuses_xattr_changes(mounted):
    m = mounted
    p = m.p("ro")
    put(p, b"v")
    xset(p, "user.tag.t", "v")
    before = state(p)
    m.remount(ro=True)
    assert state(p) == before
    for n, v in [("user.tag.t", "w"), ("user.sm.description", "d"),
                 ("user.sm.stage.X", before["user.sm.version_id"]),
                 (TOKEN, "t" * 40)]:
        expect_errno(errno.EROFS, xset, p, n, v)
    expect_errno(errno.EROFS, xdel, p, "user.tag.t")
    assert state(p) == before
