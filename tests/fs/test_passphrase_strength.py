"""New passphrases (issue 15, item 8): init, passwd and rekey refuse one
under 12 characters unless --allow-short-passphrase, and warn in one line on
obviously weak ones; the passphrase itself never appears in a message."""

import os
import pty
import select
import signal
import time

import pytest

from conftest import BIN, sfs, write_file

GOOD = "correct horse battery staple"


def passfile(d, text, name="pf"):
    f = d / name
    write_file(f, text + "\n")
    return f


def refused_short(r, passphrase):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "shorter than 12 characters" in lines[0]
    assert "--allow-short-passphrase" in lines[0]
    assert passphrase not in r.stderr


@pytest.mark.parametrize("pw", ["x", "hunter2", "eleven char", "ééééééééééé"])
def test_init_refuses_a_short_passphrase(tmpdir_sfs, pw):
    """Characters, not bytes: eleven é are 22 bytes and still too short."""
    store = tmpdir_sfs / "s.tdb"
    r = sfs("init", store, "--passphrase-file", passfile(tmpdir_sfs, pw))
    refused_short(r, pw)
    assert not store.exists()
    r = sfs("init", store, "--passphrase-file", passfile(tmpdir_sfs, pw),
            "--allow-short-passphrase")
    assert r.returncode == 0, r.stderr
    assert pw not in r.stderr
    # An existing store opens with it: only new passphrases are judged.
    r = sfs("check", store, "--passphrase-file", passfile(tmpdir_sfs, pw))
    assert r.returncode == 0 and r.stderr == "", r.stderr


WEAK = [
    ("aaaaaaaaaaaa", "a short pattern repeated"),
    ("abcabcabcabcabc", "a short pattern repeated"),
    ("abcdefghijklmn", "a run of consecutive characters"),
    ("1234567890123", "a run of consecutive characters"),
    ("987654321098", "a run of consecutive characters"),
    ("202612031530", "digits only"),
    ("Password2024!", "a common password word"),
    ("Qwerty-2024!", "a common password word"),
]
REASONS = {why for _, why in WEAK}


@pytest.mark.parametrize("pw,why", WEAK)
def test_init_warns_on_a_weak_passphrase(tmpdir_sfs, pw, why):
    """Standard error not a terminal (a CI or script log): the warning says
    the passphrase looks easy to guess, not which kind of weak it is."""
    store = tmpdir_sfs / "s.tdb"
    r = sfs("init", store, "--passphrase-file", passfile(tmpdir_sfs, pw))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0], r.stderr
    assert "looks easy to guess" in lines[0], lines[0]
    assert not any(reason in lines[0] for reason in REASONS), lines[0]
    assert pw not in r.stderr


@pytest.mark.parametrize("pw", [GOOD, "my secret garden is lovely", "Tr0ub4dor&3xyz"])
def test_init_is_quiet_on_a_good_passphrase(tmpdir_sfs, pw):
    r = sfs("init", tmpdir_sfs / "s.tdb", "--passphrase-file", passfile(tmpdir_sfs, pw))
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("cmd", ["passwd", "rekey"])
def test_passwd_and_rekey_refuse_a_short_new_passphrase(make_mount, cmd):
    m = make_mount(mount=False)
    before = m.store.read_bytes()
    short = passfile(m.dir, "too-short", "new")
    r = sfs(cmd, m.store, "--key-file", m.key, "--new-passphrase-file", short)
    refused_short(r, "too-short")
    assert m.store.read_bytes() == before
    assert sfs("check", m.store, "--key-file", m.key).returncode == 0
    weak = passfile(m.dir, "aaaaaaaaaaaaaaaa", "weak")
    r = sfs(cmd, m.store, "--key-file", m.key, "--new-passphrase-file", weak)
    assert r.returncode == 0 and "warning" in r.stderr, r.stderr
    r = sfs(cmd, m.store, "--passphrase-file", weak, "--new-passphrase-file", short,
            "--allow-short-passphrase")
    assert r.returncode == 0, r.stderr
    assert sfs("check", m.store, "--passphrase-file", short).returncode == 0


@pytest.mark.parametrize("cmd", ["init", "passwd"])
def test_help_names_the_minimum_that_is_enforced(tmpdir_sfs, cmd):
    r = sfs(cmd, "--help")
    assert r.returncode == 0 and "under 12 characters" in r.stdout, r.stdout
    r = sfs("init", tmpdir_sfs / "s.tdb", "--passphrase-file",
            passfile(tmpdir_sfs, "x" * 11 + "y"))
    assert r.returncode == 0, r.stderr  # 12 is enough
    assert "shorter" not in r.stderr


def test_allow_short_passphrase_is_misuse_where_nothing_is_new(make_mount):
    m = make_mount(mount=False)
    r = sfs("check", m.store, "--key-file", m.key, "--allow-short-passphrase")
    assert r.returncode == 2


def talk(argv, answers, timeout=60):
    """Run argv on a new pseudo-terminal (its controlling terminal), giving
    each reply in answers once its prompt has shown; returns (exit status,
    everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    shown, pending = b"", b""
    answers = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if answers and answers[0][0].encode() in pending:
                prompt, reply = answers.pop(0)
                os.write(fd, reply.encode() + b"\n")
                # what followed this prompt may be the next one already
                pending = pending.split(prompt.encode(), 1)[1]
                continue
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child is gone
                break
            if not chunk:
                break
            shown += chunk
            pending += chunk
        else:  # the deadline: a child still waiting fails the test, never hangs it
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_init_on_a_terminal_refuses_a_short_passphrase_without_echo(tmpdir_sfs):
    store = tmpdir_sfs / "s.tdb"
    code, shown = talk([str(BIN), "init", str(store)],
                       [("Passphrase: ", "tiny-pw"), ("Passphrase again: ", "tiny-pw")])
    assert code == 1, shown
    assert "shorter than 12 characters" in shown
    assert "tiny-pw" not in shown
    assert not store.exists()


@pytest.mark.parametrize("pw,why", WEAK[::3])
def test_init_on_a_terminal_says_why_a_passphrase_is_weak(tmpdir_sfs, pw, why):
    """To the person at the terminal the warning says which kind of weak."""
    store = tmpdir_sfs / "s.tdb"
    code, shown = talk([str(BIN), "init", str(store)],
                       [("Passphrase: ", pw), ("Passphrase again: ", pw)])
    assert code == 0, shown
    warnings = [l for l in shown.splitlines() if "warning" in l]
    assert len(warnings) == 1 and f"easy to guess ({why})" in warnings[0], shown
    assert pw not in shown
    assert store.exists()
