"""Issue 11's tamper suite: what someone who can write the store file (a
backup, a copy on shared storage) but holds no key would do to it, record
kind by record kind, with python3-tdb on the unmounted store: flip bytes,
swap records between two secrets, forge one secret's record from
another's, widen a mode, move a label, re-enable a key, add a rotation
command, copy a record from another store, put back an older copy, remove
one, add one. Each time: the mount refuses with one line naming the record
and writes nothing; `secretsfs check` exits 1 and names it; with
`-o skip_damaged` the damaged secret is EIO and every other reads as
before.

Every case runs twice: on a store made by this release (format 3), and on
one made by the previous release (format 2, built from git at
PREVIOUS_RELEASE) and authenticated by its first mount with this one.
"""

import errno
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, expect_errno, read_file, run, sfs, write_file
from relhelpers import ENVELOPE, get_record, put_records, record_body, records

PREVIOUS_RELEASE = "cfcffc9"  # the last commit that wrote format 2

A1, A2, B1, C1, K1 = b"alpha-one", b"alpha-two", b"beta-one", b"gamma-one", b"kappa-one"


# ------------------------------------------------------------ the stores

@pytest.fixture(scope="session")
def previous_binary():
    """bin/secretsfs of PREVIOUS_RELEASE, built once from the repository's
    history (a fresh clone has it)."""
    build = Path(tempfile.mkdtemp(prefix="secretsfs-prev-", dir="/tmp"))
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            pytest.fail("cannot read the previous release from git history "
                        f"({PREVIOUS_RELEASE}): {archive.stderr.decode()}")
        subprocess.run(["tar", "-x", "-C", str(build)], input=archive.stdout, check=True)
        r = subprocess.run(["make", "-C", str(build), "-j2", "bin/secretsfs"],
                           capture_output=True, check=False)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        yield build / "bin" / "secretsfs"
    finally:
        shutil.rmtree(build, ignore_errors=True)


class Store:
    """A store with a key file, a mount point, and the values it holds."""

    def __init__(self, base, binary):
        self.dir = Path(base)
        self.path = self.dir / "store.tdb"
        self.key = self.dir / "master.key"
        self.mnt = self.dir / "mnt"
        self.log = self.dir / "log"
        self.mnt.mkdir()
        self.bin = binary
        assert run([binary, "keygen", self.key]).returncode == 0
        os.chmod(self.key, 0o600)
        r = run([binary, "init", self.path, "--key-file", self.key])
        assert r.returncode == 0, r.stderr

    def mount(self, binary=None, extra=""):
        opts = f"key_file={self.key},log_file={self.log}" + (f",{extra}" if extra else "")
        return run([binary or self.bin, "mount", self.path, self.mnt, "-o", opts])

    def unmount(self):
        r = run(["fusermount3", "-u", self.mnt])
        assert r.returncode == 0, r.stderr
        # the daemon closes the store right after the unmount returns
        for _ in range(100):
            if not run(["pgrep", "-f", f"mount {self.path} "]).stdout.strip():
                break
            subprocess.run(["sleep", "0.05"])

    def check(self):
        return sfs("check", self.path, "--key-file", self.key)


def populate(s):
    """a: two versions, a custom label on the old one, a tag; b: one
    version; app/c in a folder of mode 0750; k under a customer key; d
    deleted. Made through the mount of s.bin."""
    r = s.mount()
    assert r.returncode == 0, r.stderr
    m = s.mnt
    write_file(m / "a", A1)
    write_file(m / "a", A2)
    old = sorted(os.listdir(m / ".versions" / "a"))
    labels = {v: os.getxattr(m / ".versions" / "a" / v, "user.sm.version_stages")
              for v in old}
    previous = next(v for v, lab in labels.items() if b"AWSPREVIOUS" in lab)
    os.setxattr(m / "a", "user.sm.stage.OLD", previous.encode())
    os.setxattr(m / "a", "user.tag.team", b"payments")
    write_file(m / "b", B1)
    os.mkdir(m / "app", 0o750)
    write_file(m / "app" / "c", C1)
    r = run([s.bin, "key", "create", m, "alias/cust"])
    assert r.returncode == 0, r.stderr
    write_file(m / "k", b"x")
    os.setxattr(m / "k", "user.sm.kms_key_id", b"alias/cust")
    write_file(m / "k", K1)
    write_file(m / "d", b"deleted")
    os.unlink(m / "d")
    s.unmount()


def expected_values():
    return {"a": A2, "b": B1, "app/c": C1, "k": K1}


def authenticated_store(kind, request, tmp_path_factory):
    """The populated store, unmounted, authenticated (format 3): made by
    this release, or by the previous one and migrated by its first mount."""
    base = tmp_path_factory.mktemp("tamper")
    os.chmod(base, 0o755)
    if kind == "format3":
        s = Store(base, REPO / "bin" / "secretsfs")
        populate(s)
    else:
        s = Store(base, request.getfixturevalue("previous_binary"))
        populate(s)
        assert get_record(s.path, "sfs/format") == b"2"
        s.legacy = records(s.path)  # as a backup made before the upgrade holds it
        s.bin = REPO / "bin" / "secretsfs"
        r = s.mount()  # the first mount with the key authenticates it
        assert r.returncode == 0, r.stderr
        s.unmount()
        assert b"store format 2 authenticated" in s.log.read_bytes()
    assert get_record(s.path, "sfs/format") == b"3"
    r = s.check()
    assert r.returncode == 0, r.stdout + r.stderr
    return s


@pytest.fixture(params=["format3", "migrated"])
def pristine(request, tmp_path_factory):
    s = authenticated_store(request.param, request, tmp_path_factory)
    yield s
    run(["fusermount3", "-u", s.mnt])


@pytest.fixture
def migrated(request, tmp_path_factory):
    s = authenticated_store("migrated", request, tmp_path_factory)
    yield s
    run(["fusermount3", "-u", s.mnt])


# ------------------------------------------------------------ helpers

def key_of(s, alias):
    out = sfs("key", "list", s.path, "--key-file", s.key).stdout
    line = next(l for l in out.splitlines() if f"alias/{alias} " in l)
    return "key/" + line.split()[0].rsplit("/", 1)[1]


def current_version_key(s, name):
    body = json.loads(record_body(records(s.path)[f"secret/{name}"]))
    return f"ver/{body['id']}/{body['labels']['AWSCURRENT']}"


def json_edit(raw, fn):
    """The record with its JSON body edited by fn, its tag left as it was:
    all someone without the key can do."""
    body = json.loads(record_body(raw))
    fn(body)
    return raw[:ENVELOPE] + json.dumps(body, separators=(",", ":")).encode()


def flip(raw, at=-2):
    b = bytearray(raw)
    b[at] ^= 0x01
    return bytes(b)


def refused(s, names):
    """The mount is refused naming a record, and nothing is written; check
    exits 1 naming every record in names."""
    before = s.path.read_bytes()
    r = s.mount()
    assert r.returncode == 1, f"mount of a tampered store succeeded: {r.stderr}"
    msg = r.stderr.strip()
    assert "\n" not in msg, f"more than one line: {msg}"
    assert any(n in msg for n in names), f"the refusal names none of {names}: {msg}"
    assert s.path.read_bytes() == before, "a refused mount wrote to the store"
    c = s.check()
    assert c.returncode == 1, c.stdout + c.stderr
    for n in names:
        assert n in c.stdout + c.stderr, f"check does not name {n}: {c.stdout}{c.stderr}"


def served_around(s, damaged, gone=()):
    """With skip_damaged: each damaged secret is EIO, the others read as
    before (gone: names that cannot be reached at all)."""
    r = s.mount(extra="skip_damaged")
    assert r.returncode == 0, r.stderr
    assert "read-only" in r.stderr, r.stderr
    try:
        for name, value in expected_values().items():
            p = s.mnt / name
            if name in damaged:
                expect_errno(errno.EIO, read_file, p)
            elif name not in gone:
                assert read_file(p) == value, name
        # read-only around damage: nothing builds on records that may be stale
        expect_errno(errno.EROFS, write_file, s.mnt / "new-name", b"new")
    finally:
        s.unmount()


# ------------------------------------------------------------ the attacks

def test_secret_record_edits(pristine):
    s = pristine
    orig = records(s.path)
    edits = {
        "a byte flipped": flip(orig["secret/a"]),
        "mode widened 0600 -> 0644": json_edit(orig["secret/a"],
                                               lambda b: b.update(mode=0o644)),
        "owner changed": json_edit(orig["secret/a"], lambda b: b.update(uid=65534)),
        "AWSCURRENT moved to the older version": json_edit(
            orig["secret/a"],
            lambda b: b["labels"].update(AWSCURRENT=b["labels"]["AWSPREVIOUS"])),
        "a rotation command added": json_edit(
            orig["secret/a"], lambda b: b.update(rotation={"command": "/bin/true",
                                                            "days": 1})),
        "truncated": orig["secret/a"][:-5],
        "pointed at b's id and versions": json_edit(
            orig["secret/a"], lambda b: b.update(
                {k: v for k, v in json.loads(record_body(orig["secret/b"])).items()
                 if k in ("id", "versions", "labels")})),
    }
    for what, rec in edits.items():
        put_records(s.path, {"secret/a": rec})
        refused(s, ["secret/a"])
        served_around(s, {"a"})
        put_records(s.path, {"secret/a": orig["secret/a"]})
    assert s.check().returncode == 0


def test_records_swapped_or_forged_between_secrets(pristine):
    s = pristine
    orig = records(s.path)
    put_records(s.path, {"secret/a": orig["secret/b"], "secret/b": orig["secret/a"]})
    refused(s, ["secret/a", "secret/b"])
    served_around(s, {"a", "b"})
    # b's record, renamed to a: the name inside agrees, the tag does not.
    forged = json_edit(orig["secret/b"], lambda b: b.update(name="a"))
    put_records(s.path, {"secret/a": forged, "secret/b": orig["secret/b"]})
    refused(s, ["secret/a"])
    served_around(s, {"a"})


def test_record_from_another_store(pristine, tmp_path):
    s = pristine
    other = Store(tmp_path, REPO / "bin" / "secretsfs")
    shutil.copy(s.key, other.key)  # even with the same key file
    other.path.unlink()
    assert sfs("init", other.path, "--key-file", other.key).returncode == 0
    assert other.mount().returncode == 0
    write_file(other.mnt / "a", b"theirs")
    other.unmount()
    put_records(s.path, {"secret/a": records(other.path)["secret/a"]})
    refused(s, ["secret/a"])
    served_around(s, {"a"})


def test_folder_record(pristine):
    s = pristine
    orig = records(s.path)
    put_records(s.path, {"dir/app": json_edit(orig["dir/app"],
                                              lambda b: b.update(mode=0o777))})
    refused(s, ["dir/app"])
    r = s.mount(extra="skip_damaged")
    assert r.returncode == 0, r.stderr
    try:
        expect_errno(errno.EIO, os.stat, s.mnt / "app")
        assert read_file(s.mnt / "a") == A2
    finally:
        s.unmount()


def test_named_key_record(pristine):
    s = pristine
    kid = key_of(s, "cust")
    assert sfs("key", "disable", s.path, kid.split("/")[1], "--key-file", s.key).returncode == 0
    disabled = records(s.path)[kid]
    # The disable undone by an edit.
    put_records(s.path, {kid: disabled.replace(b'"enabled":false', b'"enabled":true')})
    refused(s, [kid])
    served_around(s, {"k"})
    # Its alias moved onto the default key's name.
    put_records(s.path, {kid: disabled.replace(b"alias/cust", b"aws/secretsmanager")
                         .replace(b'"cust"', b'"aws/secretsmanager"')})
    refused(s, [kid])


def test_catalog_bucket(pristine):
    s = pristine
    rec = records(s.path)
    bucket = next(k for k, v in rec.items() if k.startswith("cat/") and b"secret/a\n" in v)
    put_records(s.path, {bucket: rec[bucket].replace(b"secret/a\n", b"")})
    refused(s, [bucket])
    # The bucket's records are found by a walk: nothing is lost.
    served_around(s, set())


def test_header_and_state(pristine):
    s = pristine
    orig = records(s.path)
    for key, rec in [("sfs/header", orig["sfs/header"].replace(b"us-east-1", b"eu-west-1")),
                     ("sfs/header", flip(orig["sfs/header"])),
                     ("sfs/state", flip(orig["sfs/state"])),
                     ("sfs/state", None)]:
        put_records(s.path, {key: rec})
        before = s.path.read_bytes()
        r = s.mount(extra="skip_damaged")  # not even skip_damaged serves these
        assert r.returncode == 1, r.stderr
        assert s.path.read_bytes() == before
        assert s.check().returncode == 1
        put_records(s.path, {key: orig[key]})
    assert s.check().returncode == 0


def test_format_downgrade(pristine):
    """Dressed as format 2 (tags cut off, so that records would be read
    untagged and authenticated as they are): refused."""
    s = pristine
    rec = records(s.path)
    stripped = {k: record_body(v) for k, v in rec.items()}
    stripped["sfs/format"] = b"2"
    stripped["sfs/state"] = None
    stripped["secret/a"] = record_body(json_edit(rec["secret/a"],
                                                 lambda b: b.update(mode=0o666)))
    put_records(s.path, stripped)
    before = s.path.read_bytes()
    r = s.mount()
    assert r.returncode == 1 and "authentication" in r.stderr, r.stderr
    assert s.path.read_bytes() == before


def test_older_copy_put_back(pristine):
    """A record as it was before the last change (from a backup): it
    authenticates, the sum of the records does not."""
    s = pristine
    old_a = records(s.path)["secret/a"]
    assert s.mount().returncode == 0
    os.chmod(s.mnt / "a", 0o600)
    os.setxattr(s.mnt / "a", "user.tag.team", b"billing")
    s.unmount()
    put_records(s.path, {"secret/a": old_a})
    refused(s, ["sfs/state"])


def test_records_removed_or_added(pristine):
    s = pristine
    orig = records(s.path)
    put_records(s.path, {"secret/b": None})
    refused(s, ["secret/b"])
    served_around(s, {"b"})
    put_records(s.path, {"secret/b": orig["secret/b"]})
    # An added version record (a's, under another version id).
    vkey = current_version_key(s, "a")
    extra = vkey.rsplit("/", 1)[0] + "/11111111-2222-4333-8444-555555555555"
    put_records(s.path, {extra: orig[vkey]})
    refused(s, [extra])
    served_around(s, set())
    put_records(s.path, {extra: None})
    # A version record removed.
    put_records(s.path, {vkey: None})
    refused(s, [vkey])
    served_around(s, {"a"})
    put_records(s.path, {vkey: orig[vkey]})
    # A record no catalog lists, and one of no kind secretsfs writes.
    put_records(s.path, {"secret/zz": orig["secret/b"], "junk": b"1"})
    refused(s, ["secret/zz", "junk"])
    put_records(s.path, {"secret/zz": None, "junk": None})
    # A catalog bucket no load reads, and a version key with a NUL inside
    # (which a C string would cut to a listed one's name).
    put_records(s.path, {"cat/5000": orig[next(k for k in orig if k.startswith("cat/"))]})
    refused(s, ["cat/5000"])
    put_records(s.path, {"cat/5000": None, vkey + "\0x": orig[vkey]})
    refused(s, ["a key with a NUL byte inside"])
    put_records(s.path, {vkey + "\0x": None})
    assert s.check().returncode == 0


def test_version_record_edit(pristine):
    """Sealed values were bound before format 3: a flipped byte is EIO for
    that read, and check says so."""
    s = pristine
    vkey = current_version_key(s, "a")
    put_records(s.path, {vkey: flip(records(s.path)[vkey], at=-3)})
    assert s.mount().returncode == 0
    try:
        expect_errno(errno.EIO, read_file, s.mnt / "a")
        assert read_file(s.mnt / "b") == B1
    finally:
        s.unmount()
    c = s.check()
    assert c.returncode == 1 and "do not open" in c.stdout


def test_rotation_command_from_the_store_never_runs(pristine, tmp_path):
    """A rotation object added to a record (the attack that ran a command
    as root) makes the record fail: the upkeep thread never sees it."""
    s = pristine
    marker = tmp_path / "ran"
    script = tmp_path / "cmd"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    os.chmod(script, 0o755)
    rec = records(s.path)["secret/b"]
    put_records(s.path, {"secret/b": json_edit(
        rec, lambda b: b.update(rotation={"command": str(script), "days": 1,
                                          "next": 1000}))})
    refused(s, ["secret/b"])
    assert s.mount(extra="skip_damaged").returncode == 0
    try:
        expect_errno(errno.EIO, read_file, s.mnt / "b")
    finally:
        s.unmount()
    assert not marker.exists()


def test_downgrade_with_the_header_from_before_the_upgrade(migrated):
    """A store migrated from format 2 dressed as format 2 again, with the
    header (and named keys) kept from before its upgrade, which unlock with
    today's key file: the upgrade was a rekey, so they open nothing
    current, and the forged metadata is never authenticated."""
    s = migrated
    now = records(s.path)
    forged = {k: record_body(v) for k, v in now.items()}
    forged["sfs/format"] = b"2"
    forged["sfs/state"] = None
    forged["sfs/header"] = s.legacy["sfs/header"]
    forged["secret/a"] = record_body(json_edit(now["secret/a"],
                                               lambda b: b.update(mode=0o666)))
    for with_old_keys in (False, True):
        if with_old_keys:
            forged.update({k: v for k, v in s.legacy.items() if k.startswith("key/")})
        put_records(s.path, forged)
        before = s.path.read_bytes()
        r = s.mount()
        assert r.returncode != 0, "a downgraded store was mounted: " + r.stderr
        assert s.path.read_bytes() == before, "the forgery was written"
        assert s.check().returncode == 1
