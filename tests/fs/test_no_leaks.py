"""No plaintext value outside locked memory (BRIEF section 5): not in the
store file, the log, the daemon's argv or environment; the daemon locks its
secure memory and cannot dump core."""

import os
import secrets
import shlex

import pytest

from conftest import read_file, sfs, sh, write_file

q = shlex.quote


def marker():
    return "MARKER-" + secrets.token_hex(16)


def leak_sources(m, pid=None):
    """name -> bytes of every place a value must never appear."""
    src = {"store": m.store.read_bytes(), "log": m.read_log()}
    for extra in m.dir.glob("store.tdb*"):
        if extra != m.store:
            src[extra.name] = extra.read_bytes()
    if pid is not None:
        for what in ("cmdline", "environ"):
            with open(f"/proc/{pid}/{what}", "rb") as f:
                src[what] = f.read()
    return src


def assert_no_markers(sources, markers):
    found = []
    for name, data in sources.items():
        for mk in markers:
            raw = mk.encode()
            for form in (raw, raw.hex().encode(), raw[::-1],
                         mk.encode("utf-16-le")):
                if form in data:
                    found.append((name, mk, form[:16]))
    assert found == [], f"plaintext found: {found}"


def exercise(m):
    """Write values through create, overwrite, rename, rm, restore, binary,
    large and shell paths; return every value written."""
    mk = {k: marker() for k in ("create", "over1", "over2", "ren_src", "big",
                                "replace_a", "replace_b",
                                "deleted", "shell", "append")}
    os.makedirs(m.p("prod/db"))
    write_file(m.p("prod/db/create"), mk["create"])
    write_file(m.p("over"), mk["over1"])
    write_file(m.p("over"), mk["over2"])
    write_file(m.p("ren"), mk["ren_src"])
    os.rename(m.p("ren"), m.p("renamed"))
    write_file(m.p("ra"), mk["replace_a"])
    write_file(m.p("rb"), mk["replace_b"])
    os.rename(m.p("ra"), m.p("rb"))
    write_file(m.p("gone"), mk["deleted"])
    os.unlink(m.p("gone"))
    os.rename(m.mnt / ".deleted" / "gone", m.p("back"))
    r = sh(f"printf %s {q(mk['shell'])} > {q(str(m.p('prod/shell')))}")
    assert r.returncode == 0, r.stderr
    r = sh(f"printf %s {q(mk['append'])} >> {q(str(m.p('over')))}")
    assert r.returncode == 0, r.stderr
    big = (mk["big"] + "\0") * 1000  # large, binary
    write_file(m.p("big"), big)
    # refused writes must not leak either
    toolarge = marker()
    try:
        write_file(m.p("big"), (toolarge + "x") * 3000)
    except OSError:
        pass
    bad_name_value = marker()
    try:
        write_file(m.p("bad name"), bad_name_value)
    except OSError:
        pass
    # read everything back so the daemon has decrypted it all
    for name in ("prod/db/create", "over", "renamed", "rb", "back",
                 "prod/shell", "big"):
        assert read_file(m.p(name))
    for name in ("over", "rb"):
        for vid in m.versions(name):
            read_file(m.mnt / ".versions" / name / vid)
    assert read_file(m.p("over")) == (mk["over2"] + mk["append"]).encode()
    return list(mk.values()) + [toolarge, bad_name_value,
                                mk["over2"] + mk["append"]]


def test_no_plaintext_in_store_log_argv_environ(mounted):
    m = mounted
    before = m.store.read_bytes()
    values = exercise(m)
    # control: we are looking at the live store, which these writes changed
    assert m.store.read_bytes() != before
    pid = m.pid
    assert_no_markers(leak_sources(m, pid), values)
    m.unmount()
    assert_no_markers(leak_sources(m), values)
    # and after a remount that reads everything once more
    m.mount()
    for name in ("prod/db/create", "over", "renamed", "rb", "back"):
        read_file(m.p(name))
    assert_no_markers(leak_sources(m, m.pid), values)


def test_no_key_material_in_store_log_argv_environ(mounted):
    m = mounted
    write_file(m.p("s"), marker())
    key_hex = m.key.read_text().strip()
    pid = m.pid
    sources = leak_sources(m, pid)
    raw = bytes.fromhex(key_hex)
    for name, data in sources.items():
        assert key_hex.encode() not in data, name
        assert key_hex.lower().encode() not in data.lower(), name
        assert raw not in data, name


def test_no_passphrase_in_store_log_argv_environ(make_mount):
    pw = "PASS-" + secrets.token_hex(12)
    m = make_mount(passphrase=pw)
    value = marker()
    write_file(m.p("s"), value)
    assert read_file(m.p("s")) == value.encode()
    sources = leak_sources(m, m.pid)
    for name, data in sources.items():
        assert pw.encode() not in data, name
        assert value.encode() not in data, name
    m.unmount()
    for name, data in leak_sources(m).items():
        assert pw.encode() not in data, name


def test_wrong_key_message_has_no_secrets(make_mount):
    m = make_mount(mount=False)
    other = m.dir / "other.key"
    assert sfs("keygen", other).returncode == 0
    r = sfs("mount", m.store, m.mnt, "-o", f"key_file={other}")
    assert r.returncode == 1
    for k in (m.key, other):
        assert k.read_text().strip() not in r.stderr + r.stdout


def test_daemon_memory_locked_and_no_core(mounted):
    m = mounted
    write_file(m.p("s"), marker())
    read_file(m.p("s"))
    pid = m.pid
    status = open(f"/proc/{pid}/status").read()
    vmlck = [l for l in status.splitlines() if l.startswith("VmLck:")]
    assert vmlck, status
    kb = int(vmlck[0].split()[1])
    assert kb > 0, f"no locked memory: {vmlck[0]}"
    limits = open(f"/proc/{pid}/limits").read()
    core = [l for l in limits.splitlines()
            if l.startswith("Max core file size")]
    assert core, limits
    soft, hard = core[0].split()[4:6]
    assert soft == "0", core[0]
    assert hard == "0", core[0]


@pytest.mark.parametrize("what", ["cmdline", "environ"])
def test_daemon_has_no_key_option_values_inline(mounted, what):
    """argv carries the key *file name*, never its contents."""
    m = mounted
    data = open(f"/proc/{m.pid}/{what}", "rb").read()
    assert m.key.read_text().strip().encode() not in data
