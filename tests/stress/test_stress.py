"""Long runs of the reliability tests (make stress; not in make check):
T11 with 100 kill -9 cycles, T12 on a commit that grows the store and on a
rekey with several named keys, T1 on every byte of a record, T7 over
thousands of versions, T16 with random truncations and zeroed pages, T23
with more writers, 100 interrupted passwd/rekey runs each, repeated full
disks and handle floods, and a memory scan after a long mixed load.

The harness is that of tests/fs/test_reliability.py (make check runs the
short versions there).
"""

import errno
import os
import random
import secrets
import threading
import time

import pytest

from conftest import MAX_VALUE, read_file, sfs, write_file
from relhelpers import (ABSENT, assert_sound, check_store,
                        field, flip, get_record, mount_env, parse_version,
                        put_records, read_or_absent, records, scan_memory,
                        sha, unmount_quiet, version_key)
import test_reliability as rel
from test_reliability import populated, tiny_fs  # noqa: F401 (fixtures)


# ================================================================ T11

def test_t11_kill9_100_cycles_window0(make_mount):
    """T11: 100 cycles of create/update/delete load, kill -9 at a random
    moment, remount, every secret last acknowledged or in flight, history
    complete, check sound (deletion purges at once)."""
    m = make_mount(recovery_window=0)
    ops = rel.crash_cycles(m, 100, threads=4, max_delay=1.2, delete_purges=True)
    assert ops > 1000, f"only {ops} acknowledged changes in 100 cycles"


def test_t11_kill9_100_cycles_default_window(mounted):
    """T11 with the default recovery window (deleted secrets recreated by
    later writes, whose restore is committed with their new value)."""
    ops = rel.crash_cycles(mounted, 100, threads=4, max_delay=1.2, churn=2,
                           tolerate_restore=False)
    assert ops > 1000, f"only {ops} acknowledged changes in 100 cycles"


# ================================================================ T12

def t12_big(m):
    write_file(m.p("big"), b"B" * MAX_VALUE)


def t12_big_check(m, completed):
    got = read_or_absent(m.p("big"))
    assert got in (ABSENT, b"B" * MAX_VALUE), (got or b"")[:20]
    if completed:
        assert got == b"B" * MAX_VALUE
    assert read_file(m.p("s")) == b"old value"


@pytest.mark.parametrize("nommap", [False, True], ids=["mmap", "nommap"])
def test_t12_death_points_of_a_commit_that_grows_the_store(mounted, nommap):
    """The first 64 KiB value makes tdb grow the file (fallocate/ftruncate
    and, without mmap, the pages of the new area): death at each point."""
    m = mounted
    write_file(m.p("s"), b"old value")
    points = rel.die_at_every_point(m, t12_big, t12_big_check, nommap=nommap,
                                    most=300)
    assert points >= 4


def test_t12_rekey_with_named_keys_death_points(make_mount):
    """rekey re-seals every named key in its one transaction: death at each
    write point leaves the store opening with the old key file or the new
    one, never neither, and every secret (under each key) reads."""
    m = make_mount()
    names = {}
    for i in range(5):
        os.setxattr(m.mnt, "user.sm.key.create", f"alias/k{i}".encode())
        name = f"s{i}"
        write_file(m.p(name), b"first")
        os.setxattr(m.p(name), "user.sm.kms_key_id", f"alias/k{i}".encode())
        names[name] = f"value under k{i}".encode()
        write_file(m.p(name), names[name])
    m.unmount()
    start = m.store.read_bytes()
    new_key = m.dir / "new.key"
    assert sfs("keygen", new_key).returncode == 0
    outcomes = []
    for n in range(1, 400):
        rel.restore_snapshot(m, start)
        env = dict(os.environ)
        env.update(rel.shim_env(m.store, die_at=n))
        r = rel.subprocess.run([str(rel.BIN), "rekey", str(m.store), "--key-file",
                                str(m.key), "--new-key-file", str(new_key)],
                               capture_output=True, text=True, env=env)
        ok = []
        for label, key in (("old", m.key), ("new", new_key)):
            if mount_env(m, key_file=key).returncode == 0:
                ok.append(label)
                for name, v in names.items():
                    assert read_file(m.p(name)) == v, (n, label, name)
                unmount_quiet(m)
        assert len(ok) == 1, f"point {n}: opens with {ok}"
        assert check_store(m, key_file=m.key if ok == ["old"] else new_key) \
            .returncode == 0, f"point {n}"
        if r.returncode == 0:
            assert ok == ["new"]
            break
        assert r.returncode == rel.SHIM_STATUS, (n, r.returncode, r.stderr)
        outcomes.append(ok[0])
    else:
        pytest.fail("rekey never completed")
    assert outcomes == sorted(outcomes, key=lambda x: x != "old"), outcomes


# ================================================================ T1

def test_t1_every_byte_of_a_record(mounted):
    """Every byte of a sealed version record flipped (each in its own
    secret's record): every one fails closed, and check counts them all."""
    m = mounted
    value = b"a value of some thirty bytes.."
    write_file(m.p("probe"), value)
    m.unmount()
    n = len(get_record(m.store, version_key(m.store, "probe")[0]))
    m.mount()
    for off in range(n):
        write_file(m.p(f"b{off}"), value)
    m.unmount()
    changes, vids = {}, {}
    for off in range(n):
        key, vid = version_key(m.store, f"b{off}")
        rec = get_record(m.store, key)
        assert len(rec) == n
        changes[key] = flip(rec, off, 0xFF)
        vids[off] = vid
    put_records(m.store, changes)
    m.mount()
    log_from = len(m.read_log())
    for off in range(n):
        rel.assert_fails_closed(m, f"b{off}", vids[off], log_from)
    assert read_file(m.p("probe")) == value
    m.unmount()
    rel.check_reports(m, n)


# ================================================================ T7

def test_t7_no_nonce_or_data_key_reuse_over_3000_versions(mounted):
    """3,000 versions (the same value over and over, alternating with
    another so each write is a version): no value nonce, data-key nonce or
    wrapped data key repeats, and equal plaintexts never give equal
    ciphertexts."""
    m = mounted
    same, other = b"S" * 64, b"O" * 64
    for i in range(1500):
        name = f"s{i % 30}"
        write_file(m.p(name), same)
        write_file(m.p(name), other)
    m.unmount()
    recs = [v for k, v in records(m.store).items() if k.startswith("ver/")]
    assert len(recs) >= 30 * 100  # 100 versions kept per secret
    for part in ("value_nonce", "dek_nonce", "wrapped_dek", "value_ct"):
        seen = [field(r, parse_version(r), part) for r in recs]
        assert len(set(seen)) == len(seen), f"{part} repeats"


# ================================================================ T16

def damage_cases(m, intact, cases, damage):
    """For each case: damage the store, mount; the mount is refused with
    the file untouched, or it mounts and every secret reads its value or
    fails with EIO (never another value, never silently gone). The bytes
    put back open with everything."""
    original = m.store.read_bytes()
    m.mount()
    expected = {f"s{i}": read_file(m.p(f"s{i}")) for i in range(5)}
    m.unmount()
    outcomes = {"refused": 0, "mounted": 0}
    bad = []
    for case in cases:
        damage(case)
        before = sha(m.store)
        r = mount_env(m)
        if r.returncode != 0:
            assert r.returncode == 1, r.stderr
            outcomes["refused"] += 1
            if sha(m.store) != before:
                bad.append(f"{case}: refused, but the store was rewritten")
        else:
            outcomes["mounted"] += 1
            try:
                for k, v in expected.items():
                    try:
                        got = read_file(m.p(k))
                    except OSError as e:
                        if e.errno != errno.EIO:
                            bad.append(f"{case}: mounted, {k}: {e.strerror}")
                        continue
                    if got != v:
                        bad.append(f"{case}: {k} reads another value")
            finally:
                unmount_quiet(m)
        m.store.write_bytes(original)
    intact()
    print(outcomes)
    assert bad == [], "\n".join(bad)


def test_t16_random_truncations(populated):
    """60 truncations at random offsets, most of them inside the records."""
    m, intact = populated
    end = rel.records_end(m.store)
    size = m.store.stat().st_size
    rng = random.Random(secrets.randbits(32))
    cuts = [rng.randrange(end + 4096) for _ in range(45)]
    cuts += [rng.randrange(size) for _ in range(15)]
    damage_cases(m, intact, cuts, lambda cut: os.truncate(m.store, cut))


def test_t16_random_zeroed_pages(populated):
    """40 zeroed 4 KiB pages where the hash table and the records are."""
    m, intact = populated
    end = rel.records_end(m.store)
    rng = random.Random(secrets.randbits(32))
    pages = sorted({rng.randrange(end // 4096 + 1) * 4096 for _ in range(40)})

    def zero(off):
        with open(m.store, "r+b") as f:
            f.seek(off)
            f.write(bytes(4096))
    damage_cases(m, intact, pages, zero)


# ================================================================ T23

@pytest.mark.parametrize("round_", range(3))
def test_t23_more_writers_and_readers(mounted, round_):
    """T23 at a larger scale: 8 writers of 12 values up to the size limit,
    6 readers."""
    rel.race_on_one_secret(mounted, b"FIRST", writers=8, writes_each=12,
                           readers=6, max_len=MAX_VALUE - 20, join_s=300)


# ================================================================ passwd/rekey

@pytest.mark.parametrize("verb", ["passwd", "rekey"])
def test_passwd_rekey_100_random_kills(mounted, verb):
    m = mounted
    write_file(m.p("s"), b"the value")
    m.unmount()
    results = rel.kill_change_randomly(m, verb, 100, secrets.randbits(30))
    print(results)
    assert results["old"] and results["new"], results


def test_passwd_to_passphrase_random_kills(mounted):
    """passwd from a key file to a passphrase (Argon2id, slower) and back,
    killed at random moments: old or new, never neither."""
    m = mounted
    write_file(m.p("s"), b"the value")
    m.unmount()
    rng = random.Random(secrets.randbits(30))
    cur = ("key_file", m.key)
    for i in range(30):
        if cur[0] == "key_file":
            nxt = ("passphrase_file", m.dir / f"p{i}")
            write_file(nxt[1], f"passphrase number {i}\n")
            new_opt = "--new-passphrase-file"
        else:
            nxt = ("key_file", m.dir / f"k{i}.key")
            assert sfs("keygen", nxt[1]).returncode == 0
            new_opt = "--new-key-file"
        old_opt = "--key-file" if cur[0] == "key_file" else "--passphrase-file"
        p = rel.subprocess.Popen([str(rel.BIN), "passwd", str(m.store), old_opt,
                                  str(cur[1]), new_opt, str(nxt[1])],
                                 stdout=rel.subprocess.DEVNULL,
                                 stderr=rel.subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 1.0))
        p.kill()
        p.wait(30)
        got = rel.opens_with(m, [("old", {cur[0]: cur[1]}), ("new", {nxt[0]: nxt[1]})])
        assert len(got) == 1, f"round {i}: opens with {got}"
        if got == ["new"]:
            cur = nxt
    assert_sound(m, **{cur[0]: cur[1]})


# ================================================================ T14

def test_t14_fill_and_free_three_times(tiny_fs):
    m, tiny = tiny_fs("16m")
    m.mount()
    pid = m.pid
    write_file(m.p("keep"), b"kept value")
    all_stored = {}
    for round_ in range(3):
        filler, stored, (name, value, err) = rel.fill_up(m, tiny)
        assert err.errno in (errno.ENOSPC, errno.EIO), err
        assert m.pid == pid
        for k, v in stored.items():
            all_stored[f"{k}"] = v
        filler.unlink()
        write_file(m.p(name), value)
        all_stored[name] = value
        for k, v in all_stored.items():
            assert read_file(m.p(k)) == v
        # next round writes new names past the ones stored so far
        for k in list(all_stored):
            if k.startswith("fill"):
                os.rename(m.p(k), m.p(f"r{round_}-{k}"))
                all_stored[f"r{round_}-{k}"] = all_stored.pop(k)
    assert read_file(m.p("keep")) == b"kept value"
    m.unmount()
    assert_sound(m)


# ================================================================ hardening

@pytest.mark.parametrize("round_", range(3))
def test_many_open_handles_repeated(mounted, round_):
    rel.test_many_open_handles_defined_errors_no_crash(mounted)


def test_no_values_in_daemon_memory_after_long_mixed_load(mounted):
    """Thousands of values written, overwritten, read, renamed, deleted by
    several threads; once every handle is closed none of them is anywhere
    in the daemon's memory. Every value starts with one prefix that no name
    contains, so one search finds any of them."""
    m = mounted
    prefix = b"SFSLEAK" + secrets.token_hex(4).encode()
    errors = []

    def work(t):
        rng = random.Random(t)
        try:
            for i in range(300):
                name = m.p(f"t{t}-{rng.randrange(8)}")
                op = rng.random()
                if op < 0.6:
                    v = prefix + os.urandom(rng.randint(1, 4000)).hex().encode()
                    write_file(name, v)
                elif op < 0.85:
                    try:
                        read_file(name)
                    except FileNotFoundError:
                        pass
                elif op < 0.95:
                    try:
                        os.unlink(name)
                    except FileNotFoundError:
                        pass
                else:
                    try:
                        os.rename(name, m.p(f"t{t}-{rng.randrange(8)}"))
                    except FileNotFoundError:
                        pass
        except OSError as e:
            errors.append(e)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    assert errors == []
    for name in os.listdir(m.mnt):
        for vid in m.versions(name):
            read_file(m.mnt / ".versions" / name / vid)
    time.sleep(0.3)
    hits = scan_memory(m.pid, [prefix])[prefix]
    assert hits == [], f"{len(hits)} copies of values in the daemon's memory: {hits[:5]}"
