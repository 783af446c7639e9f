"""Programs that watch for change (issue 12, docs/cluster.md): what an
inotify watcher on host B hears of a change, made on B itself (the kernel
raises the events of the request) or on host A (B's daemon applies it from
etcd, and can only tell the kernel what the FUSE notify API carries).

The kernel of this machine, measured (docs/cluster.md has the table): a
name another host removed, which B's kernel knew, is unhashed by
notify_delete, and a watch on that file or folder gets IN_DELETE_SELF; no
IN_DELETE, IN_CREATE, IN_MOVED_* on the folder nor IN_MODIFY on a file can
be raised by a FUSE daemon, so a changed value is found by its attributes,
which B shows at once.
"""

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import force_unmount, is_mounted, ok, sfs, write_file, read_file
from etcdcluster import EtcdCluster
from inotifywatch import Watcher

SOON = 2.0  # seconds: the bound for a change to reach a watcher on B


@pytest.fixture(scope="module")
def etcd():
    base = tempfile.mkdtemp(prefix="secretsfs-inotify-etcd-", dir="/tmp")
    c = EtcdCluster(Path(base) / "etcd")
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)


class Host:
    def __init__(self, base, name, key, endpoints, prefix):
        self.store = base / f"{name}.tdb"
        self.mnt = base / f"m{name}"
        self.log = base / f"{name}.log"
        self.mnt.mkdir()
        ok(sfs("init", self.store, "--key-file", key, "--etcd", endpoints,
               "--etcd-prefix", prefix))
        ok(sfs("mount", self.store, self.mnt, "-o", f"key_file={key},log_file={self.log}"))
        assert is_mounted(self.mnt)

    def p(self, name):
        return self.mnt / name


@pytest.fixture
def hosts(etcd):
    """Two hosts of one new store: A made it, B joined."""
    base = Path(tempfile.mkdtemp(prefix="secretsfs-inotify-", dir="/tmp"))
    os.chmod(base, 0o755)
    made = []
    try:
        key = base / "master.key"
        ok(sfs("keygen", key))
        eps = ",".join(etcd.endpoints)
        prefix = f"/secretsfs-test/{base.name}/"  # a store of its own per test
        made.append(Host(base, "a", key, eps, prefix))
        made.append(Host(base, "b", key, eps, prefix))
        yield made[0], made[1]
    finally:
        for h in made:
            force_unmount(h.mnt)
        time.sleep(0.2)
        if not any(is_mounted(h.mnt) for h in made):
            shutil.rmtree(base, ignore_errors=True)


def until(pred, timeout=SOON * 2):
    """Seconds until pred() held (polled every 20 ms), or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if pred():
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.02)
    return None


def exists(path):
    try:
        os.stat(path)
        return True
    except FileNotFoundError:
        return False


def has(kind, name=None):
    return lambda e: kind in e[2] and (name is None or e[1] == name)


# ------------------------------------------------------------ local changes

def test_local_changes_raise_the_events_of_their_requests(mounted):
    """One host: the kernel raises what a watcher expects for each change."""
    folder = mounted.p("app")
    os.mkdir(folder)
    with Watcher() as w:
        w.add(folder)
        write_file(folder / "db", b"one")
        assert w.wait_for(has("CREATE", "db"), SOON)[0]
        assert w.wait_for(has("CLOSE_WRITE", "db"), SOON)[0]

        w.add(folder / "db")
        write_file(folder / "db", b"two")
        e, _ = w.wait_for(lambda e: e[1] == "" and "MODIFY" in e[2], SOON)
        assert e, w.seen
        assert w.wait_for(lambda e: e[1] == "" and "CLOSE_WRITE" in e[2], SOON)[0]

        os.rename(folder / "db", folder / "db2")
        assert w.wait_for(has("MOVED_FROM", "db"), SOON)[0]
        assert w.wait_for(has("MOVED_TO", "db2"), SOON)[0]

        os.unlink(folder / "db2")
        assert w.wait_for(has("DELETE", "db2"), SOON)[0]
        assert w.wait_for(lambda e: e[1] == "" and "DELETE_SELF" in e[2], SOON)[0]


# ----------------------------------------------------------- remote changes

def test_secret_deleted_on_a_raises_delete_self_on_b(hosts):
    a, b = hosts
    write_file(a.p("db"), b"one")
    assert until(lambda: read_file(b.p("db")) == b"one") is not None
    with Watcher() as w:
        w.add(b.p("db"))
        os.unlink(a.p("db"))
        e, took = w.wait_for(has("DELETE_SELF"), SOON)
        assert e, f"no IN_DELETE_SELF on B within {SOON} s: {w.seen}"
        print(f"remote delete: IN_DELETE_SELF on B after {took:.3f} s")
        assert w.wait_for(has("IGNORED"), SOON)[0]
    assert not exists(b.p("db"))
    assert "db" not in os.listdir(b.mnt)


def test_folder_removed_on_a_raises_delete_self_on_b(hosts):
    a, b = hosts
    os.mkdir(a.p("team"))
    assert until(lambda: os.path.isdir(b.p("team"))) is not None
    with Watcher() as w:
        w.add(b.p("team"))
        os.rmdir(a.p("team"))
        e, took = w.wait_for(has("DELETE_SELF"), SOON)
        assert e, f"no IN_DELETE_SELF on B within {SOON} s: {w.seen}"
        print(f"remote rmdir: IN_DELETE_SELF on B after {took:.3f} s")
    assert not exists(b.p("team"))


def test_secret_renamed_on_a_old_name_gone_on_b(hosts):
    """No IN_MOVED_*: the old name's watch hears IN_DELETE_SELF, and the
    new name is there to be watched at once."""
    a, b = hosts
    os.mkdir(a.p("app"))
    write_file(a.p("app/db"), b"one")
    assert until(lambda: read_file(b.p("app/db")) == b"one") is not None
    with Watcher() as w:
        w.add(b.p("app/db"))
        os.rename(a.p("app/db"), a.p("app/db2"))
        e, took = w.wait_for(has("DELETE_SELF"), SOON)
        assert e, f"no IN_DELETE_SELF on B within {SOON} s: {w.seen}"
        print(f"remote rename: IN_DELETE_SELF on B after {took:.3f} s")
    assert read_file(b.p("app/db2")) == b"one"
    assert not exists(b.p("app/db"))


def test_secret_recreated_on_a_is_watched_afresh_on_b(hosts):
    """The watcher's usual loop (watch, hear the file go, watch the name
    again) works across hosts: the name made again is a new file on B,
    whose own removal is heard in turn."""
    a, b = hosts
    write_file(a.p("tls"), b"one")
    assert until(lambda: read_file(b.p("tls")) == b"one") is not None
    for value in (b"two", b"three"):
        with Watcher() as w:
            w.add(b.p("tls"))
            os.unlink(a.p("tls"))
            assert w.wait_for(has("DELETE_SELF"), SOON)[0], w.seen
        assert not exists(b.p("tls"))
        write_file(a.p("tls"), value)  # restores it, with this value
        assert until(lambda: read_file(b.p("tls")) == value) is not None


def test_value_changed_on_a_shows_in_b_attributes_at_once(hosts):
    """No inotify event can be raised for a file's new value (the FUSE
    notify API has none that reaches fsnotify): what a program on B can
    use is the file's attributes, fresh at once, or its content."""
    a, b = hosts
    write_file(a.p("db"), b"one")
    assert until(lambda: read_file(b.p("db")) == b"one") is not None
    before = os.stat(b.p("db"))
    time.sleep(0.05)  # dates are in milliseconds: let the clock move
    start = time.monotonic()
    write_file(a.p("db"), b"second value")
    took = until(lambda: os.stat(b.p("db")).st_size == len(b"second value"))
    assert took is not None and took <= SOON, "B's attributes stayed stale"
    after = os.stat(b.p("db"))
    assert after.st_mtime > before.st_mtime
    assert read_file(b.p("db")) == b"second value"
    print(f"remote modify: new size/mtime on B after {time.monotonic() - start:.3f} s")


def test_local_changes_on_b_while_a_deletes_names_there(hosts):
    """B's requests in a folder (which hold the kernel's lock of it) and
    the kernel being told of A's deletions in that folder do not wait on
    each other: every request ends, every name ends where it should."""
    a, b = hosts
    os.mkdir(a.p("busy"))
    names = [f"a{i}" for i in range(20)]
    for n in names:
        write_file(a.p(f"busy/{n}"), b"x")
    assert until(lambda: all(exists(b.p(f"busy/{n}")) for n in names), 10) is not None
    errors = []

    def b_writes():
        try:
            for i in range(20):
                write_file(b.p(f"busy/b{i}"), b"y")
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=b_writes)
    t.start()
    for n in names:
        os.unlink(a.p(f"busy/{n}"))
    t.join(60)
    assert not t.is_alive(), "B's writes hung"
    assert not errors, errors
    assert until(lambda: not any(exists(b.p(f"busy/{n}")) for n in names), 10) is not None
    assert all(read_file(b.p(f"busy/b{i}")) == b"y" for i in range(20))
