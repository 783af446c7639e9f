"""Helpers for the reliability and hardening tests (tests/fs/test_reliability.py
and tests/stress/test_stress.py): editing a store's tdb records while it is
unmounted, parsing sealed version records (docs/store-format.md), the
die-at-the-Nth-write shim (dieshim.c), a mixed create/update/delete load that
records what close() acknowledged, and a scan of the daemon's memory.

The store is edited with Debian's python3-tdb (scripts/install-deps), only
while no daemon holds it.
"""

import atexit
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import tdb  # python3-tdb

from conftest import (daemon_pids, is_mounted, read_file, run, sfs,
                      wait_gone, write_file)

HERE = Path(__file__).resolve().parent
SHIM_SRC = HERE / "dieshim.c"
SHIM_STATUS = 99  # the exit status of a process the shim ended

DEAD = (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO, errno.ENXIO)


# ---------------------------------------------------------------- the store

@contextlib.contextmanager
def open_store(path):
    """The store's tdb, read-write (no daemon may hold it)."""
    db = tdb.open(str(path), 0, tdb.INCOMPATIBLE_HASH, os.O_RDWR)
    try:
        yield db
    finally:
        db.close()


def records(path):
    """Every record of the store: {key (str): value (bytes)}."""
    with open_store(path) as db:
        return {k.decode(): db[k] for k in db.keys()}


def put_records(path, changes):
    """Writes {key: bytes, or None to delete} in one tdb transaction."""
    with open_store(path) as db:
        db.transaction_start()
        try:
            for k, v in changes.items():
                kb = k.encode()
                if v is None:
                    if db.get(kb) is not None:
                        db.delete(kb)
                else:
                    db.store(kb, v, tdb.REPLACE)
        except BaseException:
            db.transaction_cancel()
            raise
        db.transaction_commit()


def get_record(path, key):
    with open_store(path) as db:
        return db.get(key.encode())


ENVELOPE = 4 + 32  # "SFA3" and the tag of an authenticated record


def record_body(raw):
    """The JSON (or text) of a record, without the envelope that format 3
    puts around it (docs/store-format.md)."""
    return raw[ENVELOPE:] if raw[:4] == b"SFA3" else raw


def secret_meta(path, name):
    raw = get_record(path, f"secret/{name}")
    assert raw is not None, f"no record secret/{name}"
    return json.loads(record_body(raw))


def version_key(path, name, which="AWSCURRENT"):
    """ver/<secret-id>/<version-id> of a label (or a version id) of name;
    returns (key, version_id)."""
    meta = secret_meta(path, name)
    vid = meta["labels"].get(which, which)
    assert any(v["id"] == vid for v in meta["versions"]), (name, which, meta)
    return f"ver/{meta['id']}/{vid}", vid


def all_version_keys(path, name):
    """[(key, version_id)] of every version of name, oldest first."""
    meta = secret_meta(path, name)
    return [(f"ver/{meta['id']}/{v['id']}", v["id"]) for v in meta["versions"]]


def parse_version(rec):
    """The fields of a sealed version record (docs/store-format.md) as
    {field: (offset, length)} plus 'value' bytes views of the parts."""
    assert rec[:4] == b"SFV1", rec[:8]
    f = {"magic": (0, 4), "type": (4, 1), "key_id_len": (5, 1)}
    kl = rec[5]
    f["key_id"] = (6, kl)
    o = 6 + kl
    f["dek_len"] = (o, 2)
    dek_len = struct.unpack_from("<H", rec, o)[0]
    o += 2
    f["dek_nonce"] = (o, 12)
    f["dek_ct"] = (o + 12, dek_len - 28)
    f["dek_tag"] = (o + dek_len - 16, 16)
    f["wrapped_dek"] = (o, dek_len)
    o += dek_len
    f["value_len"] = (o, 4)
    vlen = struct.unpack_from("<I", rec, o)[0]
    o += 4
    f["value_nonce"] = (o, 12)
    f["value_ct"] = (o + 12, vlen - 28)
    f["value_tag"] = (o + vlen - 16, 16)
    f["sealed_value"] = (o, vlen)
    assert o + vlen == len(rec), (o, vlen, len(rec))
    return f


def field(rec, fields, name):
    off, n = fields[name]
    return bytes(rec[off:off + n])


def flip(rec, off, mask=0x01):
    b = bytearray(rec)
    b[off] ^= mask
    return bytes(b)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- mounting

def mount_env(m, env=None, key_file=None, passphrase_file=None, extra=""):
    """secretsfs mount of m.store at m.mnt with a chosen unlock file and
    environment; returns the CompletedProcess (never asserts)."""
    if key_file is not None:
        unlock = f"key_file={key_file}"
    elif passphrase_file is not None:
        unlock = f"passphrase_file={passphrase_file}"
    else:
        unlock = m.unlock_opt()
    opts = f"{unlock},log_file={m.log}" + (f",{extra}" if extra else "")
    full = dict(os.environ)
    full.pop("TDB_NO_FSYNC", None)
    if env:
        full.update({k: str(v) for k, v in env.items()})
    return sfs("mount", m.store, m.mnt, "-o", opts, env=full)


def unmount_quiet(m, timeout=10):
    """Unmounts m (also a dead mount) and waits for its daemons to go."""
    pids = daemon_pids(m.mnt)
    if is_mounted(m.mnt):
        run(["fusermount3", "-u", m.mnt])
    if is_mounted(m.mnt):
        run(["fusermount3", "-uz", m.mnt])
    for pid in pids:
        assert wait_gone(pid, timeout), f"daemon {pid} still running"


def wait_store_free(store, timeout=10.0):
    """Waits until no process holds the store's flock: a killed daemon's
    leader can be a zombie while its other threads still finish their
    system calls (an fdatasync, say) with the store open."""
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(str(store), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{store} still locked after {timeout}s")
        finally:
            os.close(fd)
        time.sleep(0.02)


def kill9(m):
    """kill -9 of m's daemon; returns once it is gone."""
    pid = m.pid
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10), f"daemon {pid} survived SIGKILL"
    wait_store_free(m.store)
    return pid


def check_store(m, key_file=None, passphrase_file=None):
    """secretsfs check (store unmounted); returns the CompletedProcess."""
    if key_file is None and passphrase_file is None:
        if m.passfile is not None:
            passphrase_file = m.passfile
        else:
            key_file = m.key
    unlock = (["--key-file", key_file] if key_file is not None
              else ["--passphrase-file", passphrase_file])
    return sfs("check", m.store, *unlock)


def assert_sound(m, **kw):
    r = check_store(m, **kw)
    assert r.returncode == 0 and "sound" in r.stdout, \
        f"check not sound (exit {r.returncode}): {r.stdout}{r.stderr}"
    return r


# ---------------------------------------------------------------- C helpers

_build_lock = threading.Lock()
_built = {}


def build_c(src, flags=(), libs=(), suffix=""):
    """Compiles a C helper of tests/fs (a program, or a library with
    flags=("-shared", "-fPIC")) once per session; returns its path."""
    with _build_lock:
        out = _built.get(src)
        if out and Path(out).exists():
            return out
        tag = hashlib.sha256(Path(src).read_bytes()).hexdigest()[:12]
        out = (Path(tempfile.gettempdir()) /
               f"secretsfs-{Path(src).stem}-{tag}-{os.getpid()}{suffix}")
        cc = shutil.which(os.environ.get("CC", "cc")) or "cc"
        r = subprocess.run([cc, *flags, "-O2", "-Wall", "-Wextra", "-Werror",
                            "-o", str(out), str(src), *libs],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"cannot build {src}: {r.stderr}"
        atexit.register(lambda: out.unlink(missing_ok=True))
        _built[src] = str(out)
        return _built[src]


def build_shim():
    """dieshim.c as a library for LD_PRELOAD; returns the .so path."""
    return build_c(SHIM_SRC, ("-shared", "-fPIC"), ("-ldl",), ".so")


def shim_env(store, die_at=0, nommap=False, trace=None):
    env = {"LD_PRELOAD": build_shim(), "DIESHIM_PATH": str(store),
           "DIESHIM_DIE_AT": str(die_at), "DIESHIM_STATUS": str(SHIM_STATUS)}
    if nommap:
        env["DIESHIM_NOMMAP"] = "1"
    if trace:
        env["DIESHIM_TRACE"] = str(trace)
    return env


def trace_points(trace):
    """[(n, op)] from a shim trace file."""
    try:
        lines = Path(trace).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[1] != "DIE":
            out.append((int(parts[0]), parts[1]))
    return out


# ---------------------------------------------------------------- memory

def locked_ranges(pid):
    """[(start, end)] of the mappings of pid with locked pages."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and \
                    all(c in "0123456789abcdef-" for c in head[0]):
                a, b = head[0].split("-")
                cur = (int(a, 16), int(b, 16))
            elif line.startswith("Locked:") and cur and int(line.split()[1]) > 0:
                out.append(cur)
    return out


def scan_memory(pid, needles):
    """Searches every readable mapping of pid (through /proc/PID/mem, as
    root) for each needle; returns {needle: [(address, mapping name)]}."""
    hits = {n: [] for n in needles}
    longest = max(len(n) for n in needles)
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for line in maps:
            parts = line.split(maxsplit=5)
            rng, perms = parts[0], parts[1]
            name = parts[5] if len(parts) > 5 else ""
            if "r" not in perms or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            start, end = (int(x, 16) for x in rng.split("-"))
            pos, tail = start, b""
            while pos < end:
                n = min(1 << 20, end - pos)
                try:
                    chunk = os.pread(fd, n, pos)
                except OSError:
                    break
                if not chunk:
                    break
                buf = tail + chunk
                base = pos - len(tail)
                for nd in needles:
                    i = buf.find(nd)
                    while i >= 0:
                        hits[nd].append((base + i, name))
                        i = buf.find(nd, i + 1)
                tail = buf[-(longest - 1):] if longest > 1 else b""
                pos += len(chunk)
    finally:
        os.close(fd)
    for nd in hits:  # overlapping chunk tails can report a hit twice
        hits[nd] = sorted(set(hits[nd]))
    return hits


# ---------------------------------------------------------------- load

ABSENT = None  # a secret that does not exist, or is scheduled for deletion


class Model:
    """What each secret must hold: the value its last acknowledged change
    left (bytes, or ABSENT), and the change in flight when the daemon died."""

    def __init__(self, names, delete_purges=False, tolerate_restore=False):
        self.delete_purges = delete_purges  # recovery_window=0
        # accept the known outcome of a crash in a write to a deleted name:
        # the secret restored with the value it had when it was deleted
        self.tolerate_restore = tolerate_restore
        self.pre_delete = {}
        self.acked = {n: ABSENT for n in names}
        self.inflight = {}          # name -> bytes or ABSENT
        self.acked_now = {n: [] for n in names}  # values acked this cycle
        self.log = {n: [] for n in names}  # (op, value head, outcome) this cycle

    def history(self, name):
        return self.log[name][-8:]

    def allowed(self, name):
        ok = {self.acked[name]}
        if name in self.inflight:
            ok.add(self.inflight[name])
            if (self.tolerate_restore and self.acked[name] is ABSENT
                    and self.inflight[name] is not ABSENT
                    and self.pre_delete.get(name) is not None):
                ok.add(self.pre_delete[name])
        return ok


class Writer(threading.Thread):
    """Creates, updates and deletes its own secrets until told to stop or
    the daemon dies; each change is recorded as in flight before the call
    and as acknowledged once close() (or unlink) returned."""

    def __init__(self, m, model, names, seed, cycle, killed, stop,
                 max_writes_per_name=40, delete_ratio=0.15):
        super().__init__(daemon=True)
        self.m, self.model, self.names = m, model, names
        self.rng = random.Random(seed)
        self.cycle, self.killed, self.stop = cycle, killed, stop
        self.max_writes = max_writes_per_name
        self.delete_ratio = delete_ratio
        self.unexpected = []
        self.ops = 0
        self.seq = 0

    def value(self, name):
        self.seq += 1
        head = f"{name}|c{self.cycle}|{self.seq}|".encode()
        pad = self.rng.randint(0, 3000)
        return head + os.urandom(pad // 2).hex().encode()[:pad]

    def run(self):
        model = self.model
        while not self.stop.is_set():
            name = self.rng.choice(self.names)
            if len(model.acked_now[name]) >= self.max_writes:
                if all(len(model.acked_now[n]) >= self.max_writes
                       for n in self.names):
                    return
                continue
            delete = (model.acked[name] is not ABSENT
                      and self.rng.random() < self.delete_ratio)
            new = ABSENT if delete else self.value(name)
            model.inflight[name] = new
            entry = ["delete" if delete else "write",
                     None if delete else new[:new.index(b"|", len(name) + 1) + 12],
                     "in flight"]
            model.log[name].append(entry)
            try:
                if delete:
                    os.unlink(self.m.p(name))
                else:
                    write_file(self.m.p(name), new)
            except OSError as e:
                entry[2] = errno.errorcode.get(e.errno, str(e.errno))
                if not self.killed.is_set():
                    self.unexpected.append((name, "delete" if delete else "write",
                                            errno.errorcode.get(e.errno, e.errno),
                                            str(e)))
                return
            if self.killed.is_set():
                # acknowledged, but the kill may have raced with the reply:
                # it is acknowledged all the same
                pass
            entry[2] = "acked"
            if new is ABSENT:
                model.pre_delete[name] = model.acked[name]
            model.acked[name] = new
            del model.inflight[name]
            if new is not ABSENT:
                model.acked_now[name].append(new)
            elif model.delete_purges:
                model.acked_now[name] = []  # the history went with it
            self.ops += 1


def run_load_and_kill(m, model, names_per_thread, cycle, delay, seed):
    """Starts one Writer per list of names (or (names, delete ratio)), kills -9 the daemon after delay
    seconds, and waits for the writers. Returns (writers, killed pid)."""
    killed, stop = threading.Event(), threading.Event()
    writers = []
    for i, names in enumerate(names_per_thread):
        ratio = 0.15
        if isinstance(names, tuple):  # (names, delete ratio)
            names, ratio = names
        writers.append(Writer(m, model, names, seed * 1000 + i, cycle, killed,
                              stop, delete_ratio=ratio))
    for w in writers:
        w.start()
    time.sleep(delay)
    pid = m.pid
    killed.set()
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10), f"daemon {pid} survived SIGKILL"
    wait_store_free(m.store)
    stop.set()
    for w in writers:
        w.join(30)
        assert not w.is_alive(), "a writer hangs on the dead mount"
    return writers, pid


def read_or_absent(path):
    try:
        return read_file(path)
    except FileNotFoundError:
        return ABSENT


def verify_after_crash(m, model, check_history=True):
    """After a remount: every secret reads as its last acknowledged value or
    the one in flight; no read fails; every value acknowledged this cycle
    is in the history exactly once. Resolves the model to what was read."""
    problems = []
    for name in sorted(model.acked):
        try:
            got = read_or_absent(m.p(name))
        except OSError as e:
            problems.append((name, f"read fails: {e}"))
            continue
        if got not in model.allowed(name):
            def show(v):
                return "ABSENT" if v is ABSENT else v[:40]
            problems.append((name, f"reads {show(got)}, expected one of "
                                   f"{[show(v) for v in model.allowed(name)]}; "
                                   f"last changes: {model.history(name)}"))
            continue
        if check_history and got is not ABSENT:
            vdir = m.mnt / ".versions" / name
            values = []
            for vid in os.listdir(vdir):
                try:
                    values.append(read_file(vdir / vid))
                except OSError as e:
                    problems.append((name, f"version {vid} fails: {e}"))
            for v in model.acked_now[name]:
                n = values.count(v)
                if n != 1:
                    problems.append((name, f"acknowledged value {v[:40]} is in "
                                           f"the history {n} times"))
        model.acked[name] = got
    model.inflight.clear()
    if len(problems) > 6:
        problems = problems[:6] + [f"... and {len(problems) - 6} more"]
    for name in model.acked_now:
        model.acked_now[name] = []
        model.log[name] = []
    return problems


def race_on_one_secret(m, first, writers, writes_each, readers, max_len,
                       join_s=120):
    """T23: `writers` threads each write `writes_each` distinct values (up to
    max_len bytes) to the secret "hot" while `readers` threads read it.
    Asserts: no write or read fails, readers only ever see whole written
    values, every acknowledged close is exactly one version and the history
    holds each acknowledged value once; the current value is one of them."""
    write_file(m.p("hot"), first)
    written, acked, errors, seen = {first}, [], [], []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i):
        rng = random.Random(i)
        for j in range(writes_each):
            prefix = f"w{i}-{j}-".encode()
            body = os.urandom(rng.randint(1, max_len)).hex().encode()
            v = (prefix + body)[:rng.randint(len(prefix) + 1, max_len)]
            with lock:
                written.add(v)
            try:
                write_file(m.p("hot"), v)
            except OSError as e:
                errors.append(("write", i, j, e))
                continue
            with lock:
                acked.append(v)

    def reader():
        while not stop.is_set():
            try:
                v = read_file(m.p("hot"))
            except OSError as e:
                errors.append(("read", e))
                return
            with lock:
                if v not in written:
                    seen.append(v[:60])

    rs = [threading.Thread(target=reader) for _ in range(readers)]
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in rs + ws:
        t.start()
    for t in ws:
        t.join(join_s)
    stop.set()
    for t in rs:
        t.join(join_s / 4)
    assert errors == []
    assert seen == [], f"readers saw values nobody wrote: {seen[:3]}"
    assert len(acked) == writers * writes_each
    vids = m.versions("hot")
    assert len(vids) == 1 + len(acked), (len(vids), len(acked))
    history = [read_file(m.mnt / ".versions" / "hot" / v) for v in vids]
    assert sorted(history) == sorted(acked + [first])
    assert read_file(m.p("hot")) in set(acked)
