"""File operations on the real mount (BRIEF sections 1 and 2), driven both
with syscalls and with the shell tools users run."""

import ctypes
import errno
import json
import os
import shlex
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (MAX_VALUE, as_uid, expect_errno, ok, read_file, run, sh,
                      wait_gone, write_file)
from relhelpers import build_c

q = shlex.quote

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
SYS_renameat2 = 316  # x86_64

_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    old, new = os.fsencode(str(old)), os.fsencode(str(new))
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        rc = fn(AT_FDCWD, old, AT_FDCWD, new, ctypes.c_uint(flags))
    else:
        rc = _libc.syscall(SYS_renameat2, AT_FDCWD, old, AT_FDCWD, new,
                           ctypes.c_uint(flags))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))



def version_values(m, name):
    d = m.mnt / ".versions" / name
    return sorted(read_file(d / v) for v in os.listdir(d))


# ================================================================ basics

def test_done_when_scenario(mounted):
    m = mounted
    demo = q(str(m.p("demo")))
    assert ok(sh(f"echo -n hunter2 > {demo} && cat {demo}")) == "hunter2"
    ok(sh(f"echo -n hunter3 > {demo}"))
    listing = ok(run(["ls", m.mnt / ".versions" / "demo"])).split()
    assert len(listing) == 2, listing
    assert ok(run(["cat", m.p("demo")])) == "hunter3"


def test_create_read_with_syscalls(mounted):
    m = mounted
    write_file(m.p("s"), b"value-1")
    assert read_file(m.p("s")) == b"value-1"
    assert os.stat(m.p("s")).st_size == 7
    assert stat.S_ISREG(os.stat(m.p("s")).st_mode)
    assert m.versions("s") and len(m.versions("s")) == 1
    assert os.listdir(m.mnt) == ["s"]


def test_missing_secret_is_enoent(mounted):
    expect_errno(errno.ENOENT, read_file, mounted.p("nope"))
    expect_errno(errno.ENOENT, os.stat, mounted.p("nope"))
    expect_errno(errno.ENOENT, os.listdir, mounted.mnt / ".versions" / "nope")


def test_binary_value_roundtrip(mounted):
    value = bytes(range(256)) * 10 + b"\0\0\xff"
    write_file(mounted.p("bin"), value)
    assert read_file(mounted.p("bin")) == value
    assert os.stat(mounted.p("bin")).st_size == len(value)


def test_new_version_on_write(mounted):
    m = mounted
    write_file(m.p("s"), b"one")
    v1 = m.versions("s")
    write_file(m.p("s"), b"two")
    v2 = m.versions("s")
    assert len(v1) == 1 and len(v2) == 2 and set(v1) < set(v2)
    assert read_file(m.p("s")) == b"two"
    assert version_values(m, "s") == [b"one", b"two"]
    write_file(m.p("s"), b"three")
    assert len(m.versions("s")) == 3
    assert read_file(m.p("s")) == b"three"


def test_same_value_makes_no_version(mounted):
    m = mounted
    src = m.dir / "src"
    src.write_bytes(b"same")
    write_file(m.p("s"), b"same")
    before = m.versions("s")
    mtime = os.stat(m.p("s")).st_mtime_ns
    write_file(m.p("s"), b"same")
    ok(sh(f"echo -n same > {q(str(m.p('s')))}"))
    ok(run(["cp", src, m.p("s")]))
    assert m.versions("s") == before
    assert os.stat(m.p("s")).st_mtime_ns == mtime


def test_versions_view(mounted):
    m = mounted
    for v in (b"alpha", b"beta", b"gamma"):
        write_file(m.p("s"), v)
    vdir = m.mnt / ".versions" / "s"
    ids = os.listdir(vdir)
    assert len(ids) == 3
    for vid in ids:
        st = os.stat(vdir / vid)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_mode & 0o222 == 0, oct(st.st_mode)
    assert version_values(m, "s") == [b"alpha", b"beta", b"gamma"]
    # read-only, even for root, and nothing changes
    expect_errno((errno.EACCES, errno.EPERM, errno.EROFS),
                 write_file, vdir / ids[0], b"x", os.O_WRONLY | os.O_TRUNC)
    expect_errno((errno.EACCES, errno.EPERM, errno.EROFS),
                 write_file, vdir / "new-version", b"x")
    expect_errno((errno.EACCES, errno.EPERM, errno.EROFS),
                 os.unlink, vdir / ids[0])
    assert version_values(m, "s") == [b"alpha", b"beta", b"gamma"]
    assert read_file(m.p("s")) == b"gamma"


def test_views_hidden_from_root_readdir_but_open_by_path(mounted):
    m = mounted
    write_file(m.p("s"), b"v")
    names = os.listdir(m.mnt)
    assert names == ["s"]
    assert ".versions" not in ok(run(["ls", "-a", m.mnt])).split()
    assert ".deleted" not in ok(run(["ls", "-a", m.mnt])).split()
    assert stat.S_ISDIR(os.stat(m.mnt / ".versions").st_mode)
    assert stat.S_ISDIR(os.stat(m.mnt / ".deleted").st_mode)
    assert os.listdir(m.mnt / ".versions" / "s")
    assert os.listdir(m.mnt / ".deleted") == []


def test_values_survive_remount(mounted):
    m = mounted
    os.mkdir(m.p("prod"))
    os.mkdir(m.p("prod/db"))
    write_file(m.p("prod/db/pw"), b"first")
    write_file(m.p("prod/db/pw"), b"second")
    write_file(m.p("top"), b"\0binary\xff")
    write_file(m.p("gone"), b"bye")
    os.unlink(m.p("gone"))
    os.chmod(m.p("top"), 0o640)
    ids = m.versions("prod/db/pw")
    m.remount()
    assert read_file(m.p("prod/db/pw")) == b"second"
    assert read_file(m.p("top")) == b"\0binary\xff"
    assert m.versions("prod/db/pw") == ids
    assert version_values(m, "prod/db/pw") == [b"first", b"second"]
    assert sorted(os.listdir(m.mnt)) == ["prod", "top"]
    assert os.listdir(m.mnt / ".deleted") == ["gone"]
    assert stat.S_IMODE(os.stat(m.p("top")).st_mode) == 0o640


def test_shell_tools(mounted):
    m = mounted
    src = m.dir / "creds.json"
    src.write_bytes(b'{"username":"u","password":"p"}')
    mp = lambda n: q(str(m.p(n)))  # noqa: E731
    ok(run(["mkdir", "-p", m.p("prod/db")]))
    assert stat.S_ISDIR(os.stat(m.p("prod/db")).st_mode)
    ok(run(["cp", src, m.p("prod/db/main")]))
    assert ok(run(["cat", m.p("prod/db/main")])) == src.read_text()
    ok(run(["cmp", src, m.p("prod/db/main")]))
    ok(sh(f"echo x > {mp('prod/db/echoed')}"))
    assert read_file(m.p("prod/db/echoed")) == b"x\n"
    out = ok(run(["stat", "-c", "%a %u %g %s %F", m.p("prod/db/main")]))
    assert out.split() == ["600", "0", "0", str(len(src.read_bytes())),
                           "regular", "file"]
    ls = ok(run(["ls", "-l", m.p("prod/db")])).splitlines()
    line = [l for l in ls if l.endswith(" main")]
    assert line and line[0].startswith("-rw-------"), ls
    assert f" {len(src.read_bytes())} " in line[0]
    ok(run(["mv", m.p("prod/db/main"), m.p("prod/db/moved")]))
    assert not m.p("prod/db/main").exists()
    assert read_file(m.p("prod/db/moved")) == src.read_bytes()
    ok(run(["rm", m.p("prod/db/moved")]))
    assert not m.p("prod/db/moved").exists()
    assert os.listdir(m.mnt / ".deleted" / "prod" / "db") == ["moved"]
    ok(run(["rm", m.p("prod/db/echoed")]))
    ok(run(["rmdir", m.p("prod/db")]))
    ok(run(["rmdir", m.p("prod")]))
    assert os.listdir(m.mnt) == []


def test_append_edits_whole_value(mounted):
    m = mounted
    write_file(m.p("s"), b"abc")
    ok(sh(f"printf def >> {q(str(m.p('s')))}"))
    assert read_file(m.p("s")) == b"abcdef"
    assert version_values(m, "s") == [b"abc", b"abcdef"]


def test_touch_existing_keeps_value(mounted):
    m = mounted
    write_file(m.p("s"), b"keep")
    ok(run(["touch", m.p("s")]))
    assert read_file(m.p("s")) == b"keep"
    assert len(m.versions("s")) == 1


def test_statfs(mounted):
    st = os.statvfs(mounted.mnt)
    assert st.f_bsize > 0
    ok(run(["df", mounted.mnt]))


# ================================================================ limits

def test_value_of_65536_bytes_is_accepted(mounted):
    value = os.urandom(MAX_VALUE)
    write_file(mounted.p("max"), value)
    assert read_file(mounted.p("max")) == value


def test_value_over_65536_is_efbig_and_old_value_kept(mounted):
    m = mounted
    write_file(m.p("s"), b"old value")
    ids = m.versions("s")
    fd = os.open(m.p("s"), os.O_WRONLY | os.O_TRUNC)
    data = memoryview(b"x" * (MAX_VALUE + 1))
    err = None
    try:
        while data:
            n = os.write(fd, data)
            assert n > 0
            data = data[n:]
    except OSError as e:
        err = e
    assert err is not None and err.errno == errno.EFBIG, \
        f"write of {MAX_VALUE + 1} bytes did not fail with EFBIG: {err}"
    expect_errno(errno.EFBIG, os.close, fd)
    assert read_file(m.p("s")) == b"old value"
    assert m.versions("s") == ids


def test_value_over_65536_shell(mounted):
    m = mounted
    write_file(m.p("s"), b"old value")
    r = sh(f"head -c {MAX_VALUE + 1} /dev/zero | tr '\\0' a "
           f"> {q(str(m.p('s')))}")
    assert r.returncode != 0
    assert read_file(m.p("s")) == b"old value"
    assert len(m.versions("s")) == 1


def test_new_secret_over_65536_commits_no_value(mounted):
    m = mounted
    fd = os.open(m.p("big"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        expect_errno(errno.EFBIG, os.write, fd, b"y" * (MAX_VALUE + 1))
    finally:
        expect_errno(errno.EFBIG, os.close, fd)
    # nothing committed, and no name left behind (tests/fs/test_failed_create.py)
    assert os.listdir(m.mnt) == []


def test_empty_value_for_existing_is_refused(mounted):
    m = mounted
    write_file(m.p("s"), b"keep me")
    ids = m.versions("s")
    fd = os.open(m.p("s"), os.O_WRONLY | os.O_TRUNC)
    try:
        os.close(fd)
    except OSError:
        pass  # refusing at close is fine too
    assert read_file(m.p("s")) == b"keep me"
    sh(f": > {q(str(m.p('s')))}")
    assert read_file(m.p("s")) == b"keep me"
    assert m.versions("s") == ids


# ================================================================ names

GOOD_NAMES = ["a", "A-Za-z0-9_+=.@-", "x@y.example", "key=value+1",
              "a.b", "dotted..name"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_names(mounted, name):
    write_file(mounted.p(name), b"v")
    assert read_file(mounted.p(name)) == b"v"
    assert name in os.listdir(mounted.mnt)


def test_hidden_names_below_top_level(mounted):
    m = mounted
    os.mkdir(m.p("app"))
    write_file(m.p("app/.env"), b"A=1")
    assert read_file(m.p("app/.env")) == b"A=1"
    assert os.listdir(m.p("app")) == [".env"]


@pytest.mark.parametrize("name", ["a b", "a:b", "star*", "til~de", "hash#",
                                  "caf\u00e9", "q?", "tab\tx", "back\\slash",
                                  "pct%20"])
def test_invalid_names_einval(mounted, name):
    expect_errno(errno.EINVAL, write_file, mounted.p(name), b"v")
    assert os.listdir(mounted.mnt) == []


def test_name_with_space_shell(mounted):
    r = sh(f"echo -n v > {q(str(mounted.p('with space')))}")
    assert r.returncode != 0
    assert "Invalid argument" in r.stderr
    assert os.listdir(mounted.mnt) == []


def test_invalid_folder_name_einval(mounted):
    expect_errno(errno.EINVAL, os.mkdir, mounted.p("bad dir"))
    assert os.listdir(mounted.mnt) == []


@pytest.mark.parametrize("name", [".hidden", ".env", ".stagesx", "..x"])
def test_top_level_dot_names_are_scratch_files(mounted, name):
    """Top-level dot names are scratch files: usable, never listed or stored."""
    m = mounted
    write_file(m.p(name), b"scratch value")
    assert read_file(m.p(name)) == b"scratch value"
    assert os.stat(m.p(name)).st_size == len(b"scratch value")
    assert os.listdir(m.mnt) == []
    expect_errno(errno.EINVAL, os.mkdir, m.p(name + "d"))
    m.remount()
    assert not os.path.exists(m.p(name))
    assert os.listdir(m.mnt) == []


def test_scratch_file_renamed_onto_a_name_is_stored(mounted):
    m = mounted
    write_file(m.p("app"), b"old")
    write_file(m.p(".app.Ab12Cd"), b"new")
    os.setxattr(m.p(".app.Ab12Cd"), "user.tag.team", b"ops")
    os.rename(m.p(".app.Ab12Cd"), m.p("app"))
    assert read_file(m.p("app")) == b"new"
    assert len(m.versions("app")) == 2
    assert os.getxattr(m.p("app"), "user.tag.team") == b"ops"
    write_file(m.p(".fresh"), b"first")
    os.rename(m.p(".fresh"), m.p("fresh"))
    assert sorted(os.listdir(m.mnt)) == ["app", "fresh"]
    m.remount()
    assert read_file(m.p("fresh")) == b"first"
    assert os.listdir(m.p(".deleted")) == []


def test_view_names_refused_and_rename_to_a_backup_name(mounted):
    """Renaming onto a scratch name (an editor's backup) keeps the secret,
    hidden, until it is created again: then it has a new version."""
    m = mounted
    write_file(m.p("a"), b"v1")
    expect_errno(errno.EINVAL, os.mkdir, m.p(".dir"))
    expect_errno((errno.EINVAL, errno.EEXIST), os.mkdir, m.p(".versions"))
    os.rename(m.p("a"), m.p("a~"))
    assert not os.path.exists(m.p("a"))
    assert read_file(m.p("a~")) == b"v1"
    assert os.listdir(m.mnt) == []
    write_file(m.p("a"), b"v2")
    os.unlink(m.p("a~"))
    assert read_file(m.p("a")) == b"v2"
    assert len(m.versions("a")) == 2
    assert os.listdir(m.mnt) == ["a"]
    assert os.listdir(m.p(".deleted")) == []


LONG_DIR = "a" * 250 + "/" + "b" * 250


def test_name_of_512_bytes_accepted(mounted):
    m = mounted
    os.makedirs(m.p(LONG_DIR))
    name = f"{LONG_DIR}/" + "c" * 10
    assert len(name) == 512
    write_file(m.p(name), b"v")
    assert read_file(m.p(name)) == b"v"
    assert os.listdir(m.p(LONG_DIR)) == ["c" * 10]
    assert len(m.versions(name)) == 1
    os.rename(m.p(name), m.p(f"{LONG_DIR}/" + "e" * 10))
    assert os.listdir(m.p(LONG_DIR)) == ["e" * 10]


def test_name_of_513_bytes_einval(mounted):
    m = mounted
    os.makedirs(m.p(LONG_DIR))
    write_file(m.p("short"), b"v")
    bad = f"{LONG_DIR}/" + "d" * 11
    assert len(bad) == 513
    try:
        expect_errno(errno.EINVAL, write_file, m.p(bad), b"v")
        expect_errno(errno.EINVAL, os.mkdir, m.p(bad))
        expect_errno(errno.EINVAL, os.rename, m.p("short"), m.p(bad))
    finally:
        assert os.listdir(m.p(LONG_DIR)) == []
        assert read_file(m.p("short")) == b"v"


# ================================================================ delete

def test_rm_schedules_deletion_and_mv_restores(mounted):
    m = mounted
    write_file(m.p("s"), b"v1")
    write_file(m.p("s"), b"v2")
    ids = m.versions("s")
    ok(run(["rm", m.p("s")]))
    assert "s" not in os.listdir(m.mnt)
    expect_errno(errno.ENOENT, os.stat, m.p("s"))
    assert os.listdir(m.mnt / ".deleted") == ["s"]
    ok(run(["mv", m.mnt / ".deleted" / "s", m.p("s")]))
    assert os.listdir(m.mnt / ".deleted") == []
    assert read_file(m.p("s")) == b"v2"
    assert m.versions("s") == ids


def test_restore_to_another_free_name(mounted):
    m = mounted
    write_file(m.p("s"), b"v1")
    os.unlink(m.p("s"))
    os.rename(m.mnt / ".deleted" / "s", m.p("t"))
    assert os.listdir(m.mnt) == ["t"]
    assert os.listdir(m.mnt / ".deleted") == []
    assert read_file(m.p("t")) == b"v1"


def test_deleted_secret_cannot_be_read(mounted):
    m = mounted
    write_file(m.p("s"), b"v1")
    os.unlink(m.p("s"))
    with pytest.raises(OSError):
        read_file(m.mnt / ".deleted" / "s")


def test_deleted_shows_deletion_date(make_mount):
    m = make_mount(recovery_window=7)
    write_file(m.p("s"), b"v")
    os.unlink(m.p("s"))
    st = os.stat(m.mnt / ".deleted" / "s")
    assert abs(st.st_mtime - (time.time() + 7 * 86400)) < 120


def test_rm_nested_secret_goes_to_deleted_under_full_name(mounted):
    m = mounted
    os.makedirs(m.p("prod/db"))
    write_file(m.p("prod/db/pw"), b"v")
    os.unlink(m.p("prod/db/pw"))
    assert os.listdir(m.p("prod/db")) == []
    assert os.listdir(m.mnt / ".deleted" / "prod" / "db") == ["pw"]
    os.rename(m.mnt / ".deleted" / "prod" / "db" / "pw", m.p("prod/db/pw"))
    assert read_file(m.p("prod/db/pw")) == b"v"


def test_create_deleted_name_restores_with_new_version(mounted):
    m = mounted
    write_file(m.p("s"), b"old")
    ids = m.versions("s")
    os.unlink(m.p("s"))
    ok(sh(f"echo -n new > {q(str(m.p('s')))}"))
    assert read_file(m.p("s")) == b"new"
    assert os.listdir(m.mnt / ".deleted") == []
    now = m.versions("s")
    assert len(now) == len(ids) + 1 and set(ids) < set(now)
    assert version_values(m, "s") == [b"new", b"old"]


def test_rm_valueless_secret_is_immediate(mounted):
    m = mounted
    ok(run(["touch", m.p("t")]))
    assert os.stat(m.p("t")).st_size == 0
    assert m.versions("t") == []
    ok(run(["rm", m.p("t")]))
    assert os.listdir(m.mnt) == []
    assert os.listdir(m.mnt / ".deleted") == []


def test_touch_then_write_gives_first_version(mounted):
    m = mounted
    ok(run(["touch", m.p("t")]))
    write_file(m.p("t"), b"now a value")
    assert read_file(m.p("t")) == b"now a value"
    assert len(m.versions("t")) == 1


def test_recovery_window_0_deletes_at_once(make_mount):
    m = make_mount(recovery_window=0)
    write_file(m.p("s"), b"v1")
    write_file(m.p("s"), b"v2")
    os.unlink(m.p("s"))
    assert os.listdir(m.mnt) == []
    assert os.listdir(m.mnt / ".deleted") == []
    expect_errno(errno.ENOENT, os.listdir, m.mnt / ".versions" / "s")
    write_file(m.p("s"), b"fresh")
    assert len(m.versions("s")) == 1
    m.remount()
    assert os.listdir(m.mnt / ".deleted") == []
    assert version_values(m, "s") == [b"fresh"]


# ================================================================ folders

def test_mkdir_rmdir(mounted):
    m = mounted
    ok(run(["mkdir", "-p", m.p("a/b/c")]))
    for d in ("a", "a/b", "a/b/c"):
        assert stat.S_ISDIR(os.stat(m.p(d)).st_mode)
    write_file(m.p("a/b/s"), b"v")
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.p("a/b"))
    expect_errno(errno.EEXIST, os.mkdir, m.p("a/b"))
    os.rmdir(m.p("a/b/c"))
    assert os.listdir(m.p("a/b")) == ["s"]
    m.remount()
    assert sorted(os.listdir(m.p("a/b"))) == ["s"]
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.p("a"))


def test_secret_and_folder_cannot_share_name(mounted):
    m = mounted
    write_file(m.p("x"), b"v")
    expect_errno(errno.EEXIST, os.mkdir, m.p("x"))
    expect_errno(errno.ENOTDIR, write_file, m.p("x/y"), b"v")
    os.mkdir(m.p("d"))
    expect_errno((errno.EISDIR, errno.EEXIST), write_file, m.p("d"), b"v")


# ================================================================ rename

def test_rename_to_absent_keeps_history(mounted):
    m = mounted
    write_file(m.p("a"), b"v1")
    write_file(m.p("a"), b"v2")
    ids = m.versions("a")
    os.rename(m.p("a"), m.p("b"))
    assert os.listdir(m.mnt) == ["b"]
    assert read_file(m.p("b")) == b"v2"
    assert m.versions("b") == ids
    assert version_values(m, "b") == [b"v1", b"v2"]
    expect_errno(errno.ENOENT, os.listdir, m.mnt / ".versions" / "a")
    assert os.listdir(m.mnt / ".deleted") == []


def test_rename_into_folder_with_mv(mounted):
    m = mounted
    write_file(m.p("a"), b"v")
    os.mkdir(m.p("dir"))
    ok(run(["mv", m.p("a"), m.p("dir/")]))
    assert read_file(m.p("dir/a")) == b"v"
    assert len(m.versions("dir/a")) == 1


def test_rename_onto_existing_adds_version(mounted):
    m = mounted
    write_file(m.p("a"), b"from-a")
    write_file(m.p("b"), b"b-1")
    write_file(m.p("b"), b"b-2")
    b_ids = m.versions("b")
    ok(run(["mv", m.p("a"), m.p("b")]))
    assert os.listdir(m.mnt) == ["b"]
    assert read_file(m.p("b")) == b"from-a"
    now = m.versions("b")
    assert len(now) == len(b_ids) + 1 and set(b_ids) < set(now)
    assert version_values(m, "b") == [b"b-1", b"b-2", b"from-a"]
    assert os.listdir(m.mnt / ".deleted") == []
    expect_errno(errno.ENOENT, os.listdir, m.mnt / ".versions" / "a")


def test_atomic_replace_pattern(mounted):
    """What sed -i and editors do: write a temp file, rename it over."""
    m = mounted
    write_file(m.p("conf"), b"key=old\n")
    ok(run(["sed", "-i", "s/old/new/", m.p("conf")]))
    assert read_file(m.p("conf")) == b"key=new\n"
    assert version_values(m, "conf") == [b"key=new\n", b"key=old\n"]
    assert os.listdir(m.mnt) == ["conf"]
    assert os.listdir(m.mnt / ".deleted") == []


def test_rename_noreplace(mounted):
    m = mounted
    write_file(m.p("a"), b"va")
    write_file(m.p("b"), b"vb")
    expect_errno(errno.EEXIST, renameat2, m.p("a"), m.p("b"),
                 RENAME_NOREPLACE)
    assert read_file(m.p("a")) == b"va"
    assert read_file(m.p("b")) == b"vb"
    assert len(m.versions("b")) == 1
    renameat2(m.p("a"), m.p("c"), RENAME_NOREPLACE)
    assert sorted(os.listdir(m.mnt)) == ["b", "c"]
    assert read_file(m.p("c")) == b"va"


def test_rename_exchange_refused(mounted):
    m = mounted
    write_file(m.p("a"), b"va")
    write_file(m.p("b"), b"vb")
    expect_errno(errno.EINVAL, renameat2, m.p("a"), m.p("b"),
                 RENAME_EXCHANGE)
    assert read_file(m.p("a")) == b"va"
    assert read_file(m.p("b")) == b"vb"


def test_rename_to_invalid_name(mounted):
    m = mounted
    write_file(m.p("a"), b"va")
    expect_errno(errno.EINVAL, os.rename, m.p("a"), m.p("a b"))
    expect_errno((errno.EPERM, errno.EINVAL, errno.EACCES, errno.EROFS),
                 os.rename, m.p("a"), m.mnt / ".versions" / "a2")
    assert read_file(m.p("a")) == b"va"


def test_folder_rename_moves_everything(mounted):
    m = mounted
    os.makedirs(m.p("d/sub"))
    write_file(m.p("d/x"), b"x1")
    write_file(m.p("d/x"), b"x2")
    write_file(m.p("d/sub/y"), b"y")
    x_ids = m.versions("d/x")
    ok(run(["mv", m.p("d"), m.p("e")]))
    assert os.listdir(m.mnt) == ["e"]
    assert sorted(os.listdir(m.p("e"))) == ["sub", "x"]
    assert read_file(m.p("e/x")) == b"x2"
    assert read_file(m.p("e/sub/y")) == b"y"
    assert m.versions("e/x") == x_ids
    expect_errno(errno.ENOENT, os.listdir, m.mnt / ".versions" / "d" / "x")
    m.remount()
    assert read_file(m.p("e/sub/y")) == b"y"
    assert m.versions("e/x") == x_ids
    assert not m.p("d").exists()


def test_folder_rename_over_a_deleted_secret_is_refused(mounted):
    """A folder moved over one that holds a secret scheduled for deletion
    would take that secret's name (AWS keeps it for the restore): refused,
    nothing changed; a single secret moved onto the name restores it."""
    m = mounted
    os.mkdir(m.p("d1"))
    os.mkdir(m.p("d2"))
    write_file(m.p("d1/s"), b"v1")
    write_file(m.p("d2/s"), b"v2")
    v2 = m.versions("d2/s")
    os.unlink(m.p("d2/s"))
    r = run(["mv", "-T", m.p("d1"), m.p("d2")])
    assert r.returncode != 0
    expect_errno(errno.ENOTEMPTY, os.rename, m.p("d1"), m.p("d2"))
    assert b"d2: refused: a folder cannot move over d2/s, which is scheduled " \
        b"for deletion" in m.read_log()
    assert read_file(m.p("d1/s")) == b"v1"
    assert os.listdir(m.mnt / ".deleted" / "d2") == ["s"]
    # The empty folder removed, the deleted name still holds.
    os.rmdir(m.p("d2"))
    expect_errno(errno.ENOTEMPTY, os.rename, m.p("d1"), m.p("d2"))
    os.mkdir(m.p("d2"))
    expect_errno(errno.EEXIST, os.mkdir, m.p("d2/s"))
    m.remount()
    assert read_file(m.p("d1/s")) == b"v1"
    assert os.listdir(m.mnt / ".deleted" / "d2") == ["s"]
    # One secret onto the deleted name: restored, its history continued.
    ok(run(["mv", m.p("d1/s"), m.p("d2/s")]))
    assert os.listdir(m.mnt / ".deleted") == []
    assert read_file(m.p("d2/s")) == b"v1"
    assert set(v2) < set(m.versions("d2/s"))
    assert version_values(m, "d2/s") == [b"v1", b"v2"]


# ================================================================ modes

def test_new_secret_mode_and_owner(mounted):
    m = mounted
    old = os.umask(0o022)
    try:
        write_file(m.p("a"), b"v", mode=0o666)
        write_file(m.p("b"), b"v", mode=0o644)
        os.umask(0o077)
        write_file(m.p("c"), b"v", mode=0o666)
        os.umask(0o277)
        write_file(m.p("d"), b"v", mode=0o666)
    finally:
        os.umask(old)
    for name, mode in (("a", 0o600), ("b", 0o600), ("c", 0o600),
                       ("d", 0o400)):
        st = os.stat(m.p(name))
        assert stat.S_IMODE(st.st_mode) == mode, (name, oct(st.st_mode))
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_chmod_chown_stored(mounted):
    m = mounted
    write_file(m.p("s"), b"v")
    os.mkdir(m.p("d"))
    os.chmod(m.p("s"), 0o640)
    os.chown(m.p("s"), 1000, 1000)
    os.chmod(m.p("d"), 0o750)
    os.chown(m.p("d"), 1000, 0)
    ok(run(["chmod", "0444", m.p("s")]))
    m.remount()
    st = os.stat(m.p("s"))
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    st = os.stat(m.p("d"))
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (1000, 0)
    assert read_file(m.p("s")) == b"v"
    assert len(m.versions("s")) == 1
    out = ok(run(["stat", "-c", "%a %u %g", m.p("s")]))
    assert out.split() == ["444", "1000", "1000"]


def test_permissions_enforced(make_mount):
    m = make_mount(allow_other=True)
    write_file(m.p("s"), b"root-only")
    r = as_uid(1000, "cat", m.p("s"))
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    assert "root-only" not in r.stdout
    # a different uid cannot overwrite either
    r = as_uid(1000, "sh", "-c", f"echo -n evil > {q(str(m.p('s')))}")
    assert r.returncode != 0
    assert read_file(m.p("s")) == b"root-only"
    os.chown(m.p("s"), 1000, 1000)
    r = as_uid(1000, "cat", m.p("s"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "root-only"
    # and the versions view follows the secret's owner
    vid = m.versions("s")[0]
    r = as_uid(1000, "cat", m.mnt / ".versions" / "s" / vid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "root-only"


def test_versions_view_enforced(make_mount):
    m = make_mount(allow_other=True)
    write_file(m.p("s"), b"root-only")
    vid = m.versions("s")[0]
    r = as_uid(1000, "cat", m.mnt / ".versions" / "s" / vid)
    assert r.returncode != 0
    assert "root-only" not in r.stdout


def test_new_secret_owned_by_caller(make_mount):
    m = make_mount(allow_other=True)
    os.mkdir(m.p("app"))
    os.chown(m.p("app"), 1000, 1000)
    r = as_uid(1000, "sh", "-c",
               f"umask 022; echo -n v > {q(str(m.p('app/mine')))}")
    assert r.returncode == 0, r.stderr
    st = os.stat(m.p("app/mine"))
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert stat.S_IMODE(st.st_mode) == 0o600
    r = as_uid(1000, "cat", m.p("app/mine"))
    assert r.stdout == "v"
    # uid 1000 cannot create in a root-owned 0755 folder
    os.mkdir(m.p("locked"))
    os.chmod(m.p("locked"), 0o755)
    r = as_uid(1000, "sh", "-c", f"echo -n v > {q(str(m.p('locked/x')))}")
    assert r.returncode != 0
    assert os.listdir(m.p("locked")) == []


# ================================================================ refused ops

def test_link_symlink_mknod_eperm(mounted):
    m = mounted
    write_file(m.p("s"), b"v")
    expect_errno(errno.EPERM, os.link, m.p("s"), m.p("hard"))
    expect_errno(errno.EPERM, os.symlink, "s", m.p("sym"))
    expect_errno(errno.EPERM, os.mknod, m.p("fifo"), stat.S_IFIFO | 0o600)
    assert os.listdir(m.mnt) == ["s"]
    r = run(["ln", "-s", "s", m.p("sym2")])
    assert r.returncode != 0 and "Operation not permitted" in r.stderr


# ================================================================ readers

def test_reader_keeps_version_it_opened(mounted):
    m = mounted
    old = b"O" * 10000
    new = b"N" * 10000
    write_file(m.p("s"), old)
    fd = os.open(m.p("s"), os.O_RDONLY)
    try:
        first = os.read(fd, 1)
        write_file(m.p("s"), new)
        assert read_file(m.p("s")) == new
        rest = b""
        while True:
            b = os.read(fd, 4096)
            if not b:
                break
            rest += b
    finally:
        os.close(fd)
    assert first + rest == old


def test_concurrent_writers_and_readers(mounted):
    m = mounted
    errors = []

    def worker(i):
        try:
            for j in range(8):
                name = m.p(f"w{i}")
                write_file(name, f"value-{i}-{j}".encode())
                got = read_file(name)
                if got != f"value-{i}-{j}".encode():
                    errors.append((i, j, got))
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for i in range(8):
        assert read_file(m.p(f"w{i}")) == f"value-{i}-7".encode()
        assert len(m.versions(f"w{i}")) == 8


# ================================================================ times

def test_stat_times(mounted):
    m = mounted
    t0 = time.time()
    write_file(m.p("s"), b"v1")
    st1 = os.stat(m.p("s"))
    assert abs(st1.st_ctime - t0) < 5
    assert abs(st1.st_mtime - t0) < 5
    time.sleep(1.2)
    write_file(m.p("s"), b"v2")
    st2 = os.stat(m.p("s"))
    assert st2.st_ctime_ns == st1.st_ctime_ns, "ctime must stay the created date"
    assert st2.st_mtime - st1.st_mtime >= 1.0, "mtime must be the last change"
    assert st2.st_mtime > st2.st_ctime
    time.sleep(1.2)
    write_file(m.p("s"), b"v2")  # same value: no change
    assert os.stat(m.p("s")).st_mtime_ns == st2.st_mtime_ns
    m.remount()
    st3 = os.stat(m.p("s"))
    assert st3.st_ctime_ns == st1.st_ctime_ns
    assert st3.st_mtime_ns == st2.st_mtime_ns


# ================================================================ daemon

def test_daemon_is_multithreaded(mounted):
    m = mounted
    write_file(m.p("s"), b"v")
    # several readers at once, so a lazily started pool has reason to grow
    fds = [os.open(m.p("s"), os.O_RDONLY) for _ in range(4)]
    try:
        for fd in fds:
            os.read(fd, 1)
        ntasks = len(os.listdir(f"/proc/{m.pid}/task"))
    finally:
        for fd in fds:
            os.close(fd)
    assert ntasks > 1, f"daemon has {ntasks} thread(s)"


def test_closed_values_survive_daemon_kill(mounted):
    """A close that returned 0 means the version is durable (BRIEF §2)."""
    import signal
    from conftest import force_unmount, wait_gone
    m = mounted
    for i in range(10):
        write_file(m.p(f"s{i}"), f"v{i}")
    write_file(m.p("s0"), b"v0-second")
    pid = m.pid
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    force_unmount(m.mnt)
    m.mount()
    assert read_file(m.p("s0")) == b"v0-second"
    assert version_values(m, "s0") == [b"v0", b"v0-second"]
    for i in range(1, 10):
        assert read_file(m.p(f"s{i}")) == f"v{i}".encode()


# ================================================================ a writer that dies

def start_halfwriter(path, value, how, rest=""):
    """halfwriter.c: opens path with O_TRUNC, writes value, does not close;
    returns the process once it said "ready" (and the words after it)."""
    prog = build_c(Path(__file__).resolve().parent / "halfwriter.c",
                   libs=("-lpthread",))
    p = subprocess.Popen([prog, str(path), value, how, rest], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    words = p.stdout.readline().split()
    assert words[:1] == ["ready"], f"halfwriter {how}: {words}"
    return p, words[1:]


@pytest.mark.parametrize("how", ["wait", "threads"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_writer_killed_before_close_commits_nothing(make_mount, sig, how):
    """Killed with its O_TRUNC open and half its value written: the kernel's
    flush at exit must not make that half the current version."""
    m = make_mount(mount=False)
    m.mount(audit_log=str(m.dir / "audit.jsonl"))
    write_file(m.p("s"), b"the-old-value")
    ids = m.versions("s")
    p, _ = start_halfwriter(m.p("s"), "NEW-HALF", how)
    p.send_signal(sig)
    assert p.wait(timeout=10) == -sig
    assert read_file(m.p("s")) == b"the-old-value"
    assert m.versions("s") == ids
    log = m.read_log()
    assert b"s: the writer (pid " in log
    assert f"killed by signal {int(sig)} before its close".encode() in log
    assert b"NEW-HALF" not in log
    events = [json.loads(line) for line in
              (m.dir / "audit.jsonl").read_text().splitlines()]
    assert [e["eventName"] for e in events
            if e.get("errorCode") == "RequestCanceled"] == ["PutSecretValue"]
    # The next writer is not affected.
    write_file(m.p("s"), b"the-next-value")
    assert read_file(m.p("s")) == b"the-next-value"


def test_killed_creator_makes_no_version(mounted):
    m = mounted
    p, _ = start_halfwriter(m.p("new"), "NEW-HALF", "wait")
    p.kill()
    p.wait(timeout=10)
    # CreateSecret made nothing: no version (whether the name stays is
    # the business of a refused first write)
    assert not m.p("new").exists() or m.versions("new") == []


@pytest.mark.parametrize("how,status", [("exit", 0), ("return", 3)])
def test_writer_exiting_without_close_commits(mounted, how, status):
    """exit() and a return from main close the descriptor as close(2) does."""
    m = mounted
    write_file(m.p("s"), b"the-old-value")
    p, _ = start_halfwriter(m.p("s"), "the-new-value", how)
    assert p.wait(timeout=10) == status
    assert read_file(m.p("s")) == b"the-new-value"
    assert version_values(m, "s") == [b"the-new-value", b"the-old-value"]
    assert b"killed by signal" not in m.read_log()


def test_signals_that_do_not_kill_are_not_death(mounted):
    """Stopped and continued, then a SIGINT the writer handles: it goes on,
    closes, and that close commits."""
    m = mounted
    write_file(m.p("s"), b"the-old-value")
    p, _ = start_halfwriter(m.p("s"), "first-", "handled", "second")
    p.send_signal(signal.SIGSTOP)
    time.sleep(0.2)
    p.send_signal(signal.SIGCONT)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 0 and out.split() == ["closed", "0", "0"]
    assert read_file(m.p("s")) == b"first-second"
    assert b"killed by signal" not in m.read_log()


def test_forked_child_killed_drops_the_shared_write(mounted):
    """A child that holds the descriptor dies of a signal while the parent
    lives (docs/semantics.md): the child may have died mid-write, so the
    write through that descriptor is dropped; the parent's close says so."""
    m = mounted
    write_file(m.p("s"), b"the-old-value")
    ids = m.versions("s")
    p, words = start_halfwriter(m.p("s"), "parent-", "fork", "rest")
    child = int(words[0])
    os.kill(child, signal.SIGKILL)
    assert wait_gone(child)  # a zombie: its files are closed
    out, _ = p.communicate("go\n", timeout=10)
    assert out.split() == ["closed", "-1", str(errno.ECANCELED)]
    assert read_file(m.p("s")) == b"the-old-value"
    assert m.versions("s") == ids
    assert f"(pid {child}) was killed by signal 9".encode() in m.read_log()
