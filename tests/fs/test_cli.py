"""The command line: keygen, init, mount (BRIEF sections 5 and 7)."""

import os
import re
import stat
import subprocess
import time

import pytest

from conftest import (BIN, daemon_pids, force_unmount, is_mounted, run, sfs,
                      write_file)


def one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected a one-line error, got: {text!r}"
    return lines[0]


# ---------------------------------------------------------------- --help

@pytest.mark.parametrize("args", [["--help"], ["keygen", "--help"],
                                  ["init", "--help"], ["mount", "--help"]])
def test_help_exits_0(args):
    r = sfs(*args)
    assert r.returncode == 0, r.stderr
    assert "usage" in (r.stdout + r.stderr).lower()


def test_no_command_is_misuse():
    assert sfs().returncode == 2


def test_unknown_command_is_misuse():
    assert sfs("frobnicate").returncode == 2


# ---------------------------------------------------------------- keygen

def test_keygen_writes_64_hex_mode_0600(tmpdir_sfs):
    key = tmpdir_sfs / "k"
    old = os.umask(0)  # the mode must not depend on the umask
    try:
        r = sfs("keygen", key)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text = key.read_text()
    assert re.fullmatch(r"[0-9a-fA-F]{64}\n?", text), text
    # the key is not echoed anywhere
    assert text.strip() not in r.stdout + r.stderr


def test_keygen_keys_differ(tmpdir_sfs):
    a, b = tmpdir_sfs / "a", tmpdir_sfs / "b"
    assert sfs("keygen", a).returncode == 0
    assert sfs("keygen", b).returncode == 0
    assert a.read_text() != b.read_text()


def test_keygen_refuses_to_overwrite(tmpdir_sfs):
    key = tmpdir_sfs / "k"
    assert sfs("keygen", key).returncode == 0
    before = key.read_bytes()
    r = sfs("keygen", key)
    assert r.returncode == 1
    assert r.stderr.strip()
    assert key.read_bytes() == before


def test_keygen_refuses_existing_other_file(tmpdir_sfs):
    f = tmpdir_sfs / "f"
    f.write_text("precious\n")
    assert sfs("keygen", f).returncode == 1
    assert f.read_text() == "precious\n"


@pytest.mark.parametrize("args", [[], ["a", "b"], ["--bogus", "x"]])
def test_keygen_misuse(tmpdir_sfs, args):
    args = [str(tmpdir_sfs / a) if not a.startswith("-") else a for a in args]
    assert sfs("keygen", *args).returncode == 2


# ---------------------------------------------------------------- init

def test_init_with_key_file(tmpdir_sfs):
    key, store = tmpdir_sfs / "k", tmpdir_sfs / "s.tdb"
    assert sfs("keygen", key).returncode == 0
    r = sfs("init", store, "--key-file", key)
    assert r.returncode == 0, r.stderr
    assert store.is_file() and store.stat().st_size > 0


def test_init_with_passphrase_file_region_account(tmpdir_sfs):
    pf, store = tmpdir_sfs / "p", tmpdir_sfs / "s.tdb"
    write_file(pf, "correct horse battery staple\nsecond line ignored\n")
    r = sfs("init", store, "--passphrase-file", pf, "--region", "eu-west-1",
            "--account", "123456789012")
    assert r.returncode == 0, r.stderr
    assert store.is_file()


def test_init_refuses_existing_store(tmpdir_sfs):
    key, store = tmpdir_sfs / "k", tmpdir_sfs / "s.tdb"
    assert sfs("keygen", key).returncode == 0
    assert sfs("init", store, "--key-file", key).returncode == 0
    before = store.read_bytes()
    r = sfs("init", store, "--key-file", key)
    assert r.returncode == 1
    assert r.stderr.strip()
    assert store.read_bytes() == before


def test_init_refuses_existing_other_file(tmpdir_sfs):
    key, f = tmpdir_sfs / "k", tmpdir_sfs / "f"
    assert sfs("keygen", key).returncode == 0
    f.write_bytes(b"not a store")
    assert sfs("init", f, "--key-file", key).returncode == 1
    assert f.read_bytes() == b"not a store"


def test_init_missing_key_file_fails(tmpdir_sfs):
    store = tmpdir_sfs / "s.tdb"
    r = sfs("init", store, "--key-file", tmpdir_sfs / "nope")
    assert r.returncode == 1
    assert not store.exists()


@pytest.mark.parametrize("args", [
    [],                                            # no STORE
    ["{d}/s.tdb", "--bogus"],                      # unknown option
    ["{d}/s.tdb", "--key-file", "{d}/k", "--passphrase-file", "{d}/p"],
    ["{d}/s.tdb", "--key-file", "{d}/k", "--account", "12"],
    ["{d}/s.tdb", "{d}/t.tdb", "--key-file", "{d}/k"],  # two stores
])
def test_init_misuse(tmpdir_sfs, args):
    assert sfs("keygen", tmpdir_sfs / "k").returncode == 0
    (tmpdir_sfs / "p").write_text("pass phrase\n")
    args = [a.format(d=tmpdir_sfs) for a in args]
    r = sfs("init", *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert not (tmpdir_sfs / "s.tdb").exists()


# ---------------------------------------------------------------- mount

def test_mount_and_unmount(make_mount):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o", m.option_string())
    assert r.returncode == 0, r.stderr
    assert is_mounted(m.mnt)
    assert os.listdir(m.mnt) == []
    m.unmount()
    assert not is_mounted(m.mnt)


def test_mount_passphrase_store(make_mount):
    m = make_mount(passphrase="correct horse battery staple")
    (m.mnt / "x").write_bytes(b"v1")
    m.remount()
    assert (m.mnt / "x").read_bytes() == b"v1"


def wrong_unlock_attempt(m, opt):
    before = m.store.read_bytes()
    before_stat = os.stat(m.store)
    r = sfs("mount", m.store, m.mnt, "-o", f"{opt},log_file={m.log}")
    try:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt), "something was mounted"
        assert daemon_pids(m.mnt) == []
    finally:
        force_unmount(m.mnt)
    assert m.store.read_bytes() == before, "store file changed"
    assert os.stat(m.store).st_size == before_stat.st_size
    assert os.stat(m.store).st_mtime_ns == before_stat.st_mtime_ns
    return one_line(r.stderr)


def test_mount_wrong_key(make_mount):
    m = make_mount(mount=False)
    other = m.dir / "other.key"
    assert sfs("keygen", other).returncode == 0
    line = wrong_unlock_attempt(m, f"key_file={other}")
    assert "key" in line.lower()


def test_mount_wrong_passphrase(make_mount):
    m = make_mount(mount=False, passphrase="the right one")
    wrong = m.dir / "wrong"
    write_file(wrong, "the wrong one\n")
    line = wrong_unlock_attempt(m, f"passphrase_file={wrong}")
    assert "passphrase" in line.lower()
    assert "the wrong one" not in line and "the right one" not in line


def test_mount_passphrase_only_first_line(make_mount):
    m = make_mount(mount=False, passphrase="first line of it")
    pf = m.dir / "p2"
    write_file(pf, "first line of it\nsomething else\n")
    r = sfs("mount", m.store, m.mnt, "-o",
            f"passphrase_file={pf},log_file={m.log}")
    assert r.returncode == 0, r.stderr
    assert is_mounted(m.mnt)


def test_mount_key_file_on_passphrase_store_fails(make_mount):
    m = make_mount(mount=False, passphrase="a passphrase")
    k = m.dir / "k"
    assert sfs("keygen", k).returncode == 0
    wrong_unlock_attempt(m, f"key_file={k}")


def test_mount_after_failed_attempt_still_works(make_mount):
    m = make_mount()
    (m.mnt / "s").write_bytes(b"value")
    m.unmount()
    other = m.dir / "other.key"
    assert sfs("keygen", other).returncode == 0
    wrong_unlock_attempt(m, f"key_file={other}")
    m.mount()
    assert (m.mnt / "s").read_bytes() == b"value"


@pytest.mark.parametrize("days", ["0", "7", "15", "30"])
def test_recovery_window_valid(make_mount, days):
    m = make_mount(recovery_window=days)
    assert is_mounted(m.mnt)


@pytest.mark.parametrize("days", ["1", "6", "31", "-1", "abc", ""])
def test_recovery_window_invalid(make_mount, days):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o",
            f"{m.option_string()},recovery_window={days}")
    try:
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt)
    finally:
        force_unmount(m.mnt)


@pytest.mark.parametrize("opt", ["bogus", "bogus=1", "key_file"])
def test_unknown_or_malformed_option(make_mount, opt):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o", f"{m.option_string()},{opt}")
    try:
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt)
    finally:
        force_unmount(m.mnt)


def test_audit_log_unwritable_refuses_the_mount(make_mount):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o",
            f"{m.option_string()},audit_log={m.dir}/no/such/dir/audit.log")
    try:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt)
    finally:
        force_unmount(m.mnt)


@pytest.mark.parametrize("args", [[], ["{store}"],
                                  ["{store}", "{mnt}", "{mnt}"]])
def test_mount_misuse(make_mount, args):
    m = make_mount(mount=False)
    args = [a.format(store=m.store, mnt=m.mnt) for a in args]
    r = sfs("mount", *args, "-o", m.option_string())
    try:
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt)
    finally:
        force_unmount(m.mnt)


def test_mount_missing_store_fails(make_mount):
    m = make_mount(mount=False)
    missing = m.dir / "missing.tdb"
    r = sfs("mount", missing, m.mnt, "-o", m.option_string())
    try:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert not is_mounted(m.mnt)
        assert not missing.exists(), "mount created a store"
    finally:
        force_unmount(m.mnt)


def test_mount_threads_option(make_mount):
    m = make_mount(threads=4)
    (m.mnt / "t").write_bytes(b"x")
    assert (m.mnt / "t").read_bytes() == b"x"


@pytest.mark.parametrize("max_read", [4096, 131072])
def test_mount_max_read_serves_every_size_whole(make_mount, max_read):
    """max_read only splits reads into more round trips: each size reads
    back whole, through one large read(2) and through 1-byte reads."""
    m = make_mount(max_read=max_read)
    line = [l for l in open("/proc/mounts") if " %s " % m.mnt in l]
    assert line and "max_read=%d" % max_read in line[0], line
    for size in (1, 4095, 4096, 4097, 8192, 20000, 65536):
        value = os.urandom(size)
        (m.mnt / "s").write_bytes(value)
        fd = os.open(m.mnt / "s", os.O_RDONLY)
        try:
            assert os.read(fd, 1 << 17) == value, size
            assert os.read(fd, 1 << 17) == b""
            assert os.pread(fd, 1, size - 1) == value[-1:]
        finally:
            os.close(fd)


@pytest.mark.parametrize("bad", ["100", "4095", "131073", "-1", "x"])
def test_mount_max_read_out_of_range_refused(make_mount, bad):
    m = make_mount(mount=False)
    r = sfs("mount", m.store, m.mnt, "-o", m.option_string() + ",max_read=" + bad)
    try:
        assert r.returncode in (1, 2), (r.returncode, r.stderr)
        assert "max_read" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not is_mounted(m.mnt)
    finally:
        force_unmount(m.mnt)


def test_mount_ro(make_mount):
    m = make_mount()
    (m.mnt / "s").write_bytes(b"value")
    m.remount(ro=True)
    assert (m.mnt / "s").read_bytes() == b"value"
    with pytest.raises(OSError):
        (m.mnt / "s").write_bytes(b"other")
    with pytest.raises(OSError):
        (m.mnt / "new").write_bytes(b"other")
    m.remount(ro=False)
    assert (m.mnt / "s").read_bytes() == b"value"
    assert not (m.mnt / "new").exists()


def test_mount_foreground(make_mount):
    m = make_mount(mount=False)
    p = subprocess.Popen([str(BIN), "mount", str(m.store), str(m.mnt), "-f",
                          "-o", m.option_string()],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not is_mounted(m.mnt) and time.monotonic() < deadline:
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.05)
        assert is_mounted(m.mnt)
        assert p.poll() is None, "-f did not stay in the foreground"
        (m.mnt / "fg").write_bytes(b"x")
        assert run(["fusermount3", "-u", m.mnt]).returncode == 0
        assert p.wait(timeout=20) == 0
    finally:
        force_unmount(m.mnt)
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
