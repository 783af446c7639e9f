"""secretsfs check, backup, passwd and rekey."""

import json
import os

from conftest import read_file, sfs, write_file
from relhelpers import get_record, record_body


def test_check_backup_while_mounted_and_the_copy_opens(make_mount):
    m = make_mount()
    for v in (b"v1", b"v2", b"v3"):
        write_file(m.p("a"), v)
    write_file(m.p("b"), b"b")
    copy = m.dir / "copy.tdb"
    r = sfs("backup", m.store, copy)
    assert r.returncode == 0, r.stderr
    assert (copy.stat().st_mode & 0o777) == 0o600
    assert sfs("backup", m.store, copy).returncode == 1  # never overwritten
    r = sfs("check", copy, "--key-file", m.key)
    assert r.returncode == 0, r.stderr
    assert "2 secrets, 4 versions" in r.stdout and "sound" in r.stdout
    mnt2 = m.dir / "m2"
    mnt2.mkdir()
    assert sfs("mount", copy, mnt2, "-o", f"key_file={m.key}").returncode == 0
    try:
        assert read_file(mnt2 / "a") == b"v3"
        assert len(os.listdir(mnt2 / ".versions" / "a")) == 3
    finally:
        os.system(f"fusermount3 -u {mnt2}")


def test_check_refuses_wrong_key_and_misuse(make_mount):
    m = make_mount(mount=False)
    other = m.dir / "other.key"
    assert sfs("keygen", other).returncode == 0
    assert sfs("check", m.store, "--key-file", other).returncode == 1
    assert sfs("check", m.store, "--key-file", m.key).returncode == 0
    assert sfs("check").returncode == 2
    assert sfs("check", m.dir / "missing.tdb", "--key-file", m.key).returncode == 1


def test_passwd_and_rekey(make_mount):
    m = make_mount()
    write_file(m.p("s"), b"secret value")
    m.unmount()
    before = m.store.read_bytes()
    pw = m.dir / "pw"
    write_file(pw, "correct horse\n")
    wrong = m.dir / "wrong.key"
    assert sfs("keygen", wrong).returncode == 0
    r = sfs("passwd", m.store, "--key-file", wrong, "--new-passphrase-file", pw)
    assert r.returncode == 1 and m.store.read_bytes() == before  # nothing changed
    old_seal = json.loads(record_body(get_record(m.store, "sfs/header")))["master_key"]
    r = sfs("passwd", m.store, "--key-file", m.key, "--new-passphrase-file", pw)
    assert r.returncode == 0, r.stderr
    assert sfs("check", m.store, "--key-file", m.key).returncode == 1
    # The master key as the old key file sealed it is gone from the file
    # (tdb would keep it in its recovery area or free space: it is rewritten).
    assert old_seal.encode() not in m.store.read_bytes()
    assert sfs("check", m.store, "--passphrase-file", pw).returncode == 0
    r = sfs("rekey", m.store, "--passphrase-file", pw)
    assert r.returncode == 0, r.stderr
    m.passfile = pw
    m.mount()
    assert read_file(m.p("s")) == b"secret value"
    # Mounted: passwd and rekey refuse.
    r = sfs("rekey", m.store, "--passphrase-file", pw)
    assert r.returncode == 1 and "unmount" in r.stderr


def test_compact_gives_space_back_and_keeps_everything(make_mount):
    m = make_mount(recovery_window=0)
    for cycle in range(15):
        for i in range(60):
            write_file(m.p(f"s{i}"), f"value-{cycle}-{i}".encode())
    for i in range(50):
        os.unlink(m.p(f"s{i}"))
    m.unmount()
    before = m.store.stat().st_size
    r = sfs("compact", m.store)
    assert r.returncode == 0, r.stderr
    after = m.store.stat().st_size
    assert after < before / 2, (before, after)
    assert sfs("check", m.store, "--key-file", m.key).returncode == 0
    m.mount()
    assert read_file(m.p("s55")) == b"value-14-55"
    assert len(os.listdir(m.p(".versions/s55"))) == 15
    # Mounted: refused.
    r = sfs("compact", m.store)
    assert r.returncode == 1 and "unmount" in r.stderr
