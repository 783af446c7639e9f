"""Conformance: the 25 edge cases of reference/aws-semantics.md section 17,
checked through their filesystem counterparts.

Mapping: CreateSecret = create + write + close (without a value: touch);
PutSecretValue = write; UpdateSecret with a value = write as well;
GetSecretValue = read (VersionStage: .stages/LABEL/NAME, VersionId:
.versions/NAME/ID); DescribeSecret = user.sm.describe;
ListSecretVersionIds(IncludeDeprecated) = .versions/NAME and user.sm.versions;
UpdateSecretVersionStage = setxattr/removexattr user.sm.stage.LABEL;
ClientRequestToken = user.sm.client_request_token; TagResource /
UntagResource = setxattr/removexattr user.tag.KEY; DeleteSecret = rm with the
mount's recovery_window (0 = ForceDeleteWithoutRecovery); RestoreSecret =
mv .deleted/NAME NAME; ListSecrets = readdir.

Cases with no test, and parts of cases that have no counterpart:

| case | what                          | why no test                                            |
|------|-------------------------------|--------------------------------------------------------|
| 08   | raw request without a token   | no wire protocol: every commit gets a token (a UUID    |
|      |                               | unless user.sm.client_request_token was set), so a     |
|      |                               | request "without a token" cannot be made               |
| 23   | ListSecrets filters           | readdir has no filters, sorting or pagination; there   |
|      |                               | is no ListSecrets entry shape (SecretVersionsToStages) |
| 24   | RotateSecret                  | rotation is not built (no Lambda, no placeholder       |
|      |                               | version, no RotateSecret counterpart)                  |
| 25   | GetRandomPassword, audit log  | neither is built (audit_log= is refused at mount)      |
| 10*  | SecretString and SecretBinary | a file has one byte string: the kind is derived from   |
|      | both given / neither given    | it (UTF-8 without NUL = string), so "both" cannot be   |
|      |                               | expressed; "neither" = the empty value (tested)        |
| 12*  | VersionId + VersionStage that | a path names a version either by id (.versions) or by  |
|      | do not match                  | label (.stages), never both                            |
| 13*  | moving AWSCURRENT without     | setxattr user.sm.stage.AWSCURRENT always takes it from |
|      | RemoveFromVersionId           | its holder: the "omitted" form does not exist          |
| 16*  | window and force together     | one mount option, recovery_window, 0 meaning force     |
| 17*  | RotateSecret while deleted    | rotation is not built                                  |
| 19*  | force delete of a nonexistent | rm of a missing name is ENOENT as on any filesystem    |
|      | or already scheduled secret   | (rm -f succeeds); a scheduled one is not in its folder |
|      |                               | and .deleted/NAME refuses unlink                       |
| 20*  | leading "/" in a name;        | a path's leading "/" is the mount root; there is no    |
|      | SecretId checks per operation | SecretId apart from the path                           |
| 21*  | lookup by full / partial ARN, | secrets are found by path only                         |
|      | name-plus-suffix lookup       |                                                        |

Documented deviations the tests pin: creating the name of a secret pending
deletion restores it and adds the value (AWS: InvalidRequestException,
case 18); versions are pruned as soon as there are more than 100 (oldest
unlabelled first, no 24-hour rule), so writes never fail with
LimitExceededException (case 15).
"""

import errno
import os
import shlex
from datetime import datetime, timedelta, timezone

import pytest

from conftest import expect_errno, ok, run, sfs, sh, write_file
from smhelpers import (arn_re, commit, describe, labels_of, module_mount, put,
                       read, stage, state, uniq, version_ids, version_lines,
                       xdel, xget, xlist, xset)

q = shlex.quote
TOKEN = "user.sm.client_request_token"


@pytest.fixture(scope="module")
def mnt():
    yield from module_mount()



def iso(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc)


def create_with_token(path, value, token):
    """CreateSecret with a ClientRequestToken: the token is set on the new
    file while it is open, before the first commit."""
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.setxattr(fd, TOKEN, token.encode())
        os.write(fd, value)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)


# 01 ----------------------------------------------------------------------

def test_case_01_create_then_get_current_with_token_as_version_id(mnt):
    p = mnt.p(uniq("c01"))
    tok = "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"
    create_with_token(p, b"created", tok)
    assert read(p) == b"created"
    assert xget(p, "user.sm.version_id") == tok
    assert xget(p, "user.sm.version_stages") == "AWSCURRENT"
    assert describe(p)["VersionIdsToStages"] == {tok: ["AWSCURRENT"]}
    # the same through touch (CreateSecret without a value) + token + write
    p2 = mnt.p(uniq("c01"))
    ok(run(["touch", p2]))
    xset(p2, TOKEN, "t" * 40)
    put(p2, b"first")
    assert read(p2) == b"first"
    assert xget(p2, "user.sm.version_id") == "t" * 40
    assert xget(p2, "user.sm.version_stages") == "AWSCURRENT"


# 02 ----------------------------------------------------------------------

def test_case_02_create_without_value(mnt):
    name = uniq("c02")
    p = mnt.p(name)
    ok(run(["touch", p]))
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.version_id")
    assert "VersionIdsToStages" not in describe(p)
    assert version_lines(p) == []
    assert os.listdir(mnt.mnt / ".versions" / name) == []
    # GetSecretValue(VersionStage=AWSCURRENT): not found
    expect_errno(errno.ENOENT, read, mnt.mnt / ".stages/AWSCURRENT" / name)
    # the file itself: no bytes, and no read (ResourceNotFoundException)
    assert os.stat(p).st_size == 0
    expect_errno(errno.ENODATA, read, p)
    put(p, b"first value")
    (vid, _, labels), = version_lines(p)
    assert labels == ["AWSCURRENT"]
    assert read(p) == b"first value"


def test_case_02_first_version_gets_awscurrent_even_if_not_asked(mnt):
    name = uniq("c02")
    ok(run(["touch", mnt.p(name)]))
    put(mnt.mnt / ".stages/AWSPENDING" / name, b"pending first")
    assert set(labels_of(mnt.p(name))) == {"AWSCURRENT", "AWSPENDING"}
    assert read(mnt.p(name)) == b"pending first"


# 03 ----------------------------------------------------------------------

def test_case_03_put_without_stages(mnt):
    name = uniq("c03")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    v1, v2 = version_ids(p)
    put(p, b"3")
    v3 = xget(p, "user.sm.version_id")
    assert labels_of(p) == {"AWSCURRENT": v3, "AWSPREVIOUS": v2}
    assert read(p) == b"3"
    # the former AWSPREVIOUS holder drops out of the default listing ...
    assert set(describe(p)["VersionIdsToStages"]) == {v2, v3}
    # ... and is still there for IncludeDeprecated, without labels
    lines = {v: l for v, _, l in version_lines(p)}
    assert lines[v1] == []
    assert v1 in os.listdir(mnt.mnt / ".versions" / name)


# 04 ----------------------------------------------------------------------

def test_case_04_put_with_awspending_keeps_current(mnt):
    name = uniq("c04")
    p = mnt.p(name)
    put(p, b"current")
    cur = xget(p, "user.sm.version_id")
    put(mnt.mnt / ".stages/AWSPENDING" / name, b"pending")
    assert read(p) == b"current"
    assert xget(p, "user.sm.version_id") == cur
    labels = labels_of(p)
    assert labels["AWSCURRENT"] == cur
    assert labels["AWSPENDING"] != cur
    assert "AWSPREVIOUS" not in labels
    assert read(mnt.mnt / ".stages/AWSPENDING" / name) == b"pending"


# 05 ----------------------------------------------------------------------

def test_case_05_custom_labels_move_and_deprecate(mnt):
    name = uniq("c05")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    put(p, b"3")
    v1, v2, v3 = version_ids(p)
    xset(p, "user.sm.stage.BLUE", v1)  # v1's only label
    put(mnt.mnt / ".stages/BLUE" / name, b"blue")
    labels = labels_of(p)
    new = labels["BLUE"]
    assert new not in (v1, v2, v3)
    assert labels["AWSCURRENT"] == v3 and read(p) == b"3"
    # v1 has no label: gone from DescribeSecret, shown with IncludeDeprecated
    assert v1 not in describe(p)["VersionIdsToStages"]
    assert {v: l for v, _, l in version_lines(p)}[v1] == []
    assert read(mnt.mnt / ".versions" / name / v1) == b"1"


# 06 ----------------------------------------------------------------------

def test_case_06_token_replay_same_value_is_idempotent(mnt):
    p = mnt.p(uniq("c06"))
    tok = "c" * 36
    create_with_token(p, b"v1", tok)           # CreateSecret
    xset(p, TOKEN, tok)
    assert commit(p, b"v1", os.O_WRONLY | os.O_TRUNC) is None
    assert version_ids(p) == [tok]
    tok2 = "p" * 36
    xset(p, TOKEN, tok2)                       # PutSecretValue / UpdateSecret
    put(p, b"v2")
    before = state(p)
    xset(p, TOKEN, tok2)
    assert commit(p, b"v2", os.O_WRONLY | os.O_TRUNC) is None
    assert state(p) == before
    assert version_ids(p) == [tok, tok2]
    assert xget(p, "user.sm.version_id") == tok2
    assert read(p) == b"v2"


# 07 ----------------------------------------------------------------------

def test_case_07_token_replay_different_value_eexist(mnt):
    p = mnt.p(uniq("c07"))
    tok = "c" * 36
    create_with_token(p, b"v1", tok)
    tok2 = "p" * 36
    xset(p, TOKEN, tok2)
    put(p, b"v2")
    assert read(p) == b"v2"
    before = state(p)
    for t in (tok, tok2):  # the Create token and the Put token
        xset(p, TOKEN, t)
        assert commit(p, b"other", os.O_WRONLY | os.O_TRUNC) == \
            ("close", errno.EEXIST)
        assert read(p) == b"v2"
        assert state(p) == before


# 09 ----------------------------------------------------------------------

def test_case_09_token_length_bounds(mnt):
    p = mnt.p(uniq("c09"))
    put(p, b"v")
    before = state(p)
    expect_errno(errno.EINVAL, xset, p, TOKEN, "a" * 31)
    expect_errno(errno.EINVAL, xset, p, TOKEN, "a" * 65)
    put(p, b"after refused tokens")
    assert xget(p, "user.sm.version_id") not in ("a" * 31, "a" * 65)
    for i, tok in enumerate(["3" * 32, "6" * 64,
                             "EXAMPLE2-90ab-cdef-fedc-ba987SECRET2",
                             "not_a_uuid.at+all=ok@" + "x" * 11]):
        xset(p, TOKEN, tok)
        put(p, b"value %d" % i)
        assert xget(p, "user.sm.version_id") == tok
    assert before["user.sm.arn"] == xget(p, "user.sm.arn")


# 10 ----------------------------------------------------------------------

def test_case_10_empty_value_refused(mnt):
    p = mnt.p(uniq("c10"))
    put(p, b"keep")
    ids = version_ids(p)
    # docs/semantics.md: an emptied secret keeps its value (shells close a
    # fresh descriptor before writing), refused at the last close: close(2)
    # may return 0 or EINVAL, but nothing is committed
    assert commit(p, b"", os.O_WRONLY | os.O_TRUNC) in \
        (None, ("close", errno.EINVAL))
    expect_errno(errno.EINVAL, os.truncate, p, 0)
    assert read(p) == b"keep"
    assert version_ids(p) == ids


def test_case_10_string_or_binary_never_both(mnt):
    p = mnt.p(uniq("c10"))
    put(p, b"text")
    put(p, b"bin\x00ary\xff")
    assert read(p) == b"bin\x00ary\xff"
    v_text, v_bin = version_ids(p)
    assert read(mnt.mnt / ".versions" / p.name / v_text) == b"text"


# 11 ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    b"a" * 65536,
    "\u00e9".encode() * 32768,                  # 2-byte characters
    "\u20ac".encode() * 21845 + b"a",           # 3-byte characters
    "\U0001f600".encode() * 16384,              # 4-byte characters
])
def test_case_11_value_of_65536_bytes_accepted(mnt, value):
    assert len(value) == 65536
    p = mnt.p(uniq("c11"))
    put(p, value)
    assert read(p) == value
    assert os.stat(p).st_size == 65536


@pytest.mark.parametrize("value", [
    b"a" * 65537,
    "\u00e9".encode() * 32768 + b"a",
    "\u20ac".encode() * 21845 + "\u00e9".encode(),
    "\U0001f600".encode() * 16384 + b"a",
    "\u00e9".encode() * 40000,  # 40,000 characters, 80,000 bytes
])
def test_case_11_value_over_65536_bytes_efbig(mnt, value):
    assert len(value) > 65536
    p = mnt.p(uniq("c11"))
    put(p, b"old")
    ids = version_ids(p)
    step = commit(p, value, os.O_WRONLY | os.O_TRUNC)
    assert step is not None and step[1] == errno.EFBIG, step
    assert read(p) == b"old"
    assert version_ids(p) == ids


# 12 ----------------------------------------------------------------------

def test_case_12_unknown_version_id_and_unattached_label(mnt):
    name = uniq("c12")
    p = mnt.p(name)
    put(p, b"only")
    expect_errno(errno.ENOENT, read,
                 mnt.mnt / ".versions" / name / ("0" * 36))
    expect_errno(errno.ENOENT, read, mnt.mnt / ".stages/AWSPREVIOUS" / name)
    expect_errno(errno.ENOENT, read, mnt.mnt / ".stages/AWSPENDING" / name)
    # an attached label and an existing id are found
    vid = xget(p, "user.sm.version_id")
    assert read(mnt.mnt / ".versions" / name / vid) == b"only"
    assert read(mnt.mnt / ".stages/AWSCURRENT" / name) == b"only"


# 13 ----------------------------------------------------------------------

def test_case_13_move_awscurrent_keeps_target_labels(mnt):
    name = uniq("c13")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    v1, v2 = version_ids(p)
    xset(p, "user.sm.stage.PUT1", v2)  # a custom label on the old current
    put(mnt.mnt / ".stages/AWSPENDING" / name, b"pending")
    pending = stage(p, "AWSPENDING")
    xset(p, "user.sm.stage.AWSCURRENT", pending)
    labels = {v: set(l) for v, _, l in version_lines(p)}
    assert labels[pending] == {"AWSCURRENT", "AWSPENDING"}
    assert labels[v2] == {"AWSPREVIOUS", "PUT1"}
    assert labels[v1] == set()  # lost AWSPREVIOUS
    assert read(p) == b"pending"


# 14 ----------------------------------------------------------------------

def test_case_14_twenty_labels_at_most_one_version_per_label(mnt):
    name = uniq("c14")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    v1, v2 = version_ids(p)
    for i in range(18):
        xset(p, f"user.sm.stage.L{i:02d}", v1 if i % 2 else v2)
    assert len(labels_of(p)) == 20
    before = state(p)
    expect_errno(errno.ENOSPC, xset, p, "user.sm.stage.L18", v1)
    assert commit(mnt.mnt / ".stages/L18" / name, b"x") == \
        ("close", errno.ENOSPC)
    assert state(p) == before
    # moving labels around never puts one on two versions
    for i in range(18):
        xset(p, f"user.sm.stage.L{i:02d}", v2 if i % 2 else v1)
    labels = labels_of(p)  # asserts that no label is on two versions
    assert len(labels) == 20
    seen = [l for _, _, ls in version_lines(p) for l in ls]
    assert len(seen) == len(set(seen)) == 20


# 15 ----------------------------------------------------------------------

def test_case_15_version_pruning(mnt):
    name = uniq("c15")
    p = mnt.p(name)
    put(p, b"labelled first")
    first = xget(p, "user.sm.version_id")
    put(p, b"unlabelled second")
    second = xget(p, "user.sm.version_id")
    xset(p, "user.sm.stage.KEEP", first)
    # writes never fail with a quota error: 120 in a burst all commit
    for i in range(120):
        assert commit(p, b"burst %d" % i, os.O_WRONLY | os.O_TRUNC) is None
    ids = os.listdir(mnt.mnt / ".versions" / name)
    assert len(ids) == 100  # the pinned threshold
    assert first in ids            # labelled: never purged
    assert second not in ids       # oldest unlabelled: purged
    for label in ("AWSCURRENT", "AWSPREVIOUS", "KEEP"):
        assert stage(p, label) in ids
    assert read(p) == b"burst 119"
    assert read(mnt.mnt / ".stages/KEEP" / name) == b"labelled first"
    # the oldest unlabelled went first: the survivors are the newest
    kept = sorted(int(read(mnt.mnt / ".versions" / name / i).split()[1])
                  for i in ids if i != first)
    assert kept == list(range(21, 120))


# 16 ----------------------------------------------------------------------

def deletion_date(m, name):
    return iso(xget(m.mnt / ".deleted" / name, "user.sm.deleted_date"))


def test_case_16_recovery_window_default_30_days(mnt):
    name = uniq("c16")
    put(mnt.p(name), b"v")
    os.unlink(mnt.p(name))
    expected = datetime.now(timezone.utc) + timedelta(days=30)
    assert abs((deletion_date(mnt, name) - expected).total_seconds()) < 300


@pytest.mark.parametrize("days", [6, 31, 1, 100])
def test_case_16_recovery_window_out_of_range_refused(make_mount, days):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o",
            m.option_string({"recovery_window": days}))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert not os.path.ismount(m.mnt)


@pytest.mark.parametrize("days", [7, 30])
def test_case_16_recovery_window_7_and_30_accepted(make_mount, days):
    m = make_mount(recovery_window=days)
    put(m.p("s"), b"v")
    os.unlink(m.p("s"))
    expected = datetime.now(timezone.utc) + timedelta(days=days)
    assert abs((deletion_date(m, "s") - expected).total_seconds()) < 300


# 17 ----------------------------------------------------------------------

def test_case_17_during_recovery_window(mnt):
    os.makedirs(mnt.p("c17"), exist_ok=True)
    name = f"c17/{uniq('s')}"
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    xset(p, "user.tag.t", "v")
    ids = version_ids(p)
    os.unlink(p)
    d = mnt.mnt / ".deleted" / name
    # ListSecrets hides it; GetSecretValue and PutSecretValue refused
    assert p.name not in os.listdir(mnt.p("c17"))
    expect_errno(errno.ENOENT, os.stat, p)
    expect_errno(errno.EACCES, read, d)
    assert commit(d, b"new", os.O_WRONLY | os.O_TRUNC)[1] in \
        (errno.EACCES, errno.EROFS, errno.EPERM)
    # UpdateSecret, UpdateSecretVersionStage, TagResource, UntagResource
    before = state(d)
    for n, v in [("user.sm.description", "x"), ("user.sm.kms_key_id", ""),
                 ("user.sm.stage.AWSCURRENT", ids[0]),
                 ("user.sm.stage.NEW", ids[0]), ("user.tag.t", "w"),
                 ("user.tag.new", "w"), (TOKEN, "k" * 40)]:
        expect_errno((errno.EPERM, errno.EACCES), xset, d, n, v)
    for n in ("user.tag.t", "user.sm.stage.AWSPREVIOUS"):
        expect_errno((errno.EPERM, errno.EACCES), xdel, d, n)
    assert state(d) == before
    # DescribeSecret works and shows DeletedDate and the versions
    desc = describe(d)
    assert desc["DeletedDate"] == xget(d, "user.sm.deleted_date")
    assert set(desc["VersionIdsToStages"]) == set(ids)
    assert desc["Tags"] == [{"Key": "t", "Value": "v"}]
    assert "user.sm.deleted_date" in xlist(d)
    out = ok(run(["getfattr", "--absolute-names", "-d", "-m", "-", d]))
    assert "user.sm.deleted_date=" in out
    # and nothing was lost
    os.rename(d, p)
    assert read(p) == b"2"


# 18 ----------------------------------------------------------------------

def test_case_18_restore_keeps_everything(mnt):
    name = uniq("c18")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    v1, v2 = version_ids(p)
    xset(p, "user.sm.stage.OLD", v1)
    xset(p, "user.tag.team", "ops")
    xset(p, "user.sm.description", "d")
    before = state(p)
    os.unlink(p)
    ok(run(["mv", mnt.mnt / ".deleted" / name, p]))
    assert state(p) == before
    assert read(p) == b"2"
    assert read(mnt.mnt / ".stages/OLD" / name) == b"1"


def test_case_18_create_name_pending_deletion_restores_and_adds(mnt):
    """Deviation: AWS refuses CreateSecret here (InvalidRequestException);
    secretsfs restores the secret and adds the value as a new version."""
    name = uniq("c18")
    p = mnt.p(name)
    put(p, b"1")
    put(p, b"2")
    v1, v2 = version_ids(p)
    xset(p, "user.sm.stage.OLD", v1)
    xset(p, "user.tag.team", "ops")
    arn = xget(p, "user.sm.arn")
    os.unlink(p)
    ok(sh(f"printf 3 > {q(str(p))}"))
    assert name not in os.listdir(mnt.mnt / ".deleted")
    assert read(p) == b"3"
    assert xget(p, "user.sm.arn") == arn
    assert xget(p, "user.tag.team") == "ops"
    ids = version_ids(p)
    assert ids[:2] == [v1, v2] and len(ids) == 3
    labels = labels_of(p)
    assert labels["AWSPREVIOUS"] == v2 and labels["OLD"] == v1
    assert labels["AWSCURRENT"] == ids[2]


# 19 ----------------------------------------------------------------------

def test_case_19_forced_delete_then_recreate_gets_new_arn(make_mount):
    m = make_mount(recovery_window=0)
    p = m.p("s")
    put(p, b"1")
    put(p, b"2")
    xset(p, "user.tag.t", "v")
    arn = xget(p, "user.sm.arn")
    os.unlink(p)
    assert os.listdir(m.mnt) == []
    assert os.listdir(m.mnt / ".deleted") == []
    put(p, b"again")
    new_arn = xget(p, "user.sm.arn")
    assert arn_re("s").match(new_arn)
    assert new_arn != arn
    assert len(version_ids(p)) == 1
    assert "user.tag.t" not in xlist(p)
    assert "Tags" not in describe(p)
    # rm -f of a name that does not exist is success-shaped
    ok(run(["rm", "-f", m.p("never-was")]))
    expect_errno(errno.ENOENT, os.unlink, m.p("never-was"))


# 20 ----------------------------------------------------------------------

def test_case_20_allowed_characters(mnt):
    os.makedirs(mnt.p("c20/a_b+c=d.e@f-g"), exist_ok=True)
    name = "c20/a_b+c=d.e@f-g/AZaz09_+=.@-"
    put(mnt.p(name), b"v")
    assert read(mnt.p(name)) == b"v"
    assert xget(mnt.p(name), "user.sm.name") == name
    assert arn_re(name).match(xget(mnt.p(name), "user.sm.arn"))


@pytest.mark.parametrize("bad", ["with space", "star*", "q?", "back\\slash",
                                 "tab\tname", "caf\u00e9"])
def test_case_20_invalid_characters_einval(mnt, bad):
    os.makedirs(mnt.p("c20bad"), exist_ok=True)
    expect_errno(errno.EINVAL, write_file, mnt.p(f"c20bad/{bad}"), b"v")
    expect_errno(errno.EINVAL, os.mkdir, mnt.p(f"c20bad/{bad}d"))
    assert os.listdir(mnt.p("c20bad")) == []


def test_case_20_name_length_512_and_513(mnt):
    long_dir = "c" * 250 + "/" + "d" * 250
    os.makedirs(mnt.p(long_dir), exist_ok=True)
    good = f"{long_dir}/" + "e" * 10
    bad = f"{long_dir}/" + "f" * 11
    assert len(good) == 512 and len(bad) == 513
    put(mnt.p(good), b"v")
    assert xget(mnt.p(good), "user.sm.name") == good
    expect_errno(errno.EINVAL, write_file, mnt.p(bad), b"v")
    assert os.listdir(mnt.p(long_dir)) == ["e" * 10]


# 21 ----------------------------------------------------------------------

def test_case_21_arn_suffix_six_alphanumerics(mnt):
    suffixes = set()
    for i in range(20):
        name = uniq("c21")
        put(mnt.p(name), b"v")
        arn = xget(mnt.p(name), "user.sm.arn")
        assert arn_re(name).match(arn), arn
        suffixes.add(arn[-6:])
    assert len(suffixes) == 20
    # a name that itself ends in -XXXXXX is accepted; the ARN adds its own
    name = "c21-abcDE9"
    put(mnt.p(name), b"v")
    arn = xget(mnt.p(name), "user.sm.arn")
    assert arn_re(name).match(arn), arn
    assert arn.split(":secret:")[1].startswith("c21-abcDE9-")


# 22 ----------------------------------------------------------------------

def test_case_22_tags(mnt):
    p = mnt.p(uniq("c22"))
    put(p, b"v")
    assert "Tags" not in describe(p)
    xset(p, "user.tag.a", "1")
    xset(p, "user.tag.b", "2")
    xset(p, "user.tag.a", "3")  # merges, overwriting by key
    assert sorted((t["Key"], t["Value"]) for t in describe(p)["Tags"]) == \
        [("a", "3"), ("b", "2")]
    before = state(p)
    # UntagResource of a missing key changes nothing (ENODATA, as removexattr)
    expect_errno(errno.ENODATA, xdel, p, "user.tag.missing")
    assert state(p) == before
    # bounds
    xset(p, "user.tag." + "k" * 128, "v" * 256)
    expect_errno(errno.EINVAL, xset, p, "user.tag." + "k" * 129, "v")
    expect_errno(errno.E2BIG, xset, p, "user.tag.long", "v" * 257)
    expect_errno(errno.EINVAL, xset, p, "user.tag.aws:reserved", "v")
    for i in range(47):
        xset(p, f"user.tag.n{i:02d}", "v")
    assert len(describe(p)["Tags"]) == 50
    before = state(p)
    expect_errno(errno.ENOSPC, xset, p, "user.tag.fifty-one", "v")
    assert state(p) == before
    for n in [n for n in xlist(p) if n.startswith("user.tag.")]:
        xdel(p, n)
    assert describe(p)["Tags"] == []
