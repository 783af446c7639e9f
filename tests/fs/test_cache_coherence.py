"""No stale value under caching: an update through one path is read at once
through every other (issue: performance, correctness under caching)."""

import errno
import json
import os

import pytest

from conftest import read_file, sfs, write_file


def test_update_through_one_path_read_through_another_at_once(mounted):
    m = mounted
    os.makedirs(m.p("app"))
    for i in range(50):
        main = json.dumps({"user": "u", "password": f"p{i}"}).encode()
        # Through the file itself...
        write_file(m.p("app/db"), main)
        assert read_file(m.p("app/db")) == main
        assert read_file(m.p(".stages/AWSCURRENT/app/db")) == main
        assert read_file(m.p(".fields/app/db/password")) == f"p{i}".encode()
        # ...and through the AWSCURRENT view, read back through the file.
        staged = json.dumps({"user": "u", "password": f"s{i}"}).encode()
        write_file(m.p(".stages/AWSCURRENT/app/db"), staged)
        assert read_file(m.p("app/db")) == staged
        assert os.stat(m.p("app/db")).st_size == len(staged)


def test_update_through_the_cli_read_at_once(mounted):
    m = mounted
    write_file(m.p("s"), b"before")
    assert read_file(m.p("s")) == b"before"
    r = sfs("import", m.mnt, input=json.dumps({"Name": "s", "SecretString": "after"}) + "\n")
    assert r.returncode == 0, r.stderr
    assert read_file(m.p("s")) == b"after"
    # Label moves (UpdateSecretVersionStage) show at once too.
    previous = os.getxattr(m.p("s"), "user.sm.stage.AWSPREVIOUS")
    os.setxattr(m.p("s"), "user.sm.stage.AWSCURRENT", previous)
    assert read_file(m.p("s")) == b"before"


def test_a_second_mount_of_the_same_store_is_refused(mounted, tmp_path):
    """One daemon per store keeps every cache exact: a second mount would
    change the store behind the first one's back."""
    m = mounted
    other = tmp_path / "second"
    other.mkdir()
    r = sfs("mount", m.store, other, "-o", f"key_file={m.key}")
    assert r.returncode == 1
    assert "already mounted" in r.stderr


def test_attributes_follow_every_change_at_once(mounted):
    """A secret's attributes are cached for a minute and dropped by the daemon
    when the secret changes, whatever changed it: stat never shows the size
    or times of a value that is no longer current."""
    m = mounted
    s = m.p("app/s")
    os.makedirs(m.p("app"))
    write_file(s, b"12345")
    first = os.stat(s)  # now cached in the kernel
    assert first.st_size == 5
    # Through another path to the same secret.
    write_file(m.p(".stages/AWSCURRENT/app/s"), b"x" * 12)
    assert os.stat(s).st_size == 12
    # Through the CLI (another process, through the daemon).
    r = sfs("import", m.mnt, input=json.dumps({"Name": "app/s", "SecretString": "y" * 20}) + "\n")
    assert r.returncode == 0, r.stderr
    assert os.stat(s).st_size == 20
    # A label move (UpdateSecretVersionStage) by xattr.
    previous = os.getxattr(s, "user.sm.stage.AWSPREVIOUS")
    os.setxattr(s, "user.sm.stage.AWSCURRENT", previous)
    assert os.stat(s).st_size == 12
    assert read_file(s) == b"x" * 12
    # A write that fails commits nothing: once it is closed, stat shows the
    # current value's size again, not the size the writer had reached.
    fd = os.open(s, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"z" * 3)
    assert os.fstat(fd).st_size == 3  # the writer sees its own size
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"z", 65536)  # past the 64 KiB limit
    assert e.value.errno == errno.EFBIG
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EFBIG
    assert os.stat(s).st_size == 12
    assert read_file(s) == b"x" * 12
    # Folder metadata changed through its xattr-free path: chmod, seen at once.
    os.chmod(m.p("app"), 0o750)
    assert os.stat(m.p("app")).st_mode & 0o777 == 0o750


def test_attributes_after_a_rename_over_an_existing_secret(mounted):
    """rename(A, B) over an existing B is PutSecretValue on B: the node the
    kernel knew as A now shows B's creation date and A's mode at once."""
    m = mounted
    write_file(m.p("b"), b"old value of b")
    created_b = os.stat(m.p("b")).st_ctime_ns
    write_file(m.p("a"), b"new")
    os.chmod(m.p("a"), 0o640)
    assert os.stat(m.p("a")).st_size == 3  # cached under a
    os.rename(m.p("a"), m.p("b"))
    st = os.stat(m.p("b"))
    assert st.st_size == 3
    assert st.st_ctime_ns == created_b  # CreatedDate stays B's
    assert st.st_mode & 0o777 == 0o640
    assert read_file(m.p("b")) == b"new"
