"""Rotation (RotateSecret) with a rotation command, without a database."""

import errno
import json
import os
import textwrap

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


# An API key, not a database secret: the command writes a new random value.
KEY_SCRIPT = textwrap.dedent("""\
    #!/bin/sh
    echo "step $1"
    if [ "$1" = createSecret ]; then
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n' > "$SECRETSFS_PENDING"
    fi
    exit 0
    """)


def test_any_secret_can_rotate(mounted):
    """The service only calls the rotation function; the function checks
    the value it knows how to rotate (scripts/rotate-postgres does)."""
    m = mounted
    write_file(m.p("api-key"), b"not json at all")
    script = m.dir / "rotate-key.sh"
    script.write_text(KEY_SCRIPT)
    script.chmod(0o755)
    os.setxattr(m.p("api-key"), "user.sm.rotation_command", str(script).encode())
    os.setxattr(m.p("api-key"), "user.sm.rotation_days", b"30")
    assert json.loads(attr(m.p("api-key"), "user.sm.describe"))["RotationEnabled"] is True
    r = sfs("rotate", m.p("api-key"))
    assert r.returncode == 0, r.stdout + r.stderr
    new = read_file(m.p("api-key"))
    assert len(new) == 48 and new != b"not json at all"
    assert read_file(m.p(".stages/AWSPREVIOUS/api-key")) == b"not json at all"


def test_cancel_rotation_keeps_rules_and_last_rotated(mounted):
    """CancelRotateSecret: RotationEnabled false, the rules and
    LastRotatedDate kept; removing the command again is ENODATA."""
    m = mounted
    write_file(m.p("db"), json.dumps(DB))
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m).encode())
    os.setxattr(m.p("db"), "user.sm.rotation_schedule", b"rate(12 hours)")
    assert sfs("rotate", m.p("db")).returncode == 0
    before = json.loads(attr(m.p("db"), "user.sm.describe"))
    os.removexattr(m.p("db"), "user.sm.rotation_command")
    for remounted in (False, True):
        if remounted:
            m.remount()
        d = json.loads(attr(m.p("db"), "user.sm.describe"))
        assert d["RotationEnabled"] is False
        assert d["RotationRules"] == {"ScheduleExpression": "rate(12 hours)"}
        assert d["LastRotatedDate"] == before["LastRotatedDate"]
        assert "NextRotationDate" not in d
        assert attr(m.p("db"), "user.sm.rotation_schedule") == "rate(12 hours)"
        expect_errno(errno.ENODATA, os.getxattr, m.p("db"), "user.sm.rotation_command")
        expect_errno(errno.ENODATA, os.removexattr, m.p("db"), "user.sm.rotation_command")
        expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotate", b"now")
    # Turned on again: the same rules, the next date counted from the last.
    os.setxattr(m.p("db"), "user.sm.rotation_command", command(m).encode())
    d = json.loads(attr(m.p("db"), "user.sm.describe"))
    assert d["RotationEnabled"] is True and "NextRotationDate" in d
    # Never configured: no rotation fields at all.
    write_file(m.p("plain"), b"v")
    expect_errno(errno.ENODATA, os.removexattr, m.p("plain"), "user.sm.rotation_command")
    assert "RotationEnabled" not in json.loads(attr(m.p("plain"), "user.sm.describe"))


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
    assert json.loads(attr(m.p("db"), "user.sm.describe"))["RotationEnabled"] is False


def test_command_path_checked_when_set(mounted):
    """Only root or the mounting user may be able to change what runs."""
    m = mounted
    write_file(m.p("db"), json.dumps(DB))

    def script(path, mode=0o755):
        path.write_text(SCRIPT.replace("@FAIL@", "none"))
        path.chmod(mode)
        return path

    def refused(path, rule):
        expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_command",
                     str(path).encode())
        assert rule in m.log.read_text(), rule
        expect_errno(errno.ENODATA, os.getxattr, m.p("db"), "user.sm.rotation_command")

    refused("relative/rotate.sh", "absolute path")
    world = m.dir / "world"
    world.mkdir()
    world.chmod(0o777)
    refused(script(world / "rotate.sh"), f"{world} is writable by its group or others")
    group = script(m.dir / "group.sh", 0o775)
    refused(group, f"{group} is writable by its group or others")
    theirs = script(m.dir / "theirs.sh")
    os.chown(theirs, 1000, 1000)
    refused(theirs, f"{theirs} is owned by uid 1000, not by root or the mounting user")
    refused(script(m.dir / "plain.sh", 0o644), "is not an executable file")
    # A symbolic link is stored resolved: each run checks what it runs.
    link = m.dir / "link.sh"
    link.symlink_to(command(m))
    os.setxattr(m.p("db"), "user.sm.rotation_command", str(link).encode())
    assert attr(m.p("db"), "user.sm.rotation_command") == command(m)


def test_command_made_writable_after_it_was_set_does_not_run(mounted):
    m = mounted
    write_file(m.p("db"), json.dumps(DB))
    cmd = command(m)
    os.setxattr(m.p("db"), "user.sm.rotation_command", cmd.encode())
    current = attr(m.p("db"), "user.sm.version_id")
    os.chmod(cmd, 0o775)
    r = sfs("rotate", m.p("db"))
    assert r.returncode == 1 and "the rotation command is refused" in r.stdout
    status = attr(m.p("db"), "user.sm.rotation_status")
    assert status == (f"failed createSecret: the rotation command is refused: {cmd} is "
                      "writable by its group or others")
    log = m.log.read_text()
    assert "db: rotation refused before createSecret: user.sm.rotation_command: " in log
    assert "step createSecret for db" not in log  # it never ran
    assert attr(m.p("db"), "user.sm.version_id") == current
    # A folder above it made writable by others: the same.
    os.chmod(cmd, 0o755)
    os.chmod(m.dir, 0o777)
    try:
        assert sfs("rotate", m.p("db")).returncode == 1
        assert f"{m.dir} is writable by its group or others" in \
            attr(m.p("db"), "user.sm.rotation_status")
    finally:
        os.chmod(m.dir, 0o755)
    assert sfs("rotate", m.p("db")).returncode == 0


def test_rotation_dir(make_mount):
    m = make_mount()
    write_file(m.p("db"), json.dumps(DB))
    outside = command(m)
    os.setxattr(m.p("db"), "user.sm.rotation_command", outside.encode())
    commands = m.dir / "commands"
    commands.mkdir(mode=0o755)
    inside = commands / "rotate.sh"
    inside.write_text(SCRIPT.replace("@FAIL@", "none"))
    inside.chmod(0o755)
    m.remount(rotation_dir=str(commands))
    # A command set before (or written into the store) outside DIR: not run.
    assert sfs("rotate", m.p("db")).returncode == 1
    assert attr(m.p("db"), "user.sm.rotation_status").endswith(
        f"{outside} is outside rotation_dir={commands}")
    # Refused when set: outside DIR, or a link inside DIR that leads out.
    expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_command",
                 outside.encode())
    (commands / "link.sh").symlink_to(outside)
    expect_errno(errno.EINVAL, os.setxattr, m.p("db"), "user.sm.rotation_command",
                 str(commands / "link.sh").encode())
    os.setxattr(m.p("db"), "user.sm.rotation_command", str(inside).encode())
    assert sfs("rotate", m.p("db")).returncode == 0
    m.unmount()
    r = sfs("mount", m.store, m.mnt, "-o", m.option_string({"rotation_dir": m.dir / "nope"}))
    assert r.returncode == 1 and "rotation_dir=" in r.stderr
