"""A refused first commit creates nothing (issue 15): a CreateSecret that
fails leaves no name behind, in a listing, in the kernel's cache or in the
store, whatever refused it (a value over the limit, a disabled key, a client
request token; the policy and the audit in test_policy.py and
test_audit.py). touch still makes a secret without a value, and the name can
be created at once afterwards."""

import errno
import os
import shlex
import time

from conftest import expect_errno, ok, read_file, run, sh, write_file
from smhelpers import commit, xset

q = shlex.quote

BIG = 100_000  # the size the issue tried: over the 65,536-byte limit
TOKEN = "user.sm.client_request_token"
DEFAULT_KEY = "alias/aws/secretsmanager"

TOOLS = {
    "cp": lambda src, dst: run(["cp", src, dst]),
    "redirect": lambda src, dst: sh(f"cat {q(src)} > {q(dst)}"),
    "dd": lambda src, dst: run(["dd", f"if={src}", f"of={dst}", f"bs={BIG}"]),
}


def gone(m, name):
    """name is nowhere: not listed (readdir or ls), not found by stat, no
    versions, not scheduled for deletion."""
    folder, _, base = name.rpartition("/")
    where = m.p(folder) if folder else m.mnt
    assert base not in os.listdir(where), name
    assert base not in ok(run(["ls", "-a", where])).split(), name
    expect_errno(errno.ENOENT, os.stat, m.p(name))
    expect_errno(errno.ENOENT, os.listdir, m.mnt / ".versions" / name)
    expect_errno(errno.ENOENT, os.lstat, m.mnt / ".deleted" / name)


def python_write(path, data):
    """Python's own open/write/close: the write fails, and so does close."""
    f = open(path, "wb", buffering=0)
    expect_errno(errno.EFBIG, f.write, data)
    expect_errno(errno.EFBIG, f.close)


def eventually(check, timeout=5.0):
    """check() becomes true: a release reaches the daemon after close."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "still not so after a release"
        time.sleep(0.05)


def test_value_over_the_limit_leaves_no_name(mounted):
    m = mounted
    os.mkdir(m.p("f"))
    big = m.dir / "big"
    big.write_bytes(os.urandom(BIG))
    refused = []
    for tool, copy in TOOLS.items():
        for name in (tool, f"f/{tool}"):
            r = copy(str(big), str(m.p(name)))
            assert r.returncode != 0 and "File too large" in r.stderr, (tool, r)
            gone(m, name)
            refused.append(name)
    for name in ("py", "f/py"):
        python_write(m.p(name), big.read_bytes())
        gone(m, name)
        fd = os.open(m.p(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        expect_errno(errno.EFBIG, os.write, fd, big.read_bytes())
        expect_errno(errno.EFBIG, os.close, fd)
        gone(m, name)
        refused.append(name)
    assert os.listdir(m.mnt) == ["f"] and os.listdir(m.p("f")) == []
    # The kernel forgot the names too: creating one again is a create, not
    # an open of a cached name that is no more (ENOENT).
    again = refused[::2]
    for name in again:
        ok(sh(f"echo -n small > {q(str(m.p(name)))}"))
        assert read_file(m.p(name)) == b"small"
    m.remount()
    for name in refused:
        if name in again:
            assert read_file(m.p(name)) == b"small"
            assert len(m.versions(name)) == 1
        else:
            gone(m, name)


def test_touch_and_a_good_create_still_make_secrets(mounted):
    m = mounted
    ok(run(["touch", m.p("t")]))
    src = m.dir / "src"
    src.write_bytes(b"value")
    ok(run(["cp", src, m.p("c")]))
    fd = os.open(m.p("p"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"first")
    os.fsync(fd)  # a commit before close: the close has nothing left to do
    os.close(fd)
    m.remount()
    assert sorted(os.listdir(m.mnt)) == ["c", "p", "t"]
    assert os.stat(m.p("t")).st_size == 0 and m.versions("t") == []
    assert read_file(m.p("c")) == b"value"
    assert read_file(m.p("p")) == b"first"


def test_disabled_key_refuses_a_create_and_leaves_nothing(mounted):
    m = mounted
    write_file(m.p("first"), b"v")  # the default key is made on first need
    xset(m.mnt, "user.sm.key.disable", DEFAULT_KEY)
    src = m.dir / "src"
    src.write_bytes(b"value")
    r = run(["cp", src, m.p("k1")])
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    gone(m, "k1")
    assert commit(m.p("k2"), b"value") == ("close", errno.EACCES)
    gone(m, "k2")
    # A shell does not check close(2): still, nothing is made.
    sh(f"echo value > {q(str(m.p('k3')))}")
    gone(m, "k3")
    # A refused fsync poisons the handle: the name goes at close.
    fd = os.open(m.p("k4"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"value")
    expect_errno(errno.EACCES, os.fsync, fd)
    xset(m.mnt, "user.sm.key.enable", DEFAULT_KEY)
    os.write(fd, b" and more")
    expect_errno(errno.EACCES, os.close, fd)
    gone(m, "k4")
    write_file(m.p("k1"), b"value")
    m.remount()
    assert sorted(os.listdir(m.mnt)) == ["first", "k1"]
    assert read_file(m.p("k1")) == b"value"


def test_refused_create_of_a_deleted_name_leaves_it_deleted(mounted):
    """Creating a deleted name restores it (BRIEF section 4): refused, it
    stays deleted, with its versions."""
    m = mounted
    write_file(m.p("s"), b"old")
    ids = m.versions("s")
    os.unlink(m.p("s"))
    big = m.dir / "big"
    big.write_bytes(b"x" * BIG)
    r = run(["cp", big, m.p("s")])
    assert r.returncode != 0 and "File too large" in r.stderr, r
    assert os.listdir(m.mnt) == [] and os.listdir(m.mnt / ".deleted") == ["s"]
    # A client request token naming a version that has another value.
    fd = os.open(m.p("s"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.setxattr(fd, TOKEN, ids[0].encode())
    os.write(fd, b"not old")
    expect_errno(errno.EEXIST, os.close, fd)
    assert os.listdir(m.mnt) == [] and os.listdir(m.mnt / ".deleted") == ["s"]
    m.remount()
    assert os.listdir(m.mnt) == [] and os.listdir(m.mnt / ".deleted") == ["s"]
    os.rename(m.mnt / ".deleted" / "s", m.p("s"))
    assert read_file(m.p("s")) == b"old" and m.versions("s") == ids


def test_two_openers_of_a_refused_create(mounted):
    """Another writer that opened the created name keeps it: its value
    creates the secret; if it commits nothing, the name goes with it."""
    m = mounted
    big = b"y" * BIG
    for name, second in (("x", b"from b"), ("y", None)):
        a = os.open(m.p(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        b = os.open(m.p(name), os.O_WRONLY)
        expect_errno(errno.EFBIG, os.write, a, big)
        expect_errno(errno.EFBIG, os.close, a)
        assert name in os.listdir(m.mnt)  # b has it open still
        if second:
            os.write(b, second)
        os.close(b)
    assert read_file(m.p("x")) == b"from b"
    eventually(lambda: "y" not in os.listdir(m.mnt))
    gone(m, "y")
    m.remount()
    assert os.listdir(m.mnt) == ["x"]
    assert read_file(m.p("x")) == b"from b" and len(m.versions("x")) == 1
