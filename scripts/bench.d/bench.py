#!/usr/bin/python3
"""secretsfs benchmark harness (run through scripts/bench, which makes BASE).

usage: bench.py BASE
       bench.py --targets results.json   (the PASS/MISS lines of a finished run)

Sets up tmpfs, bindfs, gocryptfs, securefs and secretsfs, each in its own
directory under BASE (the FUSE peers' backing dirs and the secretsfs store on
BASE's filesystem), runs the workloads of perf-reliability.md (a) that apply
(smallfiles.py = W1-W4, W5, W6, W8, W10, W11), prints a table with ratios and
the PASS/MISS lines of the targets, writes results.json, results.md and
bench.png, and unmounts everything it mounted, even on failure.
"""
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
SECRETSFS = os.path.join(REPO, "bin", "secretsfs")
SMALLFILES = os.environ.get("BENCH_SMALLFILES") or os.path.normpath(
    os.path.join(REPO, "..", "shared", "bench", "smallfiles.py"))
OUT = os.path.abspath(os.environ.get("BENCH_OUT") or os.path.join(REPO, "bench-results"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
CYCLES = int(os.environ.get("BENCH_CYCLES", "50"))
ALL_FS = ["tmpfs", "ext4", "bindfs", "gocryptfs", "securefs", "secretsfs"]
FSES = [f for f in (os.environ.get("BENCH_FS") or ",".join(ALL_FS)).split(",") if f]
PEERS = [f for f in FSES if f != "secretsfs"]
COLORS = {"tmpfs": "#b0b0b0", "ext4": "#6b6b6b", "bindfs": "#4c72b0", "gocryptfs": "#dd8452",
          "securefs": "#55a868", "secretsfs": "#c44e52"}

# (N, SIZE) of the smallfiles.py runs; 64 KiB at N=500 bounds the time.
SF_RUNS = [(2000, 128), (2000, 4096), (500, 65536)]
PHASES = ["create", "stat", "read", "update", "reread", "list", "par-read", "delete"]
W5_OPS, W5_FILES = 500, 50
W6_SIZES = [(100, 20), (10000, 5)]  # (entries, timed listings after the first)
W8_NAMES = 20000
W10_REPS = 5
W11_SECRETS = 2000
W11_DELETE = 1000  # secrets deleted after the cycles, so that compact has space to give back
SCALE_N = int(os.environ.get("BENCH_SCALE", "100000"))  # 0: skip the scale run
SCALE_FOLDERS = 10
SCALE_SAMPLE = 2000
CLUSTER = os.environ.get("BENCH_CLUSTER", "1") != "0"  # 0: skip the etcd phase (cluster.py)

DURABILITY = ("ext4 (direct), gocryptfs, securefs and bindfs do not fsync per file (data "
              "reaches the disk at the kernel's writeback); tmpfs never does; secretsfs commits "
              "durably (tdb transaction with fsync) on every close of a written file.")


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop("signal %d" % signum)


def log(msg):
    print("[bench %6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                (p.stderr or p.stdout).strip()[-600:]))
    return p


def cmd_out(cmd):
    try:
        p = run(cmd, timeout=20, check=False)
        return (p.stdout or p.stderr).strip()
    except Exception:  # noqa: BLE001 - machine info is best effort
        return "n/a"


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---------------------------------------------------------------- mounts

def is_mounted(path):
    with open("/proc/mounts") as f:
        for line in f:
            if line.split()[1] == path:
                return True
    return False


def wait_answers(mnt, timeout=30.0, poll=0.001):
    """Until mnt is a mount point that answers a readdir."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.ismount(mnt):
            try:
                os.listdir(mnt)
                return
            except OSError:
                pass
        time.sleep(poll)
    raise RuntimeError("%s: not mounted after %.0f s" % (mnt, timeout))


def daemon_pids(needle):
    """PIDs whose command line has an argument containing needle."""
    pids, me = [], os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(needle.encode() in a for a in args):
            pids.append(int(p))
    return pids


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return False


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "VmLck", "VmSize", "RssAnon", "RssFile", "Threads"):
                v = v.split()
                out[k] = int(v[0]) if k == "Threads" else int(v[0]) / 1024.0  # MiB
    return out


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Mounts:
    """Everything this run mounted, unmounted in reverse order at the end."""

    def __init__(self):
        self.stack = []  # (mountpoint, kind)

    def add(self, mnt, kind):
        self.stack.append((mnt, kind))

    def unmount(self, mnt, timeout=30.0):
        """fusermount3 -u / umount; returns seconds to return. Falls back to lazy."""
        t = time.perf_counter()
        ok = False
        for cmd in (["fusermount3", "-u", mnt], ["umount", mnt]):
            if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                ok = True
                break
        dt = time.perf_counter() - t
        if not ok:
            end = time.monotonic() + timeout
            while is_mounted(mnt) and time.monotonic() < end:
                time.sleep(0.2)
                for cmd in (["fusermount3", "-u", mnt], ["umount", mnt]):
                    if subprocess.run(cmd, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL).returncode == 0:
                        break
            if is_mounted(mnt):
                subprocess.run(["umount", "-l", mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                log("%s: unmounted lazily" % mnt)
        self.stack = [(m, k) for (m, k) in self.stack if m != mnt]
        return dt

    def cleanup(self):
        for mnt, _ in reversed(list(self.stack)):
            pids = daemon_pids(mnt)
            if is_mounted(mnt):
                self.unmount(mnt)
            end = time.monotonic() + 10
            while any(alive(p) for p in pids) and time.monotonic() < end:
                time.sleep(0.05)
        self.stack = []


MOUNTS = Mounts()


# ---------------------------------------------------------------- setups

class Setup:
    def __init__(self, name, base):
        self.name = name
        self.dir = os.path.join(base, name)
        self.mnt = os.path.join(self.dir, "mnt")
        self.cmd = ""
        self.notes = ""
        os.makedirs(self.mnt)

    def daemon(self):
        if self.name in ("tmpfs", "ext4"):
            return None
        pids = [p for p in daemon_pids(self.mnt) if alive(p)]
        return pids[0] if pids else None


def setup_tmpfs(s):
    s.cmd = "mount -t tmpfs -o size=4g,mode=0700 tmpfs MNT"
    run(["mount", "-t", "tmpfs", "-o", "size=4g,mode=0700", "tmpfs", s.mnt])
    MOUNTS.add(s.mnt, "tmpfs")
    s.notes = "in-kernel, RAM only: the ceiling"


def setup_ext4(s):
    s.cmd = "plain directory on %s, no FUSE" % fstype(s.mnt)
    s.notes = "the backing filesystem of every FUSE setup: the durability reference"


def setup_bindfs(s):
    back = os.path.join(s.dir, "back")
    os.makedirs(back)
    s.cmd = "bindfs --multithreaded BACK MNT   (BACK on %s)" % fstype(back)
    run(["bindfs", "--multithreaded", back, s.mnt])
    MOUNTS.add(s.mnt, "fuse")
    wait_answers(s.mnt)
    s.notes = "plain FUSE passthrough (libfuse 2, multithreaded), no crypto"


def setup_gocryptfs(s):
    cipher = os.path.join(s.dir, "cipher")
    pw = os.path.join(s.dir, "passfile")
    os.makedirs(cipher)
    with open(pw, "w") as f:
        f.write("benchmark-password\n")
    run(["gocryptfs", "-init", "-q", "-scryptn", "10", "-passfile", pw, cipher])
    s.cmd = "gocryptfs -init -scryptn 10 -passfile PW CIPHER; gocryptfs -q -passfile PW CIPHER MNT"
    run(["gocryptfs", "-q", "-passfile", pw, cipher, s.mnt])
    MOUNTS.add(s.mnt, "fuse")
    wait_answers(s.mnt)
    s.notes = "AES-GCM per 4 KiB block, names encrypted (EME); default options"


def setup_securefs(s):
    data = os.path.join(s.dir, "data")
    key = os.path.join(s.dir, "keyfile")
    os.makedirs(data)
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    run(["securefs", "create", "--pbkdf", "pkcs5-pbkdf2-hmac-sha256", "--keyfile", key, data])
    s.cmd = ("securefs create --pbkdf pkcs5-pbkdf2-hmac-sha256 --keyfile KEY DATA; "
             "securefs mount -b --keyfile KEY DATA MNT")
    run(["securefs", "mount", "-b", "--keyfile", key, data, s.mnt])
    MOUNTS.add(s.mnt, "fuse")
    wait_answers(s.mnt)
    s.notes = "format 4 (lite), default options (libfuse 2)"


def secretsfs_store(dirpath, name):
    key = os.path.join(dirpath, name + ".key")
    store = os.path.join(dirpath, name + ".tdb")
    run([SECRETSFS, "keygen", key])
    run([SECRETSFS, "init", store, "--key-file", key])
    return store, key


def secretsfs_mount(store, key, mnt):
    """Mounts; returns (seconds until the mount point answers, seconds the command took)."""
    t = time.perf_counter()
    p = subprocess.run([SECRETSFS, "mount", store, mnt, "-o",
                        "key_file=%s,recovery_window=0" % key],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       text=True, timeout=60)
    t_cmd = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError("secretsfs mount: exit %d: %s" % (p.returncode, p.stderr.strip()))
    MOUNTS.add(mnt, "fuse")
    wait_answers(mnt)
    return time.perf_counter() - t, t_cmd


def setup_secretsfs(s):
    s.store, s.key = secretsfs_store(s.dir, "store")
    s.cmd = "secretsfs mount STORE MNT -o key_file=KEY,recovery_window=0   (STORE on %s)" % \
        fstype(s.dir)
    secretsfs_mount(s.store, s.key, s.mnt)
    s.notes = "tdb store, durable commit (fsync) per close; threads=16 (default)"


SETUP_FN = {"tmpfs": setup_tmpfs, "ext4": setup_ext4, "bindfs": setup_bindfs, "gocryptfs": setup_gocryptfs,
            "securefs": setup_securefs, "secretsfs": setup_secretsfs}


# ---------------------------------------------------------------- machine

def fstype(path):
    out = cmd_out(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", path])
    return out.split()[0] if out and out != "n/a" else "unknown"


def fsync_cost(base):
    """4 KiB write + fdatasync, median of 200: appended (size changes, so the
    journal commits too) and overwritten in place."""
    path = os.path.join(base, "fsync-probe")
    buf = os.urandom(4096)
    res = {}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
        res["append_4k_fdatasync_ms"] = median(lat) * 1e3
        res["append_4k_fdatasync_p99_ms"] = pct(lat, 99) * 1e3
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            os.pwrite(fd, buf, 0)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
        res["overwrite_4k_fdatasync_ms"] = median(lat) * 1e3
        # What a tdb commit syncs: undo data, its magic, the new pages, the
        # cleared magic: four write+fdatasync pairs at different offsets.
        os.pwrite(fd, b"\0" * (1 << 20), 0)
        os.fsync(fd)
        lat = []
        for i in range(100):
            t = time.perf_counter()
            for off in (512 << 10, 0, (i % 64) << 12, 512 << 10):
                os.pwrite(fd, buf[:512], off)
                os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
        res["four_syncs_ms"] = median(lat) * 1e3
    finally:
        os.close(fd)
        os.unlink(path)
    return res


def machine_info(base):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gov = "n/a"
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") as f:
            gov = f.read().strip()
    except OSError:
        pass
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                fl = line.split()
                flags = " ".join(x for x in ("aes", "vaes", "vpclmulqdq", "avx2") if x in fl)
                break
    mem = "n/a"
    with open("/proc/meminfo") as f:
        mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    git = cmd_out(["git", "-C", REPO, "describe", "--always", "--dirty"])
    src = cmd_out(["findmnt", "-n", "-o", "SOURCE", "--target", base])
    info = {
        "cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(), "memory": mem,
        "governor": gov, "kernel": platform.release(),
        "libfuse3": cmd_out(["pkg-config", "--modversion", "fuse3"]),
        "libtdb": cmd_out(["pkg-config", "--modversion", "tdb"]),
        "libgcrypt": cmd_out(["pkg-config", "--modversion", "libgcrypt"]),
        "base_dir": base, "disk_fs": fstype(base), "disk_dev": src,
        "bindfs": cmd_out(["bindfs", "--version"]).splitlines()[0],
        "gocryptfs": cmd_out(["gocryptfs", "-version"]).split(";")[0],
        "securefs": "securefs " + cmd_out(["dpkg-query", "-W", "-f=${Version}", "securefs"]),
        "python": sys.version.split()[0], "secretsfs_git": git,
    }
    info.update(fsync_cost(base))
    return info


# ---------------------------------------------------------------- workloads

def smallfiles(mnt, n, size):
    d = os.path.join(mnt, "sf")
    os.makedirs(d, exist_ok=True)
    p = run([PY, SMALLFILES, d, str(n), str(size)], timeout=900)
    res = {}
    for kv in p.stdout.split():
        k, _, v = kv.partition("=")
        res[k] = float(v)
    missing = [ph for ph in PHASES if ph not in res]
    if missing:
        raise RuntimeError("smallfiles.py printed no %s: %r" % (missing, p.stdout))
    return res


def val(i, g, size=128):
    return (("w%d-g%d-" % (i, g)) * size)[:size].encode()


def write_file(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def w5(mnt):
    """Durable update: open O_TRUNC, write 128 B, fsync, close; latency per op."""
    d = os.path.join(mnt, "w5")
    os.makedirs(d, exist_ok=True)
    names = [os.path.join(d, "s%03d" % i) for i in range(W5_FILES)]
    for i, p in enumerate(names):
        write_file(p, val(i, 0))
    lat = []
    for k in range(W5_OPS):
        i = k % W5_FILES
        t = time.perf_counter()
        fd = os.open(names[i], os.O_WRONLY | os.O_TRUNC)
        os.write(fd, val(i, k + 1))
        os.fsync(fd)
        os.close(fd)
        lat.append(time.perf_counter() - t)
    for i, p in enumerate(names):  # the last value written is the one read
        k = W5_OPS - W5_FILES + i
        with open(p, "rb") as f:
            assert f.read() == val(i, k + 1), p
    return {"p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "mean_ms": statistics.mean(lat) * 1e3, "ops": W5_OPS}


def ls_l(d, expect):
    n = 0
    with os.scandir(d) as it:
        for e in it:
            os.lstat(e.path)
            n += 1
    assert n == expect, (d, n, expect)


def w6_w8(mnt):
    out = {}
    for entries, reps in W6_SIZES:
        d = os.path.join(mnt, "w6-%d" % entries)
        os.makedirs(d, exist_ok=True)
        t = time.perf_counter()
        for i in range(entries):
            write_file(os.path.join(d, "secret-%05d" % i), val(i, 0))
        fill = time.perf_counter() - t
        t = time.perf_counter()
        ls_l(d, entries)
        first = time.perf_counter() - t
        lat = []
        for _ in range(reps):
            t = time.perf_counter()
            ls_l(d, entries)
            lat.append(time.perf_counter() - t)
        out["w6_%d" % entries] = {"first_ms": first * 1e3, "median_ms": median(lat) * 1e3,
                                  "min_ms": min(lat) * 1e3, "max_ms": max(lat) * 1e3,
                                  "listings": reps, "fill_ops": entries / fill}
    # W8: distinct missing names in the folder of 10,000 (no name twice, so
    # a negative dentry cached by an earlier stat does not answer).
    d = os.path.join(mnt, "w6-%d" % W6_SIZES[-1][0])
    misses = 0
    t = time.perf_counter()
    for i in range(W8_NAMES):
        try:
            os.stat(os.path.join(d, "missing-%05d" % i))
        except FileNotFoundError:
            misses += 1
    dt = time.perf_counter() - t
    assert misses == W8_NAMES, misses
    out["w8"] = {"ops": W8_NAMES / dt, "names": W8_NAMES, "dir_entries": W6_SIZES[-1][0]}
    return out


def w10_w11(s):
    """secretsfs only: mount/unmount time (empty store, then 2,000 secrets with
    their versions), daemon resources and tdb growth over update cycles."""
    res = {}
    # W10 on an empty store.
    store, key = secretsfs_store(s.dir, "w10")
    mnt = os.path.join(s.dir, "w10-mnt")
    os.makedirs(mnt)
    res["w10_empty"] = mount_cycles(store, key, mnt, W10_REPS)

    # W11: a fresh store; 2,000 secrets of 128 B, then CYCLES updates of each.
    store, key = secretsfs_store(s.dir, "w11")
    mnt = os.path.join(s.dir, "w11-mnt")
    os.makedirs(mnt)
    secretsfs_mount(store, key, mnt)
    pid = wait_pid(mnt)
    d = os.path.join(mnt, "w11")
    os.makedirs(d)
    names = [os.path.join(d, "secret-%05d" % i) for i in range(W11_SECRETS)]
    cpu0 = proc_cpu_s(pid)
    t = time.perf_counter()
    for i, p in enumerate(names):
        write_file(p, val(i, 0))
    dt = time.perf_counter() - t
    res["w11_after_create"] = dict(proc_status(pid), tdb_mib=os.path.getsize(store) / 1048576.0,
                                   create_ops=W11_SECRETS / dt,
                                   cpu_ms_per_op=(proc_cpu_s(pid) - cpu0) * 1e3 / W11_SECRETS)
    cycles = []
    cpu0 = proc_cpu_s(pid)
    t_all = time.perf_counter()
    for c in range(1, CYCLES + 1):
        t = time.perf_counter()
        for i, p in enumerate(names):
            write_file(p, val(i, c), os.O_WRONLY | os.O_TRUNC)
        dt = time.perf_counter() - t
        cycles.append({"cycle": c, "ops": W11_SECRETS / dt,
                       "tdb_mib": os.path.getsize(store) / 1048576.0})
        if c % 10 == 0 or c == CYCLES:
            log("W11 cycle %d/%d: %.0f updates/s, tdb %.1f MiB" %
                (c, CYCLES, cycles[-1]["ops"], cycles[-1]["tdb_mib"]))
    ops = W11_SECRETS * CYCLES
    cpu = proc_cpu_s(pid) - cpu0
    wall = time.perf_counter() - t_all
    for i, p in enumerate(names[:50]):  # spot check: the last value is current
        with open(p, "rb") as f:
            assert f.read() == val(i, CYCLES), p
    vers = os.path.join(mnt, ".versions", "w11", "secret-00000")
    try:
        nvers = len(os.listdir(vers))
    except OSError:
        nvers = None
    res["w11_after_cycles"] = dict(proc_status(pid), tdb_mib=os.path.getsize(store) / 1048576.0,
                                   cycles=CYCLES, updates=ops, seconds=wall,
                                   update_ops=ops / wall if wall else None,
                                   cpu_ms_per_op=cpu * 1e3 / ops if ops else None,
                                   versions_listed_per_secret=nvers,
                                   bytes_per_version=os.path.getsize(store) / (
                                       W11_SECRETS * (CYCLES + 1)),
                                   compaction="see w11_compact")
    res["w11_cycles"] = cycles
    # Delete half (recovery_window=0: purged at once) so that the file holds
    # free space, which only a rewrite gives back.
    t = time.perf_counter()
    for p in names[:W11_DELETE]:
        os.unlink(p)
    res["w11_after_delete"] = dict(proc_status(pid), deleted=W11_DELETE,
                                   delete_ops=W11_DELETE / (time.perf_counter() - t),
                                   tdb_mib=os.path.getsize(store) / 1048576.0)
    MOUNTS.unmount(mnt)
    wait_gone(pid)
    # W10 again, on the store that now holds 2,000 secrets and their versions.
    res["w10_full"] = mount_cycles(store, key, mnt, 3)  # after the deletes
    res["w10_full"]["tdb_mib"] = os.path.getsize(store) / 1048576.0
    # secretsfs compact on that store (unmounted): what a rewrite gives back.
    before = os.path.getsize(store)
    t = time.perf_counter()
    run([SECRETSFS, "compact", store])
    res["w11_compact"] = dict(before_mib=before / 1048576.0,
                              after_mib=os.path.getsize(store) / 1048576.0,
                              seconds=time.perf_counter() - t)
    return res


# The stat and read phases of smallfiles.py over a list of names, on a fresh
# mount: each stat is a LOOKUP the daemon answers (nothing is cached yet,
# while smallfiles' stat follows creates, whose commits drop the cached
# attributes), then each read an OPEN, READ and RELEASE.
SCALE_LOOPS = r"""
import os, sys, time
names = open(sys.argv[1]).read().split("\n")
t = time.perf_counter()
for p in names:
    os.stat(p)
st = len(names) / (time.perf_counter() - t)
t = time.perf_counter()
for p in names:
    fd = os.open(p, os.O_RDONLY); b = os.read(fd, 1 << 17); os.close(fd)
    assert len(b) == 128, p
print("stat=%f read=%f" % (st, len(names) / (time.perf_counter() - t)))
"""


def scale_store(s, tag, n):
    """A store of n secrets of 128 B in SCALE_FOLDERS folders: (store, key, mnt,
    names, create ops/s), unmounted."""
    store, key = secretsfs_store(s.dir, tag)
    mnt = os.path.join(s.dir, tag + "-mnt")
    os.makedirs(mnt)
    secretsfs_mount(store, key, mnt)
    pid = wait_pid(mnt)
    per = n // SCALE_FOLDERS
    names = []
    t = time.perf_counter()
    for f in range(SCALE_FOLDERS):
        d = os.path.join(mnt, "folder-%02d" % f)
        os.makedirs(d)
        for i in range(per):
            p = os.path.join(d, "secret-%06d" % i)
            write_file(p, val(f * per + i, 0))
            names.append(p)
        if n >= 10000:
            log("scale: %d of %d secrets created" % (len(names), n))
    ops = len(names) / (time.perf_counter() - t)
    MOUNTS.unmount(mnt)
    wait_gone(pid)
    return store, key, mnt, names, ops


def scale_loops(s, store, key, mnt, names):
    """SCALE_LOOPS over SCALE_SAMPLE of names, REPS times, each on a fresh
    mount: median stat and read rates, and the daemon's status."""
    step = max(1, len(names) // SCALE_SAMPLE)
    sample = names[::step][:SCALE_SAMPLE]
    listing = os.path.join(s.dir, "scale-sample.txt")
    with open(listing, "w") as f:
        f.write("\n".join(sample))
    reads, stats, res = [], [], {}
    for rep in range(REPS):
        secretsfs_mount(store, key, mnt)
        pid = wait_pid(mnt)
        if not rep:
            res["after_mount"] = proc_status(pid)
        # A fresh process each time, with smallfiles.py's own loops: how a
        # client allocates its read buffer changes the cost of direct I/O.
        p = run([PY, "-c", SCALE_LOOPS, listing], timeout=300)
        got = dict(kv.split("=") for kv in p.stdout.split())
        stats.append(float(got["stat"]))
        reads.append(float(got["read"]))
        if rep == REPS - 1:
            for q in (sample[0], sample[-1]):  # the right values, not only sizes
                with open(q, "rb") as f:
                    assert f.read() == val(names.index(q), 0), q
            res["after_reads"] = proc_status(pid)
        MOUNTS.unmount(mnt)
        wait_gone(pid)
    res["stat_ops"], res["read_ops"] = median(stats), median(reads)
    res["sample"] = len(sample)
    return res


def scale(s, R):
    """Deliverable 3: SCALE_N secrets of 128 B in SCALE_FOLDERS folders; mount
    time (key file: no KDF), daemon RSS, and stat/read rates over a sample of
    SCALE_SAMPLE of them, against the same loops over a store of
    SCALE_SAMPLE secrets laid out the same way (the 2,000-secret figures)."""
    store, key, mnt, names, _ = scale_store(s, "scale-base", SCALE_SAMPLE)
    base = scale_loops(s, store, key, mnt, names)
    store, key, mnt, names, create_ops = scale_store(s, "scale", SCALE_N)
    res = {"n": len(names), "folders": SCALE_FOLDERS, "create_ops": create_ops,
           "base": {"n": SCALE_SAMPLE, "stat_ops": base["stat_ops"],
                    "read_ops": base["read_ops"]}}
    res["mount"] = mount_cycles(store, key, mnt, 3)
    res["tdb_mib"] = os.path.getsize(store) / 1048576.0
    res.update(scale_loops(s, store, key, mnt, names))
    return res


def wait_pid(mnt, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pids = [p for p in daemon_pids(mnt) if alive(p)]
        if pids:
            return pids[0]
        time.sleep(0.01)
    raise RuntimeError("%s: no daemon process found" % mnt)


def wait_gone(pid, timeout=30.0):
    t = time.perf_counter()
    end = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.0005)
    if alive(pid):
        raise RuntimeError("daemon %d still running %.0f s after unmount" % (pid, timeout))
    return time.perf_counter() - t


def mount_cycles(store, key, mnt, reps):
    mount_s, cmd_s, umount_s, exit_s = [], [], [], []
    for _ in range(reps):
        ms, cs = secretsfs_mount(store, key, mnt)
        pid = wait_pid(mnt)
        mount_s.append(ms)
        cmd_s.append(cs)
        t = time.perf_counter()
        umount_s.append(MOUNTS.unmount(mnt))
        wait_gone(pid)
        exit_s.append(time.perf_counter() - t)
    ms = lambda xs: median(xs) * 1e3  # noqa: E731
    return {"mount_ms": ms(mount_s), "mount_cmd_ms": ms(cmd_s), "unmount_ms": ms(umount_s),
            "unmount_until_exit_ms": ms(exit_s), "reps": reps,
            "mount_ms_all": [x * 1e3 for x in mount_s]}


# ---------------------------------------------------------------- report

def build_rows(R, W):
    """Table rows: (label, unit, better, {fs: value})."""
    rows = []
    for n, size in SF_RUNS:
        key = "sf_%d" % size
        for ph in PHASES:
            vals = {f: R[f][key]["median"][ph] for f in FSES if key in R[f]}
            rows.append(("%s %s (N=%d)" % (ph, human(size), n), "ops/s", "higher", vals))
    rows.append(("W5 durable update p50", "ms", "lower",
                 {f: R[f]["w5"]["p50_ms"] for f in FSES if "w5" in R[f]}))
    rows.append(("W5 durable update p99", "ms", "lower",
                 {f: R[f]["w5"]["p99_ms"] for f in FSES if "w5" in R[f]}))
    for entries, _ in W6_SIZES:
        k = "w6_%d" % entries
        rows.append(("W6 ls -l %d entries" % entries, "ms", "lower",
                     {f: R[f]["w6"][k]["median_ms"] for f in FSES if "w6" in R[f]}))
        rows.append(("W6 ls -l %d, first listing" % entries, "ms", "lower",
                     {f: R[f]["w6"][k]["first_ms"] for f in FSES if "w6" in R[f]}))
    rows.append(("W1 create into 10k folder", "ops/s", "higher",
                 {f: R[f]["w6"]["w6_10000"]["fill_ops"] for f in FSES if "w6" in R[f]}))
    rows.append(("W8 negative lookups", "ops/s", "higher",
                 {f: R[f]["w6"]["w8"]["ops"] for f in FSES if "w6" in R[f]}))
    rows.append(("daemon RSS after 128 B runs", "MiB", "lower",
                 {f: R[f]["rss_after_128"]["VmRSS"] for f in FSES
                  if R[f].get("rss_after_128")}))
    if W:
        s = "secretsfs"
        if "w10_empty" in W:
            rows.append(("W10 mount, empty store", "ms", "lower", {s: W["w10_empty"]["mount_ms"]}))
            rows.append(("W10 unmount (fusermount3 returns)", "ms", "lower",
                         {s: W["w10_empty"]["unmount_ms"]}))
            rows.append(("W10 unmount until daemon exits", "ms", "lower",
                         {s: W["w10_empty"]["unmount_until_exit_ms"]}))
        if "w10_full" in W:
            rows.append(("W10 mount, %d secrets x %d versions" % (W11_SECRETS - W11_DELETE,
                                                                   CYCLES + 1), "ms",
                         "lower", {s: W["w10_full"]["mount_ms"]}))
        if R.get(s, {}).get("rss_after_128"):
            rows.append(("W11 VmLck after 128 B runs", "MiB", "lower",
                         {s: R[s]["rss_after_128"]["VmLck"]}))
        if "w11_after_create" in W:
            a, c = W["w11_after_create"], W.get("w11_after_cycles")
            rows.append(("W11 tdb size, %d secrets" % W11_SECRETS, "MiB", "lower",
                         {s: a["tdb_mib"]}))
            rows.append(("W11 RSS, %d secrets" % W11_SECRETS, "MiB", "lower", {s: a["VmRSS"]}))
            if c:
                rows.append(("W11 tdb size after %d update cycles" % CYCLES, "MiB", "lower",
                             {s: c["tdb_mib"]}))
                rows.append(("W11 RSS after %d cycles" % CYCLES, "MiB", "lower", {s: c["VmRSS"]}))
                rows.append(("W11 VmLck after %d cycles" % CYCLES, "MiB", "lower",
                             {s: c["VmLck"]}))
                rows.append(("W11 daemon CPU per update", "ms", "lower",
                             {s: c["cpu_ms_per_op"]}))
                rows.append(("W11 updates/s, first -> last cycle", "ops/s", "higher",
                             {s: W["w11_cycles"][-1]["ops"]}))
        if "w11_after_delete" in W:
            rows.append(("W11 tdb size after deleting %d secrets" % W11_DELETE, "MiB", "lower",
                         {s: W["w11_after_delete"]["tdb_mib"]}))
        if "w11_compact" in W:
            rows.append(("W11 tdb size after secretsfs compact", "MiB", "lower",
                         {s: W["w11_compact"]["after_mib"]}))
        sc = W.get("scale")
        if sc:
            n = "{:,}".format(sc["n"])
            rows.append(("scale: create %s secrets" % n, "ops/s", "higher", {s: sc["create_ops"]}))
            rows.append(("scale: mount with %s (key file)" % n, "ms", "lower",
                         {s: sc["mount"]["mount_ms"]}))
            rows.append(("scale: tdb size, %s" % n, "MiB", "lower", {s: sc["tdb_mib"]}))
            rows.append(("scale: RSS after mount, %s" % n, "MiB", "lower",
                         {s: sc["after_mount"]["VmRSS"]}))
            rows.append(("scale: RSS after reads, %s" % n, "MiB", "lower",
                         {s: sc["after_reads"]["VmRSS"]}))
            rows.append(("scale: of which file pages (RssFile: tdb's mapping, binary, libs)",
                         "MiB", "lower", {s: sc["after_reads"].get("RssFile")}))
            rows.append(("scale: peak RSS, the load included (VmHWM)", "MiB", "lower",
                         {s: sc["after_reads"].get("VmHWM")}))
            rows.append(("scale: of which the daemon's own (RssAnon)", "MiB", "lower",
                         {s: sc["after_reads"].get("RssAnon")}))
            rows.append(("scale: read 128 B among %s" % n, "ops/s", "higher", {s: sc["read_ops"]}))
            rows.append(("scale: stat among %s" % n, "ops/s", "higher", {s: sc["stat_ops"]}))
            if sc.get("base"):
                bn = "{:,}".format(sc["base"]["n"])
                rows.append(("scale: the same read among %s" % bn, "ops/s", "higher",
                             {s: sc["base"]["read_ops"]}))
                rows.append(("scale: the same stat among %s" % bn, "ops/s", "higher",
                             {s: sc["base"]["stat_ops"]}))
    return rows


def human(size):
    return "%d B" % size if size < 1024 else "%d KiB" % (size // 1024)


def ratio(sfs, peer, better):
    if sfs is None or peer is None or sfs <= 0 or peer <= 0:
        return None
    return sfs / peer if better == "higher" else peer / sfs


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def table(rows, W):
    cols = ["metric", "unit"] + FSES
    ratio_peers = PEERS if "secretsfs" in FSES else []
    cols += ["sfs vs %s" % p for p in ratio_peers]
    lines = []
    for label, unit, better, vals in rows:
        r = [label, unit] + [fmt(vals.get(f)) for f in FSES]
        if label.startswith("W11 updates/s") and W and W.get("w11_cycles"):
            r[2 + FSES.index("secretsfs")] = "%s -> %s" % (
                fmt(W["w11_cycles"][0]["ops"]), fmt(W["w11_cycles"][-1]["ops"]))
        for p in ratio_peers:
            x = ratio(vals.get("secretsfs"), vals.get(p), better)
            r.append("-" if x is None else "%.2fx" % x)
        lines.append(r)
    return cols, lines


def render_text(cols, lines):
    w = [max(len(str(c)), *(len(l[i]) for l in lines)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(cols)),
           "  ".join("-" * x for x in w)]
    for l in lines:
        out.append("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(l)))
    return "\n".join(out)


def render_md(cols, lines):
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|"]
    for l in lines:
        out.append("| " + " | ".join(l) + " |")
    return "\n".join(out)


def limit_of(phase, R, M):
    """What stops a missed target of this smallfiles phase, from this run's
    own measurements; None when nothing is known."""
    def ph(f, p):
        try:
            return R[f]["sf_128"]["median"][p]
        except KeyError:
            return None
    sync = M.get("four_syncs_ms") or (4 * M["overwrite_4k_fdatasync_ms"]
                                      if M.get("overwrite_4k_fdatasync_ms") else None)
    if phase in ("update", "create") and sync:
        w5 = {f: R[f]["w5"]["p50_ms"] for f in FSES if "w5" in R.get(f, {})}
        return ("a close that returned 0 is on disk: one tdb transaction, which syncs 4 times; "
                "4 write+fdatasync pairs cost %.2f ms on this disk (%.0f/s at most, before any "
                "FUSE round trip, crypto or tdb work); gocryptfs does not sync at all (W5 "
                "durable-update p50: secretsfs %s ms, gocryptfs %s ms)" % (
                    sync, 1000.0 / sync, fmt(w5.get("secretsfs")), fmt(w5.get("gocryptfs"))))
    if phase == "read":
        return ("each read is direct I/O from the snapshot its open took (a reader keeps the "
                "version it opened, BRIEF 2): OPEN, READ and RELEASE reach the daemon every "
                "time, where the peers answer READ from the page cache")
    if phase == "par-read":
        mine, single = ph("secretsfs", "par-read"), ph("secretsfs", "read")
        b, bs = ph("bindfs", "par-read"), ph("bindfs", "read")
        return ("%d cores shared by 8 readers and the daemon; on them bindfs's 8 readers get "
                "%.2fx its single reader, secretsfs's %.2fx" % (
                    os.cpu_count() or 0, (b / bs) if b and bs else float("nan"),
                    (mine / single) if mine and single else float("nan")))
    return None


def targets(R, W, M=None):
    """PASS/MISS lines: 128 B, N=2000, medians of this run; then the scale run.
    A missed target carries the measured limit that stops it."""
    out = []
    k = "sf_128"

    def get(f, ph):
        try:
            return R[f][k]["median"][ph]
        except KeyError:
            return None

    def check(label, ph, peer, factor, peer_ph=None):
        a, b = get("secretsfs", ph), get(peer, peer_ph or ph)
        if a is None or b is None:
            out.append(("SKIP", label, "not measured"))
            return
        r = a / b
        who = "secretsfs %s" % (peer_ph or ph) if peer == "secretsfs" else peer
        text = "secretsfs %.0f/s vs %s %.0f/s = %.2fx (target >= %.1fx)" % (a, who, b, r, factor)
        limit = limit_of(ph, R, M or {}) if r < factor else None
        out.append(("PASS" if r >= factor else "MISS", label,
                    text + ("\n      limit: " + limit if limit else "")))

    check("read (open+read+close) >= 1.0x bindfs", "read", "bindfs", 1.0)
    check("read (open+read+close) >= 2x gocryptfs", "read", "gocryptfs", 2.0)
    check("stat >= 1.0x bindfs", "stat", "bindfs", 1.0)
    check("create >= 1.0x gocryptfs", "create", "gocryptfs", 1.0)
    check("update >= 1.0x gocryptfs", "update", "gocryptfs", 1.0)
    check("list >= 1.0x bindfs", "list", "bindfs", 1.0)
    check("par-read >= 1.0x bindfs", "par-read", "bindfs", 1.0)
    check("par-read >= 1.5x own single-thread read", "par-read", "secretsfs", 1.5, "read")
    sc = (W or {}).get("scale")
    if not sc:
        out.append(("SKIP", "scale targets", "no scale run (BENCH_SCALE=0 or it failed)"))
        return out
    n = "{:,}".format(sc["n"])
    for ph, key in (("read", "read_ops"), ("stat", "stat_ops")):
        base = sc.get("base", {}).get(key)
        if base:
            r = sc[key] / base
            bn = "{:,}".format(sc["base"].get("n", SCALE_SAMPLE))
            text = "%.0f/s vs %.0f/s (the same loop on a %s-secret store) = %.2fx" % (
                sc[key], base, bn, r)
            if r < 0.8:
                text += ("\n      limit: nothing in a request scans the secrets (the index is a "
                         "hash map, tdb's chains are short); at %s secrets the daemon's memory (%.0f MiB) "
                         "and the %.0f MiB file no longer fit the CPU's caches, and the ratio "
                         "varies by about 0.1 between runs" % (
                             n, sc["after_reads"].get("RssAnon", 0), sc["tdb_mib"]))
            out.append(("PASS" if r >= 0.8 else "MISS", "%s among %s >= 0.8x %s among %s" % (
                ph, n, ph, bn), text))
    ms = sc["mount"]["mount_ms"]
    out.append(("PASS" if ms <= 1000 else "MISS", "mount with %s within 1 s (no KDF)" % n,
                "%.0f ms (median of %d)" % (ms, sc["mount"]["reps"])))
    rss = max(sc["after_mount"]["VmRSS"], sc["after_reads"]["VmRSS"])
    a = sc["after_reads"]
    text = ("%.1f MiB (after mount %.1f, after the reads %.1f = %.1f own + %.1f file pages, "
            "mostly tdb's mapping of the %.0f MiB file; peak %.1f, while the load maps the "
            "whole file)" % (
                rss, sc["after_mount"]["VmRSS"], a["VmRSS"], a.get("RssAnon", 0),
                a.get("RssFile", 0), sc["tdb_mib"], a.get("VmHWM", float("nan"))))
    if rss > 64:
        text += ("\n      limit: tdb maps the store file and each page a request touches "
                 "stays in RSS (file pages the kernel can reclaim); the daemon's own memory "
                 "is %.1f MiB. Serving unmapped (TDB_NOMMAP) keeps RSS at that, but tdb then "
                 "walks its free list with ~1,700 preads per commit: updates 2.7x slower "
                 "(docs/performance.md)" % a.get("RssAnon", 0))
    out.append(("PASS" if rss <= 64 else "MISS", "daemon RSS with %s <= 64 MiB" % n, text))
    return out


def cluster_targets(W):
    """The cluster phase's PASS/MISS lines (scripts/bench.d/cluster.py)."""
    if not CLUSTER or "secretsfs" not in FSES:
        return []
    c = W.get("cluster")
    if not c:
        return [("SKIP", "cluster targets", "the cluster phase did not run (see errors)")]
    import cluster
    return cluster.targets(c)


def chart(R, out_dir):
    fses = [f for f in FSES if "sf_128" in R.get(f, {})]
    if not fses:
        return None
    dat = os.path.join(out_dir, "bench-128.dat")
    with open(dat, "w") as f:
        f.write("phase " + " ".join(fses) + "\n")
        for ph in PHASES:
            f.write(ph + " " + " ".join("%.1f" % R[x]["sf_128"]["median"][ph] for x in fses) + "\n")
    png = os.path.join(out_dir, "bench.png")
    title = ("smallfiles.py, 2,000 files of 128 B: ops/s per phase, median of %d runs "
             "(list = listings of the 2,000-entry folder; par-read = 8 threads)" % REPS)
    colors = " ".join(COLORS[f] for f in fses)
    run(["gnuplot", "-e", "datafile='%s'; outfile='%s'; ncols=%d; plottitle='%s'; colors='%s'" %
         (dat, png, len(fses), title, colors), os.path.join(HERE, "chart.gp")], timeout=60)
    os.unlink(dat)
    return png


# ---------------------------------------------------------------- main

def main():
    base = sys.argv[1]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if not os.path.isfile(SMALLFILES):
        print("bench: %s not found (set BENCH_SMALLFILES)" % SMALLFILES, file=sys.stderr)
        return 2
    bad = [f for f in FSES if f not in ALL_FS]
    if bad:
        print("bench: unknown filesystem(s) in BENCH_FS: %s" % bad, file=sys.stderr)
        return 2
    os.makedirs(OUT, exist_ok=True)
    errors = []
    M = {}
    R = {f: {} for f in FSES}
    W = {}
    setups = {}
    wall0 = time.time()
    try:
        log("base %s, results to %s" % (base, OUT))
        M = machine_info(base)
        if M["disk_fs"] != "ext4":
            log("warning: %s is on %s, not ext4" % (base, M["disk_fs"]))
        for f in FSES:
            s = Setup(f, base)
            try:
                SETUP_FN[f](s)
                setups[f] = s
                log("%s mounted at %s" % (f, s.mnt))
            except Exception as e:  # noqa: BLE001
                errors.append("%s: setup failed: %s" % (f, e))
                log(errors[-1])
        live = [f for f in FSES if f in setups]

        def attempt(f, what, fn):
            try:
                return fn()
            except Stop:
                raise
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s failed: %s" % (f, what, e))
                log(errors[-1])
                traceback.print_exc(file=sys.stderr)
                return None

        # W1-W4: smallfiles.py, repetitions interleaved across filesystems.
        for n, size in SF_RUNS:
            key = "sf_%d" % size
            for rep in range(REPS):
                for f in live:
                    r = attempt(f, "smallfiles %d x %d B" % (n, size),
                                lambda: smallfiles(setups[f].mnt, n, size))
                    if r is None:
                        continue
                    R[f].setdefault(key, {"n": n, "size": size, "runs": []})["runs"].append(r)
                    log("%-9s %s rep %d: %s" % (f, key, rep + 1,
                                               " ".join("%s=%.0f" % kv for kv in r.items())))
            for f in live:
                if key in R[f]:
                    runs = R[f][key]["runs"]
                    R[f][key]["median"] = {ph: median([r[ph] for r in runs]) for ph in PHASES}
                    R[f][key]["min"] = {ph: min(r[ph] for r in runs) for ph in PHASES}
                    R[f][key]["max"] = {ph: max(r[ph] for r in runs) for ph in PHASES}
                    if size == 128:
                        pid = setups[f].daemon()
                        if pid:
                            R[f]["rss_after_128"] = proc_status(pid)
        # W5, W6, W8.
        for f in live:
            r = attempt(f, "W5", lambda: w5(setups[f].mnt))
            if r:
                R[f]["w5"] = r
                log("%-9s W5 p50 %.3f ms p99 %.3f ms" % (f, r["p50_ms"], r["p99_ms"]))
            r = attempt(f, "W6/W8", lambda: w6_w8(setups[f].mnt))
            if r:
                R[f]["w6"] = r
                log("%-9s W6 100: %.2f ms, 10k: %.1f ms; W8 %.0f/s" % (
                    f, r["w6_100"]["median_ms"], r["w6_10000"]["median_ms"], r["w8"]["ops"]))
            pid = setups[f].daemon()
            if pid:
                R[f]["status_at_end"] = proc_status(pid)
        # W10, W11: secretsfs only.
        if "secretsfs" in setups:
            s = setups["secretsfs"]
            s.tdb_mib_at_end = os.path.getsize(s.store) / 1048576.0
            r = attempt("secretsfs", "W10/W11", lambda: w10_w11(s))
            if r:
                W = r
            if SCALE_N:
                r = attempt("secretsfs", "scale", lambda: scale(s, R))
                if r:
                    W["scale"] = r
                    log("scale: mount %.0f ms, RSS %.1f MiB, read %.0f/s, stat %.0f/s" % (
                        r["mount"]["mount_ms"], r["after_reads"]["VmRSS"], r["read_ops"],
                        r["stat_ops"]))
        for f in list(setups):
            if f != "ext4":
                MOUNTS.unmount(setups[f].mnt)
        # Replicated through etcd, beside a local store of its own (cluster.py).
        if CLUSTER and "secretsfs" in FSES:
            import cluster
            r = attempt("secretsfs", "cluster", lambda: cluster.run(base, log))
            if r:
                W["cluster"] = r
    except Stop as e:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        errors.append("interrupted: %s" % e)
        log(errors[-1])
        MOUNTS.cleanup()
        return 130
    except Exception as e:  # noqa: BLE001
        errors.append("harness: %s" % e)
        traceback.print_exc(file=sys.stderr)
        MOUNTS.cleanup()
    finally:
        MOUNTS.cleanup()

    runtime = time.time() - wall0
    rows = build_rows(R, W)
    cols, lines = table(rows, W)
    tg = targets(R, W, M) + cluster_targets(W)
    png = None
    try:
        png = chart(R, OUT)
    except Exception as e:  # noqa: BLE001
        errors.append("chart: %s" % e)

    mach = M
    head = [
        "secretsfs benchmark, %s, %.0f s" % (time.strftime("%Y-%m-%d %H:%M:%S %Z"), runtime),
        "machine: %s (%s), %s cores, %s RAM, governor %s, kernel %s" % (
            mach.get("cpu"), mach.get("cpu_flags"), mach.get("cores"), mach.get("memory"),
            mach.get("governor"), mach.get("kernel")),
        "libfuse3 %s, libtdb %s, libgcrypt %s; %s, %s, %s; secretsfs %s" % (
            mach.get("libfuse3"), mach.get("libtdb"), mach.get("libgcrypt"), mach.get("bindfs"),
            mach.get("gocryptfs"), mach.get("securefs"), mach.get("secretsfs_git")),
        "disk: %s on %s (base %s); one 4 KiB write + fdatasync: %.2f ms appended, %.2f ms "
        "overwritten in place (median of 200); 4 write+fdatasync pairs as in a tdb commit: "
        "%.2f ms" % (
            mach.get("disk_fs"), mach.get("disk_dev"), mach.get("base_dir"),
            mach.get("append_4k_fdatasync_ms", float("nan")),
            mach.get("overwrite_4k_fdatasync_ms", float("nan")),
            mach.get("four_syncs_ms", float("nan"))),
        "durability: " + DURABILITY,
        "ratios: secretsfs / peer for throughput, peer / secretsfs for latency and sizes: "
        ">1 means secretsfs is better. smallfiles rows are medians of %d runs." % REPS,
        "phases: create/stat/read/update/reread/delete are files per second (read = "
        "open+read+close, single thread); list = os.listdir of the whole N-entry folder per "
        "second; par-read = 8 threads, 4N reads. W6 = os.scandir + lstat of every entry "
        "(median of the listings after the first); W8 = stat of 20,000 distinct missing names "
        "in the 10,000-entry folder.",
    ]
    setup_lines = ["  %-9s %s  [%s]" % (f, setups[f].cmd, setups[f].notes) for f in setups]
    notes = []
    if W.get("w11_after_cycles"):
        c = W["w11_after_cycles"]
        note = ("W11: tdb %.1f MiB after %d secrets x %d versions (%.0f B per version "
                "stored)." % (c["tdb_mib"], W11_SECRETS, CYCLES + 1, c["bytes_per_version"]))
        k = W.get("w11_compact")
        if k:
            note += (" After deleting %d of the secrets (%.1f MiB: tdb files never shrink), "
                     "secretsfs compact: %.1f -> %.1f MiB in %.2f s." % (
                         W11_DELETE, W.get("w11_after_delete", {}).get("tdb_mib", float("nan")),
                         k["before_mib"], k["after_mib"], k["seconds"]))
        notes.append(note)
    for f in FSES:
        if "secretsfs" == f and R[f].get("rss_after_128"):
            st = R[f]["rss_after_128"]
            notes.append("secretsfs daemon after the 2,000-secret runs: RSS %.1f MiB, "
                         "VmHWM %.1f MiB, VmLck %.1f MiB, %d threads." % (
                             st["VmRSS"], st["VmHWM"], st["VmLck"], st.get("Threads", 0)))

    text = "\n".join(head) + "\nsetups:\n" + "\n".join(setup_lines) + "\n\n" + \
        render_text(cols, lines) + "\n\n" + "\n".join(notes) + "\n\ntargets (128 B, N=2000; cluster: etcd phase):\n" + \
        "\n".join("%s  %s: %s" % t for t in tg)
    if errors:
        text += "\n\nerrors:\n" + "\n".join("  " + e for e in errors)
    print(text, flush=True)

    spread = ["| fs | size | " + " | ".join(PHASES) + " |",
              "|---|---|" + "---:|" * len(PHASES)]
    for f in FSES:
        for n, size in SF_RUNS:
            k = "sf_%d" % size
            if k in R[f]:
                spread.append("| %s | %s | " % (f, human(size)) + " | ".join(
                    "%s-%s" % (fmt(R[f][k]["min"][ph]), fmt(R[f][k]["max"][ph])) for ph in PHASES)
                    + " |")
    md = ["# secretsfs benchmark", ""] + ["- " + h for h in head] + ["", "## Setups", ""] + \
        ["- **%s**: `%s` (%s)" % (f, setups[f].cmd, setups[f].notes) for f in setups] + \
        ["", "## Results", "", render_md(cols, lines), ""] + \
        ["- " + n for n in notes] + \
        ["", "## Targets (128 B, N=2000, medians)", ""] + \
        ["- **%s** %s: %s" % t for t in tg] + \
        ["", "## Spread of the smallfiles.py runs (min-max ops/s over %d runs)" % REPS, ""] + \
        spread + ["", "![ops/s per phase, 128 B](bench.png)" if png else ""]
    if errors:
        md += ["", "## Errors", ""] + ["- " + e for e in errors]
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runtime_s": runtime, "machine": mach,
        "config": {"reps": REPS, "cycles": CYCLES, "smallfiles": SMALLFILES,
                   "smallfiles_runs": SF_RUNS, "w5_ops": W5_OPS, "w5_files": W5_FILES,
                   "w6": W6_SIZES, "w8_names": W8_NAMES, "w11_secrets": W11_SECRETS,
                   "w11_delete": W11_DELETE, "scale_n": SCALE_N, "scale_sample": SCALE_SAMPLE},
        "durability": DURABILITY,
        "setups": {f: {"cmd": setups[f].cmd, "notes": setups[f].notes} for f in setups},
        "results": R, "secretsfs": W,
        "table": [{"metric": l, "unit": u, "better": b, "values": v,
                   "ratios": {p: ratio(v.get("secretsfs"), v.get(p), b) for p in PEERS}}
                  for (l, u, b, v) in rows],
        "targets": [{"status": a, "target": b, "measured": c} for a, b, c in tg],
        "errors": errors,
    }
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
    log("wrote %s/results.json, results.md%s" % (OUT, ", bench.png" if png else ""))
    return 1 if errors else 0


def report_targets(path):
    """bench.py --targets results.json: the PASS/MISS lines of a finished run
    again (with this version's wording), without running anything."""
    with open(path) as f:
        doc = json.load(f)
    W = doc.get("secretsfs") or {}
    for t in targets(doc["results"], W, doc.get("machine") or {}) + cluster_targets(W):
        print("%s  %s: %s" % t)
    return 0


T0 = time.monotonic()
if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--targets":
        sys.exit(report_targets(sys.argv[2]))
    sys.exit(main())
