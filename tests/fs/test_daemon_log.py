"""The daemon's log is always somewhere (issue 15, item 3): without
log_file= and without syslog (no /dev/log), a background daemon logs to
STORE.log beside the store, mode 0600, names and rules only, never values,
and the mount says so once on stderr."""

import errno
import os
import stat

import pytest

from conftest import expect_errno, force_unmount, is_mounted, read_file, sfs, write_file

pytestmark = pytest.mark.skipif(
    os.path.exists("/dev/log") and stat.S_ISSOCK(os.stat("/dev/log").st_mode),
    reason="this host has syslog (/dev/log): the daemon logs there")

MARKER = "value-that-must-never-be-logged-7f3a"


def mount_without_log_file(m):
    r = sfs("mount", m.store, m.mnt, "-o", m.unlock_opt())
    assert r.returncode == 0, r.stderr
    assert is_mounted(m.mnt)
    return r


def fallback(m):
    return m.dir / (m.store.name + ".log")


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


def test_a_loose_log_file_is_tightened_and_appended(make_mount):
    m = make_mount(mount=False)
    log = fallback(m)
    log.write_text("earlier line\n")
    os.chmod(log, 0o644)
    mount_without_log_file(m)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    m.unmount()
    assert log.read_text().startswith("earlier line\n")


@pytest.mark.parametrize("plant", ["symlink", "hardlink", "other-owner"])
def test_a_planted_log_file_is_not_used(make_mount, plant):
    """A symlink, a second link to another file, or a file of another user at
    STORE.log: not written; the mount goes on and says its log is lost."""
    m = make_mount(mount=False)
    log, target = fallback(m), m.dir / "target"
    target.write_text("precious\n")
    if plant == "symlink":
        os.symlink(target, log)
    elif plant == "hardlink":
        os.link(target, log)
    else:
        log.write_text("precious\n")
        os.chown(log, 1000, 1000)
        target = log
    r = mount_without_log_file(m)
    try:
        assert "cannot open the daemon's log" in r.stderr and "log_file=" in r.stderr
        write_file(m.p("s"), b"v")
    finally:
        force_unmount(m.mnt)
    assert target.read_text() == "precious\n"


def test_log_file_option_makes_no_file_beside_the_store(make_mount):
    m = make_mount()  # with log_file=
    write_file(m.p("s"), b"v")
    m.unmount()
    assert not fallback(m).exists()
    assert m.log.exists()
