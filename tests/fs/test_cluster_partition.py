"""Issue 12, test 8: one etcd member partitioned from the others at the
network level, with a secretsfs host on its side of the cut.

Three "machines", each a network namespace this test makes (names from its
pid) holding one etcd member and one secretsfs host, as in docs/cluster.md's
three-host set-up. They are wired to a bridge in a fourth namespace (the
"switch"), on 10.200.0.0/24: addresses that exist only inside these
namespaces, which have no route anywhere else, so nothing can leave the
machine. This process reaches etcd from the switch (a thread that entered
it); the daemons run under `nsenter --net`, which leaves the mount namespace
alone, so their FUSE mounts are this process's.

The cut takes machine 3's port on the bridge down: member n3 and host C
still reach each other, and nothing else; C can reach nothing but n3,
which has lost its quorum. Two rounds on one cluster: n3 a follower, then
n3 the leader (moved there before the cut), which the majority must
replace while n3 may still take C's write into a log it can no longer
commit. A host's client starts at the leader (it asks at mount): A and B
are mounted again before each round, so in the second both talk to the
member that is cut off and must move to the majority.

Root only (network namespaces); skipped with a message otherwise.
"""

import errno
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import BIN, expect_errno, read_file, run, sfs, write_file
from etcdcluster import ETCD, NSENTER, EtcdCluster, NetnsCaller, in_netns
from test_cluster import (Host, assert_replicas_match_etcd, eventually, same_everywhere,
                          value_of)

pytestmark = pytest.mark.skipif(not os.access(ETCD, os.X_OK),
                                reason="etcd-server not installed (scripts/install-deps)")

SUBNET = "10.200.0"  # inside the test's namespaces only
MACHINES = 3


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Net:
    """The switch namespace with its bridge, and one namespace per machine
    plugged into it by a veth pair (port pN on the bridge, eth0 inside)."""

    def __init__(self):
        tag = f"sfsp{os.getpid()}"
        self.switch = f"{tag}-sw"
        self.machines = [f"{tag}-m{i}" for i in range(1, MACHINES + 1)]
        self.made = []

    def address(self, i):
        """Machine i's address (0-based)."""
        return f"{SUBNET}.{i + 1}"

    def add(self, ns):
        ip("netns", "add", ns)
        self.made.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def up(self):
        self.add(self.switch)
        sw = ("-n", self.switch)
        ip(*sw, "link", "add", "br0", "type", "bridge")
        ip(*sw, "addr", "add", f"{SUBNET}.254/24", "dev", "br0")
        ip(*sw, "link", "set", "br0", "up")
        for i, ns in enumerate(self.machines):
            self.add(ns)
            port = f"p{i + 1}"
            ip(*sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip(*sw, "link", "set", port, "master", "br0")
            ip(*sw, "link", "set", port, "up")
            ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def cut(self, i):
        ip("-n", self.switch, "link", "set", f"p{i + 1}", "down")

    def heal(self, i):
        ip("-n", self.switch, "link", "set", f"p{i + 1}", "up")

    def down(self):
        # The veth pairs go with the switch; a namespace a process still
        # holds goes when that process does.
        for ns in reversed(self.made):
            ip("netns", "del", ns, check=False)
        self.made = []


@pytest.fixture
def net():
    if os.geteuid() != 0:
        pytest.skip("the partition test needs root (it makes network namespaces "
                    "with ip netns); skipped")
    if not shutil.which("ip") or not os.access(NSENTER, os.X_OK):
        pytest.skip("the partition test needs ip (iproute2) and nsenter (util-linux)")
    n = Net()
    try:
        try:
            n.up()
        except (RuntimeError, OSError) as e:
            pytest.skip(f"ip netns does not work here ({e}); the partition test is skipped")
        yield n
    finally:
        n.down()


@pytest.fixture
def etcd(net, tmp_path):
    c = EtcdCluster(tmp_path / "etcd", addresses=[net.address(i) for i in range(MACHINES)],
                    netns=net.machines, client_netns=net.switch)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class NsHost(Host):
    """A host on one machine: init and mount run in its namespace (the
    daemon keeps it), with the endpoints in the order given."""

    def __init__(self, base, name, key, cluster, prefix, netns, endpoints):
        super().__init__(base, name, key, cluster, prefix)
        self.netns = netns
        self.endpoints = endpoints

    def init(self, endpoints=None):
        r = run(in_netns(self.netns, [BIN, "init", self.store, "--key-file", self.key,
                                      "--etcd", ",".join(endpoints or self.endpoints),
                                      "--etcd-prefix", self.prefix]))
        assert r.returncode == 0, f"{self.name}: init: {r.stderr}{r.stdout}"
        return r

    def mount(self):
        r = run(in_netns(self.netns, [BIN, "mount", self.store, self.mnt, "-o",
                                      f"key_file={self.key},log_file={self.log}"]))
        assert r.returncode == 0, f"{self.name}: mount: {r.stderr}{self.read_log()}"
        assert os.path.ismount(self.mnt), f"{self.name}: the mount is not seen here"


@pytest.fixture
def machines(etcd, net):
    """Hosts A, B, C of one new store on machines 1, 2, 3, mounted."""
    base = Path(tempfile.mkdtemp(prefix="secretsfs-partition-", dir="/tmp"))
    os.chmod(base, 0o755)
    key = base / "master.key"
    r = sfs("keygen", key)
    assert r.returncode == 0, r.stderr
    prefix = f"/sfs-test/{uuid.uuid4().hex}/"
    n1, n2, n3 = etcd.endpoints
    orders = {"A": [n1, n2, n3], "B": [n2, n3, n1], "C": [n3, n1, n2]}  # its own first
    made = []
    try:
        for i, name in enumerate("ABC"):
            h = NsHost(base, name, key, etcd, prefix, net.machines[i], orders[name])
            made.append(h)
            h.init()
            h.mount()
        yield made
    finally:
        for h in made:
            h.cleanup()
        if not any(os.path.ismount(h.mnt) for h in made):
            shutil.rmtree(base, ignore_errors=True)


class Writer(threading.Thread):
    """Writes name on host h again and again (value NAME-i, each once),
    noting each outcome: (value, errno name or "ok", start, seconds)."""

    def __init__(self, h, name, pause=0.1, max_acked=60):
        super().__init__(daemon=True)
        self.h, self.name, self.pause, self.max_acked = h, name, pause, max_acked
        self.stop = threading.Event()
        self.tries = []

    def run(self):
        i = 0
        while not self.stop.is_set() and len(self.acked()) < self.max_acked:
            v = f"{self.h.name}-{i}"
            t = time.monotonic()
            try:
                write_file(self.h.p(self.name), v)
                outcome = "ok"
            except OSError as e:
                outcome = errno.errorcode.get(e.errno, str(e.errno))
            self.tries.append((v, outcome, t, time.monotonic() - t))
            i += 1
            self.stop.wait(self.pause)

    def acked(self, since=None):
        return [v for v, o, t, _ in list(self.tries) if o == "ok" and (since is None or t >= since)]

    def finish(self):
        self.stop.set()
        self.join(30)
        assert not self.is_alive(), f"{self.h.name}: a write to {self.name} hangs"


def member_id(etcd, m):
    st = etcd.status(m)
    assert st, f"{m.name} does not answer"
    return int(st["header"]["member_id"])


def make_leader(etcd, m):
    """Leadership moved to member m (etcdctl move-leader), unless it has it."""
    if etcd.leader() is not m:
        etcd.etcdctl("move-leader", format(member_id(etcd, m), "x"))
    eventually(lambda: etcd.leader() is m, 10, f"{m.name} leader")


def status_from(netns, m):
    """Member m's /v3/maintenance/status asked from namespace netns; None
    when it does not answer within 2 s."""
    caller = NetnsCaller(netns)

    def ask():
        req = urllib.request.Request(m.url + "/v3/maintenance/status", data=b"{}",
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None
    try:
        return caller(ask)
    finally:
        caller.close()


def versions_of(h, name):
    """Every version's value of name on host h (.versions lists them all)."""
    d = h.p(f".versions/{name}")
    return [read_file(d / v).decode() for v in sorted(os.listdir(d))]


def cut_and_heal(net, etcd, a, b, c, rnd, cut_leader):
    """One round: n3 made leader or follower, cut off with C while A, B and
    C write, checked, healed. Returns the writers and what C's writes did."""
    n1, n3 = etcd.members[0], etcd.members[2]
    leader = n3 if cut_leader else n1
    make_leader(etcd, leader)
    for h in (a, b):
        h.unmount()
        h.mount()  # its client asks for the leader first
    shared_before = value_of(a.p("shared"))
    for h in (a, b, c):
        eventually(lambda h=h: h.status()["state"] == "synced", 5, f"{h.name} synced",
                   step=0.2)
    # A and B talk to the leader: n3 in the second round, whose cut they
    # must get past.
    for h in (a, b):
        assert h.status()["endpoint"] == leader.url, h.status()

    wa, wb = Writer(a, f"app/a{rnd}"), Writer(b, f"app/b{rnd}")
    wc = Writer(c, f"app/c{rnd}", max_acked=80)
    for w in (wa, wb, wc):
        w.start()
    try:
        eventually(lambda: all(len(w.acked()) >= 3 for w in (wa, wb, wc)), 10,
                   "each host wrote before the cut")

        net.cut(2)
        t_cut = time.monotonic()

        # --- C, with n3 alone: refused with EROFS within seconds, no hang.
        def c_refused():
            tail = [o for _, o, t, _ in list(wc.tries) if t > t_cut][-3:]
            return len(tail) == 3 and all(o == "EROFS" for o in tail)
        try:
            eventually(c_refused, 15, "C's writes refused with EROFS", step=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; C's tries: {wc.tries[-8:]}\n{c.read_log()}") from None
        first_erofs = next(t for _, o, t, _ in wc.tries if t > t_cut and o == "EROFS")
        across = [(o, round(d, 2)) for _, o, t, d in list(wc.tries) if t + d > t_cut]
        # The write in flight at the cut, or the first after it, waits for
        # its answer (2 s) and reads back while n3 answers nothing; it ends
        # EIO once C knows it is offline, at the latest at the read-back's
        # 8 s deadline plus the read-back under way then (3 s: n1 and n2
        # a connect timeout each, n3 no answer). Nothing else is allowed.
        assert all(o in ("ok", "EIO", "EROFS") for o, _ in across), across
        assert all(d < 13.5 for _, d in across), f"a write on C hung: {across}\n{c.read_log()}"
        # C finds out it is offline long before that deadline (measured
        # 5-8.5 s); later writes are refused at once.
        assert first_erofs - t_cut < 12, f"{across}\n{c.read_log()}"
        eventually(lambda: c.status()["state"] == "offline", 5, "C says offline", step=0.2)
        # Every kind of change on C, refused at once.
        for change in (lambda: write_file(c.p("app/db"), "no"),
                       lambda: write_file(c.p("app/new"), "no"),
                       lambda: os.mkdir(c.p("app/dir")),
                       lambda: os.unlink(c.p("shared")),
                       lambda: os.rename(c.p("app/db"), c.p("app/db2")),
                       lambda: os.setxattr(c.p("app/db"), "user.tag.k", b"v")):
            t = time.monotonic()
            expect_errno(errno.EROFS, change)
            assert time.monotonic() - t < 1.0, "a change on C was not refused at once"
        # Reads on C go on, from its replica.
        assert value_of(c.p("app/db")) == b"before"
        assert value_of(c.p("shared")) == shared_before
        assert {f"a{rnd}", f"b{rnd}", f"c{rnd}", "db"} <= set(os.listdir(c.p("app")))
        os.getxattr(c.p("app/db"), "user.sm.describe")

        # --- the majority side goes on (past n3, if they talked to it).
        eventually(lambda: len(wa.acked(since=t_cut)) >= 5 and len(wb.acked(since=t_cut)) >= 5,
                   15, "A and B write after the cut")
        write_file(a.p("shared"), f"s{rnd}-during")
        wa.finish()
        wb.finish()
        for w in (wa, wb):
            failed = [(v, o) for v, o, _, _ in w.tries if o != "ok"]
            assert not failed, f"{w.h.name}: writes failed on the majority side: {failed}"
        a_last, b_last = wa.acked()[-1].encode(), wb.acked()[-1].encode()
        eventually(lambda: value_of(b.p(wa.name)) == a_last, 8, "A's last write on B")
        eventually(lambda: value_of(a.p(wb.name)) == b_last, 8, "B's last write on A")
        eventually(lambda: value_of(b.p("shared")) == f"s{rnd}-during".encode(), 8,
                   "shared on B")
        for h in (a, b):
            assert h.status()["endpoint"] != n3.url, h.status()
        # C saw none of it: nothing written after the cut reaches its side.
        later = {v for v, _, t, _ in wa.tries + wb.tries if t > t_cut}
        for n in (wa.name, wb.name):
            assert value_of(c.p(n)).decode() not in later, n
        assert value_of(c.p("shared")) == shared_before
        assert c.status()["state"] == "offline", c.status()
        # The cut is a partition, not a dead member: n3 answers on C's
        # side without a leader; the majority has one and cannot reach n3.
        cut_off = status_from(net.machines[2], n3)
        assert cut_off and not int(cut_off.get("leader", 0)), cut_off
        assert etcd.status(n3) is None
        assert etcd.leader() in (etcd.members[0], etcd.members[1])

        # --- heal: C catches up and writes again.
        net.heal(2)
        t_heal = time.monotonic()
        etcd.wait_ready(20)
        eventually(lambda: len(wc.acked(since=t_heal)) >= 3, 15, "C writes again after the heal",
                   step=0.1)
        c_back = min(t for _, o, t, _ in wc.tries if t >= t_heal and o == "ok") - t_heal
        wc.finish()
        write_file(c.p("shared"), f"s{rnd}-after")  # planned on what C caught up to
    finally:
        for w in (wa, wb, wc):
            w.stop.set()
        for w in (wa, wb, wc):
            w.join(30)

    tr = same_everywhere([a, b, c], 15)
    assert tr["shared"] == f"s{rnd}-after".encode()
    assert tr[wa.name] == a_last and tr[wb.name] == b_last
    assert tr[wc.name] == wc.acked()[-1].encode()
    for h in (a, b, c):
        eventually(lambda h=h: h.status()["state"] == "synced", 10, f"{h.name} synced again",
                   step=0.2)
    ab_slowest = max(d for _, _, t, d in wa.tries + wb.tries if t + d > t_cut)
    c_slowest = max(d for _, o, t, d in wc.tries if t >= t_heal and o == "ok")
    print(f"round {rnd} (n3 {'leader' if cut_leader else 'follower'}): C refused EROFS "
          f"{first_erofs - t_cut:.1f} s after the cut (writes across it: {across[:3]}); "
          f"A's and B's slowest write across the cut {ab_slowest:.1f} s; C wrote again "
          f"{c_back:.1f} s after the heal, its slowest write then {c_slowest:.1f} s")
    return wa, wb, wc


def test_partition_of_one_member(net, etcd, machines):
    a, b, c = machines
    os.mkdir(a.p("app"))
    write_file(a.p("app/db"), "before")
    write_file(b.p("shared"), "s0")
    same_everywhere([a, b, c], 5)
    writers = list(cut_and_heal(net, etcd, a, b, c, 1, cut_leader=False))
    # n3 the leader this time: the majority elects another, n3 steps down.
    writers += cut_and_heal(net, etcd, a, b, c, 2, cut_leader=True)

    # No acknowledged write lost, none stored twice; a refused one (EROFS:
    # nothing was sent) never stored; one whose outcome stayed unknown
    # (EIO) stored at most once.
    for w in writers:
        acked = [v for v, o, _, _ in w.tries if o == "ok"]
        refused = [v for v, o, _, _ in w.tries if o == "EROFS"]
        unknown = [v for v, o, _, _ in w.tries if o == "EIO"]
        for h in (a, b, c):
            values = versions_of(h, w.name)
            lost = [v for v in acked if v not in values]
            assert not lost, f"{h.name}: acknowledged writes to {w.name} lost: {lost}"
            twice = sorted({v for v in values if values.count(v) > 1})
            assert not twice, f"{h.name}: {w.name}: stored twice: {twice}"
            assert not set(refused) & set(values), f"{h.name}: a write refused EROFS is stored"
            extra = set(values) - set(acked) - set(unknown)
            assert not extra, f"{h.name}: {w.name}: versions nobody wrote: {extra}"

    # Test 9's checker: every replica file holds etcd's records, byte for byte.
    assert_replicas_match_etcd(etcd, [a, b, c])
