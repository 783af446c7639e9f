"""secretsfs export / import: JSON lines shaped like the AWS CLI's output."""

import base64
import errno
import json
import os
import re

from conftest import BIN, as_uid, expect_errno, read_file, sfs, write_file


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


# ------------------------------------------------------- migrating everything

SUMMARY_EXPORT = re.compile(r"^secretsfs export: (\d+) secrets, (\d+) versions, (\d+) skipped$",
                            re.M)
SUMMARY_IMPORT = re.compile(
    r"^secretsfs import: (\d+) secrets, (\d+) versions \((\d+) new\), (\d+) skipped$", re.M)


def _summary(pattern, stderr):
    found = pattern.findall(stderr)
    assert len(found) == 1, stderr
    assert stderr.rstrip("\n").splitlines()[-1].startswith("secretsfs "), stderr  # the last line
    return tuple(int(n) for n in found[0])


def _attr(path, name):
    try:
        return os.getxattr(path, name).decode()
    except OSError as e:
        assert e.errno == errno.ENODATA, e
        return None


def _picture(m, names):
    """Everything a migration must carry, secret by secret."""
    out = {}
    for name in names:
        path = m.p(name)
        st = os.stat(path)
        listing = _attr(path, "user.sm.versions")
        values = {line.split(" ")[0]: read_file(m.mnt / ".versions" / name / line.split(" ")[0])
                  for line in listing.splitlines()}
        out[name] = {
            "versions": listing,  # ids, dates and labels, oldest first
            "values": values,
            # The secret's own CreatedDate is not carried: it becomes its
            # oldest version's (docs/semantics.md), a few ms later.
            "created": (listing.split(" ")[1] if listing else None),
            "owner": (st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)),
            "attrs": {a: _attr(path, a) for a in os.listxattr(path)
                      if a.startswith("user.tag.") or a in (
                          "user.sm.description", "user.sm.rotation_command",
                          "user.sm.rotation_days", "user.sm.rotation_schedule")},
        }
    return out


def _db(password):
    return json.dumps({"engine": "postgres", "host": "db.internal", "username": "app",
                       "password": password})


def _carried(text):
    """Export lines less what a store makes up anew: the ARN's random suffix,
    and the CreatedDate of a secret without a value (the import's time)."""
    return [{k: v for k, v in r.items()
             if k != "ARN" and (k != "CreatedDate" or "VersionId" in r)} for r in _lines(text)]


def test_round_trip_with_history_labels_owner_mode_and_rotation(make_mount):
    src = make_mount()
    dst = make_mount()
    os.makedirs(src.p("prod"))
    for i in range(1, 5):
        write_file(src.p("prod/db"), _db(f"p{i}"))
    ids = [line.split(" ")[0] for line in _attr(src.p("prod/db"), "user.sm.versions").splitlines()]
    # A label on the oldest version, the second left without any, and
    # AWSCURRENT rolled back to the third (AWSPREVIOUS goes to the fourth).
    os.setxattr(src.p("prod/db"), "user.sm.stage.OLD", ids[0].encode())
    os.setxattr(src.p("prod/db"), "user.sm.stage.AWSCURRENT", ids[2].encode())
    os.setxattr(src.p("prod/db"), "user.tag.team", b"db")
    os.setxattr(src.p("prod/db"), "user.sm.description", b"the database")
    os.setxattr(src.p("prod/db"), "user.sm.rotation_command", b"/usr/bin/true")
    os.setxattr(src.p("prod/db"), "user.sm.rotation_days", b"30")
    os.chown(src.p("prod/db"), 1234, 2345)
    os.chmod(src.p("prod/db"), 0o640)
    write_file(src.p("prod/blob"), bytes(range(256)))
    write_file(src.p("prod/blob"), b"\x00second")
    os.setxattr(src.p("prod/blob"), "user.sm.rotation_schedule", b"rate(10 days)")
    write_file(src.p("empty"), b"", flags=os.O_WRONLY | os.O_CREAT)
    os.setxattr(src.p("empty"), "user.tag.kind", b"placeholder")
    os.chmod(src.p("empty"), 0o604)
    names = ["prod/db", "prod/blob", "empty"]

    out = sfs("export", src.mnt)
    assert out.returncode == 0, out.stderr
    assert _summary(SUMMARY_EXPORT, out.stderr) == (3, 6, 0)
    records = _lines(out.stdout)
    db = [r for r in records if r["Name"] == "prod/db"]
    # One line per version, oldest first; the AWSCURRENT one carries the rest.
    assert [r["VersionId"] for r in db] == ids
    assert [r["VersionStages"] for r in db] == [["OLD"], [], ["AWSCURRENT"], ["AWSPREVIOUS"]]
    own = db[2]["Secretsfs"]
    assert (own["Owner"], own["Group"], own["Mode"]) == (1234, 2345, "0640")
    assert own["RotationCommand"] == "/usr/bin/true"
    assert own["RotationRules"] == {"AutomaticallyAfterDays": 30}
    assert [v["VersionId"] for v in own["Versions"]] == ids
    assert all("Secretsfs" not in r for i, r in enumerate(db) if i != 2)

    imp = sfs("import", dst.mnt, input=out.stdout)
    assert imp.returncode == 0, imp.stderr
    assert _summary(SUMMARY_IMPORT, imp.stderr) == (3, 6, 6, 0)
    assert _picture(dst, names) == _picture(src, names)
    assert read_file(dst.p("prod/db")) == _db("p3").encode()
    assert "SecretsfsImport" not in os.listdir(dst.mnt / ".stages")
    again = sfs("export", dst.mnt)
    assert _carried(again.stdout) == _carried(out.stdout)

    # A second import changes nothing, not even LastChangedDate.
    changed = {n: _attr(dst.p(n), "user.sm.last_changed_date") for n in names}
    twice = sfs("import", dst.mnt, input=out.stdout)
    assert twice.returncode == 0, twice.stderr
    assert _summary(SUMMARY_IMPORT, twice.stderr) == (3, 6, 0, 0)
    assert _picture(dst, names) == _picture(src, names)
    assert {n: _attr(dst.p(n), "user.sm.last_changed_date") for n in names} == changed


def test_plain_aws_shape_still_imports(make_mount):
    m = make_mount()
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:MyTestSecret-a1b2c3"
    feed = "\n".join(json.dumps(r) for r in [
        # get-secret-value --version-stage AWSPREVIOUS, then the current one
        # merged with describe-secret, as the AWS CLI prints them.
        {"ARN": arn, "Name": "MyTestSecret", "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
         "SecretString": "old", "VersionStages": ["AWSPREVIOUS"],
         "CreatedDate": "2023-05-01T12:34:56.789000+00:00"},
        {"ARN": arn, "Name": "MyTestSecret", "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222",
         "SecretString": "new", "VersionStages": ["AWSCURRENT"], "CreatedDate": 1682944600.5,
         "Description": "from AWS", "Tags": [{"Key": "env", "Value": "prod"}]},
        # an export of an earlier secretsfs: no version list, no owner
        {"Name": "legacy", "SecretBinary": "AAEC"},
    ]) + "\n"
    r = sfs("import", m.mnt, input=feed)
    assert r.returncode == 0, r.stderr
    assert _summary(SUMMARY_IMPORT, r.stderr) == (2, 3, 3, 0)
    assert read_file(m.p("MyTestSecret")) == b"new"
    assert _attr(m.p("MyTestSecret"), "user.sm.versions") == (
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111 2023-05-01T12:34:56.789Z AWSPREVIOUS\n"
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222 2023-05-01T12:36:40.500Z AWSCURRENT\n")
    assert _attr(m.p("MyTestSecret"), "user.sm.created_date") == "2023-05-01T12:34:56.789Z"
    assert _attr(m.p("MyTestSecret"), "user.sm.description") == "from AWS"
    assert _attr(m.p("MyTestSecret"), "user.tag.env") == "prod"
    assert read_file(m.p("legacy")) == b"\x00\x01\x02"
    assert (os.stat(m.p("legacy")).st_mode & 0o777) == 0o600


def test_import_by_another_user_keeps_to_its_rights(make_mount):
    m = make_mount(allow_other=True)
    os.mkdir(m.p("app"))
    os.chown(m.p("app"), 1000, 1000)
    line = {"Name": "app/db", "VersionId": "b" * 36, "VersionStages": ["AWSCURRENT"],
            "CreatedDate": "2020-02-02T02:02:02.000Z", "SecretString": _db("pw"),
            "Secretsfs": {"Owner": 0, "Group": 0, "Mode": "0640",
                          "Versions": [{"VersionId": "b" * 36, "VersionStages": ["AWSCURRENT"],
                                        "CreatedDate": "2020-02-02T02:02:02.000Z"}],
                          "RotationCommand": "/usr/bin/true",
                          "RotationRules": {"AutomaticallyAfterDays": 7}}}
    feed = m.dir / "feed.jsonl"
    feed.write_text(json.dumps(line) + "\n")
    os.chmod(feed, 0o644)
    r = as_uid(1000, "sh", "-c", f"exec {BIN} import {m.mnt} < {feed}")
    # What the rules keep from this user is said, and is not a failure.
    assert r.returncode == 0, r.stderr
    assert "rotation command not set" in r.stderr
    assert "version dates not restored" in r.stderr
    assert "owner and group not restored" in r.stderr and ": 1 secret\n" in r.stderr
    assert _summary(SUMMARY_IMPORT, r.stderr) == (1, 1, 1, 0)
    assert read_file(m.p("app/db")) == _db("pw").encode()
    st = os.stat(m.p("app/db"))
    assert (st.st_uid, st.st_mode & 0o777) == (1000, 0o640)
    assert _attr(m.p("app/db"), "user.sm.rotation_command") is None
    assert _attr(m.p("app/db"), "user.sm.rotation_days") == "7"
    assert not _attr(m.p("app/db"), "user.sm.versions").split(" ")[1].startswith("2020")
    # The attribute itself, set by hand: the same rule.
    r = as_uid(1000, "setfattr", "-n", "user.sm.import_created_date",
               "-v", "2020-01-01T00:00:00Z", m.p("app/db"))
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_import_created_date_attribute(make_mount):
    m = make_mount()
    write_file(m.p("s"), b"first")
    created = _attr(m.p("s"), "user.sm.created_date")
    expect_errno(errno.EINVAL, os.setxattr, m.p("s"), "user.sm.import_created_date",
                 b"2999-01-01T00:00:00Z")  # not in the future
    expect_errno(errno.EINVAL, os.setxattr, m.p("s"), "user.sm.import_created_date", b"yesterday")
    for early in (b"1970-01-01T00:00:00Z", b"1969-12-31T23:59:59Z"):  # not after 1970
        expect_errno(errno.EINVAL, os.setxattr, m.p("s"), "user.sm.import_created_date", early)
    # The log names the rule broken: both bounds.
    assert (b"refused: a version's CreatedDate lies after 1970-01-01T00:00:00Z and not in "
            b"the future") in m.read_log()
    expect_errno(errno.ENODATA, os.getxattr, m.p("s"), "user.sm.import_created_date")
    assert "user.sm.import_created_date" not in os.listxattr(m.p("s"))
    os.setxattr(m.p("s"), "user.sm.import_created_date", b"2021-06-01T10:00:00.250+02:00")
    write_file(m.p("s"), b"second")
    last = _attr(m.p("s"), "user.sm.versions").splitlines()[-1].split(" ")
    assert last[1] == "2021-06-01T08:00:00.250Z"
    # The secret is never younger than a version it holds; the date is spent.
    assert _attr(m.p("s"), "user.sm.created_date") == "2021-06-01T08:00:00.250Z" != created
    write_file(m.p("s"), b"third")
    assert not _attr(m.p("s"), "user.sm.versions").splitlines()[-1].split(" ")[1].startswith("2021")


def test_import_hostile_lines_are_refused_and_touch_nothing(make_mount):
    """Name and VersionId become paths under the mount (NAME,
    .versions/NAME/ID) and the client request token: a line whose Name or
    VersionId breaks the rules of names is refused whole, with its reason."""
    m = make_mount()
    write_file(m.p("victim"), b"kept")
    before = _picture(m, ["victim"])
    around = sorted(os.listdir(m.dir))
    # From MNT/.versions/victim/ this climbs to MNT/../ (m.dir): 37 characters.
    climb = "../../../escaped-by-a-version-id-0001"
    spaced = "44444444-4444-4444 4444-444444444444"
    feed = "\n".join(json.dumps(r) for r in [
        {"Name": "../escaped-by-name", "SecretString": "hostile"},
        {"Name": "a/../../escaped-by-name", "SecretString": "hostile"},
        {"Name": "victim", "VersionId": climb, "VersionStages": ["AWSCURRENT"],
         "SecretString": "hostile"},
        {"Name": "victim", "VersionId": spaced, "VersionStages": ["AWSPREVIOUS"],
         "SecretString": "hostile"},
        {"Name": "fresh", "VersionId": "x", "SecretString": "hostile"},
        {"Name": "fine", "SecretString": "ok"},
    ]) + "\n"
    r = sfs("import", m.mnt, input=feed)
    assert r.returncode == 1, r.stderr
    assert _summary(SUMMARY_IMPORT, r.stderr) == (1, 1, 1, 5)
    for n in (1, 2):
        assert re.search(rf"^secretsfs: line {n}: .*(\.\.|begin)", r.stderr, re.M), r.stderr
    for n in (3, 4, 5):
        assert re.search(rf"^secretsfs: line {n}: a version id ", r.stderr, re.M), r.stderr
    # Nothing outside the mount, nothing in the store for those lines.
    assert sorted(os.listdir(m.dir)) == around
    assert sorted(os.listdir(m.mnt)) == ["fine", "victim"]
    assert _picture(m, ["victim"]) == before
    assert read_file(m.p("victim")) == b"kept"
    assert "hostile" not in r.stderr


def test_import_says_which_dates_the_mount_refused(make_mount):
    """CreatedDate is read by import and judged by the mount: a date it
    refuses is named, counted, and the version dated now; the rest stays."""
    m = make_mount()
    ids = [f"{i}" * 36 for i in range(1, 4)]
    feed = "\n".join(json.dumps(r) for r in [
        {"Name": "s", "VersionId": ids[0], "VersionStages": ["OLD"],
         "CreatedDate": "2999-01-01T00:00:00Z", "SecretString": "one"},
        {"Name": "s", "VersionId": ids[1], "VersionStages": ["AWSPREVIOUS"],
         "CreatedDate": 0, "SecretString": "two"},
        {"Name": "s", "VersionId": ids[2], "VersionStages": ["AWSCURRENT"],
         "CreatedDate": "2020-02-02T02:02:02.000Z", "SecretString": "three"},
    ]) + "\n"
    r = sfs("import", m.mnt, input=feed)
    assert r.returncode == 1, r.stderr
    assert _summary(SUMMARY_IMPORT, r.stderr) == (1, 3, 3, 0)
    assert "s: CreatedDate 2999-01-01T00:00:00.000Z refused" in r.stderr
    assert "s: CreatedDate 1970-01-01T00:00:00.000Z refused" in r.stderr
    assert "version dates not kept (in the future, or not after 1970): 2 versions" in r.stderr
    dates = {line.split(" ")[0]: line.split(" ")[1]
             for line in _attr(m.p("s"), "user.sm.versions").splitlines()}
    assert sorted(dates) == ids
    assert dates[ids[2]] == "2020-02-02T02:02:02.000Z"
    assert not dates[ids[0]].startswith(("2999", "1970"))
    assert not dates[ids[1]].startswith(("2999", "1970"))
    assert read_file(m.p("s")) == b"three"
