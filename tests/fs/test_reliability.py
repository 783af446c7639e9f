"""Reliability and hardening: tampered, swapped and truncated records (T1,
T2, T5), refused unlocks (T6), fresh nonces and data keys (T7), kill -9
under load (T11, short), death at every write and sync point of one commit
(T12), a full disk (T14), a damaged store never reinitialised (T16, T16b),
parallel writers (T23), size limits (T24), the daemon's memory, many open
handles, and interrupted passwd/rekey.

The numbers are those of shared/reference/perf-reliability.md, section (b).
Longer runs of the same tests are in tests/stress (make stress).
"""

import errno
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (BIN, MAX_VALUE, daemon_pids, expect_errno, force_unmount,
                      is_mounted, read_file, run, sfs, wait_gone, write_file)
from relhelpers import (ABSENT, SHIM_STATUS, Model, all_version_keys,
                        assert_sound, check_store, field, flip, get_record,
                        locked_ranges, mount_env, open_store, parse_version,
                        put_records, race_on_one_secret, read_or_absent, record_body, records,
                        run_load_and_kill, scan_memory, sha, shim_env,
                        trace_points, unmount_quiet, verify_after_crash,
                        version_key, wait_store_free)


def token(prefix="V"):
    return f"{prefix}-{secrets.token_hex(12)}".encode()


def log_since(m, offset):
    return m.read_log()[offset:].decode(errors="replace")


def assert_fails_closed(m, name, vid, log_from):
    """Reading name (its current version vid) fails with EIO by the name
    and through .versions, and a log line names the secret and version."""
    expect_errno(errno.EIO, read_file, m.p(name))
    expect_errno(errno.EIO, read_file, m.mnt / ".versions" / name / vid)
    lines = [l for l in log_since(m, log_from).splitlines()
             if name in l and vid in l]
    assert lines, f"no log line names {name} version {vid}:\n" + \
        log_since(m, log_from)


def check_reports(m, bad):
    r = check_store(m)
    assert r.returncode == 1, f"check did not report damage: {r.stdout}{r.stderr}"
    assert f"{bad} versions do not open" in r.stdout, r.stdout + r.stderr
    return r


# ================================================================ T1, T5

FLIP_FIELDS = ["magic", "type", "key_id_len", "key_id", "dek_len", "dek_nonce",
               "dek_ct", "dek_tag", "value_len", "value_nonce", "value_ct",
               "value_tag"]


def test_t1_t5_flipped_and_truncated_records_fail_closed(mounted):
    """T1: a flipped bit in each part of a sealed version record; T5: the
    record truncated (tag dropped, half of it, one byte, empty) or zeroed.
    Each fails closed: EIO by name and by .versions, a log line names the
    secret and version, the older version and every other secret still
    read, the daemon keeps running; check reports every one (exit 1)."""
    m = mounted
    damage = {}   # victim name -> function(record) -> new record
    for f in FLIP_FIELDS:
        damage[f"flip-{f}"] = (lambda rec, f=f: flip(
            rec, parse_version(rec)[f][0] + parse_version(rec)[f][1] // 2))
    damage["trunc-no-tag"] = lambda rec: rec[:-16]
    damage["trunc-half"] = lambda rec: rec[:len(rec) // 2]
    damage["trunc-one-byte"] = lambda rec: rec[:1]
    damage["trunc-empty"] = lambda rec: b""
    damage["zeroed"] = lambda rec: bytes(len(rec))
    damage["one-extra-byte"] = lambda rec: rec + b"\0"
    values = {}
    for name in list(damage) + ["bystander-1", "bystander-2"]:
        values[name] = (token("OLD"), token("CUR") + os.urandom(200).hex().encode())
        for v in values[name]:
            write_file(m.p(name), v)
    m.unmount()
    changes, vids = {}, {}
    for name, fn in damage.items():
        key, vid = version_key(m.store, name)
        rec = get_record(m.store, key)
        new = fn(rec)
        assert new != rec
        changes[key] = new
        vids[name] = vid
    put_records(m.store, changes)
    m.mount()
    pid = m.pid
    log_from = len(m.read_log())
    for name in damage:
        assert_fails_closed(m, name, vids[name], log_from)
        # again: consistently
        expect_errno(errno.EIO, read_file, m.p(name))
        old_vid = [v for v in m.versions(name) if v != vids[name]]
        assert len(old_vid) == 1
        assert read_file(m.mnt / ".versions" / name / old_vid[0]) == values[name][0]
    for name in ("bystander-1", "bystander-2"):
        assert read_file(m.p(name)) == values[name][1]
    write_file(m.p("bystander-1"), b"still writable")
    assert read_file(m.p("bystander-1")) == b"still writable"
    assert m.pid == pid, "the daemon restarted or died"
    m.unmount()
    check_reports(m, len(damage))


def test_t1_every_byte_of_one_field_sample(mounted):
    """T1, sampled: every byte of the value's nonce and tag and a sample of
    the wrapped data key and ciphertext, each in its own secret (one
    record each), all fail closed in one mount."""
    m = mounted
    write_file(m.p("probe"), b"x")
    m.unmount()
    rec = get_record(m.store, version_key(m.store, "probe")[0])
    f = parse_version(rec)
    offsets = set()
    for name in ("value_nonce", "value_tag"):
        off, n = f[name]
        offsets.update(range(off, off + n))
    for name in ("dek_nonce", "dek_ct", "dek_tag", "value_ct", "key_id"):
        off, n = f[name]
        offsets.update(random.Random(n).sample(range(off, off + n), min(4, n)))
    offsets = sorted(offsets)
    m.mount()
    for off in offsets:
        write_file(m.p(f"b{off}"), b"value of the same length as probe")
    m.unmount()
    changes, vids = {}, {}
    for off in offsets:
        key, vid = version_key(m.store, f"b{off}")
        changes[key] = flip(get_record(m.store, key), off, 0xFF)
        vids[off] = vid
    put_records(m.store, changes)
    m.mount()
    log_from = len(m.read_log())
    for off in offsets:
        assert_fails_closed(m, f"b{off}", vids[off], log_from)
    assert read_file(m.p("probe")) == b"x"
    m.unmount()
    check_reports(m, len(offsets))


# ================================================================ T2

def test_t2_records_copied_between_secrets_versions_and_stores(make_mount):
    """T2 (and T3's single-record rollback): a version record copied over
    another secret's version, over another version of the same secret (an
    older ciphertext), and from another store with the same secret name
    and value: each fails closed, and the source still reads."""
    m = make_mount()
    other = make_mount()
    same = b"the same plaintext everywhere"
    write_file(m.p("src"), b"source value")
    write_file(m.p("victim-secret"), b"v1")
    write_file(m.p("victim-secret"), b"v2")
    write_file(m.p("victim-version"), b"old value")
    write_file(m.p("victim-version"), b"new value")
    write_file(m.p("victim-store"), same)
    write_file(other.p("victim-store"), same)
    write_file(m.p("pair-a"), same)
    write_file(m.p("pair-b"), same)
    m.unmount()
    other.unmount()
    src_key, _ = version_key(m.store, "src")
    vs_key, vs_vid = version_key(m.store, "victim-secret")
    (vv_old_key, vv_old), (vv_key, vv_vid) = all_version_keys(m.store, "victim-version")
    st_key, st_vid = version_key(m.store, "victim-store")
    foreign_key, _ = version_key(other.store, "victim-store")
    a_key, a_vid = version_key(m.store, "pair-a")
    b_key, b_vid = version_key(m.store, "pair-b")
    rec = {k: get_record(m.store, k) for k in (src_key, vv_old_key, a_key, b_key)}
    put_records(m.store, {
        vs_key: rec[src_key],                       # another secret's version
        vv_key: rec[vv_old_key],                    # older version, same secret
        st_key: get_record(other.store, foreign_key),  # another store
        a_key: rec[b_key], b_key: rec[a_key],       # swapped, same plaintext
    })
    m.mount()
    log_from = len(m.read_log())
    for name, vid in (("victim-secret", vs_vid), ("victim-version", vv_vid),
                      ("victim-store", st_vid), ("pair-a", a_vid),
                      ("pair-b", b_vid)):
        assert_fails_closed(m, name, vid, log_from)
    assert read_file(m.p("src")) == b"source value"
    assert read_file(m.mnt / ".versions" / "victim-version" / vv_old) == b"old value"
    m.unmount()
    check_reports(m, 5)
    # the other store is untouched by all this
    other.mount()
    assert read_file(other.p("victim-store")) == same


# ================================================================ T6

def one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr!r}"
    return lines[0]


def assert_refused(m, r, before, words):
    assert r.returncode == 1, f"exit {r.returncode}: {r.stderr}"
    line = one_line(r)
    assert re.search(words, line, re.I), line
    assert not is_mounted(m.mnt)
    assert daemon_pids(m.mnt) == []
    assert sha(m.store) == before, "a refused mount changed the store"
    return line


def test_t6_wrong_key_file_refused_store_unchanged(make_mount):
    m = make_mount()
    write_file(m.p("s"), b"value")
    m.unmount()
    wrong = m.dir / "wrong.key"
    assert sfs("keygen", wrong).returncode == 0
    before = sha(m.store)
    r = mount_env(m, key_file=wrong)
    assert_refused(m, r, before, r"wrong key")
    m.mount()
    assert read_file(m.p("s")) == b"value"


def test_t6_wrong_passphrase_refused_store_unchanged(make_mount):
    m = make_mount(passphrase="correct horse battery")
    write_file(m.p("s"), b"value")
    m.unmount()
    wrong = m.dir / "wrong-pass"
    write_file(wrong, "correct horse battery!\n")
    before = sha(m.store)
    r = mount_env(m, passphrase_file=wrong)
    assert_refused(m, r, before, r"wrong passphrase")
    m.mount()
    assert read_file(m.p("s")) == b"value"


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_t6_damaged_master_key_envelope_refused(make_mount, where):
    """A byte of master_key in sfs/header changed (still valid hex): the
    envelope fails authentication, the mount is refused, the store stays as
    it is, and putting the byte back opens it again."""
    m = make_mount()
    write_file(m.p("s"), b"value")
    m.unmount()
    raw = get_record(m.store, "sfs/header")
    hdr = json.loads(record_body(raw))
    mk = hdr["master_key"]
    assert len(mk) == 2 * (12 + 32 + 16)
    pos = {"nonce": 2 * 5, "ciphertext": 2 * 30, "tag": 2 * 50}[where]
    bad = mk[:pos] + ("0" if mk[pos] != "0" else "1") + mk[pos + 1:]
    put_records(m.store, {"sfs/header": raw.replace(mk.encode(), bad.encode())})
    before = sha(m.store)
    r = mount_env(m)
    assert_refused(m, r, before, r"wrong key|damaged|header|unlock")
    r = check_store(m)
    assert r.returncode == 1
    assert sha(m.store) == before
    put_records(m.store, {"sfs/header": raw})
    m.mount()
    assert read_file(m.p("s")) == b"value"


def test_t6_damaged_named_key_fails_closed(make_mount):
    """A byte of a customer key's sealed material (key/<id>) changed: the
    mount is refused in one line with the store unchanged, or it mounts and
    only the secrets under that key fail (EIO), the others read. Putting
    the byte back opens everything."""
    m = make_mount()
    os.setxattr(m.mnt, "user.sm.key.create", b"alias/team")
    write_file(m.p("plain"), b"under the default key")
    write_file(m.p("team"), b"first")
    os.setxattr(m.p("team"), "user.sm.kms_key_id", b"alias/team")
    write_file(m.p("team"), b"under the team key")
    m.unmount()
    recs = records(m.store)
    (kkey, raw), = [(k, v) for k, v in recs.items() if k.startswith("key/")
                    and json.loads(record_body(v)).get("alias") in ("team", "alias/team")]
    sealed = json.loads(record_body(raw))["sealed"]
    bad = sealed[:40] + ("0" if sealed[40] != "0" else "1") + sealed[41:]
    put_records(m.store, {kkey: raw.replace(sealed.encode(), bad.encode())})
    before = sha(m.store)
    r = mount_env(m)
    if r.returncode != 0:
        assert_refused(m, r, before, r"damaged|key|cannot")
    else:
        assert read_file(m.p("plain")) == b"under the default key"
        expect_errno(errno.EIO, read_file, m.p("team"))
        unmount_quiet(m)
    put_records(m.store, {kkey: raw})
    m.mount()
    assert read_file(m.p("plain")) == b"under the default key"
    assert read_file(m.p("team")) == b"under the team key"


# ================================================================ T7

def test_t7_fresh_nonce_ciphertext_and_data_key_every_seal(mounted):
    """The same value written to two secrets, and twice to one secret (with
    another value between, so each write is a version): every record has
    its own value nonce, ciphertext, data-key nonce and wrapped data key;
    over the whole store no nonce or wrapped key repeats."""
    m = mounted
    same = b"identical plaintext " * 8
    write_file(m.p("one"), same)
    write_file(m.p("two"), same)
    write_file(m.p("twice"), same)
    write_file(m.p("twice"), b"something else")
    write_file(m.p("twice"), same)
    for i in range(30):
        write_file(m.p(f"many{i % 3}"), same if i % 2 else b"other %d" % i)
    m.unmount()
    keys = [version_key(m.store, "one")[0], version_key(m.store, "two")[0]]
    tw = all_version_keys(m.store, "twice")
    assert len(tw) == 3
    keys += [tw[0][0], tw[2][0]]
    parts = []
    for k in keys:
        rec = get_record(m.store, k)
        f = parse_version(rec)
        parts.append({n: field(rec, f, n) for n in
                      ("value_nonce", "value_ct", "value_tag", "dek_nonce",
                       "wrapped_dek", "value_len")})
    assert len({p["value_len"] for p in parts}) == 1  # same plaintext size
    for n in ("value_nonce", "value_ct", "value_tag", "dek_nonce", "wrapped_dek"):
        seen = [p[n] for p in parts]
        assert len(set(seen)) == len(seen), f"{n} repeats across equal values"
    allrecs = [v for k, v in records(m.store).items() if k.startswith("ver/")]
    assert len(allrecs) >= 4 + 30
    for n in ("value_nonce", "dek_nonce", "wrapped_dek"):
        seen = [field(r, parse_version(r), n) for r in allrecs]
        assert len(set(seen)) == len(seen), f"{n} repeats in the store"
    assert same not in m.store.read_bytes()


# ================================================================ T11 (short)

def crash_cycles(m, cycles, threads=3, names=4, max_delay=0.6, seed=None,
                 delete_purges=False, churn=0, tolerate_restore=False):
    """T11: cycles of mixed load, kill -9, remount, verify, check. `threads`
    writers on `names` secrets each (15% deletes), plus `churn` writers on
    one secret each that delete every other time."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    groups = [[f"t{t}/s{k}" for k in range(names)] for t in range(threads)]
    groups += [([f"c{t}/x"], 0.5) for t in range(churn)]
    for t in range(threads):
        os.makedirs(m.p(f"t{t}"), exist_ok=True)
    for t in range(churn):
        os.makedirs(m.p(f"c{t}"), exist_ok=True)
    model = Model([n for g in groups
                   for n in (g[0] if isinstance(g, tuple) else g)],
                  delete_purges, tolerate_restore)
    total_ops = 0
    for cycle in range(cycles):
        delay = rng.uniform(0.05, max_delay)
        writers, _ = run_load_and_kill(m, model, groups, cycle, delay,
                                       seed + cycle)
        unexpected = [u for w in writers for u in w.unexpected]
        assert unexpected == [], f"seed {seed} cycle {cycle}: {unexpected}"
        total_ops += sum(w.ops for w in writers)
        m.mount()  # recovers the dead mount and the store
        problems = verify_after_crash(m, model)
        assert problems == [], f"seed {seed} cycle {cycle}: {problems}"
        m.unmount()
        r = check_store(m)
        assert r.returncode == 0, \
            f"seed {seed} cycle {cycle}: check: {r.stdout}{r.stderr}"
        m.mount()
    return total_ops


RESTORE_BUG = ("BUG: creating a deleted name commits its restoration (with the "
               "value that was deleted) at open(O_CREAT), before the new value "
               "is committed at close: a crash (or a failed write) in between "
               "leaves the deleted value live")


def test_t11_kill9_under_load_10_cycles(mounted):
    """T11, short, with the default recovery window: deleted secrets are
    recreated by later writes (three of the writers delete every other
    time, so that a write to a deleted name is often in flight)."""
    ops = crash_cycles(mounted, 10, churn=3)
    assert ops > 0, "no change was acknowledged at all"


def test_t11_kill9_under_load_10_cycles_window0(make_mount):
    """T11, short: deletion purges at once (recovery_window=0)."""
    ops = crash_cycles(make_mount(recovery_window=0), 10, delete_purges=True)
    assert ops > 0, "no change was acknowledged at all"


# ================================================================ T12

def store_snapshot(m):
    return m.store.read_bytes()


def restore_snapshot(m, data):
    with open(m.store, "r+b") as f:
        f.write(data)
        f.truncate(len(data))
        os.fsync(f.fileno())


def run_with_shim(m, action, die_at, nommap, trace):
    """Mounts with the shim set to die at point die_at (0: never) and runs
    action; returns the write/sync points it made (a list of operation
    names, non-empty) if the action completed, False if the daemon died
    (at mount or during the action)."""
    r = mount_env(m, env=shim_env(m.store, die_at=die_at, nommap=nommap,
                                  trace=trace))
    completed = False
    if r.returncode == 0:
        pid = m.pid
        try:
            action(m)
            completed = True
        except OSError as e:
            assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO), e
        if not completed:
            assert wait_gone(pid, 10)
    else:
        assert r.returncode == 1, r.stderr
    if not completed:
        wait_store_free(m.store)
        assert "DIE" in trace.read_text(), f"point {die_at}: failed without dying"
    else:
        died = trace.exists() and "DIE" in trace.read_text()
        assert not died, f"point {die_at}: the action returned 0 but the daemon died"
        # the points of the action alone (later reads and the unmount may
        # store access dates: another commit)
        completed = [op for _, op in trace_points(trace)]
    return completed


def choose_points(ops, most):
    """All points when there are at most `most`; else every one that is not
    a pwrite, the pwrites next to them, the first and last ten, and a
    random sample of the rest (tdb fills a grown area with many writes)."""
    total = len(ops)
    if total <= most:
        return list(range(1, total + 1))
    keep = set(range(1, 11)) | set(range(total - 9, total + 1))
    for i, op in enumerate(ops, 1):
        if op != "pwrite":
            keep.update(range(max(1, i - 2), min(total, i + 2) + 1))
    rest = sorted(set(range(1, total + 1)) - keep)
    keep.update(random.sample(rest, max(0, min(len(rest), most - len(keep)))))
    return sorted(keep)


def die_at_every_point(m, action, check, nommap=False, most=400):
    """Counts the write and sync points of `action(m)` (one commit) in a
    calibration run, then, from the same starting bytes each time, runs it
    in a daemon that dies at point 1, 2, ... (all of them, or `most` chosen
    by choose_points). After each death: remount (tdb recovers without
    manual steps), `check(m, completed=False)`, unmount, secretsfs check
    sound. Returns the number of points."""
    unmount_quiet(m)
    start = store_snapshot(m)
    trace = m.dir / "trace-calibration"
    ops = run_with_shim(m, action, 0, nommap, trace)
    assert ops, "the commit made no write or sync at all"
    check(m, completed=True)
    unmount_quiet(m)
    assert_sound(m)
    for n in choose_points(ops, most):
        restore_snapshot(m, start)
        trace = m.dir / f"trace-{n}"
        done = run_with_shim(m, action, n, nommap, trace)
        if done:
            # The pages a commit touches depend on where its (random) keys
            # hash, so a run can make a point or two fewer than calibrated.
            assert n > len(ops) - 4, \
                f"point {n} of {len(ops)}: completed after {len(done)} points"
            check(m, completed=True)
            unmount_quiet(m)
            assert_sound(m)
            continue
        r = mount_env(m)  # no shim: tdb recovers on open
        assert r.returncode == 0, f"point {n} ({ops[n - 1]}): remount failed: {r.stderr}"
        try:
            check(m, completed=False)
        except AssertionError as e:
            raise AssertionError(f"point {n} of {len(ops)} ({ops[n - 1]}): {e}") from e
        unmount_quiet(m)
        r = check_store(m)
        assert r.returncode == 0, f"point {n} ({ops[n - 1]}): check: {r.stdout}{r.stderr}"
    return len(ops)


def t12_setup(m):
    write_file(m.p("s"), b"old value")
    write_file(m.p("gone"), b"to be deleted")
    write_file(m.p("other"), b"other value")
    write_file(m.p("dead"), b"deleted value")
    os.unlink(m.p("dead"))


def t12_invariants(m):
    assert read_file(m.p("other")) == b"other value"
    assert read_file(m.mnt / ".versions" / "other" / m.versions("other")[0]) \
        == b"other value"


def t12_update(m):
    write_file(m.p("s"), b"new value")


def t12_update_check(m, completed):
    got = read_file(m.p("s"))
    assert got in (b"old value", b"new value"), got
    if completed:
        assert got == b"new value"
    assert len(m.versions("s")) == (1 if got == b"old value" else 2)
    t12_invariants(m)


def t12_create(m):
    write_file(m.p("fresh"), b"fresh value")


def t12_create_check(m, completed):
    got = read_or_absent(m.p("fresh"))
    assert got in (ABSENT, b"fresh value"), got
    if completed:
        assert got == b"fresh value"
    if got is not ABSENT:
        assert len(m.versions("fresh")) == 1
    assert read_file(m.p("s")) == b"old value"
    t12_invariants(m)


def t12_delete(m):
    os.unlink(m.p("gone"))


def t12_delete_check(m, completed):
    got = read_or_absent(m.p("gone"))
    assert got in (ABSENT, b"to be deleted"), got
    if completed:
        assert got is ABSENT
    if got is ABSENT:
        assert "gone" in os.listdir(m.mnt / ".deleted")
    t12_invariants(m)


def t12_rename(m):
    os.rename(m.p("s"), m.p("renamed"))


def t12_rename_check(m, completed):
    a, b = read_or_absent(m.p("s")), read_or_absent(m.p("renamed"))
    assert (a, b) in ((b"old value", ABSENT), (ABSENT, b"old value")), (a, b)
    if completed:
        assert b == b"old value"
    t12_invariants(m)


def t12_recreate(m):
    write_file(m.p("dead"), b"reborn value")


def t12_recreate_check(m, completed):
    """`rm dead` was acknowledged; `echo reborn > dead` was in flight: dead
    is still deleted, or holds the new value, never the deleted one."""
    got = read_or_absent(m.p("dead"))
    assert got in (ABSENT, b"reborn value"), \
        f"after death in `echo reborn > dead`, dead reads {got!r}"
    if completed:
        assert got == b"reborn value"
        assert sorted(read_file(m.mnt / ".versions" / "dead" / v)
                      for v in m.versions("dead")) == [b"deleted value",
                                                       b"reborn value"]
    if got is ABSENT:
        assert "dead" in os.listdir(m.mnt / ".deleted")
    t12_invariants(m)


T12_ACTIONS = {
    "update": (t12_update, t12_update_check),
    "create": (t12_create, t12_create_check),
    "delete": (t12_delete, t12_delete_check),
    "rename": (t12_rename, t12_rename_check),
    "recreate-deleted": (t12_recreate, t12_recreate_check),
}

T12_PARAMS = sorted(T12_ACTIONS)


@pytest.mark.parametrize("nommap", [False, True], ids=["mmap", "nommap"])
@pytest.mark.parametrize("what", T12_PARAMS)
def test_t12_death_at_every_write_and_sync_point(mounted, what, nommap):
    """T12: the daemon dies at each write or sync point of one commit in
    turn (with tdb's mmap: every fdatasync, msync, pwrite, ftruncate and
    fallocate; without it (nommap): also every page written); the next
    mount recovers, the secret is old or new, check is sound."""
    m = mounted
    t12_setup(m)
    action, check = T12_ACTIONS[what]
    points = die_at_every_point(m, action, check, nommap=nommap)
    assert points >= 4, f"only {points} write/sync points in a commit"


def test_t12_growing_commit_rolled_back_to_its_old_size(mounted):
    """A commit that grew the file dies after its rollback data is durable:
    check (read-only) says so instead of "damaged"; the next mount rolls it
    back and cuts the growth off (tdb alone leaves it, and its stray records
    fail tdb's structure check); the value is the old one; check is sound."""
    m = mounted
    write_file(m.p("s"), b"old value")
    unmount_quiet(m)
    start = store_snapshot(m)

    def grow(m):
        write_file(m.p("big"), b"B" * MAX_VALUE)

    ops = run_with_shim(m, grow, 0, False, m.dir / "trace-calibration")
    assert ops
    unmount_quiet(m)
    seen = 0
    for n in range(len(ops), 0, -1):
        restore_snapshot(m, start)
        if run_with_shim(m, grow, n, False, m.dir / f"trace-{n}"):
            unmount_quiet(m)
            continue
        r = check_store(m)
        grown = m.store.stat().st_size
        if "interrupted" not in r.stderr or grown <= len(start):
            mount_env(m)
            unmount_quiet(m)
            continue
        seen += 1
        assert r.returncode == 1, r.stderr
        assert "damaged" not in r.stderr, r.stderr
        r = mount_env(m)
        assert r.returncode == 0, r.stderr
        assert read_or_absent(m.p("big")) is ABSENT
        assert read_file(m.p("s")) == b"old value"
        unmount_quiet(m)
        assert m.store.stat().st_size < grown
        r = check_store(m)
        assert r.returncode == 0, r.stdout + r.stderr
        break
    assert seen, "no death point left a grown file's rollback pending"


def recovery_area(path):
    """(offset, rec_len, magic) of the recovery area tdb's header names in
    the file at path, or None when it names none."""
    b = Path(path).read_bytes()
    head = int.from_bytes(b[44:48], "little")
    if head == 0:
        return None
    rec = b[head:head + 24]
    return (head, int.from_bytes(rec[4:8], "little") if len(rec) == 24 else None,
            int.from_bytes(rec[20:24], "little") if len(rec) == 24 else None)


def name_unwritten_recovery_area(store, fill):
    """What a commit killed between growing the file for a new recovery area
    and writing it leaves: the file grown by fill bytes (zeros, as
    posix_fallocate leaves them, or tdb's 0x42 padding), the header naming
    the new space as its recovery area."""
    with open(store, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        f.write(fill * (256 * 1024))
        f.seek(44)
        f.write(end.to_bytes(4, "little"))
        os.fsync(f.fileno())
    return end


@pytest.mark.parametrize("fill", [b"\0", b"\x42"], ids=["zeros", "padding"])
def test_t12_unwritten_recovery_area_survives_the_next_commits(mounted, fill):
    """A header naming a recovery area that a killed commit never wrote
    passes tdb's check, but tdb's next commit frees that "area" as a record
    of length 0 and the store after it fails the check (seen as "opens with
    neither key" after a killed passwd). The mount clears the name and
    repacks the dead space: commits after it, finished or killed, leave a
    sound store."""
    m = mounted
    write_file(m.p("s"), b"old value")
    unmount_quiet(m)
    end = name_unwritten_recovery_area(m.store, fill)
    log_from = len(m.read_log())
    r = mount_env(m)
    assert r.returncode == 0, r.stderr
    assert "never wrote; cleared" in log_since(m, log_from)
    assert recovery_area(m.store) is None or recovery_area(m.store)[0] != end
    write_file(m.p("big"), b"B" * MAX_VALUE)
    write_file(m.p("s"), b"new value")
    unmount_quiet(m)
    r = run(["tdbtool", m.store, "check"])
    assert "integrity is OK" in r.stdout, r.stdout + r.stderr
    m.mount()
    assert read_file(m.p("s")) == b"new value"
    assert read_file(m.p("big")) == b"B" * MAX_VALUE
    unmount_quiet(m)
    assert check_store(m).returncode == 0


def test_t12_written_recovery_area_left_alone(mounted):
    """An idle store's recovery area (written once, its magic cleared after
    the commit) is tdb's own, and the mount leaves the header as it is."""
    m = mounted
    write_file(m.p("s"), b"value")
    unmount_quiet(m)
    area = recovery_area(m.store)
    assert area and area[1] > 0
    log_from = len(m.read_log())
    m.mount()
    assert "cleared" not in log_since(m, log_from)
    assert "repacking" not in log_since(m, log_from)
    unmount_quiet(m)
    assert recovery_area(m.store)[0] == area[0]


# ================================================================ T14

@pytest.fixture
def tiny_fs(make_mount):
    """A 3 MiB tmpfs holding a store: yields a factory returning
    (Mount, tmpfs dir); unmounts everything at teardown."""
    made = []

    def factory(size="3m"):
        m = make_mount(mount=False)
        tiny = m.dir / "tiny"
        tiny.mkdir()
        r = run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                 "tmpfs", tiny])
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {r.stderr}")
        made.append((m, tiny))
        shutil.copyfile(m.store, tiny / "store.tdb")
        os.chmod(tiny / "store.tdb", 0o600)
        m.store = tiny / "store.tdb"
        return m, tiny

    yield factory
    for m, tiny in made:
        pids = daemon_pids(m.mnt)
        force_unmount(m.mnt)
        for pid in pids:
            wait_gone(pid, 10)
        if run(["umount", tiny]).returncode != 0:
            run(["umount", "-l", tiny])


def fill_up(m, tiny, leave=700 * 1024, value_size=2000, limit=3000):
    """Leaves `leave` bytes free on the tmpfs (a file of someone else's
    takes the rest), then writes new secrets until a close fails. Returns
    (filler, {name: value} acknowledged, (name, value, OSError))."""
    st = os.statvfs(tiny)
    free = st.f_bavail * st.f_frsize
    filler = tiny / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    stored = {}
    for i in range(limit):
        v = os.urandom(value_size)
        try:
            write_file(m.p(f"fill{i}"), v)
        except OSError as e:
            return filler, stored, (f"fill{i}", v, e)
        stored[f"fill{i}"] = v
    pytest.fail(f"the tmpfs never filled up ({limit} writes)")


def test_t14_full_disk_earlier_versions_intact_and_recovers(tiny_fs):
    """T14: the store on a tmpfs that fills up: the close that cannot be
    stored fails (ENOSPC, or EIO as the reference allows) with nothing
    committed, the daemon lives, every earlier version is intact, and once
    space is freed (another file on the tmpfs deleted) writes work again."""
    m, tiny = tiny_fs("16m")
    m.mount()
    pid = m.pid
    kept = {}
    for i in range(3):
        for j in range(2):
            kept[f"keep{i}"] = token(f"K{i}{j}") + os.urandom(3000)
            write_file(m.p(f"keep{i}"), kept[f"keep{i}"])
    filler, stored, (name, value, err) = fill_up(m, tiny)
    assert err.errno in (errno.ENOSPC, errno.EIO), f"full disk: {err!r}"
    assert stored, "not one write fitted before the disk was full"
    assert m.pid == pid, "the daemon died on a full disk"
    # a large update needs the file to grow: refused too, old value kept
    try:
        write_file(m.p("keep0"), os.urandom(MAX_VALUE))
        grew = True
    except OSError as e:
        assert e.errno in (errno.ENOSPC, errno.EIO), e
        grew = False
    if grew:  # it found room inside the file after all
        kept["keep0"] = read_file(m.p("keep0"))
    for k, v in kept.items():
        assert read_file(m.p(k)) == v
        assert len(m.versions(k)) == 2 + (k == "keep0" and grew)
    for k, v in stored.items():
        assert read_file(m.p(k)) == v
    assert read_or_absent(m.p(name)) in (ABSENT, b"")
    if read_or_absent(m.p(name)) is not ABSENT:
        assert m.versions(name) == []
    # free the space: writes work again, the big one too
    filler.unlink()
    write_file(m.p(name), value)
    assert read_file(m.p(name)) == value
    big = os.urandom(MAX_VALUE)
    write_file(m.p("keep0"), big)
    assert read_file(m.p("keep0")) == big
    assert m.pid == pid
    m.unmount()
    assert_sound(m)
    m.mount()
    assert read_file(m.p(name)) == value
    for k, v in stored.items():
        assert read_file(m.p(k)) == v


def test_t14_full_disk_is_enospc_at_close(tiny_fs):
    """The close whose commit does not fit fails with ENOSPC, as
    store_commit intends ("ENOSPC shows before any change")."""
    m, tiny = tiny_fs("16m")
    m.mount()
    write_file(m.p("keep"), b"kept")
    _, stored, (name, value, err) = fill_up(m, tiny)
    assert err.errno == errno.ENOSPC, f"expected ENOSPC, got {err!r}"


# ================================================================ T16, T16b

def damaged_store_refused(m, damage, restore, words=r"damaged|not a secretsfs|format|header"):
    """damage() the unmounted store; mount, check, backup, passwd, rekey and
    init are refused and change nothing; restore() brings the secrets back."""
    damage()
    before = sha(m.store)
    size = m.store.stat().st_size
    r = mount_env(m)
    line = assert_refused(m, r, before, words)
    new_key = m.dir / "new.key"
    if not new_key.exists():
        assert sfs("keygen", new_key).returncode == 0
    for args in (["check", m.store, "--key-file", m.key],
                 ["passwd", m.store, "--key-file", m.key, "--new-key-file", new_key],
                 ["rekey", m.store, "--key-file", m.key],
                 ["init", m.store, "--key-file", m.key]):
        r = sfs(*args)
        assert r.returncode != 0, f"{args[0]} accepted a damaged store"
        assert sha(m.store) == before, f"{args[0]} changed a damaged store"
    copy = m.dir / "backup-of-damaged.tdb"
    sfs("backup", m.store, copy)
    assert sha(m.store) == before, "backup changed a damaged store"
    assert m.store.stat().st_size == size
    restore()
    return line


@pytest.fixture
def populated(make_mount):
    m = make_mount()
    vals = {f"s{i}": token(f"S{i}") for i in range(5)}
    for k, v in vals.items():
        write_file(m.p(k), v)
    m.unmount()

    def intact():
        m.mount()
        for k, v in vals.items():
            assert read_file(m.p(k)) == v
        m.unmount()
        assert_sound(m)
    return m, intact


def test_t16b_tdb_magic_overwritten_never_reinitialised(populated):
    m, intact = populated
    original = m.store.read_bytes()
    assert original.startswith(b"TDB file\n")

    def damage():
        with open(m.store, "r+b") as f:
            f.write(b"XDB fi")

    def restore():
        with open(m.store, "r+b") as f:
            f.write(original[:6])
    damaged_store_refused(m, damage, restore)
    assert m.store.read_bytes() == original
    intact()


FORMAT_BUG = ("BUG: sfs/format is read with strtol and no end check, so any "
              "text that starts with a known version (\"2x\", \"2.5\") opens "
              "as that version")

FORMATS = {
    "next": lambda f: b"%d" % (int(f) + 1),
    "zero": lambda f: b"0",
    "empty": lambda f: b"",
    "word": lambda f: b"one",
    "repeated": lambda f: f + f,
    "negative": lambda f: b"-" + f,
    "suffix": lambda f: f + b"x",
    "decimal": lambda f: f + b".5",
}


@pytest.mark.parametrize("kind", list(FORMATS))
def test_t16_unknown_format_refused(populated, kind):
    """sfs/format changed to a version this build does not know: refused,
    nothing rewritten (no migration, no reinitialisation); the original
    record put back opens with every secret."""
    m, intact = populated
    orig = get_record(m.store, "sfs/format")
    assert orig and orig.isdigit(), orig
    bad = FORMATS[kind](orig)
    damaged_store_refused(
        m, lambda: put_records(m.store, {"sfs/format": bad}),
        lambda: put_records(m.store, {"sfs/format": orig}),
        words=r"format|damaged|not a secretsfs|header|unlock")
    intact()


def test_t16_missing_format_and_header_refused(populated):
    m, intact = populated
    recs = records(m.store)
    for key in ("sfs/format", "sfs/header"):
        damaged_store_refused(
            m, lambda key=key: put_records(m.store, {key: None}),
            lambda key=key: put_records(m.store, {key: recs[key]}),
            words=r"format|damaged|not a secretsfs|header|unlock")
        intact()


def records_end(path):
    """The offset just past the last live record's bytes (key + data) in
    the file: truncating below it loses a record."""
    data = Path(path).read_bytes()
    end = 0
    for k, v in records(path).items():
        i = data.find(k.encode() + v)
        assert i >= 0, k
        end = max(end, i + len(k) + len(v))
    return end


def test_t16_truncated_store_refused_never_reinitialised(populated):
    """Truncated anywhere below its last record: refused, never
    reinitialised; the same bytes put back open with every secret. Cut
    only past its records, it opens with every secret or is refused."""
    m, intact = populated
    original = m.store.read_bytes()
    end = records_end(m.store)
    cuts = sorted({0, 8, 100, 4096, end // 2, end - 200, end - 1})
    for cut in cuts:
        def damage(cut=cut):
            os.truncate(m.store, cut)

        def restore():
            m.store.write_bytes(original)
        damaged_store_refused(m, damage, restore,
                              words=r"damaged|not a secretsfs|structure|format|header")
        assert m.store.read_bytes() == original
    intact()
    # past the records: either refused, or every secret is there
    for cut in sorted({end, end + 100, (end + len(original)) // 2}):
        if cut >= len(original):
            continue
        os.truncate(m.store, cut)
        r = mount_env(m)
        if r.returncode == 0:
            m.unmount()
        m.store.write_bytes(original)
        if r.returncode == 0:
            intact()


REPACK_BUG = ("BUG: store_open answers a failed tdb_check with tdb_repack, which "
              "keeps only the records still reachable: a damaged hash table "
              "makes the mount drop secrets for good (exit 0, one warning), or "
              "empties the store down to sfs/format before refusing it")


def hash_table_span(path):
    """(start, end) of the tdb hash table: after the 168-byte header and
    the 4-byte free-list head, hash_size 4-byte bucket heads."""
    with open_store(path) as db:
        hash_size = db.hash_size
    start = 168 + 4
    return start, start + 4 * hash_size


def test_t16_damaged_hash_table_refused_never_repacked_away(populated):
    """Pages of the tdb hash table zeroed (one page at a time, then the
    whole table): each time the mount is refused with the file untouched,
    or it mounts and every secret still reads its value. Never: secrets
    silently gone, or the store rewritten without them."""
    m, intact = populated
    original = m.store.read_bytes()
    nrec = len(records(m.store))
    start, end = hash_table_span(m.store)
    first = (start // 4096 + 1) * 4096
    cases = [(off, off + 4096) for off in range(first, end - 4096, 4096)]
    cases.append((start, end))
    bad = []
    for a, b in cases:
        data = bytearray(original)
        data[a:b] = bytes(b - a)
        m.store.write_bytes(bytes(data))
        before = sha(m.store)
        r = mount_env(m)
        if r.returncode != 0:
            if sha(m.store) != before:
                try:
                    left = len(records(m.store))
                except Exception:  # noqa: BLE001
                    left = "?"
                bad.append(f"zeroed {a}..{b}: refused ({r.stderr.strip()}), but the "
                           f"store was rewritten: {left} of {nrec} records left")
        else:
            lost = []
            for i in range(5):
                try:
                    read_file(m.p(f"s{i}"))
                except OSError as e:
                    lost.append(f"s{i}: {e.strerror}")
            unmount_quiet(m)
            if lost:
                bad.append(f"zeroed {a}..{b}: mounted (exit 0) without {lost}; "
                           f"{len(records(m.store))} of {nrec} records left")
        m.store.write_bytes(original)
    intact()
    assert bad == [], "\n".join(bad)


# ================================================================ T23

def test_t23_parallel_writers_and_readers_on_one_secret(mounted):
    """Several threads write distinct values to one secret while others
    read it: every successful close is exactly one version, readers only
    ever see whole written values, and the history holds each acknowledged
    value once."""
    race_on_one_secret(mounted, token("FIRST"), writers=4, writes_each=15,
                       readers=3, max_len=18000)


# ================================================================ T24

def test_t24_size_limits(mounted):
    m = mounted
    # values: 65,536 bytes accepted, 65,537 refused (write or truncate), no
    # partial version
    big = os.urandom(MAX_VALUE)
    write_file(m.p("v"), big)
    assert read_file(m.p("v")) == big
    ids = m.versions("v")
    expect_errno(errno.EFBIG, write_file, m.p("v"), os.urandom(MAX_VALUE + 1))
    assert m.versions("v") == ids and read_file(m.p("v")) == big
    fd = os.open(m.p("v"), os.O_WRONLY)
    try:
        os.write(fd, b"x" * 10)
        expect_errno(errno.EFBIG, os.pwrite, fd, b"y", MAX_VALUE)
    finally:
        try:
            os.close(fd)
        except OSError as e:
            assert e.errno == errno.EFBIG, e
    assert m.versions("v") == ids and read_file(m.p("v")) == big
    expect_errno(errno.EFBIG, os.truncate, m.p("v"), MAX_VALUE + 1)
    assert m.versions("v") == ids and read_file(m.p("v")) == big
    # names: 512 bytes accepted, 513 refused
    d = "/".join(["d" * 200, "e" * 200])           # 401 bytes
    os.makedirs(m.p(d))
    ok_name = d + "/" + "n" * (512 - len(d) - 1)
    assert len(ok_name.encode()) == 512
    write_file(m.p(ok_name), b"long name")
    assert read_file(m.p(ok_name)) == b"long name"
    bad = d + "/" + "n" * (513 - len(d) - 1)
    expect_errno(errno.EINVAL, write_file, m.p(bad), b"too long")
    assert sorted(os.listdir(m.p(d))) == ["n" * (512 - len(d) - 1)]
    # 100 versions retained, the newest ones
    vals = [b"version %03d" % i for i in range(105)]
    for v in vals:
        write_file(m.p("hist"), v)
    vids = m.versions("hist")
    assert len(vids) == 100, len(vids)
    got = {read_file(m.mnt / ".versions" / "hist" / v) for v in vids}
    assert got == set(vals[5:])
    m.unmount()
    assert_sound(m)


# ================================================================ hardening

def test_daemon_memory_locked_and_no_core_dumps(mounted):
    m = mounted
    write_file(m.p("s"), token())
    status = Path(f"/proc/{m.pid}/status").read_text()
    vmlck = int(re.search(r"^VmLck:\s+(\d+) kB", status, re.M).group(1))
    assert vmlck > 0, "no locked memory"
    limits = Path(f"/proc/{m.pid}/limits").read_text()
    core = re.search(r"^Max core file size\s+(\S+)\s+(\S+)", limits, re.M)
    assert core.groups() == ("0", "0"), core.group(0)


def test_no_copy_of_values_in_daemon_memory_after_close(mounted):
    """After values are written, overwritten, read by name, by .versions
    and by .fields, and every handle is closed, no copy of any of them is
    anywhere in the daemon's memory (as root, through /proc/PID/mem). The
    secret's name, which is metadata, is found: the scan works."""
    m = mounted
    name = "NAME-" + secrets.token_hex(10)
    short = token("MARKER-SHORT")
    old = token("MARKER-OLD")
    long_marker = token("MARKER-LONG")
    field_marker = token("MARKER-FIELD")
    long_value = os.urandom(20000) + long_marker + os.urandom(40000)
    write_file(m.p(name), old)
    write_file(m.p(name), short)             # compares with, then replaces, old
    assert read_file(m.p(name)) == short
    for vid in m.versions(name):
        read_file(m.mnt / ".versions" / name / vid)
    write_file(m.p("long"), long_value)
    assert read_file(m.p("long")) == long_value
    write_file(m.p("json"), json.dumps({"user": "u", "password": field_marker.decode()}))
    assert read_file(m.mnt / ".fields" / "json" / "password") == field_marker
    # partial writes: the value arrives in pieces
    fd = os.open(m.p("pieces"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    piece_marker = token("MARKER-PIECE")
    for i in range(0, len(piece_marker), 7):
        os.write(fd, piece_marker[i:i + 7])
    os.close(fd)
    assert read_file(m.p("pieces")) == piece_marker
    # control: a value written to a handle still open is in (locked) memory
    open_marker = token("MARKER-OPEN")
    fd = os.open(m.p("open"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, open_marker)
    hits = scan_memory(m.pid, [open_marker])[open_marker]
    locked = locked_ranges(m.pid)
    assert hits, "the scan does not work: an open handle's value is not found"
    assert all(any(s <= a < e for s, e in locked) for a, _ in hits), \
        f"an open handle's value is in memory that is not locked: {hits}"
    os.close(fd)
    assert read_file(m.p("open")) == open_marker
    time.sleep(0.2)  # let every worker thread finish its reply
    markers = [short, old, long_marker, field_marker, piece_marker, open_marker]
    hits = scan_memory(m.pid, markers + [name.encode()])
    assert hits[name.encode()], "the scan does not work: the name is not found"
    found = {mk.decode(): hits[mk][:5] for mk in markers if hits[mk]}
    assert found == {}, f"plaintext left in the daemon's memory: {found}"


def test_key_file_contents_not_outside_locked_memory(mounted):
    """The key file's bytes are needed only to unlock: no copy is left in
    memory that is not locked."""
    m = mounted
    write_file(m.p("s"), b"v")
    hexkey = m.key.read_text().strip().encode()
    raw = bytes.fromhex(hexkey.decode())
    pid = m.pid
    hits = scan_memory(pid, [hexkey, raw])
    locked = locked_ranges(pid)
    loose = [(hex(a), n) for nd in (hexkey, raw) for a, n in hits[nd]
             if not any(s <= a < e for s, e in locked)]
    assert loose == [], f"key file contents in unlocked memory: {loose}"


def test_many_open_handles_defined_errors_no_crash(mounted):
    """2,000 read handles and 300 write handles of 64 KiB each open at
    once: each open, write or close works or fails with ENOMEM/EMFILE/
    ENFILE; the daemon survives; once all are closed everything works and
    every acknowledged value reads back."""
    m = mounted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2600
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    ALLOWED = (errno.ENOMEM, errno.EMFILE, errno.ENFILE)
    pid = m.pid
    big = os.urandom(MAX_VALUE)
    write_file(m.p("big"), big)
    errors = []
    rfds = []
    for i in range(2000):
        try:
            rfds.append(os.open(m.p("big"), os.O_RDONLY))
        except OSError as e:
            assert e.errno in ALLOWED, e
            errors.append(("open-r", e.errno))
            break
    wfds = {}
    for i in range(300):
        name = f"w{i:03d}"
        try:
            fd = os.open(m.p(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as e:
            assert e.errno in ALLOWED, e
            errors.append(("open-w", e.errno))
            break
        v = os.urandom(MAX_VALUE)
        try:
            n = 0
            while n < len(v):
                n += os.write(fd, v[n:n + 32768])
            wfds[name] = (fd, v, True)
        except OSError as e:
            assert e.errno in ALLOWED, e
            errors.append(("write", e.errno))
            wfds[name] = (fd, v, False)
    # all open at once: the daemon is alive and answers
    assert m.pid == pid
    os.stat(m.p("big"))
    for fd in rfds[::250]:
        try:
            assert os.pread(fd, 100, 0) == big[:100]
        except OSError as e:
            assert e.errno in ALLOWED, e
    acked = {}
    for name, (fd, v, wrote) in wfds.items():
        try:
            os.close(fd)
            if wrote:
                acked[name] = v
        except OSError as e:
            assert e.errno in ALLOWED, (name, e)
    for fd in rfds:
        os.close(fd)
    assert m.pid == pid, "the daemon died"
    assert read_file(m.p("big")) == big
    for name, v in acked.items():
        assert read_file(m.p(name)) == v
    for name, (fd, v, wrote) in wfds.items():
        if not wrote:  # a refused write leaves no partial value behind
            got = read_or_absent(m.p(name))
            assert got in (ABSENT, b""), (name, len(got))
            if got is not ABSENT:
                assert m.versions(name) == []
    write_file(m.p("after"), b"works")
    assert read_file(m.p("after")) == b"works"
    print(f"{len(rfds)} readers, {len(wfds)} writers, {len(acked)} stored, "
          f"errors: {errors[:5]} ({len(errors)})")
    m.unmount()
    assert_sound(m)


# ================================================================ passwd / rekey

def opens_with(m, candidates):
    """The unlock options (from candidates: [(label, kw)]) the store mounts
    with; each successful mount is checked for its value, then unmounted."""
    ok = []
    refusals = []
    for label, kw in candidates:
        r = mount_env(m, **kw)
        if r.returncode == 0:
            ok.append(label)
            assert read_file(m.p("s")) == b"the value"
            unmount_quiet(m)
        else:
            assert r.returncode == 1, r.stderr
            refusals.append(f"{label}: {r.stderr.strip()}")
    assert ok, "opens with neither: " + " | ".join(refusals)
    return ok


def change_cmd(m, verb, old_kw, new_kw):
    args = [verb, m.store]
    args += (["--key-file", old_kw["key_file"]] if "key_file" in old_kw
             else ["--passphrase-file", old_kw["passphrase_file"]])
    if new_kw:
        args += (["--new-key-file", new_kw["key_file"]] if "key_file" in new_kw
                 else ["--new-passphrase-file", new_kw["passphrase_file"]])
    return [str(a) for a in args]


@pytest.mark.parametrize("verb,new_kind", [("passwd", "key"), ("rekey", "key"),
                                           ("rekey", "same"), ("passwd", "pass")])
def test_passwd_rekey_death_at_every_write_point(mounted, verb, new_kind):
    """passwd/rekey die at each write or sync point of their transaction in
    turn: the store then opens with the old or the new secret, and from
    some point on only with the new one."""
    m = mounted
    write_file(m.p("s"), b"the value")
    m.unmount()
    start = m.store.read_bytes()
    old = {"key_file": m.key}
    if new_kind == "key":
        new = {"key_file": m.dir / "new.key"}
        assert sfs("keygen", new["key_file"]).returncode == 0
    elif new_kind == "pass":
        new = {"passphrase_file": m.dir / "new.pass"}
        write_file(new["passphrase_file"], "a new passphrase\n")
    else:
        new = None
    outcomes = []
    for n in range(1, 100):
        restore_snapshot(m, start)
        env = dict(os.environ)
        env.update(shim_env(m.store, die_at=n))
        r = subprocess.run([str(a) for a in [BIN] +
                            change_cmd(m, verb, old, new)],
                           capture_output=True, text=True, env=env, timeout=120)
        cands = [("old", old)] + ([("new", new)] if new else [])
        got = opens_with(m, cands)
        assert len(got) == 1, f"point {n}: opens with {got}"
        r2 = check_store(m, **(old if got == ["old"] else new))
        assert r2.returncode == 0, f"point {n}: {r2.stdout}{r2.stderr}"
        if r.returncode == 0:
            assert got == ["new" if new else "old"]
            break
        assert r.returncode == SHIM_STATUS, f"point {n}: {r.returncode} {r.stderr}"
        outcomes.append(got[0])
    else:
        pytest.fail("passwd/rekey never completed")
    assert len(outcomes) >= 2
    # old until the commit point, new after it: never back
    assert outcomes == sorted(outcomes, key=lambda x: x != "old"), outcomes


def kill_change_randomly(m, verb, rounds, seed):
    """kill -9 of passwd/rekey at random moments; each time the store opens
    with the old or the new key file, never neither (nor both)."""
    rng = random.Random(seed)
    cur = m.key
    # how long one run takes, to aim the kills
    probe = m.dir / "probe.key"
    assert sfs("keygen", probe).returncode == 0
    t0 = time.monotonic()
    r = sfs(verb, m.store, "--key-file", cur, "--new-key-file", probe)
    assert r.returncode == 0, r.stderr
    span = time.monotonic() - t0
    cur = probe
    results = {"old": 0, "new": 0}
    for i in range(rounds):
        nxt = m.dir / f"k{i}.key"
        assert sfs("keygen", nxt).returncode == 0
        p = subprocess.Popen([str(BIN), verb, str(m.store),
                              "--key-file", str(cur), "--new-key-file", str(nxt)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, span * 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        got = opens_with(m, [("old", {"key_file": cur}), ("new", {"key_file": nxt})])
        assert len(got) == 1, f"seed {seed} round {i}: opens with {got}"
        results[got[0]] += 1
        if got == ["new"]:
            cur = nxt
    assert_sound(m, key_file=cur)
    return results


@pytest.mark.parametrize("verb", ["passwd", "rekey"])
def test_passwd_rekey_killed_at_random_moments(mounted, verb):
    m = mounted
    write_file(m.p("s"), b"the value")
    m.unmount()
    print(kill_change_randomly(m, verb, 12, random.randrange(1 << 30)))

