#!/usr/bin/python3
"""The cluster phase of `make bench` (issue 12): a store replicated through
etcd, side by side with a local store, in one run.

usage: cluster.py BASE          (standalone: prints the figures and targets)
       bench.py calls run(BASE, log) after the local phases.

It starts its own three-member etcd on 127.0.0.1 (tests/fs/etcdcluster.py:
Debian's /usr/bin/etcd, ports from the pid, fresh data directories under
BASE, so on the same disk as the stores), makes a local store L and a
replicated store with two hosts A and B (two mounts, each with its own
replica), and measures:

  reads      open+read+close of N secrets of 128 B, cluster (A) vs local (L)
  visible    a write closed on A until B reads the new value (p50/p99)
  updates    sequential updates, cluster (A) vs local (L)
  writers    8 writers on 2 hosts (4 on A, 4 on B, each its own secret)
             vs one writer on A, for a fixed time each
  etcd put   what one etcd commit costs here (a put through the gateway on
             a kept-alive connection): the floor under a cluster write

Every figure is printed with its target. Without /usr/bin/etcd the phase
is skipped with a message. Everything it mounts and starts it stops, even
on failure.
"""
import errno
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SECRETSFS = os.path.join(REPO, "bin", "secretsfs")
sys.path.insert(0, os.path.join(REPO, "tests", "fs"))
from etcdcluster import ETCD, EtcdCluster  # noqa: E402

N = int(os.environ.get("BENCH_CLUSTER_N", "500"))      # secrets read
REPS = 3                                                # read and update repetitions
VISIBLE = 200                                           # writes timed from A to B
UPDATES = 200                                           # sequential updates per repetition
WRITERS_S = 5.0                                         # seconds of each writers run
ETCD_PUTS = 200


def _log(msg):
    print("[cluster] " + msg, file=sys.stderr, flush=True)


def pct(xs, q):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def sfs(*args, check=True):
    p = subprocess.run([SECRETSFS, *map(str, args)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=120)
    if check and p.returncode:
        raise RuntimeError("secretsfs %s: exit %d: %s" % (args[0], p.returncode, p.stderr.strip()))
    return p


def write(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


class Hosts:
    """The mounts of this phase, unmounted at the end whatever happened."""

    def __init__(self, base):
        self.base = base
        self.mounted = []

    def mount(self, store, key, name):
        mnt = os.path.join(self.base, "m" + name)
        os.makedirs(mnt)
        sfs("mount", store, mnt, "-o", "key_file=%s,recovery_window=0,log_file=%s" % (
            key, os.path.join(self.base, name + ".log")))
        self.mounted.append(mnt)
        return mnt

    def close(self):
        for mnt in reversed(self.mounted):
            for _ in range(50):
                if subprocess.run(["fusermount3", "-u", mnt], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0:
                    break
                time.sleep(0.2)
            else:
                subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        self.mounted = []


def reads(mnt, names):
    t = time.perf_counter()
    for n in names:
        read(os.path.join(mnt, n))
    return len(names) / (time.perf_counter() - t)


def updates(mnt, names, count, tag):
    t = time.perf_counter()
    for i in range(count):
        write(os.path.join(mnt, names[i % len(names)]), b"%s-%06d-" % (tag, i) + b"u" * 112)
    return count / (time.perf_counter() - t)


def visible(a, b, count):
    """Seconds from the close on A returning to B reading the value, and
    from the write's start; a write never seen within 5 s counts as 5 s."""
    after_close, after_start = [], []
    pa, pb = os.path.join(a, "visible"), os.path.join(b, "visible")
    write(pa, b"start")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if read(pb) == b"start":
                break
        except OSError:
            pass
        time.sleep(0.01)
    for i in range(count):
        want = b"v%06d" % i
        t0 = time.perf_counter()
        write(pa, want)
        t1 = time.perf_counter()
        while True:
            try:
                if read(pb) == want:
                    break
            except OSError:
                pass
            if time.perf_counter() - t1 > 5:
                break
            time.sleep(0.0005)
        t2 = time.perf_counter()
        after_close.append(t2 - t1)
        after_start.append(t2 - t0)
    return after_close, after_start


def writers(mounts, per_mount, seconds, tag):
    """ops/s of per_mount threads on each mount, each writing its own secret."""
    counts, errors = [], []
    stop = threading.Event()
    start = threading.Barrier(len(mounts) * per_mount + 1)

    def one(path):
        n = 0
        start.wait()
        while not stop.is_set():
            try:
                write(path, b"%s-%08d" % (tag, n))
                n += 1
            except OSError as e:
                errors.append(errno.errorcode.get(e.errno, str(e.errno)))
        counts.append(n)

    threads = [threading.Thread(target=one, args=(os.path.join(m, "w-%s-%d-%d" % (
        tag.decode(), i, j)),)) for i, m in enumerate(mounts) for j in range(per_mount)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0), errors


def etcd_puts(member_url, count):
    """Latencies of puts through the gateway on one kept-alive connection."""
    host, port = member_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"key": "L2JlbmNoL3B1dA==", "value": "eA=="})  # /bench/put = x
    out = []
    for _ in range(count):
        t = time.perf_counter()
        conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError("etcd put: HTTP %d" % r.status)
        out.append(time.perf_counter() - t)
    conn.close()
    return out


def target(ok, label, text):
    return ("PASS" if ok else "MISS", label, text)


def run(base, log=_log):
    """The phase: a dict of figures and "targets" (status, label, text), or
    {"skipped": why}."""
    if not os.access(ETCD, os.X_OK):
        why = "%s not installed (scripts/install-deps installs etcd-server)" % ETCD
        log("cluster phase skipped: " + why)
        return {"skipped": why}
    base = os.path.join(base, "cluster")
    os.makedirs(base)
    cluster = EtcdCluster(os.path.join(base, "etcd"))
    hosts = Hosts(base)
    R = {"n": N, "size": 128}
    try:
        cluster.start()
        eps = ",".join(cluster.endpoints)
        key = os.path.join(base, "k")
        sfs("keygen", key)
        local, sa, sb = (os.path.join(base, x + ".tdb") for x in ("local", "a", "b"))
        sfs("init", local, "--key-file", key)
        sfs("init", sa, "--key-file", key, "--etcd", eps)
        sfs("init", sb, "--key-file", key, "--etcd", eps)
        L = hosts.mount(local, key, "local")
        A = hosts.mount(sa, key, "a")
        B = hosts.mount(sb, key, "b")
        log("etcd (3 members, %s) and 3 mounts: local, a, b" % eps)

        names = ["s%05d" % i for i in range(N)]
        t = time.perf_counter()
        for n in names:
            write(os.path.join(L, n), b"x" * 128)
        R["create_local"] = N / (time.perf_counter() - t)
        t = time.perf_counter()
        for n in names:
            write(os.path.join(A, n), b"x" * 128)
        R["create_cluster"] = N / (time.perf_counter() - t)
        deadline = time.monotonic() + 30
        while len(os.listdir(B)) < N and time.monotonic() < deadline:
            time.sleep(0.1)

        put = etcd_puts(cluster.endpoints[0], ETCD_PUTS)
        R["etcd_put_ms"] = {"p50": pct(put, 50) * 1e3, "p99": pct(put, 99) * 1e3}
        log("etcd put p50 %.2f ms p99 %.2f ms" % (R["etcd_put_ms"]["p50"], R["etcd_put_ms"]["p99"]))

        rl, ra, rb = [], [], []
        for _ in range(REPS):
            rl.append(reads(L, names))
            ra.append(reads(A, names))
            rb.append(reads(B, names))
        R["read_local"], R["read_a"], R["read_b"] = (statistics.median(x) for x in (rl, ra, rb))
        log("reads/s local %.0f, A %.0f, B %.0f" % (R["read_local"], R["read_a"], R["read_b"]))

        close, start = visible(A, B, VISIBLE)
        R["visible_ms"] = {"p50": pct(close, 50) * 1e3, "p99": pct(close, 99) * 1e3,
                           "max": max(close) * 1e3, "n": len(close),
                           "from_write_start_p50": pct(start, 50) * 1e3,
                           "from_write_start_p99": pct(start, 99) * 1e3}
        log("A -> B after the close: p50 %.1f ms p99 %.1f ms max %.1f ms" % (
            R["visible_ms"]["p50"], R["visible_ms"]["p99"], R["visible_ms"]["max"]))

        ul, uc = [], []
        few = names[:50]
        for rep in range(REPS):
            ul.append(updates(L, few, UPDATES, b"l%d" % rep))
            uc.append(updates(A, few, UPDATES, b"c%d" % rep))
        R["update_local"], R["update_cluster"] = statistics.median(ul), statistics.median(uc)
        log("updates/s local %.0f, cluster %.0f" % (R["update_local"], R["update_cluster"]))

        one, e1 = writers([A], 1, WRITERS_S, b"one")
        eight, e8 = writers([A, B], 4, WRITERS_S, b"eight")
        R["writers_1"], R["writers_8"] = one, eight
        R["writer_errors"] = sorted(set(e1 + e8))
        R["writer_error_count"] = len(e1) + len(e8)
        log("writers: 1 on A %.0f/s, 8 on A and B %.0f/s (%d errors %s)" % (
            one, eight, R["writer_error_count"], R["writer_errors"]))
    finally:
        hosts.close()
        cluster.stop()
    R["targets"] = targets(R)
    return R


def targets(R):
    if "skipped" in R:
        return [("SKIP", "cluster targets", R["skipped"])]
    put = R["etcd_put_ms"]
    cost = ("one etcd commit here (a put on a kept-alive connection, 3 members on this "
            "machine's one disk): p50 %.2f ms, p99 %.2f ms" % (put["p50"], put["p99"]))
    out = []
    r = R["read_a"] / R["read_local"]
    out.append(target(r >= 0.9, "cluster reads >= 0.9x local reads",
                      "%.0f/s vs %.0f/s = %.2fx (host B: %.0f/s); reads are served from "
                      "the replica, no etcd on the path" % (
                          R["read_a"], R["read_local"], r, R["read_b"])))
    v = R["visible_ms"]
    out.append(target(v["p99"] <= 100, "a write on A visible on B within 100 ms at p99",
                      "after A's close returned: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d "
                      "writes (from the write's start: p50 %.1f, p99 %.1f ms)" % (
                          v["p50"], v["p99"], v["max"], v["n"],
                          v["from_write_start_p50"], v["from_write_start_p99"])))
    r = R["update_cluster"] / R["update_local"]
    text = "%.0f/s vs %.0f/s = %.2fx" % (R["update_cluster"], R["update_local"], r)
    if r < 0.5:
        text += "\n      limit: " + cost + ", on top of the local commit (%.2f ms)" % (
            1e3 / R["update_local"])
    out.append(target(r >= 0.5, "sequential cluster updates >= 0.5x local updates", text))
    r = R["writers_8"] / R["writers_1"]
    text = "%.0f/s vs %.0f/s = %.2fx" % (R["writers_8"], R["writers_1"], r)
    if R["writer_error_count"]:
        text += " (%d writes refused: %s)" % (R["writer_error_count"],
                                              ", ".join(R["writer_errors"]))
    if r < 2:
        text += "\n      limit: " + cost
    out.append(target(r >= 2.0, "8 writers on 2 hosts >= 2x one writer", text))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    base = os.path.abspath(sys.argv[1])
    os.makedirs(base, exist_ok=True)
    t0 = time.monotonic()
    res = run(base)
    res["seconds"] = time.monotonic() - t0
    for t in res.get("targets", []):
        print("%s  %s: %s" % t)
    print(json.dumps({k: v for k, v in res.items() if k != "targets"}, indent=1))
    if "skipped" not in res:
        shutil.rmtree(os.path.join(base, "cluster"), ignore_errors=True)
