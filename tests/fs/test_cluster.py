"""Replication through etcd end to end (issue 12): secretsfs "hosts" on one
machine, each with its own replica and mount point, over a real
three-member etcd cluster (etcdcluster.py).

The hosts are driven through the CLI as the issue specifies:
`secretsfs init STORE --key-file F --etcd URLS --etcd-prefix P` (the first
host creates the store in etcd, the others join it), `secretsfs mount`,
`secretsfs status MOUNTPOINT`. Each test has an etcd prefix of its own, so
the tests share one cluster; those that stop members or compact have a
cluster of their own. Only 127.0.0.1 is reached.
"""

import base64
import errno
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import (daemon_pids, expect_errno, force_unmount, is_mounted, read_file,
                      run, sfs, wait_gone, write_file)
from etcdcluster import ETCD, ETCDCTL, EtcdCluster


pytestmark = pytest.mark.skipif(not os.access(ETCD, os.X_OK),
                                reason="etcd-server not installed (scripts/install-deps)")

# ---------------------------------------------------------------- helpers

def eventually(fn, timeout, what, step=0.02):
    """fn() until it returns something true, within timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except OSError as e:
            last = e
        if last and not isinstance(last, OSError):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(step)


def value_of(path):
    """The file's bytes, or None when it is not there."""
    try:
        return read_file(path)
    except FileNotFoundError:
        return None


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def prefix_end(prefix):
    b = bytearray(prefix.encode())
    b[-1] += 1
    return bytes(b)


def etcd_keys(cluster, prefix):
    """The keys under prefix (prefix removed), by a linearizable range."""
    member = next(m for m in cluster.members if not m.stopped)
    code, body = cluster.post(member, "/v3/kv/range",
                              {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                               "keys_only": True}, timeout=5)
    assert code == 200, body
    return sorted(base64.b64decode(kv["key"]).decode()[len(prefix):]
                  for kv in body.get("kvs", []))


def etcd_revision(cluster):
    member = next(m for m in cluster.members if not m.stopped)
    code, body = cluster.post(member, "/v3/kv/range", {"key": b64("\0")}, timeout=5)
    assert code == 200, body
    return int(body["header"]["revision"])


def describe(path):
    return json.loads(os.getxattr(path, "user.sm.describe"))


def stages(path):
    """VersionIdsToStages of a secret, as its host has it."""
    return describe(path).get("VersionIdsToStages", {})


def current_holders(path):
    return [v for v, labels in stages(path).items() if "AWSCURRENT" in labels]


class Host:
    """One "host": a replica file, a mount point, a log, the shared key."""

    def __init__(self, base, name, key, cluster, prefix):
        self.name = name
        self.dir = Path(base) / name
        self.dir.mkdir()
        self.store = self.dir / "store.tdb"
        self.mnt = self.dir / "mnt"
        self.mnt.mkdir()
        self.log = self.dir / "secretsfs.log"
        self.key = key
        self.cluster = cluster
        self.prefix = prefix

    def init(self, endpoints=None):
        urls = ",".join(endpoints or self.cluster.endpoints)
        r = sfs("init", self.store, "--key-file", self.key, "--etcd", urls,
                "--etcd-prefix", self.prefix)
        assert r.returncode == 0, f"{self.name}: init: {r.stderr}{r.stdout}"
        return r

    def mount(self):
        r = sfs("mount", self.store, self.mnt, "-o", f"key_file={self.key},log_file={self.log}")
        assert r.returncode == 0, f"{self.name}: mount: {r.stderr}{self.read_log()}"
        assert is_mounted(self.mnt)

    def unmount(self):
        pids = daemon_pids(self.mnt)
        r = run(["fusermount3", "-u", self.mnt])
        assert r.returncode == 0, f"{self.name}: fusermount3 -u: {r.stderr}"
        for pid in pids:
            assert wait_gone(pid, 20), f"{self.name}: daemon {pid} still running"

    def status(self):
        r = sfs("status", self.mnt, timeout=20)
        assert r.returncode == 0, f"{self.name}: status: {r.stderr}"
        return json.loads(r.stdout)

    def p(self, name):
        return self.mnt / name

    def read_log(self):
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def cleanup(self):
        force_unmount(self.mnt)
        for pid in daemon_pids(self.mnt):
            wait_gone(pid, 5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster of the test's own, for faults that would spoil the shared one."""
    made = []

    def factory():
        c = EtcdCluster(tmp_path / f"etcd{len(made)}", port_offset=8)
        made.append(c)
        c.start()
        return c
    yield factory
    for c in made:
        c.stop()


@pytest.fixture
def hosts():
    """hosts(cluster, n): n hosts of one new store in etcd (a prefix of the
    test's own), the first creating it and the others joining, all
    mounted. hosts.add(cluster) makes one more (not inited)."""
    base = Path(tempfile.mkdtemp(prefix="secretsfs-cluster-", dir="/tmp"))
    os.chmod(base, 0o755)
    key = base / "master.key"
    r = sfs("keygen", key)
    assert r.returncode == 0, r.stderr
    made = []
    prefix = f"/sfs-test/{uuid.uuid4().hex}/"

    class Factory:
        def add(self, cluster):
            h = Host(base, f"host{len(made)}", key, cluster, prefix)
            made.append(h)
            return h

        def __call__(self, cluster, n):
            group = [self.add(cluster) for _ in range(n)]
            for h in group:
                h.init()
                h.mount()
            return group

    yield Factory()
    for h in made:
        h.cleanup()
    if not any(is_mounted(h.mnt) for h in made):
        shutil.rmtree(base, ignore_errors=True)


def tree(host):
    """Every live secret's name and value, and every folder, on a host."""
    out = {}
    for root, dirs, files in os.walk(host.mnt):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(root, host.mnt)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d)) + "/"] = None
        for f in files:
            name = os.path.normpath(os.path.join(rel, f))
            out[name] = read_file(os.path.join(root, f))
    return out


def same_everywhere(hs, timeout=10):
    """Every host's tree is the same, within timeout; that tree."""
    def check():
        trees = [tree(h) for h in hs]
        return trees[0] if all(t == trees[0] for t in trees[1:]) else None
    try:
        return eventually(check, timeout, "hosts converge")
    except AssertionError as e:
        trees = {h.name: tree(h) for h in hs}
        logs = "\n".join(f"--- {h.name}\n{h.read_log()}" for h in hs)
        raise AssertionError(f"{e}\n{trees}\n{logs}") from None


# ---------------------------------------------------------------- local mode

def test_status_of_a_local_store(make_mount):
    m = make_mount()
    r = sfs("status", m.mnt)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["mode"] == "local"


# ---------------------------------------------------------------- the cluster

def test_write_on_one_host_read_on_the_others_within_a_second(cluster, hosts):
    a, b, c = hosts(cluster, 3)
    os.mkdir(a.p("app"))
    write_file(a.p("app/db"), "first")
    for h in (b, c):
        eventually(lambda h=h: value_of(h.p("app/db")) == b"first", 1.0,
                   f"the first value on {h.name}")
    t0 = time.monotonic()
    write_file(a.p("app/db"), "second")
    for h in (b, c):
        eventually(lambda h=h: value_of(h.p("app/db")) == b"second", 1.0,
                   f"the second value on {h.name}")
    assert time.monotonic() - t0 < 2.0
    # The other way round, and metadata too.
    os.setxattr(c.p("app/db"), "user.tag.team", b"blue")
    eventually(lambda: os.getxattr(a.p("app/db"), "user.tag.team") == b"blue", 1.0,
               "a tag set on C, on A")
    for h in (a, b, c):
        # The daemon publishes its status once a second.
        st = eventually(lambda h=h: (lambda s: s if s["state"] == "synced" else None)(h.status()),
                        3, f"{h.name} says synced", step=0.2)
        assert st["mode"] == "etcd", st
        assert st["applied_revision"] > 0
        assert set(st["endpoints"]) <= set(cluster.endpoints) and st["endpoints"]
        assert "last_contact_ms" in st


class VersionWatch:
    """Every version record put under a prefix while it runs, from etcd's
    own watch (etcdctl, JSON): what a host's .versions/ cannot show once
    the oldest versions past the service's 100 are gone."""

    def __init__(self, cluster, prefix):
        self.prefix = prefix + "ver/"
        self.keys = set()
        self.proc = subprocess.Popen(
            [ETCDCTL, "--endpoints", ",".join(cluster.endpoints), "watch", "--prefix",
             self.prefix, "-w", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, env={**os.environ, "ETCDCTL_API": "3"})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        time.sleep(0.5)  # the watch is in place before the first write

    def _read(self):
        for line in self.proc.stdout:
            try:
                batch = json.loads(line)
            except ValueError:
                continue
            for ev in batch.get("Events") or []:
                if ev.get("type", 0) in (0, "PUT"):
                    self.keys.add(base64.b64decode(ev["kv"]["key"]).decode())

    def stop(self, settle=1.0):
        time.sleep(settle)
        self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(10)
        return self.keys


def test_concurrent_writers_on_two_hosts(cluster, hosts):
    """Test 2: 100 writes each from A and B to one secret at once."""
    a, b = hosts(cluster, 2)
    write_file(a.p("shared"), "seed")
    eventually(lambda: value_of(b.p("shared")) == b"seed", 2.0, "the seed on B")
    per_host = 100
    done = {a.name: [], b.name: []}
    failed = {a.name: [], b.name: []}
    watch = VersionWatch(cluster, a.prefix)

    def writer(h):
        for i in range(per_host):
            v = f"{h.name}-{i}"
            try:
                write_file(h.p("shared"), v)
                done[h.name].append(v)
            except OSError as e:
                failed[h.name].append((v, errno.errorcode.get(e.errno, e.errno)))

    threads = [threading.Thread(target=writer, args=(h,)) for h in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads), "writers hung"
    created = watch.stop()
    # Too many conflicts in a row is EBUSY; nothing else may fail.
    for name, fails in failed.items():
        assert all(err == "EBUSY" for _, err in fails), f"{name}: {fails}"
    assert done[a.name] and done[b.name], (done, failed)
    acked = set(done[a.name]) | set(done[b.name])
    # Every close that returned 0 made one version in etcd, and nothing
    # else did (a refused close none, a resent commit not a second).
    assert len(created) == len(acked), \
        f"{len(created)} versions created in etcd for {len(acked)} acknowledged closes"

    def agree():
        # Every version (.versions/ lists them all; DescribeSecret only
        # those with labels) and every label, the same on both hosts.
        va, vb = sorted(os.listdir(a.p(".versions/shared"))), \
            sorted(os.listdir(b.p(".versions/shared")))
        sa, sb = stages(a.p("shared")), stages(b.p("shared"))
        return (va, sa) if va == vb and sa == sb else None
    versions, labelled = eventually(agree, 10, "both hosts list the same versions and labels")
    holders = [v for v, labels in labelled.items() if "AWSCURRENT" in labels]
    assert len(holders) == 1, labelled
    assert len([v for v, labels in labelled.items() if "AWSPREVIOUS" in labels]) == 1
    # The versions kept (the newest, as the service keeps them) are the
    # same ones on both hosts, each an acknowledged value, none twice.
    assert {v.rsplit("/", 1)[-1] for v in created} >= set(versions) - {
        v for v in versions if read_file(a.p(f".versions/shared/{v}")) == b"seed"}
    for h in (a, b):
        values = [read_file(h.p(f".versions/shared/{v}")).decode() for v in versions]
        assert len(values) == len(set(values)), f"{h.name}: a value stored twice"
        assert set(values) - {"seed"} <= acked, f"{h.name}: {set(values) - acked - {'seed'}}"
    assert value_of(a.p("shared")) == value_of(b.p("shared"))
    assert value_of(a.p("shared")).decode() in acked


def test_no_quorum_reads_go_on_writes_fail_with_erofs(own_cluster, hosts):
    etcd = own_cluster()
    a, b = hosts(etcd, 2)
    os.mkdir(a.p("app"))
    write_file(a.p("app/db"), "before")
    write_file(a.p("app/other"), "x")
    os.mkdir(a.p("app/empty"))
    eventually(lambda: value_of(b.p("app/db")) == b"before", 2.0, "the value on B")
    eventually(lambda: value_of(b.p("app/other")) == b"x", 2.0, "the other on B")

    for m in etcd.members[:2]:
        etcd.sigstop(m)
    t0 = time.monotonic()

    tries = []

    def refused():
        t = time.monotonic()
        try:
            write_file(a.p("app/db"), f"during-{t}")
            tries.append(("written", round(time.monotonic() - t, 2)))
        except OSError as e:
            tries.append((errno.errorcode.get(e.errno), round(time.monotonic() - t, 2)))
            return e.errno == errno.EROFS
        return False
    # A write sent as the members stopped has an unknown outcome: read
    # back until its deadline, then EIO (the rule); the replica
    # goes offline meanwhile, and the writes after it get EROFS.
    try:
        eventually(refused, 20, "a write refused with EROFS", step=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e}; writes: {tries}\n{a.read_log()}") from None
    assert all(err in ("EIO", "EROFS") for err, _ in tries), tries
    assert time.monotonic() - t0 < 20
    eventually(lambda: a.status()["state"] == "offline", 5, "A says offline", step=0.2)
    # Reads go on, on both hosts, from the replica.
    for h in (a, b):
        assert value_of(h.p("app/db")) == b"before"
        assert sorted(os.listdir(h.p("app"))) == ["db", "empty", "other"]
        os.getxattr(h.p("app/db"), "user.sm.describe")
    # Every kind of change is refused at once.
    eventually(lambda: b.status()["state"] == "offline", 10, "B says offline", step=0.2)
    for h in (a, b):
        changes = [
            lambda: write_file(h.p("app/db"), "no"),
            lambda: write_file(h.p("app/new"), "no"),
            lambda: os.open(h.p("app/db"), os.O_WRONLY | os.O_TRUNC),
            lambda: os.mkdir(h.p("app/dir")),
            lambda: os.unlink(h.p("app/other")),
            lambda: os.rmdir(h.p("app/empty")),
            lambda: os.rename(h.p("app/db"), h.p("app/db2")),
            lambda: os.setxattr(h.p("app/db"), "user.tag.k", b"v"),
            lambda: os.removexattr(h.p("app/db"), "user.sm.description"),
            lambda: os.truncate(h.p("app/db"), 1),
            lambda: os.chmod(h.p("app/db"), 0o640),
            lambda: os.chown(h.p("app/db"), 1000, 1000),
        ]
        for i, change in enumerate(changes):
            t = time.monotonic()
            expect_errno(errno.EROFS, change)
            assert time.monotonic() - t < 1.0, f"{h.name}: change {i} took too long"
        assert value_of(h.p("app/db")) == b"before"
        assert value_of(h.p("app/other")) == b"x"
        assert not os.path.exists(h.p("app/new"))

    for m in etcd.members[:2]:
        etcd.sigcont(m)
    etcd.wait_ready(20)

    def writes_again():
        try:
            write_file(a.p("app/db"), "after")
            return True
        except OSError:
            return False
    eventually(writes_again, 20, "A writes again", step=0.5)

    def b_writes_again():
        # B's replica leaves "offline" when its own watch thread hears a
        # leader again: within its backoff (at most 2 s) of A's.
        try:
            write_file(b.p("app/fromb"), "b")
            return True
        except OSError:
            return False
    eventually(b_writes_again, 10, "B writes again", step=0.25)
    tr = same_everywhere([a, b], 10)
    assert tr["app/db"] == b"after" and tr["app/fromb"] == b"b"
    eventually(lambda: a.status()["state"] == "synced", 10, "A synced")
    eventually(lambda: b.status()["state"] == "synced", 10, "B synced")


def test_host_behind_compaction_resyncs(own_cluster, hosts):
    etcd = own_cluster()
    a, b = hosts(etcd, 2)
    for n in ("keep", "soft", "hard"):
        write_file(a.p(n), n)
    same_everywhere([a, b], 5)
    b.unmount()

    # While B is down: changes, a deletion into the recovery window, one
    # for good (its records leave etcd), and a new secret.
    write_file(a.p("keep"), "keep2")
    os.unlink(a.p("soft"))
    os.unlink(a.p("hard"))
    os.unlink(a.p(".deleted/hard"))
    write_file(a.p("new"), "new")
    for i in range(20):
        write_file(a.p("churn"), f"c{i}")
    rev = etcd_revision(etcd)
    code, body = etcd.post(etcd.members[0], "/v3/kv/compaction",
                           {"revision": rev, "physical": True}, timeout=10)
    assert code == 200, body

    b.mount()
    tr = same_everywhere([a, b], 15)
    assert tr["keep"] == b"keep2" and tr["new"] == b"new" and tr["churn"] == b"c19"
    assert "soft" not in tr and "hard" not in tr
    assert os.listdir(b.p(".deleted")) == ["soft"]
    assert not os.path.exists(b.p(".deleted/hard"))
    assert sorted(os.listdir(b.p(".versions/churn"))) == sorted(os.listdir(a.p(".versions/churn")))
    assert "compacted past revision" in b.read_log(), b.read_log()


def test_host_joins_while_another_writes(cluster, hosts):
    a, b = hosts(cluster, 2)
    os.mkdir(a.p("app"))
    for i in range(5):
        write_file(a.p(f"app/s{i}"), f"v{i}")
    stop = threading.Event()
    written = []
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            try:
                write_file(a.p("app/stream"), f"n{i}")
                written.append(i)
            except OSError as e:
                errors.append(e)
            i += 1
            if i % 7 == 0:
                try:
                    write_file(a.p(f"app/made{i}"), "m")
                except OSError as e:
                    errors.append(e)
    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        c = hosts.add(cluster)
        c.init()
        c.mount()
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert written
    tr = same_everywhere([a, b, c], 15)
    assert tr["app/stream"] == f"n{written[-1]}".encode()

    # The joined replica holds what etcd holds: every secret, every version.
    keys = etcd_keys(cluster, a.prefix)
    names = sorted(k[len("secret/"):] for k in keys if k.startswith("secret/"))
    assert names == sorted(n for n in tr if not n.endswith("/"))
    etcd_versions = sorted(k.rsplit("/", 1)[1] for k in keys if k.startswith("ver/"))
    local_versions = sorted(v for n in names for v in os.listdir(c.p(f".versions/{n}")))
    assert local_versions == etcd_versions
    for n in names:
        assert stages(c.p(n)) == stages(a.p(n))
    assert not any(k in ("sfs/state", "sfs/replica", "sfs/cluster") for k in keys)


def test_join_with_the_wrong_key_is_refused(cluster, hosts, tmp_path):
    (a,) = hosts(cluster, 1)
    write_file(a.p("db"), "v")
    other = tmp_path / "other.key"
    assert sfs("keygen", other).returncode == 0
    store = tmp_path / "intruder.tdb"
    r = sfs("init", store, "--key-file", other, "--etcd", ",".join(cluster.endpoints),
            "--etcd-prefix", a.prefix)
    assert r.returncode == 1, r.stderr
    assert "does not unlock it" in r.stderr, r.stderr
    assert not store.exists()


# ------------------------------------------------- faults, and what etcd's admin can do

SHARED = ("secret/", "dir/", "ver/", "key/", "cat/", "sfs/header", "sfs/format")


def etcd_records(cluster, prefix):
    """Every record under prefix: {tdb key: bytes}, by a linearizable range."""
    member = next(m for m in cluster.members
                  if not m.stopped and m.proc and m.proc.poll() is None)
    code, body = cluster.post(member, "/v3/kv/range",
                              {"key": b64(prefix), "range_end": b64(prefix_end(prefix))},
                              timeout=10)
    assert code == 200, body
    return {base64.b64decode(kv["key"]).decode()[len(prefix):]: base64.b64decode(kv["value"])
            for kv in body.get("kvs", [])}


def replica_records(host):
    """The shared records of an unmounted host's replica file: {key: bytes}."""
    import tdb  # Debian's python3-tdb
    t = tdb.Tdb(str(host.store), 0, tdb.DEFAULT, os.O_RDONLY)
    try:
        return {k.decode(): t[k] for k in t.keys()
                if k.decode().startswith(SHARED)}
    finally:
        t.close()


def assert_replicas_match_etcd(cluster, hs):
    """Test 9's checker: every host's replica holds exactly etcd's records,
    byte for byte: every secret, every version, every label (the hosts are
    unmounted first, so their files are at rest)."""
    for h in hs:
        if is_mounted(h.mnt):
            h.unmount()
    # A host that stopped first has not seen what the later ones stored as
    # they stopped (the read dates): each catches up once more, reading
    # nothing, so that it stores nothing of its own.
    for h in hs[:-1]:
        h.mount()
        eventually(lambda: h.status()["state"] == "synced", 10, f"{h.name} synced")
        time.sleep(1.5)
        h.unmount()
    want = etcd_records(cluster, hs[0].prefix)
    assert any(k.startswith("ver/") for k in want), sorted(want)
    for h in hs:
        got = replica_records(h)
        assert sorted(got) == sorted(want), \
            f"{h.name}: keys differ: only here {sorted(set(got) - set(want))}, " \
            f"only in etcd {sorted(set(want) - set(got))}"
        bad = [k for k in want if got[k] != want[k]]
        assert not bad, f"{h.name}: records differ from etcd's: " + "; ".join(
            f"{k}: here {got[k][36:]!r} etcd {want[k][36:]!r}" for k in bad[:2])


def put_raw(cluster, prefix, key, value):
    """What etcd's admin can do without the key: put any bytes anywhere."""
    member = next(m for m in cluster.members
                  if not m.stopped and m.proc and m.proc.poll() is None)
    code, body = cluster.post(member, "/v3/kv/put",
                              {"key": b64(prefix + key), "value": b64(value)}, timeout=10)
    assert code == 200, body


def test_leader_killed_during_writes_nothing_acknowledged_lost_none_doubled(own_cluster, hosts):
    """Test 3: kill -9 of the etcd leader during a stream of writes on A:
    every close that returned 0 is a version on both hosts, no value is a
    version twice, and the hosts end identical to etcd."""
    etcd = own_cluster()
    a, b = hosts(etcd, 2)
    acked, failed, stop = [], [], threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            v = f"v{i}"
            try:
                write_file(a.p("stream"), v)
                acked.append(v)
            except OSError as e:
                failed.append((v, errno.errorcode.get(e.errno, e.errno)))
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        eventually(lambda: len(acked) >= 20, 20, "20 writes before the kill")
        leader = etcd.leader()
        assert leader is not None
        before_kill = len(acked) + len(failed)  # the index of the write in flight, or next
        etcd.kill(leader)
        # Stop soon after the writes come back: fewer than the 100 versions a
        # secret keeps, so the versions around the kill are all still listed.
        eventually(lambda: len(acked) >= 40, 30, "20 writes acknowledged after the kill")
    finally:
        stop.set()  # on a failure too: a writer left running keeps pytest from exiting
        t.join(60)
    assert not t.is_alive()
    assert acked, failed
    # A write may end EIO (its answer lost with the leader) or EROFS while
    # no leader answers; nothing else.
    assert all(err in ("EIO", "EROFS", "EBUSY") for _, err in failed), failed

    def writes_work():
        try:
            write_file(a.p("after"), "x")  # a leader again: writes work
            return True
        except OSError:
            return False
    eventually(writes_work, 15, "A writes again", step=0.25)

    def settled():
        va = sorted(os.listdir(a.p(".versions/stream")))
        vb = sorted(os.listdir(b.p(".versions/stream")))
        return va if va == vb else None
    versions = eventually(settled, 15, "both hosts list the same versions")
    values = [read_file(a.p(f".versions/stream/{v}")).decode() for v in versions]
    assert len(values) == len(set(values)), "a value written once is two versions"
    # Only the newest versions are kept (the service keeps 100): the acked
    # values still listed are exactly those at least as new as the oldest one kept.
    kept_from = min(int(v[1:]) for v in values)
    assert kept_from < before_kill - 10, "the writes around the kill were pruned"
    missing = [v for v in acked if int(v[1:]) >= kept_from and v not in values]
    assert not missing, f"acknowledged writes lost: {missing}"
    assert_replicas_match_etcd(etcd, [a, b])


def test_replicas_match_etcd_after_mixed_work(cluster, hosts):
    """Test 9: after creates, updates, labels, tags, renames, folders and
    deletions from two hosts, each replica file holds etcd's records byte
    for byte."""
    a, b = hosts(cluster, 2)
    os.mkdir(a.p("app"))
    write_file(a.p("app/db"), "one")
    eventually(lambda: value_of(b.p("app/db")) == b"one", 3, "app/db on B")
    write_file(b.p("app/db"), "two")
    eventually(lambda: value_of(a.p("app/db")) == b"two", 3, "the update on A")
    os.setxattr(a.p("app/db"), "user.tag.team", b"payments")
    write_file(b.p("app/api"), "key")
    os.rename(b.p("app/api"), b.p("app/api-key"))
    write_file(a.p("gone"), "x")
    eventually(lambda: value_of(b.p("gone")) == b"x", 3, "gone on B")
    os.unlink(b.p("gone"))
    same_everywhere([a, b], 10)
    assert_replicas_match_etcd(cluster, [a, b])


def test_etcd_admin_cannot_change_or_roll_back_a_secret(cluster, hosts):
    """Whoever writes to etcd holds no key: a record changed by one byte is
    not applied, nor is a genuine but older copy put back; both are
    logged, and the hosts keep serving the current value."""
    a, b = hosts(cluster, 2)
    write_file(a.p("db"), "old password")
    eventually(lambda: value_of(b.p("db")) == b"old password", 3, "db on B")
    old = etcd_records(cluster, a.prefix)["secret/db"]
    write_file(a.p("db"), "new password")
    eventually(lambda: value_of(b.p("db")) == b"new password", 3, "the update on B")
    current = etcd_records(cluster, a.prefix)["secret/db"]

    changed = bytearray(current)
    changed[-3] ^= 0x01
    put_raw(cluster, a.prefix, "secret/db", bytes(changed))
    put_raw(cluster, a.prefix, "secret/db", old)
    write_file(a.p("marker"), "m")  # a later revision: both above were seen
    eventually(lambda: value_of(b.p("marker")) == b"m", 3, "the marker on B")
    for h in (a, b):
        assert read_file(h.p("db")) == b"new password", h.name
    for h in (a, b):
        log = h.log.read_text(errors="replace")
        assert "store record secret/db fails authentication" in log, h.name
        assert "a rollback, refused" in log, h.name


def test_passwd_rekey_and_key_refused_on_a_replica_file(cluster, hosts):
    (a,) = hosts(cluster, 1)
    a.unmount()
    before = a.store.read_bytes()
    new_key = a.dir / "new.key"
    assert sfs("keygen", new_key).returncode == 0
    for args in (("passwd", a.store, "--key-file", a.key, "--new-key-file", new_key),
                 ("rekey", a.store, "--key-file", a.key),
                 ("key", "create", a.store, "extra", "--key-file", a.key)):
        r = sfs(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "replica of a store in etcd" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert a.store.read_bytes() == before
