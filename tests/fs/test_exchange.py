"""secretsfs export / import: JSON lines shaped like the AWS CLI's output."""

import base64
import json
import os

from conftest import read_file, sfs, write_file


def _lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_round_trip_of_1000_secrets_loses_nothing(make_mount):
    src = make_mount()
    dst = make_mount()
    os.makedirs(src.p("prod/db"))
    values = {}
    for i in range(1000):
        name = f"prod/s{i:04d}"
        values[name] = f"value-{i}-\"quoted\"\n\\".encode()
        write_file(src.p(name), values[name])
    binary = bytes(range(256))
    write_file(src.p("prod/db/blob"), binary)
    os.setxattr(src.p("prod/db/blob"), "user.tag.team", b"ops")
    os.setxattr(src.p("prod/db/blob"), "user.sm.description", b"a blob")
    write_file(src.p("touched"), b"", flags=os.O_WRONLY | os.O_CREAT)

    out = sfs("export", src.mnt)
    assert out.returncode == 0, out.stderr
    records = _lines(out.stdout)
    assert len(records) == 1002
    by_name = {r["Name"]: r for r in records}
    blob = by_name["prod/db/blob"]
    assert base64.b64decode(blob["SecretBinary"]) == binary
    assert blob["Tags"] == [{"Key": "team", "Value": "ops"}]
    assert blob["Description"] == "a blob"
    assert blob["VersionStages"] == ["AWSCURRENT"]
    assert by_name["prod/s0007"]["SecretString"] == values["prod/s0007"].decode()
    assert "SecretString" not in by_name["touched"]

    dump = src.dir / "dump.jsonl"
    dump.write_text(out.stdout)
    imp = sfs("import", dst.mnt, input=dump.read_text())
    assert imp.returncode == 0, imp.stderr
    for name, value in values.items():
        assert read_file(dst.p(name)) == value
    assert read_file(dst.p("prod/db/blob")) == binary
    assert os.getxattr(dst.p("prod/db/blob"), "user.tag.team") == b"ops"
    assert os.path.exists(dst.p("touched"))
    # The VersionId travels: the same version ids on both sides.
    assert (os.getxattr(dst.p("prod/s0001"), "user.sm.version_id") ==
            os.getxattr(src.p("prod/s0001"), "user.sm.version_id"))

    # Importing the same file again changes nothing.
    again = sfs("import", dst.mnt, input=dump.read_text())
    assert again.returncode == 0, again.stderr
    assert len(os.listdir(dst.p(".versions/prod/s0002"))) == 1


def test_export_prefix_and_errors(make_mount):
    m = make_mount()
    os.makedirs(m.p("a"))
    write_file(m.p("a/x"), b"1")
    write_file(m.p("b"), b"2")
    out = sfs("export", m.mnt, "a")
    assert out.returncode == 0, out.stderr
    assert [r["Name"] for r in _lines(out.stdout)] == ["a/x"]
    assert sfs("export", m.dir).returncode == 1     # not a mount point
    assert sfs("export").returncode == 2
    assert sfs("import").returncode == 2


def test_import_bad_lines_are_reported_and_skipped(make_mount):
    m = make_mount()
    feed = m.dir / "feed.jsonl"
    feed.write_text("\n".join([
        '{"Name":"good","SecretString":"v"}',
        'not json',
        '{"Name":"bad name","SecretString":"v"}',
        '{"Name":"both","SecretString":"v","SecretBinary":"dg=="}',
        '{"Name":"b64","SecretBinary":"@@@@"}',
        '{"Name":"good2","SecretBinary":"AAEC"}',
    ]) + "\n")
    r = sfs("import", m.mnt, input=feed.read_text())
    assert r.returncode == 1
    assert "line 2" in r.stderr and "line 3" in r.stderr and "line 4" in r.stderr
    assert "line 5" in r.stderr
    assert read_file(m.p("good")) == b"v"
    assert read_file(m.p("good2")) == b"\x00\x01\x02"
    assert sorted(os.listdir(m.mnt)) == ["good", "good2"]


def test_values_never_on_stderr_or_in_argv(make_mount):
    m = make_mount()
    write_file(m.p("s"), b"MARKER-export-value")
    out = sfs("export", m.mnt)
    assert "MARKER-export-value" in out.stdout
    assert "MARKER" not in out.stderr
