"""Messages that name the right thing (issue 15, item 4): the option of the
command that was run, which of key file or passphrase was wrong, where a
store is mounted, and the fix for an impossible password."""

import contextlib
import ctypes
import os
import subprocess

import pytest

from conftest import BIN, force_unmount, is_mounted, read_file, sfs, write_file
from relhelpers import ENVELOPE, get_record, put_records

PASSPHRASE = "correct horse battery staple"


def no_tty(*args):
    """secretsfs ARGS in a new session: no terminal to ask on."""
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True,
                          text=True, timeout=60, start_new_session=True,
                          stdin=subprocess.DEVNULL)


def one_line(r, status=1):
    assert r.returncode == status, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def pass_store(make_mount):
    """An unmounted store made with a passphrase (m.passfile)."""
    return make_mount(mount=False, passphrase=PASSPHRASE)


@pytest.fixture
def key_store(make_mount):
    """An unmounted store made with a key file (m.key)."""
    return make_mount(mount=False)


# ------------------------------------------------ no terminal: which option

def test_no_terminal_init_names_its_flags(tmpdir_sfs):
    line = one_line(no_tty("init", tmpdir_sfs / "s.tdb"))
    assert "no terminal" in line
    assert "--passphrase-file F" in line and "--key-file F" in line
    assert "passphrase_file=" not in line
    assert not (tmpdir_sfs / "s.tdb").exists()


@pytest.mark.parametrize("argv", [["check", "{store}"],
                                  ["key", "list", "{store}"],
                                  ["rekey", "{store}"],
                                  ["passwd", "{store}"]])
def test_no_terminal_store_commands_name_their_flags(pass_store, argv):
    line = one_line(no_tty(*[a.format(store=pass_store.store) for a in argv]))
    assert "no terminal to ask for a passphrase" in line
    assert "--passphrase-file F" in line and "--key-file F" in line
    assert "passphrase_file=" not in line


def test_no_terminal_for_the_new_passphrase_names_the_new_flags(key_store):
    m = key_store
    line = one_line(no_tty("passwd", m.store, "--key-file", m.key))
    assert "no terminal to ask for the new passphrase" in line
    assert "--new-passphrase-file F" in line and "--new-key-file F" in line


def test_no_terminal_mount_names_its_options(pass_store):
    m = pass_store
    line = one_line(no_tty("mount", m.store, m.mnt, "-o", f"log_file={m.log}"))
    assert "passphrase_file=FILE" in line and "key_file=FILE" in line
    assert "--passphrase-file" not in line
    assert not is_mounted(m.mnt)


# ------------------------------------------- a store made with a key file

@pytest.mark.parametrize("argv,option", [
    (["key", "list", "{store}"], "--key-file F"),
    (["check", "{store}"], "--key-file F"),
    (["passwd", "{store}"], "--key-file F"),
    (["mount", "{store}", "{mnt}"], "key_file=FILE"),
])
def test_key_file_store_without_key_says_so(key_store, argv, option):
    """Not a passphrase prompt (nor "no terminal") for a store that only a
    key file opens: the message says so and names the option."""
    m = key_store
    before = m.store.read_bytes()
    line = one_line(no_tty(*[a.format(store=m.store, mnt=m.mnt) for a in argv]))
    assert "unlocked with a key file" in line and option in line, line
    assert "no terminal" not in line
    assert not is_mounted(m.mnt)
    assert m.store.read_bytes() == before


# ------------------------------------------------ a damaged header

@pytest.fixture
def damaged_header(pass_store):
    """pass_store whose header no longer parses (its tag kept)."""
    m = pass_store
    raw = get_record(m.store, "sfs/header")
    put_records(m.store, {"sfs/header": raw[:ENVELOPE] + b"{not json"})
    return m


@pytest.mark.parametrize("argv", [["check", "{store}"],
                                  ["key", "list", "{store}"],
                                  ["passwd", "{store}"],
                                  ["rekey", "{store}"],
                                  ["mount", "{store}", "{mnt}"],
                                  ["check", "{store}", "--passphrase-file", "{pf}"],
                                  ["key", "create", "{store}", "x", "--passphrase-file",
                                   "{pf}"],
                                  ["passwd", "{store}", "--passphrase-file", "{pf}"],
                                  ["mount", "{store}", "{mnt}", "-o", "passphrase_file={pf}"]])
def test_damaged_header_is_one_line(damaged_header, argv):
    """Which kind of secret the store wants is read from its header without
    trying a key: a header that does not parse is said once, in one line,
    with or without an unlock option (the library logs nothing of it)."""
    m = damaged_header
    before = m.store.read_bytes()
    line = one_line(no_tty(*[a.format(store=m.store, mnt=m.mnt, pf=m.passfile)
                             for a in argv]))
    assert "header is damaged" in line, line
    assert "no terminal" not in line
    assert not is_mounted(m.mnt)
    assert m.store.read_bytes() == before


# ----------------------------------------- wrong passphrase or wrong key

@pytest.mark.parametrize("cmd", ["check", "key", "passwd"])
def test_wrong_passphrase_says_passphrase(pass_store, cmd):
    m = pass_store
    wrong = m.dir / "wrong"
    write_file(wrong, PASSPHRASE + "!\n")
    argv = {"check": ["check", m.store], "key": ["key", "list", m.store],
            "passwd": ["passwd", m.store]}[cmd]
    line = one_line(no_tty(*argv, "--passphrase-file", wrong))
    assert "wrong passphrase" in line and "key file" not in line
    assert PASSPHRASE not in line


@pytest.mark.parametrize("cmd", ["check", "key", "passwd", "mount"])
def test_wrong_key_file_says_key_file(key_store, cmd):
    m = key_store
    other = m.dir / "other.key"
    assert sfs("keygen", other).returncode == 0
    argv = {"check": ["check", m.store, "--key-file", other],
            "key": ["key", "list", m.store, "--key-file", other],
            "passwd": ["passwd", m.store, "--key-file", other],
            "mount": ["mount", m.store, m.mnt, "-o", f"key_file={other}"]}[cmd]
    line = one_line(no_tty(*argv))
    assert "wrong key file" in line and "passphrase" not in line


def test_check_with_the_other_kind_names_the_right_option(pass_store, key_store):
    line = one_line(sfs("check", pass_store.store, "--key-file", key_store.key))
    assert "unlocked with a passphrase, not a key file" in line
    assert "--passphrase-file F" in line
    line = one_line(sfs("check", key_store.store, "--passphrase-file",
                        pass_store.passfile))
    assert "unlocked with a key file, not a passphrase" in line
    assert "--key-file F" in line


# ------------------------------------------------------ where it is mounted

def test_busy_store_says_where_it_is_mounted(tmpdir_sfs):
    """Also for a mount point whose name has a space (mountinfo escapes it)."""
    d = tmpdir_sfs / "with space"
    mnt, other = d / "mount point", tmpdir_sfs / "other"
    for p in (d, mnt, other):
        p.mkdir()
    key, store = d / "k", d / "s.tdb"
    assert sfs("keygen", key).returncode == 0
    assert sfs("init", store, "--key-file", key).returncode == 0
    r = sfs("mount", store, mnt, "-o", f"key_file={key}")
    assert r.returncode == 0, r.stderr
    try:
        line = one_line(sfs("mount", store, other, "-o", f"key_file={key}"))
        assert f"already mounted at {mnt}" in line
        assert not is_mounted(other)
        for cmd in ("passwd", "rekey"):
            line = one_line(sfs(cmd, store, "--key-file", key))
            assert f"already mounted at {mnt}; unmount it first" in line
        line = one_line(sfs("compact", store))
        assert f"already mounted at {mnt}; unmount it first" in line
        line = one_line(sfs("key", "create", store, "alias/x", "--key-file", key))
        assert f"mounted at {mnt}: give that mount point instead" in line
    finally:
        force_unmount(mnt)


@contextlib.contextmanager
def foreign_mount(store, point, uid):
    """A FUSE mount at point that calls itself fuse.secretsfs of store, as
    `fusermount3 -o fsname=STORE,subtype=secretsfs` makes it for user uid
    (user_id=uid): what any user can fake. Nobody serves it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        opts = f"fd={fd},rootmode=40000,user_id={uid},group_id={uid}"
        if libc.mount(str(store).encode(), str(point).encode(), b"fuse.secretsfs", 0,
                      opts.encode()):
            pytest.skip(f"cannot mount FUSE here: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)  # the connection is gone: the mount answers nothing
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_another_users_mount_naming_the_store_is_not_taken_for_it(make_mount):
    """Another user's mount that names the store, listed after the real one:
    backup goes to the real daemon, messages name the real mount point. A
    mount by the store file's owner counts."""
    m = make_mount()
    write_file(m.p("s"), b"value")
    fake = m.dir / "fake"
    fake.mkdir()
    os.chown(fake, 1000, 1000)
    with foreign_mount(m.store, fake, 1000):
        mountinfo = open("/proc/self/mountinfo").read()
        assert mountinfo.index(f" {fake} ") > mountinfo.index(f" {m.mnt} ")
        dest = m.dir / "copy.tdb"
        r = sfs("backup", m.store, dest)
        assert r.returncode == 0, r.stderr
        assert sfs("check", dest, "--key-file", m.key).returncode == 0
        for cmd in ("passwd", "rekey"):
            line = one_line(sfs(cmd, m.store, "--key-file", m.key))
            assert f"already mounted at {m.mnt}; unmount it first" in line, line
        line = one_line(sfs("compact", m.store))
        assert f"already mounted at {m.mnt}; unmount it first" in line, line
        line = one_line(sfs("key", "create", m.store, "alias/x", "--key-file", m.key))
        assert f"mounted at {m.mnt}: give that mount point instead" in line, line
        other = m.dir / "other"
        other.mkdir()
        line = one_line(sfs("mount", m.store, other, "-o", m.option_string()))
        assert f"already mounted at {m.mnt}" in line, line
        assert read_file(m.p("s")) == b"value"
        # The store file's owner mounted it: the topmost such mount is named.
        os.chown(m.store, 1000, 1000)
        line = one_line(sfs("compact", m.store))
        assert f"already mounted at {fake};" in line, line


# ------------------------------------------------------- random-password

@pytest.mark.parametrize("args,least", [
    (["--length", "3"], 4),
    (["--length", "1"], 4),
    (["--length", "2", "--exclude-punctuation"], 3),
    (["--length", "1", "--exclude-numbers", "--exclude-punctuation"], 2),
])
def test_random_password_too_short_says_the_length_that_works(args, least):
    line = one_line(sfs("random-password", *args), status=2)
    assert f"--length {least} or more" in line
    assert "--no-require-each-included-type" in line
    r = sfs("random-password", "--length", str(least), *args[2:])
    assert r.returncode == 0 and len(r.stdout) == least + 1, r.stderr
