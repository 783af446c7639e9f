"""Fixtures for the tests that mount the real secretsfs binary.

The binary is expected at <repo>/bin/secretsfs (build it with `make`).
Every mount made through these fixtures is unmounted at teardown, even when
the test failed: `fusermount3 -u`, then `umount -l` as a fallback.
"""

import errno
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent.parent
BIN = REPO / "bin" / "secretsfs"

CMD_TIMEOUT = 60
MAX_VALUE = 65536


# ---------------------------------------------------------------- helpers

def run(args, input=None, timeout=CMD_TIMEOUT, env=None, check=False):
    """Run a command, capture text output, never raise on a non-zero exit
    unless check=True."""
    return subprocess.run([str(a) for a in args], input=input,
                          capture_output=True, text=True, timeout=timeout,
                          env=env, check=check)


def ok(r):
    """r (a finished command) succeeded; its standard output."""
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}{r.stdout}"
    return r.stdout


def sfs(*args, **kw):
    """Run `secretsfs ARGS...`."""
    return run([BIN, *args], **kw)


def sh(script, **kw):
    """Run a shell snippet with /bin/sh -c."""
    return run(["sh", "-c", script], **kw)


def as_uid(uid, *args, **kw):
    """Run a command as uid/gid `uid` with no supplementary groups."""
    return run(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", *args], **kw)


def is_mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def force_unmount(path):
    """Unmount `path` if it is a mount point; lazy-unmount as a fallback."""
    path = str(path)
    if not is_mounted(path):
        return
    subprocess.run(["fusermount3", "-u", path], capture_output=True)
    if is_mounted(path):
        subprocess.run(["fusermount3", "-uz", path], capture_output=True)
    if is_mounted(path):
        subprocess.run(["umount", "-l", path], capture_output=True)


def daemon_pids(mnt):
    """PIDs of secretsfs processes whose command line names mount point mnt."""
    mnt = str(mnt)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not args or not args[0].endswith("secretsfs"):
            continue
        if "mount" in args and mnt in args:
            pids.append(int(entry))
    if not pids:  # as the brief suggests: pgrep -f on the mount point
        r = run(["pgrep", "-f", re.escape(mnt) + r"($|\s)"])
        pids = [int(p) for p in r.stdout.split() if int(p) != os.getpid()]
    return pids


def wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def write_file(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
               mode=0o600):
    """open/write/close with syscalls; returns nothing, raises OSError."""
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, flags, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    os.close(fd)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def audit_events(path):
    """The records of an audit log (audit_log=), oldest first."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def expect_errno(err, fn, *args, **kw):
    """Call fn, require OSError with errno `err` (an int or a tuple)."""
    errs = err if isinstance(err, tuple) else (err,)
    with pytest.raises(OSError) as ei:
        fn(*args, **kw)
    assert ei.value.errno in errs, (
        f"expected {[errno.errorcode[e] for e in errs]}, "
        f"got {errno.errorcode.get(ei.value.errno, ei.value.errno)}: "
        f"{ei.value}")
    return ei.value


# ---------------------------------------------------------------- the mount

class Mount:
    """A temp dir with a key, a store, a mount point and a log file."""

    def __init__(self, base, passphrase=None, init_args=()):
        self.dir = Path(base)
        self.mnt = self.dir / "mnt"
        self.store = self.dir / "store.tdb"
        self.log = self.dir / "secretsfs.log"
        self.key = self.dir / "master.key"
        self.passfile = None
        self.opts = {}
        self.mnt.mkdir()
        if passphrase is None:
            r = sfs("keygen", self.key)
            assert r.returncode == 0, r.stderr
            r = sfs("init", self.store, "--key-file", self.key, *init_args)
        else:
            self.passfile = self.dir / "passphrase"
            self.passfile.write_text(passphrase + "\n")
            os.chmod(self.passfile, 0o600)
            r = sfs("init", self.store, "--passphrase-file", self.passfile,
                    *init_args)
        assert r.returncode == 0, r.stderr

    # -- options

    def unlock_opt(self):
        if self.passfile is not None:
            return f"passphrase_file={self.passfile}"
        return f"key_file={self.key}"

    def option_string(self, extra=None):
        parts = [self.unlock_opt(), f"log_file={self.log}"]
        opts = dict(self.opts)
        if extra:
            opts.update(extra)
        for k, v in opts.items():
            if v is True:
                parts.append(k)
            elif v is not None and v is not False:
                parts.append(f"{k}={v}")
        return ",".join(parts)

    # -- mount / unmount

    def mount(self, **opts):
        """Mount with key_file (or passphrase_file) and log_file plus opts
        (name=value, or name=True for a flag). Options are remembered for
        remount()."""
        self.opts.update(opts)
        r = sfs("mount", self.store, self.mnt, "-o", self.option_string())
        assert r.returncode == 0, f"mount failed ({r.returncode}): {r.stderr}"
        assert is_mounted(self.mnt)
        return r

    def unmount(self):
        """fusermount3 -u and wait until the daemon has exited (so the store
        is closed and the log flushed)."""
        pids = daemon_pids(self.mnt)
        r = run(["fusermount3", "-u", self.mnt])
        assert r.returncode == 0, f"fusermount3 -u failed: {r.stderr}"
        for pid in pids:
            assert wait_gone(pid), f"daemon {pid} still running after unmount"
        assert not is_mounted(self.mnt)

    def remount(self, **opts):
        self.unmount()
        return self.mount(**opts)

    # -- the daemon

    @property
    def pid(self):
        pids = daemon_pids(self.mnt)
        assert len(pids) == 1, f"expected one daemon for {self.mnt}: {pids}"
        return pids[0]

    # -- convenience

    def p(self, name):
        """Path of `name` inside the mount."""
        return self.mnt / name

    def versions(self, name):
        return sorted(os.listdir(self.mnt / ".versions" / name))

    def read_log(self):
        try:
            return self.log.read_bytes()
        except FileNotFoundError:
            return b""

    def cleanup(self):
        force_unmount(self.mnt)
        for pid in daemon_pids(self.mnt):
            wait_gone(pid, 5)
        if not is_mounted(self.mnt):
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _binary():
    if not (BIN.is_file() and os.access(BIN, os.X_OK)):
        pytest.exit(f"{BIN} not found: build it with `make` first", 2)
    return BIN


@pytest.fixture
def tmpdir_sfs():
    """A fresh directory under /tmp, world-traversable (for the uid 1000
    tests), removed at teardown (unless something is still mounted in it)."""
    d = tempfile.mkdtemp(prefix="secretsfs-test-", dir="/tmp")
    os.chmod(d, 0o755)
    yield Path(d)
    for sub in Path(d).rglob("*"):
        try:
            if sub.is_dir() and is_mounted(sub):
                force_unmount(sub)
        except OSError:
            pass
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_mount():
    """Factory: make_mount(mount=True, passphrase=None, init_args=(), **opts)
    returns a Mount; all are unmounted and removed at teardown."""
    made = []

    def factory(mount=True, passphrase=None, init_args=(), **opts):
        base = tempfile.mkdtemp(prefix="secretsfs-test-", dir="/tmp")
        os.chmod(base, 0o755)
        m = Mount(base, passphrase=passphrase, init_args=init_args)
        made.append(m)
        if mount:
            m.mount(**opts)
        else:
            m.opts.update(opts)
        return m

    yield factory
    for m in made:
        m.cleanup()


@pytest.fixture
def mounted(make_mount):
    """A store made with a fresh key file, mounted with key_file and
    log_file."""
    return make_mount()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)
