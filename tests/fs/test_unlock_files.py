"""Key and passphrase files that are not the caller's alone are refused
wherever they are read, and every command that holds a key or a value
hardens its process as mount does (issue 11, item 6)."""

import fcntl
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BIN, is_mounted, write_file, sfs

PASSPHRASE = "correct horse battery staple"


def unlock_file_cases(m, f, good_key):
    """Every place a key file (kind "key") or a passphrase file ("pass") is
    read, as (kind, argv) with the file under test at f."""
    return {
        "init --key-file": ("key", ["init", m.dir / "new.tdb", "--key-file", f]),
        "init --passphrase-file": ("pass", ["init", m.dir / "new.tdb",
                                            "--passphrase-file", f]),
        "mount key_file=": ("key", ["mount", m.store, m.mnt, "-o",
                                    f"key_file={f},log_file={m.log}"]),
        "mount passphrase_file=": ("pass", ["mount", m.dir / "pass.tdb", m.mnt,
                                            "-o", f"passphrase_file={f}"]),
        "check --key-file": ("key", ["check", m.store, "--key-file", f]),
        "check --passphrase-file": ("pass", ["check", m.dir / "pass.tdb",
                                             "--passphrase-file", f]),
        "key list --key-file": ("key", ["key", "list", m.store, "--key-file", f]),
        "passwd --key-file": ("key", ["passwd", m.store, "--key-file", f,
                                      "--new-key-file", good_key]),
        "passwd --new-key-file": ("key", ["passwd", m.store, "--key-file", m.key,
                                          "--new-key-file", f]),
        "passwd --new-passphrase-file": ("pass", ["passwd", m.store, "--key-file",
                                                  m.key, "--new-passphrase-file", f]),
        "rekey --key-file": ("key", ["rekey", m.store, "--key-file", f]),
        "rekey --new-passphrase-file": ("pass", ["rekey", m.store, "--key-file",
                                                 m.key, "--new-passphrase-file", f]),
    }


CASES = [
    "init --key-file", "init --passphrase-file", "mount key_file=",
    "mount passphrase_file=", "check --key-file", "check --passphrase-file",
    "key list --key-file", "passwd --key-file", "passwd --new-key-file",
    "passwd --new-passphrase-file", "rekey --key-file",
    "rekey --new-passphrase-file"]


@pytest.fixture
def stores(make_mount):
    """An unmounted key-file store m, and beside it pass.tdb, made with a
    passphrase file; both files right (mode 0600, root's)."""
    m = make_mount(mount=False)
    pf = m.dir / "good.pass"
    write_file(pf, PASSPHRASE + "\n")
    r = sfs("init", m.dir / "pass.tdb", "--passphrase-file", pf)
    assert r.returncode == 0, r.stderr
    return m, pf


def loose_copy(m, kind, pf, name):
    """A right key or passphrase in a new file; the test then loosens it."""
    f = m.dir / name
    shutil.copyfile(m.key if kind == "key" else pf, f)
    os.chmod(f, 0o600)
    return f


def assert_refused(m, r, f, words):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(f) in lines[0] and "refused" in lines[0], lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    assert not is_mounted(m.mnt)
    assert not (m.dir / "new.tdb").exists()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_unlock_file_open_to_others_is_refused(stores, case, mode):
    m, pf = stores
    good_key = m.dir / "good2.key"
    assert sfs("keygen", good_key).returncode == 0
    kind, _ = unlock_file_cases(m, None, good_key)[case]
    f = loose_copy(m, kind, pf, "loose")
    os.chmod(f, mode)
    before = m.store.read_bytes()
    _, argv = unlock_file_cases(m, f, good_key)[case]
    r = sfs(*argv)
    assert_refused(m, r, f, ["%04o" % mode, "chmod 600"])
    assert m.store.read_bytes() == before
    # The same file, made private, is accepted.
    os.chmod(f, 0o600)
    r = sfs(*argv)
    try:
        assert r.returncode == 0, r.stderr
    finally:
        if is_mounted(m.mnt):
            subprocess.run(["fusermount3", "-u", str(m.mnt)])


@pytest.mark.parametrize("case", ["init --key-file", "mount passphrase_file=",
                                  "check --key-file", "passwd --new-passphrase-file",
                                  "rekey --key-file"])
def test_unlock_file_of_another_user_is_refused(stores, case):
    m, pf = stores
    kind, _ = unlock_file_cases(m, None, m.key)[case]
    f = loose_copy(m, kind, pf, "theirs")
    os.chown(f, 1000, 1000)
    _, argv = unlock_file_cases(m, f, m.key)[case]
    assert_refused(m, sfs(*argv), f, ["uid 1000", "not to you or root"])


def test_unlock_from_a_pipe_is_accepted(stores):
    """/dev/stdin on a pipe (and <(...)) is the caller's own, mode 0600."""
    m, pf = stores
    r = sfs("check", m.dir / "pass.tdb", "--passphrase-file", "/dev/stdin",
            input=PASSPHRASE + "\n")
    assert r.returncode == 0, r.stderr


def test_key_file_is_read_from_the_checked_descriptor_without_proc(stores):
    """The key file is read through the descriptor its checks were made on,
    not reopened by a /proc/self/fd path: a host (or a namespace) without
    /proc unlocks as well."""
    m, _ = stores
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        'umount -l /proc && test ! -e /proc/self && exec "$@"', "sh",
                        str(BIN), "check", str(m.store), "--key-file", str(m.key)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode and ("unshare:" in r.stderr or "umount:" in r.stderr):
        pytest.skip(f"cannot hide /proc here: {r.stderr}")
    assert r.returncode == 0, r.stderr
    assert "sound" in r.stdout


def test_unlock_file_of_the_caller_is_accepted_by_a_user(tmpdir_sfs):
    """A user who is not root unlocks with a file of their own."""
    d = tmpdir_sfs / "u"
    d.mkdir()
    key = d / "k"
    assert sfs("keygen", key).returncode == 0
    os.chown(d, 1000, 1000)
    os.chown(key, 1000, 1000)
    r = subprocess.run(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
                        str(BIN), "init", str(d / "s.tdb"), "--key-file", str(key)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # For root the same file is another user's.
    r = sfs("check", d / "s.tdb", "--key-file", key)
    assert r.returncode == 1 and "uid 1000" in r.stderr


# ------------------------------------------------------------ hardening

def user_process(argv, **kw):
    """argv of secretsfs run as uid 1000: a process whose /proc entries
    stay uid 1000's unless it makes itself not dumpable."""
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.Popen(["setpriv", "--reuid=1000", "--regid=1000",
                             "--clear-groups", str(BIN), *map(str, argv)],
                            **{**pipes, **kw})


def core_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


def wait_hardened(p, timeout=20):
    """Waits until p runs secretsfs (exec done), has no core limit and is
    not dumpable (the kernel then gives its /proc/PID files to root), while
    still running, blocked where the test put it."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"exited {p.returncode} before being seen hardened: {err}")
        try:
            with open(f"/proc/{p.pid}/comm") as f:
                comm = f.read().strip()
            owner = os.stat(f"/proc/{p.pid}/status").st_uid
            seen = (comm, owner, core_limit(p.pid))
        except OSError:
            continue
        if seen == ("secretsfs", 0, ["0", "0"]):
            return
        time.sleep(0.05)
    pytest.fail(f"not hardened: (comm, /proc owner, core limit) = {seen}")


def user_store(tmpdir_sfs):
    """A key-file store, its key and a FIFO, all uid 1000's."""
    d = tmpdir_sfs / "u"
    d.mkdir()
    key, store, fifo = d / "k", d / "s.tdb", d / "fifo"
    assert sfs("keygen", key).returncode == 0
    assert sfs("init", store, "--key-file", key).returncode == 0
    os.mkfifo(fifo, 0o600)
    for f in (d, key, store, fifo):
        os.chown(f, 1000, 1000)
    return key, store, fifo


@pytest.mark.parametrize("cmd", ["passwd", "rekey"])
def test_passwd_and_rekey_harden_the_process(tmpdir_sfs, cmd):
    """Blocked opening the new passphrase file (a FIFO), with the master key
    in memory: no core dumps, not dumpable."""
    key, store, fifo = user_store(tmpdir_sfs)
    p = user_process([cmd, store, "--key-file", key, "--new-passphrase-file", fifo])
    try:
        wait_hardened(p)
        with open(fifo, "w") as f:
            f.write(PASSPHRASE + "\n")
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_import_hardens_the_process(make_mount):
    m = make_mount(allow_other=True)
    p = user_process(["import", m.mnt])  # waits on standard input
    try:
        wait_hardened(p)
        out, err = p.communicate(input=b"", timeout=60)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("argv", [["export", "{mnt}"], ["rotate", "{mnt}/s"]])
def test_export_and_rotate_harden_the_process(make_mount, argv):
    """Blocked on the daemon (stopped for the test)."""
    m = make_mount(allow_other=True)
    write_file(m.p("s"), b"value")
    os.chown(m.p("s"), 1000, 1000)
    daemon = m.pid
    os.kill(daemon, signal.SIGSTOP)
    p = None
    try:
        p = user_process([a.format(mnt=m.mnt) for a in argv])
        wait_hardened(p)
    finally:
        os.kill(daemon, signal.SIGCONT)
        if p is not None:
            try:
                p.communicate(timeout=60)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def test_random_password_hardens_the_process():
    """Blocked writing a password longer than its pipe holds (one page),
    with the password in memory: no core dumps, not dumpable."""
    r, w = os.pipe()
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    p = user_process(["random-password", "--length", "4096"], stdout=w)
    os.close(w)
    try:
        wait_hardened(p)
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
        assert p.wait(timeout=60) == 0, p.stderr.read()
        assert len(out) == 4097 and out.endswith(b"\n")
    finally:
        os.close(r)
        if p.poll() is None:
            p.kill()
            p.wait()
