"""The daemon's log is always somewhere (issue 15, item 3): without
log_file= and without syslog (no /dev/log), a background daemon logs to
STORE.log beside the store, mode 0600, names and rules only, never values,
and the mount says so once on stderr. A log file, named or the fallback, is
opened the same private way: never through a symlink, never another user's
or a second link to another file, never waiting on a FIFO planted there."""

import contextlib
import errno
import os
import stat
import time

import pytest

from conftest import (daemon_pids, expect_errno, force_unmount, is_mounted, read_file, sfs,
                      write_file)

no_syslog = pytest.mark.skipif(
    os.path.exists("/dev/log") and stat.S_ISSOCK(os.stat("/dev/log").st_mode),
    reason="this host has syslog (/dev/log): the daemon logs there")

MARKER = "value-that-must-never-be-logged-7f3a"
PLANTS = ["symlink", "hardlink", "other-owner", "fifo", "fifo-with-reader"]


def mount_without_log_file(m):
    r = sfs("mount", m.store, m.mnt, "-o", m.unlock_opt())
    assert r.returncode == 0, r.stderr
    assert is_mounted(m.mnt)
    return r


def fallback(m):
    return m.dir / (m.store.name + ".log")


@contextlib.contextmanager
def planted(kind, log, target):
    """Puts at log what someone else might, for target ("precious\\n"): a
    symlink to it, a second link of it, a file of another user, or a FIFO
    (with no reader, or with one). Whatever happens, a writer blocked on
    the FIFO is let go at the end, so a failure never hangs the suite."""
    target.write_text("precious\n")
    reader = None
    if kind == "symlink":
        os.symlink(target, log)
    elif kind == "hardlink":
        os.link(target, log)
    elif kind == "other-owner":
        os.rename(target, log)
        os.chown(log, 1000, 1000)
        os.symlink(log, target)  # target reads what log holds
    else:
        os.mkfifo(log, 0o600)
        if kind == "fifo-with-reader":
            reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield reader
    finally:
        if kind.startswith("fifo"):
            release = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
            os.close(release)
        if reader is not None:
            os.close(reader)


# ---------------------------------------------------------------- log_file=

@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_log_file_option_is_refused_at_once(make_mount, plant):
    """log_file= naming a symlink, a second link, another user's file or a
    FIFO: the mount is refused at once, in one line, and nothing is written
    there (a FIFO with no reader used to hold the mount in open(2))."""
    m = make_mount(mount=False)
    log, target = m.dir / "named.log", m.dir / "target"
    with planted(plant, log, target) as reader:
        started = time.monotonic()
        r = sfs("mount", m.store, m.mnt, "-o", f"{m.unlock_opt()},log_file={log}",
                timeout=30)
        assert time.monotonic() - started < 15
        if reader is not None:
            assert os.read(reader, 100) == b""  # nothing was written to it
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"{log}: cannot open log file: not a private regular file" in lines[0], lines[0]
    assert not is_mounted(m.mnt) and daemon_pids(m.mnt) == []
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize("where", ["log_file", pytest.param("fallback", marks=no_syslog)])
def test_a_loose_log_file_is_tightened_and_appended(make_mount, where):
    m = make_mount(mount=False)
    log = m.log if where == "log_file" else fallback(m)
    log.write_text("earlier line\n")
    os.chmod(log, 0o644)
    if where == "log_file":
        m.mount()
    else:
        mount_without_log_file(m)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    m.unmount()
    text = log.read_text()
    assert text.startswith("earlier line\n") and "mounted at" in text[13:]


def test_log_file_option_makes_no_file_beside_the_store(make_mount):
    m = make_mount()  # with log_file=
    write_file(m.p("s"), b"v")
    m.unmount()
    assert not fallback(m).exists()
    assert m.log.exists()


# ------------------------------------------------- no syslog: STORE.log

@no_syslog
def test_refusals_reach_the_file_beside_the_store(make_mount):
    m = make_mount(mount=False)
    r = mount_without_log_file(m)
    log = fallback(m)
    assert r.stderr.strip() == f"secretsfs: no syslog on this host: the daemon logs to {log}"
    write_file(m.p("ok"), MARKER)
    assert read_file(m.p("ok")) == MARKER.encode()
    expect_errno(errno.EINVAL, write_file, m.p("bad name"), MARKER)
    expect_errno(errno.EFBIG, write_file, m.p("big"), b"x" * 65537)
    m.unmount()
    st = os.stat(log)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    text = log.read_text()
    assert "mounted at" in text and "unmounted" in text
    refusals = [l for l in text.splitlines() if "bad name" in l]
    assert refusals and "refused" in refusals[0], text
    assert MARKER not in text


@no_syslog
@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_log_file_is_not_used(make_mount, plant):
    """A symlink, a second link to another file, a file of another user or
    a FIFO at STORE.log: not written; the mount goes on at once and says
    its log is lost."""
    m = make_mount(mount=False)
    log, target = fallback(m), m.dir / "target"
    with planted(plant, log, target):
        started = time.monotonic()
        r = sfs("mount", m.store, m.mnt, "-o", m.unlock_opt(), timeout=30)
        try:
            assert time.monotonic() - started < 15
            assert r.returncode == 0, r.stderr
            assert "cannot open the daemon's log" in r.stderr and "log_file=" in r.stderr
            assert "not a private regular file" in r.stderr
            write_file(m.p("s"), b"v")
        finally:
            force_unmount(m.mnt)
    assert target.read_text() == "precious\n"
