"""Installation and operation: `make install`/`uninstall`, the man page, the
fstab route through mount(8), the systemd unit, and a daemon that dies.

Runs as root without a terminal. Nothing here changes the real system except
test_fstab_mount, which needs /sbin/mount.fuse.secretsfs for mount(8) to find
the helper: it links it to bin/secretsfs for the length of the test, under a
lock, and puts back whatever was there before, even when the test fails.
systemd is not running in CI, so the unit is checked with
`systemd-analyze verify` (when present) and by running its Exec lines the way
systemd would, with $CREDENTIALS_DIRECTORY holding the key.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (BIN, REPO, as_uid, expect_errno, read_file, run, sfs,
                      wait_gone, write_file)

UNIT_SRC = REPO / "scripts" / "systemd" / "secretsfs@.service"
MAN_SRC = REPO / "docs" / "secretsfs.1"
HELPER = Path("/sbin/mount.fuse.secretsfs")
HELPER_LOCK = "/run/lock/secretsfs-test-mount-helper.lock"
# The PATH systemd gives services.
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---------------------------------------------------------------- helpers

def make(*args, **kw):
    """Run make in the repository. `-o all`: install what is built now
    (bin/secretsfs, the binary every other test uses), never rebuild it from
    under a running test session."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return run(["make", "-s", "--no-print-directory", "-C", REPO, "-o", "all",
                *args], env=env, **kw)


def mounts_at(path):
    """Entries of /proc/self/mountinfo at `path` (dead ones included, which
    mountpoint(1) cannot stat): a list of (fstype, source)."""
    path = os.path.realpath(str(path))
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mp = left.split()[4].replace("\\040", " ")
            fstype, source = right.split()[:2]
            if mp == path:
                out.append((fstype, source))
    return out


def detach_all(path):
    """Lazily unmount everything at `path`, dead or alive."""
    for _ in range(10):
        if not mounts_at(path):
            return
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        if mounts_at(path):
            subprocess.run(["fusermount3", "-uz", str(path)],
                           capture_output=True)


def pids_serving(mnt):
    """PIDs of secretsfs daemons (any name: secretsfs, mount.fuse.secretsfs,
    an installed copy) that have `mnt` among their arguments."""
    mnt = str(mnt)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = [a.decode(errors="replace")
                        for a in f.read().split(b"\0") if a]
            exe = os.readlink(f"/proc/{entry}/exe")
        except OSError:
            continue
        if exe.endswith(" (deleted)"):
            exe = exe[:-len(" (deleted)")]
        if os.path.basename(exe) == "secretsfs" and mnt in args[1:]:
            pids.append(int(entry))
    return pids


def wait_for(pred, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def new_store(base):
    """A key file and a store in `base`; returns (store, key)."""
    base = Path(base)
    key, store = base / "master.key", base / "store.tdb"
    r = sfs("keygen", key)
    assert r.returncode == 0, r.stderr
    r = sfs("init", store, "--key-file", key)
    assert r.returncode == 0, r.stderr
    return store, key


DB = {"engine": "postgres", "host": "db.internal", "username": "app",
      "password": "old"}

ROTATE = """#!/bin/sh
# A rotation command without a database: createSecret writes the pending
# value; the other steps only say what they would do.
echo "step $1 for $SECRETSFS_SECRET_NAME as $(id -u)"
[ "$1" = createSecret ] || exit 0
[ "$(getfattr --only-values -n user.sm.stage.AWSPENDING "$SECRETSFS_CURRENT" \\
    2>/dev/null)" = "$SECRETSFS_TOKEN" ] && exit 0
exec /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
d["password"] = "new-" + sys.argv[3][:8]
open(sys.argv[2], "w").write(json.dumps(d))
' "$SECRETSFS_CURRENT" "$SECRETSFS_PENDING" "$SECRETSFS_TOKEN"
"""


def rotation_command(directory):
    path = Path(directory) / "rotate.sh"
    path.write_text(ROTATE)
    os.chmod(path, 0o755)
    return str(path)


ATTR_TIMEOUT = 1.0  # the attribute cache secretsfs asks of the kernel


def wait_dead(mnt, timeout=20.0):
    """Until the mount of a killed daemon answers ENOTCONN. While the
    daemon's threads are still exiting, requests in flight end with
    ECONNABORTED; statfs(2) is never answered from a cache."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.statvfs(mnt)
            err = None
        except OSError as e:
            err = e.errno
        if err == errno.ENOTCONN:
            return
        assert err in (None, errno.ECONNABORTED), os.strerror(err)
        assert time.monotonic() < deadline, "the mount did not die"
        time.sleep(0.05)


def killed(mnt):
    """kill -9 every daemon serving `mnt`, wait until the mount is dead."""
    pids = pids_serving(mnt)
    assert pids, f"no daemon serves {mnt}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        assert wait_gone(pid), f"daemon {pid} survived SIGKILL"
    wait_dead(mnt)


def assert_dead_mount(mnt, name):
    """The mount of a dead daemon: errors, never an empty folder."""
    mnt = Path(mnt)
    assert mounts_at(mnt), "the dead mount was dropped: the folder under it shows"
    expect_errno(errno.ENOTCONN, os.listdir, mnt)
    expect_errno(errno.ENOTCONN, read_file, mnt / name)
    expect_errno(errno.ENOTCONN, os.open, mnt / name, os.O_WRONLY)
    expect_errno(errno.ENOTCONN, os.statvfs, mnt)
    for argv in (["ls", mnt], ["ls", "-la", mnt], ["cat", mnt / name]):
        r = run(argv)
        assert r.returncode != 0 and r.stdout == "", (argv, r.stdout)
        assert "Transport endpoint is not connected" in r.stderr, (argv, r)


@contextlib.contextmanager
def system_helper(target):
    """/sbin/mount.fuse.secretsfs -> target for the duration, under a lock
    (test sessions may run side by side); whatever was there is put back."""
    os.makedirs(os.path.dirname(HELPER_LOCK), exist_ok=True)
    with open(HELPER_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = None
        if os.path.lexists(HELPER):
            saved = HELPER.with_name(f"{HELPER.name}.saved-by-test-{os.getpid()}")
            os.rename(HELPER, saved)
        try:
            os.symlink(target, HELPER)
            yield HELPER
        finally:
            if os.path.lexists(HELPER):
                os.unlink(HELPER)
            if saved is not None:
                os.rename(saved, HELPER)


# ------------------------------------------------------ unit file, parsed

def parse_unit(text):
    """{section: [(key, value), ...]} with systemd's comment and
    continuation rules."""
    sections, cur, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = line[1:-1]
            sections.setdefault(cur, [])
            continue
        assert cur is not None and "=" in line, f"bad unit line: {line!r}"
        k, v = line.split("=", 1)
        sections[cur].append((k.strip(), v.strip()))
    return sections


def values(unit, section, key):
    """All values of key, with systemd's empty assignment resetting the
    list."""
    out = []
    for k, v in unit.get(section, []):
        if k == key:
            if v == "":
                out = []
            else:
                out.append(v)
    return out


def one(unit, section, key):
    vs = values(unit, section, key)
    assert len(vs) == 1, f"{section}.{key}: {vs}"
    return vs[0]


def specifiers(s, instance):
    table = {"i": instance, "I": instance, "%": "%"}
    return re.sub(r"%(.)", lambda m: table[m.group(1)], s)


def expand_exec(line, instance, env):
    """An Exec*= line as systemd runs it: (flags, argv). Handles the prefix
    characters, specifiers, quoting, ${VAR} and $$; anything else in the
    unit fails the test rather than being run wrongly."""
    flags = ""
    while line and line[0] in "-@:+!":
        flags += line[0]
        line = line[1:]
    assert "@" not in flags and ":" not in flags, line
    words = shlex.split(specifiers(line, instance))
    argv = []
    for w in words:
        w = w.replace("$$", "\0")
        assert not re.search(r"\$[A-Za-z_]", w), f"unbraced $VAR in {w!r}"
        w = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                   lambda m: env.get(m.group(1), ""), w)
        argv.append(w.replace("\0", "$"))
    return flags, argv


def env_assignments(value, instance):
    out = {}
    for item in shlex.split(specifiers(value, instance)):
        k, v = item.split("=", 1)
        out[k] = v
    return out


def read_env_file(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = " ".join(shlex.split(v))
    return out


def memlock_bytes(v):
    if v == "infinity":
        return float("inf")
    m = re.fullmatch(r"(\d+)([KMGT]?)", v.split(":")[0])
    assert m, v
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " ")


class Service:
    """Runs a secretsfs@INSTANCE unit's Exec lines the way systemd does,
    with the paths under /etc and /var redirected into a temp dir."""

    def __init__(self, unit_text, instance, base, conf=None, key=None):
        self.unit = parse_unit(unit_text)
        self.instance = instance
        self.base = Path(base)
        self.log = self.base / "journal"
        self.main = None
        svc = "Service"
        env = {"PATH": SERVICE_PATH, "LANG": "C.UTF-8"}
        for v in values(self.unit, svc, "Environment"):
            env.update(env_assignments(v, instance))
        for v in values(self.unit, svc, "EnvironmentFile"):
            optional = v.startswith("-")
            path = specifiers(v.lstrip("-"), instance)
            if path == f"/etc/secretsfs/{instance}.conf" and conf is not None:
                path = conf
            if optional and not os.path.exists(path):
                continue
            env.update(read_env_file(path))
        # LoadCredential=ID:PATH -> $CREDENTIALS_DIRECTORY/ID, 0400.
        creds = self.base / "credentials"
        creds.mkdir(mode=0o700)
        for v in values(self.unit, svc, "LoadCredential"):
            cid, path = specifiers(v, instance).split(":", 1)
            if path == f"/etc/secretsfs/{instance}.key" and key is not None:
                path = key
            shutil.copyfile(path, creds / cid)
            os.chmod(creds / cid, 0o400)
        os.chmod(creds, 0o500)
        env["CREDENTIALS_DIRECTORY"] = str(creds)
        self.env = env
        self.umask = int(one(self.unit, svc, "UMask"), 8) \
            if values(self.unit, svc, "UMask") else 0o022

    def expand(self, key):
        return [expand_exec(v, self.instance, self.env)
                for v in values(self.unit, "Service", key)]

    def sandbox(self, argv):
        """What can be had of the unit's sandbox without systemd: the
        capability bounding set, no_new_privs, the core and memlock
        limits. (The system call filter is checked separately.)"""
        u, svc = self.unit, "Service"
        pre = []
        caps = values(u, svc, "CapabilityBoundingSet")
        if caps and shutil.which("setpriv"):
            names = [c.lower().replace("cap_", "")
                     for c in " ".join(caps).split()]
            pre += ["setpriv", "--bounding-set=-all," +
                    ",".join("+" + n for n in names), "--inh-caps=-all"]
            if values(u, svc, "NoNewPrivileges") == ["yes"]:
                pre.append("--no-new-privs")
        limits = []
        if values(u, svc, "LimitCORE"):
            limits.append("--core=0:0")
        if values(u, svc, "LimitMEMLOCK"):
            want = memlock_bytes(one(u, svc, "LimitMEMLOCK"))
            soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
            if want != float("inf") and (hard == resource.RLIM_INFINITY
                                         or want <= hard):
                limits.append(f"--memlock={int(want)}:{int(want)}")
        if limits:
            pre = ["prlimit", *limits, "--", *pre]
        return pre + argv

    def _popen(self, argv, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        old = os.umask(self.umask)
        try:
            with open(self.log, "ab") as log:
                return subprocess.Popen(argv, env=env, cwd="/",
                                        stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log)
        finally:
            os.umask(old)

    def _run(self, key, extra_env=None, timeout=60):
        for flags, argv in self.expand(key):
            p = self._popen(self.sandbox(argv), extra_env)
            deadline = time.monotonic() + timeout
            while p.poll() is None:
                if self.main is not None:
                    self.main.poll()  # reap a dead daemon, as systemd would
                if time.monotonic() > deadline:
                    p.kill()
                    p.wait()
                    raise AssertionError(f"{key} {argv} ran over {timeout} s: "
                                         f"{self.journal()}")
                time.sleep(0.05)
            if p.returncode != 0 and "-" not in flags:
                return p.returncode, argv
        return 0, None

    def start(self):
        rc, argv = self._run("ExecStartPre")
        assert rc == 0, f"ExecStartPre {argv} failed ({rc}): {self.journal()}"
        (flags, argv), = self.expand("ExecStart")
        self.main = self._popen(self.sandbox(argv))
        rc, argv = self._run("ExecStartPost",
                             {"MAINPID": str(self.main.pid)})
        assert rc == 0, f"ExecStartPost {argv} failed ({rc}): {self.journal()}"
        assert self.main.poll() is None, f"daemon exited: {self.journal()}"

    def stop(self):
        rc, argv = self._run("ExecStop", {"MAINPID": str(self.main.pid)})
        assert rc == 0, f"ExecStop {argv} failed ({rc}): {self.journal()}"
        status = self.main.wait(timeout=20)
        self.main = None
        return status

    def kill9(self):
        self.main.kill()
        self.main.wait(timeout=20)
        self.main = None

    def journal(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def cleanup(self):
        if self.main is not None and self.main.poll() is None:
            mp = self.env.get("MOUNTPOINT")
            if mp:
                subprocess.run(["fusermount3", "-u", mp], capture_output=True)
            try:
                self.main.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.main.kill()
                self.main.wait()
        mp = self.env.get("MOUNTPOINT")
        if mp:
            detach_all(mp)


# ---------------------------------------------------------------- install

def installed_files(root):
    root = Path(root)
    return sorted("/" + str(p.relative_to(root)) for p in root.rglob("*")
                  if not p.is_dir() or p.is_symlink())


@pytest.mark.parametrize("prefix,unitdir", [
    ("/usr/local", "/usr/local/lib/systemd/system"),
    ("/usr", "/usr/lib/systemd/system"),
    ("/opt/secretsfs", None),
])
def test_make_install_and_uninstall(tmpdir_sfs, prefix, unitdir):
    dest = tmpdir_sfs / "dest"
    extra = []
    if unitdir is None:  # another prefix: systemd would not look there
        unitdir = "/etc/systemd/system"
        extra = [f"SYSTEMDUNITDIR={unitdir}"]
    r = make("install", f"DESTDIR={dest}", f"PREFIX={prefix}", *extra)
    assert r.returncode == 0, r.stdout + r.stderr

    binary = f"{prefix}/bin/secretsfs"
    man = f"{prefix}/share/man/man1/secretsfs.1"
    unit = f"{unitdir}/secretsfs@.service"
    helper = "/sbin/mount.fuse.secretsfs"
    assert installed_files(dest) == sorted([binary, man, unit, helper])

    def at(p):
        return dest / p.lstrip("/")

    st = os.lstat(at(binary))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert at(binary).read_bytes() == BIN.read_bytes()
    r = run([at(binary), "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: secretsfs"), r
    r = run([at(binary), "mount", "--help"])
    assert r.returncode == 0 and "key_file=" in r.stdout, r

    # The mount helper: a symlink to the binary, absolute, so it resolves
    # the same under DESTDIR and once installed.
    assert os.path.islink(at(helper))
    assert os.readlink(at(helper)) == binary
    # Run under its helper name (argv[0] mount.fuse.secretsfs): it is
    # `secretsfs mount`, so --help is the mount usage.
    r = subprocess.run(["mount.fuse.secretsfs", "--help"],
                       executable=str(at(binary)), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(
        "usage: secretsfs mount"), r

    st = os.lstat(at(man))
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert at(man).read_bytes() == MAN_SRC.read_bytes()

    st = os.lstat(at(unit))
    assert stat.S_IMODE(st.st_mode) == 0o644
    text = at(unit).read_text()
    assert text == UNIT_SRC.read_text().replace("/usr/local/bin/secretsfs",
                                                binary)
    starts = values(parse_unit(text), "Service", "ExecStart")
    assert len(starts) == 1 and starts[0].split()[0] == binary

    # Installing again over an installation works (ln -sf, install).
    r = make("install", f"DESTDIR={dest}", f"PREFIX={prefix}", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert installed_files(dest) == sorted([binary, man, unit, helper])

    r = make("uninstall", f"DESTDIR={dest}", f"PREFIX={prefix}", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert installed_files(dest) == []
    # And again: nothing to remove is not an error.
    r = make("uninstall", f"DESTDIR={dest}", f"PREFIX={prefix}", *extra)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- man page

@pytest.fixture(scope="module")
def man_text():
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAN")}
    env.update(MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "-l", str(MAN_SRC)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"roff warnings: {r.stderr}"
    # Undo hyphenation at line ends, collapse spaces: easier to search.
    text = re.sub("\u2010\n\\s*", "", r.stdout)
    text = re.sub("-\n\\s*", "-", text)
    return re.sub(r"\s+", " ", text)


def test_man_page_renders(man_text):
    assert man_text.startswith("SECRETSFS(1)")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS",
                    "MOUNT OPTIONS", "THE FILESYSTEM", "EXTENDED ATTRIBUTES",
                    "FSTAB", "SYSTEMD", "INSTALLATION", "WHEN THE DAEMON DIES",
                    "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES",
                    "SEE ALSO"):
        assert f" {section} " in man_text, section


def test_man_page_documents_commands_and_options(man_text):
    """Every command of `secretsfs --help`, and every option of each
    command's --help, appears in the page: a new option without
    documentation fails here."""
    top = sfs("--help").stdout
    commands = sorted(set(re.findall(r"^  ([a-z][a-z-]*) ", top, re.M)))
    assert {"init", "keygen", "mount", "key", "export", "import"} <= set(commands)
    for cmd in commands:
        assert f" {cmd} " in man_text, cmd
        usage = sfs(cmd, "--help").stdout
        for opt in set(re.findall(r"(--[a-z][a-z-]+)", usage)):
            assert opt in man_text, f"{cmd} {opt}"
    for sub in ("create", "list", "disable", "enable"):
        assert f"key {sub}" in man_text, sub
    mount_usage = sfs("mount", "--help").stdout
    opts = set(re.findall(r"-o ([a-z_]+)", mount_usage))
    opts |= set(re.findall(r"\b([a-z_]+)=", mount_usage))
    opts |= {"nosuid", "nodev", "noexec", "noatime", "rw", "auto", "noauto",
             "nofail", "_netdev", "x-", "comment=", "audit_log="}
    for opt in sorted(opts):
        assert opt in man_text, f"mount option {opt}"
    for flag in (" -f ", " -o ", " -d "):
        assert flag in man_text, flag


def test_man_page_documents_views_and_xattrs(man_text):
    for view in (".versions/", ".stages/", ".fields/", ".deleted/"):
        assert view in man_text, view
    compat = (REPO / "docs" / "aws-compat.md").read_text()
    names = set()
    for line in compat.splitlines():  # what is built, not the open issues
        if "open issue" not in line:
            names |= set(re.findall(r"`(user\.(?:sm|tag)\.[a-z_.]*)", line))
    assert len(names) >= 10, names
    names |= {"user.sm.keys", "user.sm.key.create", "user.sm.key.enable",
              "user.sm.key.disable", "user.sm.stage.", "user.tag.",
              "user.sm.rotation_command", "user.sm.rotation_days",
              "user.sm.rotation_schedule", "user.sm.rotation_status",
              "user.sm.rotate"}
    for name in sorted(names):
        assert name in man_text, name
    for e in ("ENOENT", "EEXIST", "EINVAL", "ENOSPC", "EFBIG", "E2BIG",
              "EACCES", "EIO", "ENOTCONN", "EPERM", "EOPNOTSUPP"):
        assert e in man_text, e


def test_man_page_documents_install_paths_and_unit(man_text):
    for s in ("/sbin/mount.fuse.secretsfs", "PREFIX/bin/secretsfs",
              "PREFIX/share/man/man1/secretsfs.1",
              "PREFIX/lib/systemd/system/secretsfs@.service",
              "SYSTEMDUNITDIR", "make uninstall",
              "/var/lib/secretsfs/NAME.tdb", "/run/secretsfs/NAME",
              "/etc/secretsfs/NAME.key", "/etc/secretsfs/NAME.conf",
              "LoadCredential", "fuse.secretsfs", "fusermount3 -u",
              "Restart=on-failure"):
        assert s in man_text, s
    # The defaults the page states are the unit's.
    unit = parse_unit(UNIT_SRC.read_text())
    env = {}
    for v in values(unit, "Service", "Environment"):
        env.update(env_assignments(v, "NAME"))
    assert env["STORE"] == "/var/lib/secretsfs/NAME.tdb"
    assert env["MOUNTPOINT"] == "/run/secretsfs/NAME"
    assert f"(default {env['OPTIONS']})" in man_text
    limit = one(unit, "Service", "LimitMEMLOCK")
    assert f"LimitMEMLOCK={limit}" in man_text


# ---------------------------------------------------------------- the unit

# Each of these gives the service its own mount namespace, where the FUSE
# mount would be invisible to the rest of the system (systemd 252's
# exec_needs_mount_namespace()).
NAMESPACING = ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
               "PrivateNetwork", "PrivateIPC", "PrivateUsers",
               "ProtectKernelTunables", "ProtectKernelModules",
               "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
               "ProcSubset", "ProtectHostname", "ReadOnlyPaths",
               "ReadWritePaths", "InaccessiblePaths", "ExecPaths",
               "NoExecPaths", "TemporaryFileSystem", "BindPaths",
               "BindReadOnlyPaths", "RootDirectory", "RootImage",
               "MountAPIVFS", "MountImages", "ExtensionImages",
               "ExtensionDirectories", "LogNamespace", "DynamicUser",
               "RuntimeDirectory", "StateDirectory", "CacheDirectory",
               "LogsDirectory", "ConfigurationDirectory")


def test_unit_file_settings():
    unit = parse_unit(UNIT_SRC.read_text())
    svc = "Service"
    assert one(unit, svc, "Type") == "simple"
    assert one(unit, svc, "LoadCredential") == "key:/etc/secretsfs/%i.key"
    assert one(unit, svc, "Restart") == "on-failure"
    assert one(unit, svc, "LimitCORE") == "0"
    assert memlock_bytes(one(unit, svc, "LimitMEMLOCK")) >= 32 << 20
    assert one(unit, "Install", "WantedBy") == "multi-user.target"

    env = {"CREDENTIALS_DIRECTORY": "/run/credentials/secretsfs@x.service"}
    for v in values(unit, svc, "Environment"):
        env.update(env_assignments(v, "x"))
    (flags, argv), = [expand_exec(v, "x", env)
                      for v in values(unit, svc, "ExecStart")]
    assert flags == ""
    assert argv[:2] == ["/usr/local/bin/secretsfs", "mount"]
    assert "-f" in argv
    assert argv[argv.index("-f") + 1:][:2] == ["/var/lib/secretsfs/x.tdb",
                                               "/run/secretsfs/x"]
    o = ",".join(argv[i + 1] for i, a in enumerate(argv) if a == "-o")
    assert "key_file=/run/credentials/secretsfs@x.service/key" in o.split(",")
    assert "allow_other" in o.split(",")

    pre = [expand_exec(v, "x", env) for v in values(unit, svc, "ExecStartPre")]
    assert ("-", ["/bin/fusermount3", "-uz", "/run/secretsfs/x"]) == pre[0]
    stop = [expand_exec(v, "x", env) for v in values(unit, svc, "ExecStop")]
    assert stop == [("", ["/bin/fusermount3", "-u", "/run/secretsfs/x"])]

    # FUSE needs /dev/fuse, CAP_SYS_ADMIN, and the host's mount namespace.
    for key in NAMESPACING:
        assert not values(unit, svc, key) or \
            values(unit, svc, key) == ["no"], f"{key}= hides the mount"
    assert values(unit, svc, "MountFlags") in ([], ["shared"])
    caps = " ".join(values(unit, svc, "CapabilityBoundingSet")).split()
    assert not caps or "CAP_SYS_ADMIN" in caps
    if values(unit, svc, "DevicePolicy") not in ([], ["auto"]):
        assert "/dev/fuse rw" in values(unit, svc, "DeviceAllow")


def test_unit_systemd_analyze_verify(tmpdir_sfs):
    """systemd-analyze verify on the unit as installed, its ExecStart
    pointed at the installed binary and man at the installed page."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (package systemd)")
    dest = tmpdir_sfs / "dest"
    r = make("install", f"DESTDIR={dest}", "PREFIX=/usr/local")
    assert r.returncode == 0, r.stdout + r.stderr
    installed = dest / "usr/local/lib/systemd/system/secretsfs@.service"
    units = tmpdir_sfs / "units"
    units.mkdir()
    text = installed.read_text().replace(
        "/usr/local/bin/secretsfs", str(dest / "usr/local/bin/secretsfs"))
    for name in ("secretsfs@.service", "secretsfs@main.service"):
        (units / name).write_text(text)
        env = dict(os.environ,
                   MANPATH=str(dest / "usr/local/share/man"),
                   SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
        r = run(["systemd-analyze", "verify", units / name], env=env)
        ours = [line for line in r.stderr.splitlines() if "secretsfs" in line]
        assert r.returncode == 0 and not ours, r.stderr


def test_unit_syscall_filter_allows_the_daemon(tmpdir_sfs):
    """Every system call the daemon and the Exec helpers make during a
    mount, some work and an unmount is in the unit's SystemCallFilter (an
    allow list; systemd would answer others with EPERM)."""
    for tool in ("strace", "systemd-analyze"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    unit = parse_unit(UNIT_SRC.read_text())
    filters = " ".join(values(unit, "Service", "SystemCallFilter")).split()
    if not filters:
        pytest.skip("the unit has no SystemCallFilter")
    assert not any(f.startswith("~") for f in filters), "deny lists: extend me"

    def expand(group, seen):
        r = run(["systemd-analyze", "syscall-filter", group])
        assert r.returncode == 0, r.stderr
        out = set()
        for line in r.stdout.splitlines()[1:]:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                if line not in seen:
                    seen.add(line)
                    out |= expand(line, seen)
            else:
                out.add(line)
        return out

    allowed = set()
    for f in filters:
        allowed |= expand(f, {f}) if f.startswith("@") else {f}

    store, key = new_store(tmpdir_sfs)
    mnt = tmpdir_sfs / "mnt"
    trace = tmpdir_sfs / "trace"
    errlog = tmpdir_sfs / "stderr"
    mnt.mkdir()
    with open(errlog, "wb") as err:
        p = subprocess.Popen(["strace", "-f", "-qq", "-o", str(trace),
                              str(BIN), "mount", "-f", str(store), str(mnt),
                              "-o", f"key_file={key}", "-o",
                              "allow_other,nosuid,nodev,noexec"],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert wait_for(lambda: mounts_at(mnt)), errlog.read_text()
        write_file(mnt / "a", b"one")
        write_file(mnt / "a", b"two")
        os.mkdir(mnt / "d")
        os.rename(mnt / "a", mnt / "d" / "a")
        os.setxattr(mnt / "d" / "a", "user.tag.t", b"v")
        os.listxattr(mnt / "d" / "a")
        assert read_file(mnt / "d" / "a") == b"two"
        os.listdir(mnt / ".versions" / "d" / "a")
        os.unlink(mnt / "d" / "a")
        os.listdir(mnt / ".deleted")
        assert sfs("key", "create", mnt, "alias/t").returncode == 0
        # A rotation: the command and what it runs are the daemon's
        # children, under the same filter.
        write_file(mnt / "db", json.dumps(DB))
        os.setxattr(mnt / "db", "user.sm.rotation_command",
                    rotation_command(tmpdir_sfs).encode())
        r = sfs("rotate", mnt / "db")
        assert r.returncode == 0, (r.stdout, r.stderr, errlog.read_text())
        r = run(["strace", "-f", "-qq", "-o", f"{trace}.stop",
                 "/bin/fusermount3", "-u", mnt])
        assert r.returncode == 0, r.stderr
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            detach_all(mnt)
            p.kill()
            p.wait()
        detach_all(mnt)
    used = set()
    for f in tmpdir_sfs.glob("trace*"):
        used |= set(re.findall(r"^\d+\s+([a-z_0-9]+)\(", f.read_text(), re.M))
    assert {"mount", "read", "writev"} <= used, sorted(used)
    missing = sorted(used - allowed)
    assert not missing, f"denied by SystemCallFilter={' '.join(filters)}: {missing}"


@pytest.fixture
def service(tmpdir_sfs):
    """A secretsfs@INSTANCE run from the unit as `make install` installs it
    (into a temp DESTDIR, its ExecStart pointed there): the store and key in
    a temp dir stand for /var/lib/secretsfs/INSTANCE.tdb and
    /etc/secretsfs/INSTANCE.key, and a temp INSTANCE.conf moves the store
    and mount point there."""
    made = []
    dest = tmpdir_sfs / "dest"
    r = make("install", f"DESTDIR={dest}", "PREFIX=/usr/local")
    assert r.returncode == 0, r.stdout + r.stderr
    unit_text = (dest / "usr/local/lib/systemd/system/secretsfs@.service") \
        .read_text().replace("/usr/local/bin/secretsfs",
                             str(dest / "usr/local/bin/secretsfs"))

    def factory(store, key, extra_conf=""):
        instance = f"pytest{os.getpid()}x{len(made)}"
        mnt = tmpdir_sfs / f"run-{len(made)}" / instance
        conf = tmpdir_sfs / f"{instance}.conf"
        conf.write_text(f"# as /etc/secretsfs/{instance}.conf\n"
                        f"STORE={store}\nMOUNTPOINT={mnt}\n{extra_conf}")
        base = tmpdir_sfs / f"svc-{len(made)}"
        base.mkdir()
        s = Service(unit_text, instance, base=base, conf=conf, key=key)
        made.append(s)
        return s, mnt

    yield factory
    for s in made:
        s.cleanup()


def test_unit_runs_mounts_and_stops(tmpdir_sfs, service):
    store, key = new_store(tmpdir_sfs)
    svc, mnt = service(store, key)
    assert svc.env["CREDENTIALS_DIRECTORY"]
    svc.start()
    # Active: mounted with the unit's options, as the ExecStartPost waited.
    ((fstype, source),) = mounts_at(mnt)
    assert (fstype, source) == ("fuse.secretsfs", str(store))
    r = run(["findmnt", "-rn", "-o", "OPTIONS", "-M", mnt])
    opts = r.stdout.strip().split(",")
    for o in ("nosuid", "nodev", "noexec", "allow_other",
              "default_permissions"):
        assert o in opts, (o, opts)
    # Only a path to the credential on the command line, never the key.
    argv = open(f"/proc/{svc.main.pid}/cmdline", "rb").read().split(b"\0")
    keyhex = key.read_bytes().strip()
    assert all(keyhex not in a for a in argv)
    assert any(a.endswith(b"/credentials/key") for a in argv)
    status = open(f"/proc/{svc.main.pid}/status").read()
    if shutil.which("setpriv"):
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)

    write_file(mnt / "app", b"hunter2")
    os.mkdir(mnt / "prod")
    write_file(mnt / "prod" / "db", b'{"password": "p"}')
    assert read_file(mnt / "app") == b"hunter2"
    assert read_file(mnt / ".fields" / "prod" / "db" / "password") == b"p"
    # allow_other: another user may enter (the kernel checks the modes).
    r = as_uid(1000, "ls", mnt)
    assert r.returncode == 0 and r.stdout.split() == ["app", "prod"], r
    r = as_uid(1000, "cat", mnt / "app")
    assert r.returncode != 0 and "Permission denied" in r.stderr

    # A rotation command runs in the unit's sandbox, as the daemon's child,
    # and reads and writes a secret that another user owns, mode 0600.
    os.mkdir(mnt / "team")
    os.chown(mnt / "team", 1000, 1000)
    db = mnt / "team" / "db"
    r = as_uid(1000, "sh", "-c", 'umask 077; cat > "$0"', db,
               input=json.dumps(DB))
    assert r.returncode == 0, r.stderr
    st = os.stat(db)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1000, 0o600)
    os.setxattr(db, "user.sm.rotation_command",
                rotation_command(tmpdir_sfs).encode())
    r = sfs("rotate", db)
    assert r.returncode == 0 and "succeeded" in r.stdout, (r, svc.journal())
    assert json.loads(read_file(db))["password"].startswith("new-")
    assert json.loads(read_file(mnt / ".stages/AWSPREVIOUS/team/db")) == DB
    assert "step finishSecret for team/db as 0" in svc.journal()

    assert svc.stop() == 0, svc.journal()
    assert not mounts_at(mnt)
    assert "mounted at" in svc.journal()

    # Started again (a reboot, systemctl restart): the secrets are there.
    svc.start()
    assert read_file(mnt / "app") == b"hunter2"
    assert svc.stop() == 0, svc.journal()
    assert not mounts_at(mnt)


def test_unit_restart_after_kill9(tmpdir_sfs, service):
    """Restart=on-failure after kill -9: until then ENOTCONN, never an empty
    folder; the ExecStartPre clears the dead mount and the new daemon
    serves the secrets."""
    store, key = new_store(tmpdir_sfs)
    svc, mnt = service(store, key)
    svc.start()
    write_file(mnt / "app", b"v1")
    svc.kill9()
    wait_dead(mnt)
    assert_dead_mount(mnt, "app")
    time.sleep(2)  # RestartSec=
    svc.start()
    assert mounts_at(mnt) == [("fuse.secretsfs", str(store))]
    assert os.listdir(mnt) == ["app"]
    assert read_file(mnt / "app") == b"v1"
    assert svc.stop() == 0, svc.journal()
    assert not mounts_at(mnt)


def test_unit_with_passphrase_and_options(tmpdir_sfs, service):
    """UNLOCK=passphrase_file and OPTIONS= in /etc/secretsfs/NAME.conf."""
    pw = tmpdir_sfs / "pass"
    pw.write_text("correct horse battery staple\n")
    os.chmod(pw, 0o600)
    store = tmpdir_sfs / "store.tdb"
    r = sfs("init", store, "--passphrase-file", pw)
    assert r.returncode == 0, r.stderr
    svc, mnt = service(store, pw, "UNLOCK=passphrase_file\nOPTIONS=ro\n")
    svc.start()
    r = run(["findmnt", "-rn", "-o", "OPTIONS", "-M", mnt])
    assert "ro" in r.stdout.strip().split(","), r.stdout
    assert "allow_other" not in r.stdout
    expect_errno(errno.EROFS, write_file, mnt / "x", b"y")
    assert svc.stop() == 0, svc.journal()


# ---------------------------------------------------------------- fstab

def test_fstab_mount(tmpdir_sfs):
    """`mount -T FSTAB MNT` with type fuse.secretsfs runs
    /sbin/mount.fuse.secretsfs; `umount MNT` unmounts and the daemon
    exits."""
    store, key = new_store(tmpdir_sfs)
    mnt = tmpdir_sfs / "mnt"
    mnt.mkdir()
    fstab = tmpdir_sfs / "fstab"
    fstab.write_text(
        "# test fstab\n"
        f"{store} {mnt} fuse.secretsfs key_file={key},allow_other,nosuid,"
        "nodev,noauto,nofail,_netdev,x-systemd.requires=x.service,"
        "comment=test,defaults 0 0\n")
    try:
        with system_helper(BIN):
            r = run(["mount", "-T", fstab, mnt])
            assert r.returncode == 0, r.stderr
            assert mounts_at(mnt) == [("fuse.secretsfs", str(store))]
            (pid,) = pids_serving(mnt)

            write_file(mnt / "db", b"hunter2")
            assert read_file(mnt / "db") == b"hunter2"
            write_file(mnt / "db", b"hunter3")
            assert read_file(mnt / "db") == b"hunter3"
            assert len(os.listdir(mnt / ".versions" / "db")) == 2
            r = as_uid(1000, "ls", mnt)
            assert r.returncode == 0 and r.stdout.split() == ["db"], r
            r = run(["findmnt", "-rn", "-o", "OPTIONS", "-M", mnt])
            assert {"nosuid", "nodev", "allow_other"} <= \
                set(r.stdout.strip().split(",")), r.stdout

            r = run(["umount", mnt])
            assert r.returncode == 0, r.stderr
            assert not mounts_at(mnt)
            assert wait_gone(pid), "daemon still running after umount"

            # And again: the value was stored.
            r = run(["mount", "-T", fstab, mnt])
            assert r.returncode == 0, r.stderr
            assert read_file(mnt / "db") == b"hunter3"
            r = run(["umount", mnt])
            assert r.returncode == 0, r.stderr
            assert not mounts_at(mnt)
    finally:
        detach_all(mnt)
    assert not (os.path.islink(HELPER) and os.readlink(HELPER) == str(BIN))


def test_fstab_wrong_key_mounts_nothing(tmpdir_sfs):
    store, _ = new_store(tmpdir_sfs)
    other = tmpdir_sfs / "other.key"
    assert sfs("keygen", other).returncode == 0
    mnt = tmpdir_sfs / "mnt"
    mnt.mkdir()
    fstab = tmpdir_sfs / "fstab"
    fstab.write_text(f"{store} {mnt} fuse.secretsfs key_file={other} 0 0\n")
    try:
        with system_helper(BIN):
            r = run(["mount", "-T", fstab, mnt])
            assert r.returncode != 0
            assert "wrong key" in r.stderr, r.stderr
            assert not mounts_at(mnt)
    finally:
        detach_all(mnt)


def test_mount_fuse3_runs_secretsfs_from_path(tmpdir_sfs):
    """Without /sbin/mount.fuse.secretsfs, mount(8) hands fuse.TYPE to
    mount.fuse3, which runs `secretsfs STORE MNT -o OPTS` through /bin/sh
    (mount(8) fixes PATH to the system's directories; here PATH names
    bin/)."""
    mount_fuse3 = shutil.which("mount.fuse3", path="/sbin:/usr/sbin")
    if not mount_fuse3:
        pytest.skip("mount.fuse3 is not installed")
    store, key = new_store(tmpdir_sfs)
    mnt = tmpdir_sfs / "mnt"
    mnt.mkdir()
    env = {"PATH": f"{BIN.parent}:/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        r = run([mount_fuse3, store, mnt, "-o",
                 f"key_file={key},allow_other,nofail,_netdev",
                 "-t", "fuse.secretsfs"], env=env)
        assert r.returncode == 0, r.stderr
        assert mounts_at(mnt) == [("fuse.secretsfs", str(store))]
        write_file(mnt / "x", b"1")
        assert read_file(mnt / "x") == b"1"
        (pid,) = pids_serving(mnt)
        assert run(["umount", mnt]).returncode == 0
        assert wait_gone(pid)
    finally:
        detach_all(mnt)


# ------------------------------------------------------ the daemon dies

@pytest.fixture
def dead_mounts_cleared():
    """Paths appended here are detached at teardown, dead or alive (the
    conftest fixtures cannot see a dead mount with mountpoint(1))."""
    paths = []
    yield paths
    for p in paths:
        detach_all(p)


@pytest.mark.parametrize("how", ["secretsfs mount", "mount helper"])
def test_kill9_enotconn_then_mount_again(make_mount, dead_mounts_cleared, how):
    m = make_mount()
    dead_mounts_cleared.append(m.mnt)
    write_file(m.p("app"), b"hunter2")
    os.mkdir(m.p("prod"))
    write_file(m.p("prod/db"), b"pw")
    # A process left inside the mount when the daemon dies.
    inside = subprocess.Popen(["sleep", "300"], cwd=m.p("prod"))
    try:
        killed(m.mnt)
        assert_dead_mount(m.mnt, "app")
        expect_errno(errno.ENOTCONN, os.listdir, m.p("prod"))
        r = run(["ls", "-la", m.p("prod")])
        assert r.returncode != 0 and "not connected" in r.stderr

        # Mount again over it: the dead mount is cleared first. (Not at
        # once: the attributes the kernel cached must have expired, see
        # test_mount_at_once_after_kill9.)
        time.sleep(ATTR_TIMEOUT + 0.2)
        if how == "secretsfs mount":
            r = sfs("mount", m.store, m.mnt, "-o", m.option_string())
        else:  # as mount.fuse3 runs it
            r = run([BIN, m.store, m.mnt, "-o", "rw," + m.option_string()])
        assert r.returncode == 0, r.stderr
        assert "cleaned up the mount of a daemon that had died" in r.stderr
        assert mounts_at(m.mnt) == [("fuse.secretsfs", str(m.store))]
        assert sorted(os.listdir(m.mnt)) == ["app", "prod"]
        assert read_file(m.p("app")) == b"hunter2"
        assert read_file(m.p("prod/db")) == b"pw"
        write_file(m.p("app"), b"hunter3")
        assert read_file(m.p("app")) == b"hunter3"
        # The process that was inside still gets the error, not an empty
        # folder: its working folder is on the detached dead mount.
        expect_errno(errno.ENOTCONN, os.listdir, f"/proc/{inside.pid}/cwd")
    finally:
        inside.kill()
        inside.wait()
    m.unmount()
    assert not mounts_at(m.mnt)


def test_unmount_after_kill9_by_hand(make_mount, dead_mounts_cleared):
    """fusermount3 -uz clears a dead mount by hand; then the folder under it
    shows again (empty), and the mount works again."""
    m = make_mount()
    dead_mounts_cleared.append(m.mnt)
    write_file(m.p("app"), b"x")
    killed(m.mnt)
    assert_dead_mount(m.mnt, "app")
    r = run(["fusermount3", "-uz", m.mnt])
    assert r.returncode == 0, r.stderr
    assert not mounts_at(m.mnt)
    assert os.listdir(m.mnt) == []
    m.mount()
    assert read_file(m.p("app")) == b"x"


def test_secret_owner_cannot_run_commands_as_the_daemon(make_mount,
                                                       tmpdir_sfs):
    """With allow_other (the unit's default), a user who owns a secret must
    not get a program of theirs run as root: the rotation command should be
    refused (or run as the owner)."""
    m = make_mount(allow_other=True)
    os.mkdir(m.p("team"))
    os.chown(m.p("team"), 1000, 1000)
    own = tmpdir_sfs / "user"
    own.mkdir(mode=0o777)
    os.chmod(own, 0o777)
    script = own / "mine.sh"
    script.write_text(f"#!/bin/sh\nid -u > {own}/ran-as\n")
    os.chmod(script, 0o755)
    os.chown(script, 1000, 1000)
    db = m.p("team/db")
    r = as_uid(1000, "sh", "-c", 'cat > "$0"', db, input=json.dumps(DB))
    assert r.returncode == 0, r.stderr
    r = as_uid(1000, "setfattr", "-n", "user.sm.rotation_command", "-v",
               script, db)
    if r.returncode == 0:
        as_uid(1000, "setfattr", "-n", "user.sm.rotate", "-v", "now", db)
        wait_for(lambda: not os.getxattr(db, "user.sm.rotation_status")
                 .startswith(b"running"), timeout=30)
    ran_as = own / "ran-as"
    assert not ran_as.exists() or ran_as.read_text().strip() == "1000", \
        f"a command chosen by uid 1000 ran as uid {ran_as.read_text().strip()}"


def test_mount_at_once_after_kill9(make_mount, dead_mounts_cleared):
    """`kill -9` then `secretsfs mount` at once (a supervisor's restart)."""
    m = make_mount()
    dead_mounts_cleared.append(m.mnt)
    write_file(m.p("app"), b"x")
    for _ in range(5):
        os.stat(m.p("app"))  # attributes in the kernel's cache
        for pid in pids_serving(m.mnt):
            os.kill(pid, signal.SIGKILL)
        r = sfs("mount", m.store, m.mnt, "-o", m.option_string())
        assert r.returncode == 0, r.stderr
        assert mounts_at(m.mnt) == [("fuse.secretsfs", str(m.store))]
        assert read_file(m.p("app")) == b"x"


# ------------------------------------------------- units for a replicated store

CLUSTER_UNITS = ("etcd-defrag.service", "etcd-defrag.timer", "etcd-snapshot.service",
                 "etcd-snapshot.timer")


def test_cluster_unit_files():
    """The etcd units and the secretsfs drop-in that docs/cluster.md installs
    by hand (make install leaves them out: they belong on the hosts that run
    etcd, or to one instance): they parse, systemd-analyze accepts them,
    the page names each, and the etcd settings file names only flags etcd
    3.4 knows the way the page says (ETCD_ + the flag)."""
    doc = (REPO / "docs" / "cluster.md").read_text()
    src = REPO / "scripts" / "systemd"
    for name in CLUSTER_UNITS + ("secretsfs-etcd.conf", "etcd.env"):
        assert f"scripts/systemd/{name}" in doc, name
    for name in CLUSTER_UNITS:
        unit = parse_unit((src / name).read_text())
        kind = name.rsplit(".", 1)[1]
        assert values(unit, kind.capitalize(), "OnCalendar" if kind == "timer"
                      else "ExecStart"), name
    drop = parse_unit((src / "secretsfs-etcd.conf").read_text())
    assert "network-online.target" in values(drop, "Unit", "After")[0]
    assert not values(drop, "Unit", "Requires"), "reads must go on without etcd"
    env = read_env_file(src / "etcd.env")
    assert env["ETCD_PRE_VOTE"] == "true"
    assert env["ETCD_CLIENT_CERT_AUTH"] == "true"
    # Under the replica's 4 s watch watchdog, or idle watches reconnect.
    assert env["ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL"] in ("1s", "2s")
    etcd_help = run(["/usr/bin/etcd", "--help"]).stdout if os.path.exists("/usr/bin/etcd") else ""
    for k in env:
        flag = "--" + k[len("ETCD_"):].lower().replace("_", "-")
        if etcd_help:
            assert flag in etcd_help, flag
    if shutil.which("systemd-analyze"):
        r = run(["systemd-analyze", "verify", *(src / n for n in CLUSTER_UNITS)])
        assert r.returncode == 0, r.stderr
