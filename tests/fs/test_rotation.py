"""Rotation (RotateSecret) with a rotation command, without a database."""

import errno
import json
import os
import textwrap

import pytest

from conftest import expect_errno, read_file, sfs, write_file

DB = {"engine": "postgres", "host": "db.internal", "username": "app", "password": "old"}

SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    # Writes the pending value at createSecret; fails at FAIL_AT if set below.
    FAIL_AT=@FAIL@
    echo "step $1 for $SECRETSFS_SECRET_NAME"
    [ "$1" = "$FAIL_AT" ] && exit 3
    case "$1" in
    createSecret)
      if [ "$(getfattr --only-values -n user.sm.stage.AWSPENDING "$SECRETSFS_CURRENT" 2>/dev/null)" = "$SECRETSFS_TOKEN" ]; then exit 0; fi
      /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["password"]="new-" + sys.argv[3][:8]; open(sys.argv[2],"w").write(json.dumps(d))' \\
        "$SECRETSFS_CURRENT" "$SECRETSFS_PENDING" "$SECRETSFS_TOKEN" ;;
    esac
    exit 0
    """)


def command(m, fail_at="none"):
    path = m.dir / f"rotate-{fail_at}.sh"
    path.write_text(SCRIPT.replace("@FAIL@", fail_at))
    path.chmod(0o755)
    return str(path)


def attr(path, name):
    return os.getxattr(path, name).decode()


def test_rotation_moves_current_and_keeps_previous(mounted):
    m = mounted
    write_file(m.p("db"), json.dumps(DB))
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m).encode())
    os.setxattr(m.p("db"), "user.sm.rotation_days", b"30")
    old_version = attr(m.p("db"), "user.sm.version_id")
    assert os.stat(m.p("db")).st_size == len(json.dumps(DB))  # cached by the kernel now
    r = sfs("rotate", m.p("db"))
    assert r.returncode == 0, r.stderr
    assert "succeeded" in r.stdout
    # The daemon's rotation thread changed it: stat follows at once.
    assert os.stat(m.p("db")).st_size == len(read_file(m.p("db")))
    now = json.loads(read_file(m.p("db")))
    assert now["password"].startswith("new-")
    assert json.loads(read_file(m.p(".stages/AWSPREVIOUS/db")))["password"] == "old"
    assert attr(m.p("db"), "user.sm.stage.AWSPREVIOUS") == old_version
    expect_errno(errno.ENODATA, os.getxattr, m.p("db"), "user.sm.stage.AWSPENDING")
    d = json.loads(attr(m.p("db"), "user.sm.describe"))
    assert d["RotationEnabled"] is True
    assert d["RotationRules"] == {"AutomaticallyAfterDays": 30}
    assert "LastRotatedDate" in d and "NextRotationDate" in d
    assert attr(m.p("db"), "user.sm.rotation_status").startswith("succeeded")
    log = m.log.read_text()
    assert "step finishSecret for db" in log           # the command's output
    assert now["password"] not in log and "old" not in log.replace("old-", "")


def test_failed_step_leaves_current_and_blocks_next_rotation(mounted):
    m = mounted
    write_file(m.p("db"), json.dumps(DB))
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m, "testSecret").encode())
    current = attr(m.p("db"), "user.sm.version_id")
    r = sfs("rotate", m.p("db"))
    assert r.returncode == 1 and "failed testSecret" in r.stdout
    assert json.loads(read_file(m.p("db")))["password"] == "old"
    assert attr(m.p("db"), "user.sm.version_id") == current
    pending = attr(m.p("db"), "user.sm.stage.AWSPENDING")
    assert pending != current
    # AWSPENDING on a version that is not current: the next one is refused.
    expect_errno(errno.EBUSY, os.setxattr, m.p("db"), "user.sm.rotate", b"now")
    assert sfs("rotate", m.p("db")).returncode == 1
    os.removexattr(m.p("db"), "user.sm.stage.AWSPENDING")
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m).encode())
    assert sfs("rotate", m.p("db")).returncode == 0


@pytest.mark.parametrize("value,missing", [
    (b"not json", "JSON"),
    (json.dumps({"host": "h", "username": "u", "password": "p"}).encode(), "engine"),
    (json.dumps({"engine": "postgres", "username": "u", "password": "p"}).encode(), "host"),
    (json.dumps({"engine": "oracle", "host": "h", "username": "u", "password": "p"}).encode(),
     "dbname"),
])
def test_enabling_rotation_checks_the_database_secret(mounted, value, missing):
    m = mounted
    write_file(m.p("s"), value)
    expect_errno(errno.EINVAL, os.setxattr, m.p("s"), "user.sm.rotation_command",
                 command(m).encode())
    assert missing in m.log.read_text()
    expect_errno(errno.ENODATA, os.getxattr, m.p("s"), "user.sm.rotation_command")


def test_rotation_settings_and_errors(mounted):
    m = mounted
    write_file(m.p("db"), json.dumps(DB))
    expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotate", b"now")  # no command
    expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_command",
                 b"relative/path")
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m).encode())
    for bad in [b"0", b"1001", b"x"]:
        expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_days", bad)
    for bad in [b"rate(2 hours)", b"rate(5 weeks)", b"cron(5 3 * * ? *)", b"cron(0 3 * *)"]:
        expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_schedule", bad)
    os.setxattr(m.p("db"), "user.sm.rotation_schedule", b"rate(12 hours)")
    d = json.loads(attr(m.p("db"), "user.sm.describe"))
    assert d["RotationRules"] == {"ScheduleExpression": "rate(12 hours)"}
    os.setxattr(m.p("db"), "user.sm.rotation_days", b"7")  # replaces the schedule
    d = json.loads(attr(m.p("db"), "user.sm.describe"))
    assert d["RotationRules"] == {"AutomaticallyAfterDays": 7}
    m.remount()
    d = json.loads(attr(m.p("db"), "user.sm.describe"))
    assert d["RotationRules"] == {"AutomaticallyAfterDays": 7}
    os.removexattr(m.p("db"), "user.sm.rotation_command")
    assert "RotationEnabled" not in json.loads(attr(m.p("db"), "user.sm.describe"))
