"""RotateSecret end to end with scripts/rotate-postgres against a real,
throwaway PostgreSQL server (the single-user strategy, docs/rotation.md).

The server runs as an unprivileged user (initdb and pg_ctl refuse root) from
a temporary directory, listening on a Unix socket only; the database secret's
"host" is the socket's directory. Statement logging is on, so the tests can
show that no password reaches the server's log in clear.
"""

import errno
import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import REPO, expect_errno, read_file, run, sfs, write_file

SCRIPT = REPO / "scripts" / "rotate-postgres"
PSQL = shutil.which("psql") or "/usr/bin/psql"
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXCLUDED = set("/@\"'\\")  # the AWS templates' default ExcludeCharacters


def pg_bindir():
    """Debian's server binaries, newest version first; None if absent."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                    reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


BINDIR = pg_bindir()
pytestmark = pytest.mark.skipif(
    BINDIR is None or not os.access(PSQL, os.X_OK),
    reason="PostgreSQL is not installed (Debian packages postgresql and "
           "postgresql-client; scripts/install-deps installs them)")


def server_user():
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    pytest.skip("no unprivileged user to run the PostgreSQL server as")


def lit(s):
    """An SQL string literal (standard_conforming_strings is on)."""
    return "'" + s.replace("'", "''") + "'"


def pgpass_line(password):
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


class PgServer:
    """initdb + pg_ctl as an unprivileged user, in a temporary directory;
    stop() stops the server and removes everything, whatever happened."""

    def __init__(self):
        self.user = server_user()
        self.base = Path(tempfile.mkdtemp(prefix="secretsfs-pg-", dir="/tmp"))
        os.chmod(self.base, 0o755)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self.started = False
        for d in (self.data, self.sock):
            d.mkdir(mode=0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.sock, 0o755)
        self.log.touch()
        os.chown(self.log, self.user.pw_uid, self.user.pw_gid)

    def as_user(self, *args, input=None, timeout=120):
        env = {"PATH": CLEAN_PATH, "HOME": str(self.base), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(
            ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
             "--clear-groups", *map(str, args)],
            input=input, capture_output=True, text=True, timeout=timeout, env=env,
            cwd=self.base)

    def start(self):
        r = self.as_user(f"{BINDIR}/initdb", "-D", self.data, "-U", self.user.pw_name,
                         "--auth-local=peer", "--auth-host=reject", "-E", "UTF8",
                         "--locale=C", "--no-sync", "--no-instructions")
        assert r.returncode == 0, f"initdb failed: {r.stdout}{r.stderr}"
        # The superuser by peer (its OS user), everyone else by password.
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {self.user.pw_name} peer\n"
                       "local all all scram-sha-256\n")
        os.chown(hba, self.user.pw_uid, self.user.pw_gid)
        opts = (f"-k {self.sock} -h '' -c listen_addresses='' -c fsync=off "
                "-c log_statement=all -c log_connections=on")
        r = self.as_user(f"{BINDIR}/pg_ctl", "-D", self.data, "-l", self.log, "-w",
                         "-t", "60", "-o", opts, "start")
        self.started = r.returncode == 0
        assert self.started, f"pg_ctl start failed: {r.stdout}{r.stderr}{self.server_log()}"

    def stop(self):
        try:
            if self.started:
                r = self.as_user(f"{BINDIR}/pg_ctl", "-D", self.data, "-w", "-t", "30",
                                 "-m", "fast", "stop")
                if r.returncode != 0:
                    self.as_user(f"{BINDIR}/pg_ctl", "-D", self.data, "-m", "immediate",
                                 "stop")
                self.started = False
        finally:
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # our own postmaster, if pg_ctl could not stop it
                try:
                    os.kill(int(pid_file.read_text().split()[0]), 9)
                except (OSError, ValueError, IndexError):
                    pass
            shutil.rmtree(self.base, ignore_errors=True)

    def server_log(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def admin(self, sql):
        """SQL as the superuser; the text goes on psql's standard input (never
        on a command line), with statement logging off for this session so
        the passwords the tests set stay out of the server's log."""
        r = self.as_user(PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                         "-h", self.sock, "-U", self.user.pw_name, "-d", "postgres", "-f", "-",
                         input="SET log_statement = 'none';\n" + sql)
        assert r.returncode == 0, f"psql failed: {r.stderr}"
        return r.stdout

    def make_role(self, name, password):
        self.admin(f'CREATE ROLE "{name}" LOGIN PASSWORD {lit(password)};\n'
                   f'CREATE DATABASE "{name}db" OWNER "{name}";\n')

    def set_password(self, name, password):
        self.admin(f'ALTER ROLE "{name}" PASSWORD {lit(password)};\n')

    def can_login(self, user, password, dbname=None):
        """Does user/password log in? The password goes in a PGPASSFILE."""
        fd, passfile = tempfile.mkstemp(prefix="secretsfs-pgpass-", dir="/dev/shm"
                                        if os.access("/dev/shm", os.W_OK) else None)
        try:
            os.write(fd, pgpass_line(password).encode())
            os.close(fd)
            env = {"PATH": CLEAN_PATH, "HOME": "/", "PGPASSFILE": passfile}
            r = subprocess.run([PSQL, "-X", "-w", "-q", "-A", "-t", "-h", str(self.sock),
                                "-U", user, "-d", dbname or f"{user}db", "-c", "SELECT 1"],
                               capture_output=True, text=True, timeout=60, env=env)
            if r.returncode == 0:
                assert r.stdout.strip() == "1"
                return True
            assert "password authentication failed" in r.stderr, r.stderr
            return False
        finally:
            os.unlink(passfile)

    def secret(self, user, password):
        """The database secret's JSON (reference §10), port a number."""
        return {"engine": "postgres", "host": str(self.sock), "username": user,
                "password": password, "dbname": f"{user}db", "port": 5432}


@pytest.fixture(scope="module")
def pg():
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ helpers

def new_password():
    """A password with the characters quoting gets wrong: ' \\ : " $ space;
    shorter than the new ones, so that a stale file size would cut a read."""
    return "I'\\:\" $" + secrets.token_hex(5)


def attr(path, name):
    return os.getxattr(path, name).decode()


def label(path, name):
    try:
        return attr(path, "user.sm.stage." + name)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def strace_works():
    if not shutil.which("strace"):
        return False
    r = run(["strace", "-f", "-qq", "-o", "/dev/null", "true"])
    return r.returncode == 0


def wrapper(m, name, body):
    """An executable rotation command in the mount's directory."""
    path = m.dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def traced_command(m):
    """The real script under strace (execve with argv and environment of
    every process it starts, strings in hex), or the script itself."""
    if not strace_works():
        return str(SCRIPT), None
    trace_dir = m.dir / "trace"
    trace_dir.mkdir()
    cmd = wrapper(m, "traced-rotate-postgres",
                  f'exec strace -f -qq -v -xx -s 65536 -e trace=execve '
                  f'-o "{trace_dir}/$1.trace" "{SCRIPT}" "$@"\n')
    return cmd, trace_dir


class ProcWatch:
    """Gathers the command line and environment of every process seen in
    /proc while it runs: a second net beside strace (and the only one
    without it). Short-lived processes may be missed; none is invented."""

    def __init__(self):
        self.seen = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self):
        me = str(os.getpid())
        while not self.done.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{pid}/{what}", "rb") as fh:
                            self.seen.add(fh.read())
                    except OSError:
                        pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    def text(self):
        return b"\n".join(self.seen)


def hexform(s):
    return "".join("\\x%02x" % b for b in s.encode())


def leftover_tmpdirs():
    return set(glob.glob("/dev/shm/secretsfs-rotate.*") + glob.glob("/tmp/secretsfs-rotate.*"))


def assert_not_in_log(m, *values):
    log = m.read_log()
    assert b"rotation createSecret" in log, "the command's output is not in the log"
    for v in values:
        assert v.encode() not in log, "a value is in the daemon's log"


def store_secret(m, name, value):
    """Writes the JSON (bytes kept, to compare) and returns them."""
    raw = json.dumps(value).encode()
    parent = m.p(name).parent
    parent.mkdir(parents=True, exist_ok=True)
    write_file(m.p(name), raw)
    return raw


# -------------------------------------------------------------------- tests

def test_rotation_changes_the_password(make_mount, pg):
    m = make_mount()
    old_pw = new_password()
    pg.make_role("app", old_pw)
    name = "prod/db/app"
    old_raw = store_secret(m, name, pg.secret("app", old_pw))
    f = m.p(name)
    old_version = attr(f, "user.sm.version_id")
    cmd, trace_dir = traced_command(m)
    os.setxattr(f, "user.sm.rotation_command", cmd.encode())
    os.setxattr(f, "user.sm.rotation_days", b"30")
    before_tmp = leftover_tmpdirs()

    with ProcWatch() as watch:
        r = sfs("rotate", f, timeout=120)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{m.read_log().decode()}"
    assert "succeeded" in r.stdout

    # AWSCURRENT: the same JSON, key order kept, with a new password.
    new = json.loads(read_file(f))
    old = json.loads(old_raw)
    new_pw = new["password"]
    assert list(new) == list(old)
    assert {k: v for k, v in new.items() if k != "password"} == \
        {k: v for k, v in old.items() if k != "password"}
    assert new_pw != old_pw and len(new_pw) == 32 and not EXCLUDED & set(new_pw)
    new_version = attr(f, "user.sm.stage.AWSCURRENT")
    assert new_version != old_version
    assert os.path.exists(m.p(f".versions/{name}/{new_version}"))

    # AWSPREVIOUS: the old value, byte for byte; AWSPENDING gone.
    assert label(f, "AWSPREVIOUS") == old_version
    assert read_file(m.p(f".stages/AWSPREVIOUS/{name}")) == old_raw
    assert label(f, "AWSPENDING") is None
    assert attr(f, "user.sm.rotation_status").startswith("succeeded ")
    d = json.loads(attr(f, "user.sm.describe"))
    assert d["RotationEnabled"] is True and "LastRotatedDate" in d

    # The database: the new password logs in, the old one no longer does.
    assert pg.can_login("app", new_pw)
    assert not pg.can_login("app", old_pw)

    # No value in the daemon's log, the server's log (ALTER ROLE is logged,
    # with a SCRAM verifier), or on any command line or environment.
    assert_not_in_log(m, new_pw, old_pw)
    log = m.read_log().decode()
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert f"rotation step {step}" in log
    server_log = pg.server_log()
    assert 'ALTER ROLE "app" WITH PASSWORD \'SCRAM-SHA-256$' in server_log
    assert new_pw not in server_log and old_pw not in server_log
    seen = watch.text()
    assert b"rotate-postgres" in seen  # the watch saw the command
    for v in (new_pw, old_pw):
        assert v.encode() not in seen, "a value was on a command line or in an environment"
    if trace_dir is not None:
        traces = {p.name: p.read_text() for p in trace_dir.iterdir()}
        assert len(traces) == 4
        execs = "".join(traces.values())
        assert "execve(" in execs and hexform("psql") in execs  # the trace works
        for v in (new_pw, old_pw, json.dumps(new), old_raw.decode()):
            assert hexform(v) not in execs, "a value was on a command line or in an environment"
    # The private temporary files are gone.
    assert leftover_tmpdirs() <= before_tmp


def test_failed_rotation_keeps_the_old_password(make_mount, pg):
    m = make_mount()
    old_pw = new_password()
    pg.make_role("app_fail", old_pw)
    name = "app-fail"
    old_raw = store_secret(m, name, pg.secret("app_fail", old_pw))
    f = m.p(name)
    current = attr(f, "user.sm.version_id")
    # setSecret does nothing (as if it had been lost): testSecret, the real
    # one, finds that the pending password does not log in.
    broken = wrapper(m, "rotate-no-set",
                     f'[ "$1" = setSecret ] && {{ echo "setSecret skipped"; exit 0; }}\n'
                     f'exec "{SCRIPT}" "$@"\n')
    os.setxattr(f, "user.sm.rotation_command", broken.encode())

    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 1
    assert "failed testSecret" in r.stdout, r.stdout
    assert attr(f, "user.sm.rotation_status").startswith("failed testSecret")

    # AWSCURRENT did not move; the old password is still the database's.
    assert label(f, "AWSCURRENT") == current
    assert read_file(f) == old_raw
    assert pg.can_login("app_fail", old_pw)
    pending = label(f, "AWSPENDING")
    assert pending and pending != current
    pending_pw = json.loads(read_file(m.p(f".versions/{name}/{pending}")))["password"]
    assert pending_pw != old_pw
    assert not pg.can_login("app_fail", pending_pw)
    assert_not_in_log(m, old_pw, pending_pw)
    assert "the AWSPENDING credentials do not log in" in m.read_log().decode()

    # AWSPENDING is stuck on a version that is not current: refused.
    os.setxattr(f, "user.sm.rotation_command", str(SCRIPT).encode())
    expect_errno(errno.EBUSY, os.setxattr, f, "user.sm.rotate", b"now")
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 1 and "AWSPENDING" in r.stderr, r.stderr
    assert label(f, "AWSCURRENT") == current

    # Recovery: remove the label, rotate again.
    os.removexattr(f, "user.sm.stage.AWSPENDING")
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{m.read_log().decode()}"
    new_pw = json.loads(read_file(f))["password"]
    assert new_pw not in (old_pw, pending_pw)
    assert pg.can_login("app_fail", new_pw)
    assert not pg.can_login("app_fail", old_pw)
    assert label(f, "AWSPREVIOUS") == current
    assert read_file(m.p(f".stages/AWSPREVIOUS/{name}")) == old_raw
    assert_not_in_log(m, old_pw, pending_pw, new_pw)


def test_failure_after_setsecret_is_recovered_by_promoting_pending(make_mount, pg):
    """testSecret fails after setSecret changed the password: the database
    has the AWSPENDING password, AWSCURRENT the old one. Moving AWSCURRENT
    to the pending version (docs/rotation.md) makes them agree again."""
    m = make_mount()
    old_pw = new_password()
    pg.make_role("app_half", old_pw)
    name = "app-half"
    store_secret(m, name, pg.secret("app_half", old_pw))
    f = m.p(name)
    current = attr(f, "user.sm.version_id")
    broken = wrapper(m, "rotate-test-fails",
                     f'[ "$1" = testSecret ] && {{ echo "testSecret forced to fail"; exit 1; }}\n'
                     f'exec "{SCRIPT}" "$@"\n')
    os.setxattr(f, "user.sm.rotation_command", broken.encode())
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 1 and "failed testSecret" in r.stdout, r.stdout
    assert label(f, "AWSCURRENT") == current
    pending = label(f, "AWSPENDING")
    pending_pw = json.loads(read_file(m.p(f".versions/{name}/{pending}")))["password"]
    assert pg.can_login("app_half", pending_pw)
    assert not pg.can_login("app_half", old_pw)

    os.setxattr(f, "user.sm.stage.AWSCURRENT", pending.encode())
    os.removexattr(f, "user.sm.stage.AWSPENDING")
    assert json.loads(read_file(f))["password"] == pending_pw
    assert label(f, "AWSPREVIOUS") == current
    # And the next rotation works from there.
    os.setxattr(f, "user.sm.rotation_command", str(SCRIPT).encode())
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{m.read_log().decode()}"
    assert pg.can_login("app_half", json.loads(read_file(f))["password"])
    assert not pg.can_login("app_half", pending_pw)
    assert_not_in_log(m, old_pw, pending_pw)


def test_setsecret_falls_back_to_previous(make_mount, pg):
    """The database still has the AWSPREVIOUS password (the current value was
    written wrong): setSecret logs in with AWSPREVIOUS and sets the new one."""
    m = make_mount()
    db_pw, wrong_pw = new_password(), new_password()
    pg.make_role("app_prev", db_pw)
    name = "app-prev"
    store_secret(m, name, pg.secret("app_prev", db_pw))
    store_secret(m, name, pg.secret("app_prev", wrong_pw))
    f = m.p(name)
    os.setxattr(f, "user.sm.rotation_command", str(SCRIPT).encode())
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{m.read_log().decode()}"
    new_pw = json.loads(read_file(f))["password"]
    assert pg.can_login("app_prev", new_pw)
    assert not pg.can_login("app_prev", db_pw)
    log = m.read_log().decode()
    assert "the AWSCURRENT credentials do not log in" in log
    assert "logged in with the AWSPREVIOUS credentials" in log
    assert_not_in_log(m, db_pw, wrong_pw, new_pw)


def test_setsecret_refuses_another_user(make_mount, pg):
    """A pending value for another user is not applied with the current
    user's login, and the rotation stops at setSecret."""
    m = make_mount()
    pw = new_password()
    pg.make_role("app_other", pw)
    name = "app-other"
    store_secret(m, name, pg.secret("app_other", pw))
    f = m.p(name)
    cmd = wrapper(m, "rotate-other-user",
                  'if [ "$1" = createSecret ]; then\n'
                  '  /usr/bin/python3 -c \'import json,sys; d=json.load(open(sys.argv[1]));'
                  ' d["username"]="postgres"; d["password"]="Zz9-" + "x"*28;'
                  ' open(sys.argv[2],"w").write(json.dumps(d))\' '
                  '"$SECRETSFS_CURRENT" "$SECRETSFS_PENDING"; exit\n'
                  'fi\n'
                  f'exec "{SCRIPT}" "$@"\n')
    os.setxattr(f, "user.sm.rotation_command", cmd.encode())
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 1 and "failed setSecret" in r.stdout, r.stdout
    assert "refusing to change another user's password" in m.read_log().decode()
    assert pg.can_login("app_other", pw)


def test_steps_by_hand_are_idempotent(make_mount, pg):
    """The script run as the daemon runs it, each step twice (a retried step
    must do no harm), with the request token set as the daemon sets it."""
    m = make_mount()
    old_pw = new_password()
    pg.make_role("app_hand", old_pw)
    name = "hand/app"
    store_secret(m, name, pg.secret("app_hand", old_pw))
    f = m.p(name)
    token = "d6a1c0de-0000-4000-8000-" + secrets.token_hex(6)
    arn = attr(f, "user.sm.arn")
    os.setxattr(f, "user.sm.client_request_token", token.encode())

    def step(s):
        env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": "/",
               "SECRETSFS_STEP": s, "SECRETSFS_SECRET_ID": arn,
               "SECRETSFS_SECRET_NAME": name, "SECRETSFS_TOKEN": token,
               "SECRETSFS_MOUNT": str(m.mnt), "SECRETSFS_CURRENT": str(f),
               "SECRETSFS_PENDING": str(m.p(f".stages/AWSPENDING/{name}")),
               "SECRETSFS_PREVIOUS": str(m.p(f".stages/AWSPREVIOUS/{name}")),
               "SECRETSFS_EVENT": json.dumps({"Step": s, "SecretId": arn,
                                              "ClientRequestToken": token})}
        r = run([SCRIPT, s], env=env, timeout=120)
        assert r.returncode == 0, f"{s}: {r.stdout}{r.stderr}"
        out = r.stdout + r.stderr
        assert old_pw not in out
        return out

    step("createSecret")
    assert label(f, "AWSPENDING") == token
    pending_raw = read_file(m.p(f".versions/{name}/{token}"))
    assert "nothing to do" in step("createSecret")
    assert read_file(m.p(f".versions/{name}/{token}")) == pending_raw
    pending_pw = json.loads(pending_raw)["password"]

    assert "sent hashed" in step("setSecret")
    assert "already the database's" in step("setSecret")
    step("testSecret")
    assert pg.can_login("app_hand", pending_pw)
    assert not pg.can_login("app_hand", old_pw)
    assert "AWSCURRENT is on version" in step("finishSecret")
    assert label(f, "AWSCURRENT") == token
    assert "already AWSCURRENT" in step("finishSecret")
    assert json.loads(read_file(f))["password"] == pending_pw

    r = run([SCRIPT, "bogusStep"], env={"PATH": CLEAN_PATH})
    assert r.returncode == 2


def test_wrong_engine_stops_at_createsecret(make_mount, pg):
    m = make_mount()
    value = pg.secret("nobody_here", new_password())
    value["engine"] = "mysql"
    store_secret(m, "my", value)
    f = m.p("my")
    current = attr(f, "user.sm.version_id")
    os.setxattr(f, "user.sm.rotation_command", str(SCRIPT).encode())
    r = sfs("rotate", f, timeout=120)
    assert r.returncode == 1 and "failed createSecret" in r.stdout
    assert label(f, "AWSCURRENT") == current and label(f, "AWSPENDING") is None
    assert '"engine" is not postgres' in m.read_log().decode()
