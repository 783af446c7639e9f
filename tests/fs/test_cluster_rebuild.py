"""A replica's file is a copy of what etcd holds (docs/replication.md,
"The replica's file"): its commits go unsynced, since etcd has each one
durably first, and a replica whose file cannot be read (torn by a power
loss, or damaged) is made again from etcd at its next mount, the damaged
file kept beside it. These tests check each half: no sync on the write
path of a mounted replica and one at its stop, and the rebuild from the
note STORE.etcd, with etcd up (the new file matches etcd record for
record) and down (nothing touched, a clear refusal).
"""

import json
import os
import secrets as pysecrets

import pytest

from conftest import is_mounted, sfs, write_file
from relhelpers import shim_env, trace_points
from test_cluster import (assert_replicas_match_etcd, cluster, eventually,  # noqa: F401
                          hosts, own_cluster, same_everywhere, value_of)
from etcdcluster import ETCD


pytestmark = pytest.mark.skipif(not os.access(ETCD, os.X_OK),
                                reason="etcd-server not installed (scripts/install-deps)")

SYNCS = ("fsync", "fdatasync", "msync")


def mount_with(host, env=None):
    full = dict(os.environ)
    full.update(env or {})
    return sfs("mount", host.store, host.mnt, "-o",
               f"key_file={host.key},log_file={host.log}", env=full)


def test_a_replica_commits_without_sync_and_syncs_at_its_stop(cluster, hosts, tmp_path):
    a, = hosts(cluster, 1)
    a.unmount()
    trace = tmp_path / "trace"
    # tdb without its mapping: the shim sees every write as a call.
    r = mount_with(a, shim_env(a.store, nommap=True, trace=trace))
    assert r.returncode == 0, r.stderr + a.read_log()
    before = len(trace_points(trace))
    for i in range(10):
        write_file(a.p(f"s{i % 3}"), f"v{i}")
    os.setxattr(a.p("s0"), "user.tag.team", b"blue")
    during = trace_points(trace)[before:]
    assert [op for _, op in during if op in ("pwrite", "write")], \
        "the writes did not reach the file at all"
    assert not [op for _, op in during if op in SYNCS], during
    a.unmount()
    after = trace_points(trace)[len(during) + before:]
    assert [op for _, op in after if op in SYNCS], \
        f"no sync at the replica's stop: {after}"
    # The note beside the file: the cluster record, no secret, owner only.
    note = a.store.with_name(a.store.name + ".etcd")
    assert oct(note.stat().st_mode & 0o777) == "0o600"
    kept = json.loads(note.read_text())
    assert kept["prefix"] == a.prefix and kept["endpoints"] == cluster.endpoints, kept
    assert a.key.read_bytes().strip().decode() not in note.read_text()


def garble_record(path, prefix):
    """A record under prefix given random bytes: what a torn page leaves."""
    import tdb
    t = tdb.Tdb(str(path), 0, tdb.DEFAULT, os.O_RDWR)
    try:
        key = next(k for k in t.keys() if k.decode().startswith(prefix))
        t[key] = pysecrets.token_bytes(len(t[key]))
    finally:
        t.close()


def remove_record(path, prefix):
    """A record under prefix gone: a commit half on disk."""
    import tdb
    t = tdb.Tdb(str(path), 0, tdb.DEFAULT, os.O_RDWR)
    try:
        key = next(k for k in t.keys() if k.decode().startswith(prefix))
        del t[key]
    finally:
        t.close()


@pytest.mark.parametrize("damage", ["garbled secret record", "version record removed"])
def test_a_damaged_replica_is_made_again_from_etcd(cluster, hosts, damage):
    a, b = hosts(cluster, 2)
    os.mkdir(a.p("app"))
    for i in range(5):
        write_file(a.p(f"app/s{i}"), f"one-{i}")
    write_file(b.p("app/s0"), "two")
    same_everywhere([a, b], 10)
    a.unmount()
    # While A is down, B goes on: the rebuilt A must have this too.
    write_file(b.p("app/s1"), "three")
    os.unlink(b.p("app/s2"))
    write_file(b.p("later"), "later")
    if damage.startswith("garbled"):
        garble_record(a.store, "secret/")
    else:
        remove_record(a.store, "ver/")

    r = mount_with(a)
    assert r.returncode == 0, r.stderr + a.read_log()
    assert is_mounted(a.mnt)
    assert "made again from etcd" in r.stderr, r.stderr
    kept = [p for p in a.dir.iterdir() if p.name.startswith("store.tdb.damaged-")]
    assert len(kept) == 1, sorted(p.name for p in a.dir.iterdir())
    assert not [p for p in a.dir.iterdir() if p.name.endswith(".rebuild")]
    tr = same_everywhere([a, b], 10)
    assert tr["app/s0"] == b"two" and tr["app/s1"] == b"three" and tr["later"] == b"later"
    assert "app/s2" not in tr
    # It goes on as a replica: both ways.
    write_file(a.p("app/s3"), "from A")
    eventually(lambda: value_of(b.p("app/s3")) == b"from A", 3, "A's write on B")
    assert_replicas_match_etcd(cluster, [a, b])


def test_a_damaged_replica_with_etcd_down_is_left_as_it_is(own_cluster, hosts):
    etcd = own_cluster()
    a, = hosts(etcd, 1)
    write_file(a.p("s"), "v")
    a.unmount()
    garble_record(a.store, "secret/")
    damaged = a.store.read_bytes()
    etcd.stop()
    r = mount_with(a)
    assert r.returncode != 0
    assert not is_mounted(a.mnt)
    assert "made again from etcd" in r.stderr and "etcd" in r.stderr.splitlines()[-1], r.stderr
    assert a.store.read_bytes() == damaged
    assert sorted(p.name for p in a.dir.iterdir()) == \
        sorted(["mnt", "secretsfs.log", "store.tdb", "store.tdb.etcd"])


def test_a_wrong_key_never_rebuilds(cluster, hosts, tmp_path):
    a, = hosts(cluster, 1)
    write_file(a.p("s"), "v")
    a.unmount()
    before = a.store.read_bytes()
    other = tmp_path / "other.key"
    assert sfs("keygen", other).returncode == 0
    r = sfs("mount", a.store, a.mnt, "-o", f"key_file={other},log_file={a.log}")
    assert r.returncode != 0
    assert "made again" not in r.stderr, r.stderr
    assert a.store.read_bytes() == before
