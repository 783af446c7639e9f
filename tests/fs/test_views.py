"""The views (BRIEF section 1): .versions/NAME/ID, .stages/LABEL/NAME and
.fields/NAME/KEY, what they show, what they refuse, the read-only xattrs
they carry, and version pruning beyond 100."""

import calendar
import errno
import json
import os
import shlex
import time

import pytest

from conftest import expect_errno, ok, run, sh
from smhelpers import (commit, describe, labels_of, module_mount, put, read,
                       stage, state, uniq, version_ids, version_lines, xget,
                       xlist, xset)

q = shlex.quote


@pytest.fixture(scope="module")
def mnt():
    yield from module_mount()



def three(mnt, prefix="v"):
    """A secret with values one, two, three: returns (name, path, ids)."""
    name = uniq(prefix)
    p = mnt.p(name)
    for v in (b"one", b"two", b"three"):
        put(p, v)
    return name, p, version_ids(p)


# ================================================================ .versions

def test_versions_lists_every_version(mnt):
    name, p, ids = three(mnt)
    d = mnt.mnt / ".versions" / name
    assert sorted(os.listdir(d)) == sorted(ids)
    assert [read(d / i) for i in ids] == [b"one", b"two", b"three"]
    # ids[0] has no label any more but is still listed and readable
    assert labels_of(p) == {"AWSPREVIOUS": ids[1], "AWSCURRENT": ids[2]}
    assert os.stat(d / ids[0]).st_size == 3
    assert os.path.isdir(d)


def test_versions_view_is_read_only(mnt):
    name, p, ids = three(mnt)
    f = mnt.mnt / ".versions" / name / ids[0]
    expect_errno((errno.EROFS, errno.EACCES, errno.EPERM), os.open, f,
                 os.O_WRONLY)
    expect_errno((errno.EROFS, errno.EACCES, errno.EPERM), os.open, f,
                 os.O_RDWR)
    expect_errno(errno.EPERM, os.unlink, f)
    expect_errno(errno.EPERM, os.rename, f, mnt.p(uniq()))
    expect_errno((errno.EPERM, errno.EACCES), os.open,
                 mnt.mnt / ".versions" / name / ("n" * 36),
                 os.O_WRONLY | os.O_CREAT, 0o600)
    assert os.stat(f).st_mode & 0o222 == 0
    assert read(f) == b"one"
    assert version_ids(p) == ids


def test_versions_unknown_id_enoent(mnt):
    name, _, _ = three(mnt)
    expect_errno(errno.ENOENT, os.stat,
                 mnt.mnt / ".versions" / name / ("0" * 36))
    expect_errno(errno.ENOENT, os.stat, mnt.mnt / ".versions" / "no-such")


def test_versions_folders_and_nested_names(mnt):
    os.makedirs(mnt.p("vf/inner"), exist_ok=True)
    put(mnt.p("vf/inner/s"), b"x")
    assert "inner" in os.listdir(mnt.mnt / ".versions/vf")
    assert os.listdir(mnt.mnt / ".versions/vf/inner") == ["s"]
    ids = os.listdir(mnt.mnt / ".versions/vf/inner/s")
    assert len(ids) == 1
    assert read(mnt.mnt / ".versions/vf/inner/s" / ids[0]) == b"x"


def test_versions_view_xattrs(mnt):
    name, p, ids = three(mnt)
    xset(p, "user.tag.t", "v")
    for vid, labels in zip(ids, ["", "AWSPREVIOUS", "AWSCURRENT"]):
        f = mnt.mnt / ".versions" / name / vid
        assert xget(f, "user.sm.version_id") == vid
        assert xget(f, "user.sm.version_stages") == labels
        assert xget(f, "user.sm.name") == name
        assert xget(f, "user.sm.arn") == xget(p, "user.sm.arn")
        assert xget(f, "user.sm.versions") == xget(p, "user.sm.versions")
        assert xget(f, "user.tag.t") == "v"
        assert "user.sm.version_id" in xlist(f)
        # read-only here, even the attributes writable on the secret
        for n, v in [("user.tag.t", "w"), ("user.sm.description", "d"),
                     ("user.sm.stage.X", vid), ("user.sm.arn", "a")]:
            expect_errno(errno.EPERM, xset, f, n, v)
        expect_errno(errno.EPERM, os.removexattr, f, "user.tag.t")
    r = run(["getfattr", "--absolute-names", "-d", "-m", "-",
             mnt.mnt / ".versions" / name / ids[1]])
    assert r.returncode == 0 and f'user.sm.version_id="{ids[1]}"' in r.stdout


def iso_ms(date):
    """ISO 8601 UTC with milliseconds ("...T13:29:14.055Z") as ms since 1970."""
    return calendar.timegm(time.strptime(date[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 \
        + int(date[20:23])


def test_versions_times_are_their_creation(mnt):
    """Each version file's mtime (and atime, ctime) is its CreatedDate, so
    ls -t sorts them newest first; a later version moves none of them."""
    name = uniq("vt")
    p = mnt.p(name)
    for v in (b"one", b"two", b"three"):
        put(p, v)
        time.sleep(0.05)
    d = mnt.mnt / ".versions" / name
    lines = version_lines(p)
    for vid, date, _ in lines:
        st = os.stat(d / vid)
        ms = iso_ms(date)
        assert st.st_mtime_ns == st.st_ctime_ns == st.st_atime_ns == \
            ms * 1000000, (vid, date, st)
    newest_first = [v[0] for v in reversed(lines)]
    assert ok(run(["ls", "-t", d])).split() == newest_first
    assert [l.split()[-1] for l in ok(run(["ls", "-lt", d])).splitlines()[1:]] \
        == newest_first
    # the secret's own mtime is its newest version's
    assert os.stat(p).st_mtime_ns == iso_ms(lines[-1][1]) * 1000000
    before = {v: os.stat(d / v).st_mtime_ns for v in newest_first}
    put(p, b"four")
    assert {v: os.stat(d / v).st_mtime_ns for v in newest_first} == before
    assert ok(run(["ls", "-t", d])).split()[1:] == newest_first


def test_reading_a_version_is_not_an_access(mnt):
    name, p, ids = three(mnt)
    read(mnt.mnt / ".versions" / name / ids[2])
    expect_errno(errno.ENODATA, os.getxattr, p, "user.sm.last_accessed_date")


# ================================================================ .stages

def test_stages_read_by_label(mnt):
    name, p, ids = three(mnt, "st")
    s = mnt.mnt / ".stages"
    assert read(s / "AWSCURRENT" / name) == b"three"
    assert read(s / "AWSPREVIOUS" / name) == b"two"
    xset(p, "user.sm.stage.MINE", ids[0])
    assert read(s / "MINE" / name) == b"one"
    assert ok(run(["cat", s / "AWSPREVIOUS" / name])) == "two"


def test_stages_unattached_label_enoent(mnt):
    name, p, ids = three(mnt, "st")
    s = mnt.mnt / ".stages"
    expect_errno(errno.ENOENT, read, s / "AWSPENDING" / name)
    expect_errno(errno.ENOENT, read, s / "NEVER_USED" / name)
    r = run(["cat", s / "AWSPENDING" / name])
    assert r.returncode != 0 and "No such file" in r.stderr
    # a one-version secret has no AWSPREVIOUS
    one = uniq("single")
    put(mnt.p(one), b"x")
    expect_errno(errno.ENOENT, read, s / "AWSPREVIOUS" / one)
    expect_errno(errno.ENOENT, read, s / "AWSCURRENT" / "no-such-secret")


def test_stages_view_xattrs(mnt):
    name, p, ids = three(mnt, "st")
    s = mnt.mnt / ".stages"
    assert xget(s / "AWSPREVIOUS" / name, "user.sm.version_id") == ids[1]
    assert xget(s / "AWSPREVIOUS" / name, "user.sm.version_stages") == \
        "AWSPREVIOUS"
    assert xget(s / "AWSCURRENT" / name, "user.sm.version_id") == ids[2]
    assert xget(s / "AWSCURRENT" / name, "user.sm.name") == name
    expect_errno(errno.EPERM, xset, s / "AWSCURRENT" / name, "user.tag.x", "y")
    expect_errno(errno.EPERM, xset, s / "AWSCURRENT" / name,
                 "user.sm.stage.AWSCURRENT", ids[0])
    assert "x" not in [n for n in xlist(p) if n == "user.tag.x"]


def test_stages_listing(mnt):
    name, p, ids = three(mnt, "ls")
    xset(p, "user.sm.stage.LISTED", ids[0])
    s = mnt.mnt / ".stages"
    top = os.listdir(s)
    for label in ("AWSCURRENT", "AWSPREVIOUS", "LISTED"):
        assert label in top
    # the secrets that carry LISTED (folders are listed too)
    assert [e for e in os.listdir(s / "LISTED")
            if os.path.isfile(s / "LISTED" / e)] == [name]
    assert name in os.listdir(s / "AWSCURRENT")
    # a secret without the label is not listed under it
    other = uniq("ls")
    put(mnt.p(other), b"x")
    assert other not in os.listdir(s / "AWSPREVIOUS")
    assert other in os.listdir(s / "AWSCURRENT")


def test_stages_listing_in_folders(mnt):
    os.makedirs(mnt.p("sf/deep"), exist_ok=True)
    put(mnt.p("sf/deep/a"), b"1")
    put(mnt.p("sf/deep/a"), b"2")
    put(mnt.p("sf/deep/b"), b"1")
    s = mnt.mnt / ".stages"
    assert os.listdir(s / "AWSPREVIOUS/sf/deep") == ["a"]
    assert sorted(os.listdir(s / "AWSCURRENT/sf/deep")) == ["a", "b"]
    assert read(s / "AWSPREVIOUS/sf/deep/a") == b"1"


def test_stages_write_awspending_leaves_current(mnt):
    name, p, ids = three(mnt, "wp")
    f = mnt.mnt / ".stages/AWSPENDING" / name
    put(f, b"pending")
    assert read(p) == b"three"
    assert read(f) == b"pending"
    labels = labels_of(p)
    assert labels["AWSCURRENT"] == ids[2]
    assert labels["AWSPREVIOUS"] == ids[1]
    new = labels["AWSPENDING"]
    assert new not in ids and len(version_ids(p)) == 4
    assert xget(f, "user.sm.version_id") == new
    # again: AWSPENDING moves to the newer version
    put(f, b"pending2")
    assert read(f) == b"pending2"
    assert labels_of(p)["AWSPENDING"] != new
    assert read(p) == b"three"


def test_stages_write_same_value_makes_no_version(mnt):
    name, p, ids = three(mnt, "wp")
    f = mnt.mnt / ".stages/AWSPENDING" / name
    put(f, b"pending")
    n = len(version_ids(p))
    put(f, b"pending")
    assert len(version_ids(p)) == n


def test_stages_write_awscurrent_moves_current(mnt):
    name, p, ids = three(mnt, "wc")
    put(mnt.mnt / ".stages/AWSCURRENT" / name, b"four")
    assert read(p) == b"four"
    labels = labels_of(p)
    assert labels["AWSPREVIOUS"] == ids[2]
    assert labels["AWSCURRENT"] not in ids


def test_stages_write_custom_label_moves_it(mnt):
    name, p, ids = three(mnt, "wl")
    xset(p, "user.sm.stage.BLUE", ids[0])
    f = mnt.mnt / ".stages/BLUE" / name
    put(f, b"blue")
    labels = labels_of(p)
    assert labels["BLUE"] not in ids
    assert labels["AWSCURRENT"] == ids[2]
    assert read(p) == b"three"
    assert read(f) == b"blue"
    # ids[0] had only BLUE: it is deprecated now, still listed
    assert ids[0] not in describe(p)["VersionIdsToStages"]
    assert ids[0] in version_ids(p)


def test_stages_write_with_shell(mnt):
    name, p, ids = three(mnt, "sh")
    f = q(str(mnt.mnt / ".stages/AWSPENDING" / name))
    ok(sh(f"echo -n from-shell > {f}"))
    assert ok(run(["cat", mnt.mnt / ".stages/AWSPENDING" / name])) == \
        "from-shell"
    assert read(p) == b"three"


def test_stages_create_new_secret_through_awspending(mnt):
    name = uniq("new")
    f = mnt.mnt / ".stages/AWSPENDING" / name
    put(f, b"first")
    p = mnt.p(name)
    assert read(p) == b"first"
    (vid, _, labels), = version_lines(p)
    assert set(labels) == {"AWSCURRENT", "AWSPENDING"}
    assert name in os.listdir(mnt.mnt)


def test_stages_create_new_secret_in_folder(mnt):
    os.makedirs(mnt.p("nf"), exist_ok=True)
    f = mnt.mnt / ".stages/CUSTOM/nf/s"
    put(f, b"v")
    assert read(mnt.p("nf/s")) == b"v"
    assert set(labels_of(mnt.p("nf/s"))) == {"AWSCURRENT", "CUSTOM"}


def test_stages_token(mnt):
    name, p, ids = three(mnt, "tk")
    f = mnt.mnt / ".stages/AWSPENDING" / name
    tok = "P" * 40
    xset(f, "user.sm.client_request_token", tok)
    put(f, b"pending")
    assert labels_of(p)["AWSPENDING"] == tok
    assert read(p) == b"three"


def test_stages_write_21st_label_refused_at_close(mnt):
    name, p, ids = three(mnt, "full")
    for i in range(18):
        xset(p, f"user.sm.stage.F{i:02d}", ids[2])
    assert len(labels_of(p)) == 20
    before = state(p)
    assert commit(mnt.mnt / ".stages/NUMBER21" / name, b"x") == \
        ("close", errno.ENOSPC)
    assert state(p) == before
    assert read(p) == b"three"
    # an existing label can still take a new version
    put(mnt.mnt / ".stages/F00" / name, b"f00")
    assert read(mnt.mnt / ".stages/F00" / name) == b"f00"


def test_stages_refuse_structure_changes(mnt):
    name, p, ids = three(mnt, "rs")
    s = mnt.mnt / ".stages"
    expect_errno(errno.EPERM, os.unlink, s / "AWSCURRENT" / name)
    expect_errno(errno.EPERM, os.rename, s / "AWSCURRENT" / name,
                 mnt.p(uniq()))
    expect_errno(errno.EPERM, os.mkdir, s / "AWSCURRENT" / uniq("d"))
    assert read(p) == b"three"


def test_stages_bad_label_enoent(mnt):
    expect_errno(errno.ENOENT, os.stat, mnt.mnt / ".stages" / "bad label")


def test_stages_of_deleted_secret_enoent(mnt):
    name, p, ids = three(mnt, "dl")
    os.unlink(p)
    expect_errno(errno.ENOENT, read, mnt.mnt / ".stages/AWSCURRENT" / name)
    expect_errno(errno.ENOENT, os.listdir, mnt.mnt / ".versions" / name)
    os.rename(mnt.mnt / ".deleted" / name, p)
    assert read(mnt.mnt / ".stages/AWSPREVIOUS" / name) == b"two"


# ================================================================ .fields

DB = {"engine": "postgres", "host": "h", "username": "u", "password": "p",
      "port": 5432}


def test_fields_of_database_secret(mnt):
    name = uniq("db")
    put(mnt.p(name), json.dumps(DB).encode())
    d = mnt.mnt / ".fields" / name
    assert sorted(os.listdir(d)) == sorted(DB)
    assert ok(run(["cat", d / "password"])) == "p"
    assert read(d / "username") == b"u"
    assert read(d / "engine") == b"postgres"
    assert read(d / "port") == b"5432"
    assert os.stat(d / "password").st_size == 1
    assert os.path.isdir(d)


def test_fields_string_unquoted_and_unescaped_others_json(mnt):
    value = {"s": 'a"b\\c\nd\u00e9\u2603', "n": None, "t": True, "f": False,
             "i": -7, "x": 1.5, "arr": [1, "x", None], "o": {"k": [1, 2]},
             "empty": ""}
    name = uniq("js")
    put(mnt.p(name), json.dumps(value).encode())
    d = mnt.mnt / ".fields" / name
    assert read(d / "s") == value["s"].encode()
    assert read(d / "empty") == b""
    for k in ("n", "t", "f", "i", "x", "arr", "o"):
        assert json.loads(read(d / k)) == value[k], k
    assert read(d / "n") == b"null"
    assert read(d / "t") == b"true"


def test_fields_missing_key_enoent(mnt):
    name = uniq("db")
    put(mnt.p(name), json.dumps(DB).encode())
    expect_errno(errno.ENOENT, read, mnt.mnt / ".fields" / name / "nope")


@pytest.mark.parametrize("value", [
    b"plain text", b"[1,2,3]", b'"a string"', b"42", b"null",
    b'{"unterminated": ', b"\x00\x01binary", b""])
def test_fields_absent_when_not_a_json_object(mnt, value):
    name = uniq("nj")
    if value:
        put(mnt.p(name), value)
    else:
        ok(run(["touch", mnt.p(name)]))
    expect_errno(errno.ENOENT, os.stat, mnt.mnt / ".fields" / name)
    expect_errno(errno.ENOENT, os.listdir, mnt.mnt / ".fields" / name)


def test_fields_follow_current_value(mnt):
    name = uniq("fc")
    p = mnt.p(name)
    put(p, json.dumps(DB).encode())
    d = mnt.mnt / ".fields" / name
    put(p, json.dumps(dict(DB, password="p2", extra="e")).encode())
    assert read(d / "password") == b"p2"
    assert read(d / "extra") == b"e"
    # a write through .stages/AWSPENDING does not change what .fields shows
    put(mnt.mnt / ".stages/AWSPENDING" / name,
        json.dumps(dict(DB, password="pending")).encode())
    assert read(d / "password") == b"p2"
    # no longer a JSON object: the folder goes away (the kernel may keep
    # its cached attributes for up to the 1 s attribute timeout)
    put(p, b"not json")
    expect_errno(errno.ENOENT, read, d / "password")
    expect_errno(errno.ENOENT, os.listdir, d)
    deadline = time.monotonic() + 3
    while os.path.exists(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    expect_errno(errno.ENOENT, os.stat, d)


def test_fields_are_read_only(mnt):
    name = uniq("ro")
    put(mnt.p(name), json.dumps(DB).encode())
    d = mnt.mnt / ".fields" / name
    expect_errno((errno.EROFS, errno.EACCES, errno.EPERM), os.open,
                 d / "password", os.O_WRONLY)
    expect_errno((errno.EPERM, errno.EACCES, errno.EROFS), os.open,
                 d / "newkey", os.O_WRONLY | os.O_CREAT, 0o600)
    expect_errno((errno.EPERM, errno.EACCES, errno.EROFS), os.unlink,
                 d / "password")
    assert os.stat(d / "password").st_mode & 0o222 == 0
    assert json.loads(read(mnt.p(name))) == DB


def test_fields_in_folders(mnt):
    os.makedirs(mnt.p("ff/app"), exist_ok=True)
    put(mnt.p("ff/app/creds"), b'{"user":"svc","pass":"pw"}')
    assert os.listdir(mnt.mnt / ".fields/ff") == ["app"]
    assert os.listdir(mnt.mnt / ".fields/ff/app") == ["creds"]
    assert read(mnt.mnt / ".fields/ff/app/creds/pass") == b"pw"


def test_fields_reader_keeps_value_it_opened(mnt):
    name = uniq("kr")
    p = mnt.p(name)
    put(p, b'{"k":"old"}')
    fd = os.open(mnt.mnt / ".fields" / name / "k", os.O_RDONLY)
    try:
        put(p, b'{"k":"new value"}')
        assert os.read(fd, 100) == b"old"
    finally:
        os.close(fd)
    assert read(mnt.mnt / ".fields" / name / "k") == b"new value"


def test_fields_listing_only_json_objects(mounted):
    m = mounted
    put(m.p("obj"), b'{"a":"b"}')
    put(m.p("text"), b"plain")
    assert os.listdir(m.mnt / ".fields") == ["obj"]
    ok(run(["ls", "-l", m.mnt / ".fields"]))
    ok(run(["find", m.mnt / ".fields"]))


# ================================================================ pruning

def test_pruning_beyond_100_versions(mnt):
    name = uniq("many")
    p = mnt.p(name)
    for i in range(105):
        put(p, b"value %d" % i)
    d = mnt.mnt / ".versions" / name
    ids = os.listdir(d)
    assert len(ids) <= 100
    assert len(ids) == 100  # this project's threshold: 100, oldest first
    assert stage(p, "AWSCURRENT") in ids
    assert stage(p, "AWSPREVIOUS") in ids
    assert read(p) == b"value 104"
    assert read(d / stage(p, "AWSPREVIOUS")) == b"value 103"
    values = sorted(int(read(d / i).split()[1]) for i in ids)
    assert values == list(range(5, 105))  # the five oldest went
    assert len(version_lines(p)) == 100


def test_pruning_keeps_labelled_versions(mnt):
    name = uniq("keep")
    p = mnt.p(name)
    put(p, b"value first")
    first = xget(p, "user.sm.version_id")
    put(p, b"value second")
    xset(p, "user.sm.stage.KEEP", first)
    for i in range(104):
        put(p, b"value %d" % i)
    ids = os.listdir(mnt.mnt / ".versions" / name)
    assert len(ids) == 100
    assert first in ids
    assert read(mnt.mnt / ".stages/KEEP" / name) == b"value first"
    assert set(describe(p)["VersionIdsToStages"]) == \
        {first, stage(p, "AWSCURRENT"), stage(p, "AWSPREVIOUS")}


def test_pruning_persists(mounted):
    m = mounted
    p = m.p("many")
    for i in range(103):
        put(p, b"value %d" % i)
    ids = sorted(m.versions("many"))
    assert len(ids) == 100
    m.remount()
    assert sorted(m.versions("many")) == ids
    assert read(p) == b"value 102"
