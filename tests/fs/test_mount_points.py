"""What secretsfs mount is mounted on (issue 15, item 2): a regular file and
a live FUSE mount are refused, a folder with files in it unless -o nonempty,
each with one line and exit 1 before anything goes to the background; any
other mount point (a tmpfs) is mounted over as usual."""

import os
import subprocess

import pytest

from conftest import (BIN, as_uid, daemon_pids, force_unmount, is_mounted, read_file, sfs,
                      wait_gone, write_file)


def refused(m, target, words, extra=""):
    """A mount of m's store on target fails with one line holding words,
    and leaves no daemon and no new mount behind."""
    mounted_before = is_mounted(target)
    r = sfs("mount", m.store, target, "-o", m.option_string() + extra)
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert is_mounted(target) == mounted_before
    assert daemon_pids(target) == [] or mounted_before
    return lines[0]


def test_a_regular_file_is_refused(make_mount):
    m = make_mount(mount=False)
    f = m.dir / "file"
    f.write_text("not a folder\n")
    refused(m, f, [str(f), "not a folder"])
    assert f.read_text() == "not a folder\n"
    assert not m.read_log()  # refused before any daemon started


def test_a_live_secretsfs_mount_is_refused_and_keeps_serving(make_mount):
    first = make_mount()
    write_file(first.p("s"), b"first store")
    second = make_mount(mount=False)
    line = refused(second, first.mnt, ["mounted here already", str(first.store),
                                       "fusermount3 -u"])
    assert str(second.store) not in line
    assert read_file(first.p("s")) == b"first store"
    assert len(daemon_pids(first.mnt)) == 1
    # The same store on its own mount point: the same answer.
    refused(first, first.mnt, ["mounted here already"])
    assert read_file(first.p("s")) == b"first store"


def test_a_folder_with_files_is_refused_unless_nonempty(make_mount):
    m = make_mount(mount=False)
    (m.mnt / ".hidden").write_text("mine\n")
    refused(m, m.mnt, ["not empty", "-o nonempty"])
    assert (m.mnt / ".hidden").read_text() == "mine\n"
    m.mount(nonempty=True)
    assert os.listdir(m.mnt) == []  # hidden while mounted, as the option says
    write_file(m.p("s"), b"value")
    m.unmount()
    assert os.listdir(m.mnt) == [".hidden"]
    m.mount(nonempty=True)
    assert read_file(m.p("s")) == b"value"


def test_a_folder_the_caller_cannot_list_is_refused(make_mount):
    """A mount point its user may enter but not list (mode 0300, theirs):
    whether it is empty cannot be told, so it is refused like one with
    files, in one line, before any key is read or anything goes to the
    background; -o nonempty gets past this check."""
    m = make_mount(mount=False)
    for p in (m.dir, m.store, m.key, m.mnt):
        os.chown(p, 1000, 1000)
    os.chmod(m.mnt, 0o300)
    r = as_uid(1000, BIN, "mount", m.store, m.mnt, "-o", f"key_file={m.key}")
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"{m.mnt}: cannot look into it to see that it is empty" in lines[0], lines[0]
    assert "Permission denied" in lines[0] and "-o nonempty" in lines[0], lines[0]
    assert not is_mounted(m.mnt) and daemon_pids(m.mnt) == []
    r = as_uid(1000, BIN, "mount", m.store, m.mnt, "-o", f"key_file={m.key},nonempty")
    try:
        assert "cannot look into it" not in r.stderr, r.stderr
    finally:
        force_unmount(m.mnt)


@pytest.fixture
def tmpfs(make_mount):
    """A store m and a tmpfs mounted on m.mnt."""
    m = make_mount(mount=False)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(m.mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr}")
    yield m
    force_unmount(m.mnt)  # secretsfs, if still there
    subprocess.run(["umount", str(m.mnt)], capture_output=True)


def test_an_empty_tmpfs_mount_point_is_mounted_over(tmpfs):
    m = tmpfs
    m.mount()
    write_file(m.p("s"), b"on top")
    assert read_file(m.p("s")) == b"on top"
    pid = m.pid
    assert subprocess.run(["fusermount3", "-u", str(m.mnt)]).returncode == 0
    assert wait_gone(pid)
    # The tmpfs is back, untouched.
    assert is_mounted(m.mnt) and os.listdir(m.mnt) == []
    assert "tmpfs" in subprocess.run(["findmnt", "-rn", "-o", "FSTYPE", str(m.mnt)],
                                     capture_output=True, text=True).stdout


def test_a_tmpfs_with_files_is_refused_as_a_folder_is(tmpfs):
    m = tmpfs
    (m.mnt / "f").write_text("x")
    refused(m, m.mnt, ["not empty"])
    m.mount(nonempty=True)
    assert os.listdir(m.mnt) == []
