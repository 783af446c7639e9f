"""Containers (BRIEF section 6, docs/containers.md): a folder of a secretsfs
mount bind-mounted read-only into a Docker container that runs as a non-root
uid owning its secrets.

A private dockerd (Debian's docker.io) is started for this module with its
own data root, exec root, socket, config file and containerd namespace, and a
one-layer image is made with `docker import` from Debian's busybox-static:
nothing is pulled, containers run with `--network none`. Both packages come
from scripts/install-deps; this module installs nothing. It is skipped only
when the kernel cannot run containers (dockerd does not start with its
default storage driver (overlay2) nor with vfs, or the first container fails
to start).
"""

import errno
import io
import os
import shutil
import signal
import struct
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import daemon_pids, is_mounted, run, sfs, wait_gone, write_file

IMAGE = "secretsfs-test-busybox:1"
APPLETS = ("sh", "cat", "ls", "id", "stat", "sleep", "echo", "chmod", "true")
ENOTCONN_TEXT = "Transport endpoint is not connected"
UID = 1000
USER = f"{UID}:{UID}"


# ---------------------------------------------------------------- helpers

def find_tool(name, dirs=("/usr/sbin", "/usr/bin", "/sbin", "/bin")):
    """Debian's binary first (a newer client elsewhere on PATH would do too,
    but the daemon and its client come from the same package)."""
    for d in dirs:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which(name)


def elf_is_static(path):
    """True when the ELF file has no PT_INTERP (no dynamic loader needed):
    the image has no libc, so busybox must be busybox-static's."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:  # 64-bit only (Debian amd64/arm64)
            return False
        endian = "<" if hdr[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", hdr, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", hdr, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(endian + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


def rootfs_tar(busybox):
    """A rootfs with /bin/busybox, applet symlinks, /etc/passwd and group."""
    buf = io.BytesIO()
    now = int(time.time())

    def add(name, type_, mode, data=b"", link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.linkname = type_, mode, now, link
        ti.size = len(data) if type_ == tarfile.REGTYPE else 0
        tf.addfile(ti, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)

    with tarfile.open(fileobj=buf, mode="w") as tf:
        for d in ("bin", "etc", "dev", "proc", "sys", "run"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, Path(busybox).read_bytes())
        for a in APPLETS:
            add(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            f"root:x:0:0:root:/:/bin/sh\napp:x:{UID}:{UID}:app:/:/bin/sh\n".encode())
        add("etc/group", tarfile.REGTYPE, 0o644, f"root:x:0:\napp:x:{UID}:\n".encode())
    return buf.getvalue()


def mounts_under(base):
    """Mount points at or below `base` in this mount namespace, deepest
    first."""
    base = str(base)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == base or mp.startswith(base + "/"):
                found.append(mp)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def fuse_mounts_at(path, mountinfo_text):
    """How many secretsfs mounts are stacked on `path` in a mountinfo."""
    n = 0
    for line in mountinfo_text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[4] != str(path) or " - " not in line:
            continue
        if line.split(" - ", 1)[1].split()[0] == "fuse.secretsfs":
            n += 1
    return n


def wait_enotconn(path, timeout=5.0):
    """Wait until stat(path) fails with ENOTCONN. The kernel answers stat
    from its attribute cache (1 s in secretsfs) even after the daemon died,
    while readdir and open fail at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                return
            raise
        time.sleep(0.1)
    raise AssertionError(f"{path}: stat still succeeds {timeout}s after the daemon died")


def put(path, value, uid=UID, mode=0o400):
    """Write a secret on the host (as root) and give it an owner and mode."""
    write_file(path, value)
    os.chown(path, uid, uid)
    os.chmod(path, mode)


def app_mount(make_mount, **opts):
    """A mount with allow_other and a world-traversable folder app/."""
    m = make_mount(allow_other=True, **opts)
    os.mkdir(m.p("app"))
    os.chmod(m.p("app"), 0o755)
    return m


def kill_daemon(m):
    pid = m.pid
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid), f"daemon {pid} survived SIGKILL"


def assert_enotconn(r, what):
    assert r.returncode != 0, f"{what}: succeeded after the daemon died: {r.stdout!r}"
    assert r.stdout == "", f"{what}: printed {r.stdout!r} (an empty folder?)"
    assert ENOTCONN_TEXT in r.stderr, f"{what}: {r.stderr!r}"


# ---------------------------------------------------------------- dockerd

class Docker:
    """A private dockerd under a temp dir, and its client."""

    def __init__(self):
        self.dockerd = find_tool("dockerd")
        self.cli = find_tool("docker")
        self.busybox = find_tool("busybox", ("/bin", "/usr/bin"))
        self.base = Path(tempfile.mkdtemp(prefix="sfs-docker-", dir="/tmp"))
        self.sock = self.base / "docker.sock"
        self.ns = "sfs-test-" + uuid.uuid4().hex[:8]
        self.proc = None
        self.logf = None
        cfg = self.base / "client"
        cfg.mkdir()
        (self.base / "daemon.json").write_text("{}\n")
        self.started = []
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""),
                    "HOME": str(self.base), "DOCKER_HOST": f"unix://{self.sock}",
                    "DOCKER_CONFIG": str(cfg)}

    def __call__(self, *args, timeout=60):
        return run([self.cli, *args], env=self.env, timeout=timeout)

    def check(self, *args, timeout=60):
        r = self(*args, timeout=timeout)
        assert r.returncode == 0, f"docker {' '.join(map(str, args))}: {r.stderr}"
        return r

    def log_tail(self, n=6):
        try:
            lines = (self.base / "dockerd.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for want in ("failed to start daemon", "level=fatal", "level=error"):
            keep = [l for l in lines if want in l]
            if keep:
                return "\n".join(keep[-n:])
        return "\n".join(lines[-n:])

    def start(self, storage_driver=None, timeout=30.0):
        """Start dockerd; True once it answers, False if it died or hung."""
        tag = storage_driver or "default"
        args = [self.dockerd, "--config-file", self.base / "daemon.json",
                "--data-root", self.base / f"data-{tag}",
                "--exec-root", self.base / "exec",
                "--pidfile", self.base / "dockerd.pid",
                "-H", f"unix://{self.sock}",
                "--iptables=false", "--ip-forward=false", "--ip-masq=false",
                "--bridge=none",
                "--containerd-namespace", self.ns,
                "--containerd-plugins-namespace", self.ns + "-plugins"]
        if storage_driver:
            args += ["--storage-driver", storage_driver]
        self.logf = open(self.base / "dockerd.log", "ab")
        self.proc = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.sock.exists() and self("version", timeout=10).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None
        # containerd and shims that this dockerd started, found by our dirs
        for pid in self._own_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(pid, 5)
        if self.sock.exists():
            self.sock.unlink()

    def _own_processes(self):
        me, pids = str(self.base), []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if (me in cmd or self.ns in cmd) and int(entry) != os.getpid():
                pids.append(int(entry))
        return pids

    def cleanup(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                ids = self("ps", "-aq").stdout.split()
                if ids:
                    self("rm", "-f", *ids, timeout=120)
        except subprocess.TimeoutExpired:
            pass  # a hung dockerd: stop() kills it and what it started
        self.stop()
        for mp in mounts_under(self.base):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- containers

    def volumes(self, vols):
        out = []
        for v in vols:
            out += ["-v", v]
        return out

    def run_once(self, vols, script, user=USER):
        return self("run", "--rm", "--network", "none", "--user", user,
                    *self.volumes(vols), IMAGE, "sh", "-c", script)

    def start_container(self, vols, user=USER):
        name = "sfs-" + uuid.uuid4().hex[:12]
        self.check("run", "-d", "--name", name, "--network", "none", "--user", user,
                   *self.volumes(vols), IMAGE, "sleep", "3600")
        self.started.append(name)
        return name

    def exec(self, name, script):
        return self("exec", name, "sh", "-c", script)


@pytest.fixture(scope="module")
def docker():
    d = Docker()
    try:
        missing = [n for n, p in (("dockerd", d.dockerd), ("docker", d.cli),
                                  ("busybox", d.busybox)) if not p]
        if missing:
            pytest.fail(f"{', '.join(missing)} not found: scripts/install-deps "
                        "installs docker.io and busybox-static", pytrace=False)
        if not elf_is_static(d.busybox):
            pytest.fail(f"{d.busybox} is not statically linked: install "
                        "busybox-static (scripts/install-deps)", pytrace=False)
        if not d.start():
            first = d.log_tail()
            d.stop()
            if not d.start(storage_driver="vfs"):
                pytest.skip("the kernel cannot run dockerd here (tried the default "
                            f"storage driver and vfs):\n{first}\n{d.log_tail()}")
        tar = d.base / "rootfs.tar"
        tar.write_bytes(rootfs_tar(d.busybox))
        d.check("import", tar, IMAGE)
        r = d("run", "--rm", "--network", "none", IMAGE, "true")
        if r.returncode != 0:
            pytest.skip(f"the kernel cannot run containers here: {r.stderr.strip()}")
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def ctr(docker):
    """docker, plus removal of the containers a test started."""
    first = len(docker.started)
    yield docker
    started = docker.started[first:]
    del docker.started[first:]
    if started:
        docker("rm", "-f", *started, timeout=120)


# ---------------------------------------------------------------- access

def test_owner_reads_its_secret_through_read_only_bind(make_mount, ctr):
    m = app_mount(make_mount)
    put(m.p("app/token"), "tok-1")
    vol = f"{m.p('app')}:/run/secrets:ro"
    r = ctr.run_once([vol], "id -u; id -g; cat /run/secrets/token")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(UID), str(UID), "tok-1"]
    # the owner may not chmod its way to a write: the bind is read-only
    r = ctr.run_once([vol], "chmod 600 /run/secrets/token; echo x > /run/secrets/token")
    assert r.returncode != 0
    assert r.stderr.count("Read-only file system") == 2, r.stderr
    st = os.stat(m.p("app/token"))
    assert (st.st_uid, st.st_mode & 0o7777) == (UID, 0o400)
    assert len(m.versions("app/token")) == 1


def test_other_owner_refused(make_mount, ctr):
    m = app_mount(make_mount)
    put(m.p("app/token"), "tok-1")
    put(m.p("app/rootonly"), "root-only", uid=0, mode=0o600)
    r = ctr.run_once([f"{m.p('app')}:/run/secrets:ro"],
                     "cat /run/secrets/rootonly; echo rc=$?; cat /run/secrets/token")
    assert "rc=1" in r.stdout and "root-only" not in r.stdout
    assert "Permission denied" in r.stderr, r.stderr
    assert r.stdout.endswith("tok-1")


def test_without_allow_other_even_the_owner_is_refused(make_mount, ctr):
    m = make_mount()  # no allow_other: only the mounting uid (root) gets in
    os.mkdir(m.p("app"), 0o755)
    put(m.p("app/token"), "tok-1")
    r = ctr.run_once([f"{m.p('app')}:/run/secrets:ro"], "cat /run/secrets/token")
    assert r.returncode != 0 and "tok-1" not in r.stdout
    assert "Permission denied" in r.stderr, r.stderr


def test_uid_gid_umask_mount_options_give_the_container_new_secrets(make_mount, ctr):
    m = app_mount(make_mount, uid=UID, gid=UID, umask="0227")
    write_file(m.p("app/token"), "made-by-root")  # no chown, no chmod
    st = os.stat(m.p("app/token"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (UID, UID, 0o440)
    r = ctr.run_once([f"{m.p('app')}:/run/secrets:ro"],
                     "stat -c '%u %g %a' /run/secrets/token; cat /run/secrets/token")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{UID} {UID} 440", "made-by-root"]


# ---------------------------------------------------------------- live updates

def test_running_container_sees_host_update(make_mount, ctr):
    m = app_mount(make_mount)
    put(m.p("app/token"), "tok-1")
    name = ctr.start_container([f"{m.p('app')}:/run/secrets:ro"])
    assert ctr.exec(name, "cat /run/secrets/token").stdout == "tok-1"
    write_file(m.p("app/token"), "tok-2")          # PutSecretValue on the host
    put(m.p("app/new"), "brand-new")               # CreateSecret on the host
    r = ctr.exec(name, "cat /run/secrets/token; echo; cat /run/secrets/new")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["tok-2", "brand-new"]


def test_fields_of_a_json_secret(make_mount, ctr):
    m = app_mount(make_mount)
    put(m.p("app/db"), '{"username":"alice","password":"s3cr3t","port":5432}')
    # .fields/ exists only at the root of the mount: bind its app/ folder
    name = ctr.start_container([f"{m.p('app')}:/run/secrets:ro",
                                f"{m.p('.fields/app')}:/run/fields:ro"])
    r = ctr.exec(name, "ls /run/fields/db; cat /run/fields/db/username; echo;"
                       " cat /run/fields/db/password")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["password", "port", "username", "alice", "s3cr3t"]
    # rotated on the host: the running container reads the new field
    write_file(m.p("app/db"), '{"username":"alice","password":"n3w"}')
    assert ctr.exec(name, "cat /run/fields/db/password").stdout == "n3w"
    # fields carry the secret's owner and mode: another uid is refused
    put(m.p("app/rootdb"), '{"password":"x"}', uid=0, mode=0o600)
    r = ctr.exec(name, "cat /run/fields/rootdb/password")
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr


def test_awspending_through_stages(make_mount, ctr):
    m = app_mount(make_mount)
    put(m.p("app/db"), "current-pw")
    name = ctr.start_container([f"{m.p('app')}:/run/secrets:ro",
                                f"{m.p('.stages/AWSPENDING/app')}:/run/pending:ro"])
    r = ctr.exec(name, "cat /run/pending/db")
    assert r.returncode != 0 and "No such file" in r.stderr, r.stderr
    write_file(m.p(".stages/AWSPENDING/app/db"), "pending-pw")   # on the host
    r = ctr.exec(name, "cat /run/pending/db; echo; cat /run/secrets/db")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["pending-pw", "current-pw"]
    # finish the rotation on the host: AWSCURRENT moves to the pending version
    vid = os.getxattr(m.p("app/db"), "user.sm.stage.AWSPENDING")
    os.setxattr(m.p("app/db"), "user.sm.stage.AWSCURRENT", vid)
    assert ctr.exec(name, "cat /run/secrets/db").stdout == "pending-pw"


# ---------------------------------------------------------------- daemon death

def test_daemon_death_direct_bind_then_remount_and_restart(make_mount, ctr):
    """The recipe of docs/containers.md for `-v MNT/app:/run/secrets:ro`."""
    m = app_mount(make_mount)
    put(m.p("app/token"), "tok-1")
    name = ctr.start_container([f"{m.p('app')}:/run/secrets:ro"])
    assert ctr.exec(name, "cat /run/secrets/token").stdout == "tok-1"

    kill_daemon(m)
    assert_enotconn(ctr.exec(name, "ls /run/secrets"), "ls in the container")
    assert_enotconn(ctr.exec(name, "cat /run/secrets/token"), "cat in the container")

    # the recipe, on the host: drop the dead mount, mount again
    r = run(["fusermount3", "-uz", m.mnt])
    assert r.returncode == 0, r.stderr
    m.mount()
    assert fuse_mounts_at(m.mnt, Path("/proc/self/mountinfo").read_text()) == 1
    write_file(m.p("app/token"), "tok-2")
    # the running container still holds the dead instance: fail-closed
    assert_enotconn(ctr.exec(name, "cat /run/secrets/token"), "cat before restart")
    # while a new container binds the folder of the new mount
    r = ctr.run_once([f"{m.p('app')}:/run/secrets:ro"], "cat /run/secrets/token")
    assert (r.returncode, r.stdout) == (0, "tok-2"), r.stderr
    # ... until it is restarted, which binds the folder of the new mount
    ctr.check("restart", "-t", "0", name)
    r = ctr.exec(name, "cat /run/secrets/token")
    assert (r.returncode, r.stdout) == (0, "tok-2"), r.stderr


@pytest.fixture
def shared_export(make_mount):
    """A mount whose mount point sits in a folder that is a shared mount
    (`mount --bind D D; mount --make-shared D`), to be bind-mounted into
    containers with rslave propagation. Not mounted yet."""
    m = make_mount(mount=False, allow_other=True)
    export = m.dir / "export"
    export.mkdir()
    os.chmod(export, 0o755)
    m.mnt.rmdir()
    m.mnt = export / "mnt"
    m.mnt.mkdir()
    os.chmod(m.mnt, 0o755)
    for cmd in (["mount", "--bind", export, export], ["mount", "--make-shared", export]):
        r = run(cmd)
        assert r.returncode == 0, f"{cmd}: {r.stderr}"
    try:
        yield m, export
    finally:
        # unmount what is stacked on export/mnt, then export itself, so that
        # make_mount's teardown finds nothing mounted and removes the dir
        for _ in range(4):
            if not is_mounted(m.mnt):
                break
            pids = daemon_pids(m.mnt)
            subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True)
            for pid in pids:
                wait_gone(pid, 5)
        for mp in mounts_under(export):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def test_daemon_death_rslave_parent_follows_remount(shared_export, ctr):
    """Bind the folder *holding* the mount point with rslave: a mount made on
    the host later (first mount, or remount after a crash) reaches a running
    container without restarting it."""
    m, export = shared_export
    name = ctr.start_container([f"{export}:/run/sfs:ro,rslave"])
    # started before the mount: it sees the empty folder underneath
    r = ctr.exec(name, "ls -A /run/sfs/mnt")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr

    m.mount()
    os.mkdir(m.p("app"), 0o755)
    put(m.p("app/token"), "tok-1")
    r = ctr.exec(name, "cat /run/sfs/mnt/app/token")
    assert (r.returncode, r.stdout) == (0, "tok-1"), r.stderr

    kill_daemon(m)
    assert_enotconn(ctr.exec(name, "ls /run/sfs/mnt"), "ls in the container")
    assert_enotconn(ctr.exec(name, "cat /run/sfs/mnt/app/token"), "cat in the container")

    # secretsfs mount clears the dead mount itself once stat sees ENOTCONN
    wait_enotconn(m.mnt)
    r = sfs("mount", m.store, m.mnt, "-o", m.option_string())
    assert r.returncode == 0, r.stderr
    assert "cleaned up the mount of a daemon that had died" in r.stderr
    assert fuse_mounts_at(m.mnt, Path("/proc/self/mountinfo").read_text()) == 1
    write_file(m.p("app/token"), "tok-2")
    r = ctr.exec(name, "cat /run/sfs/mnt/app/token")
    assert (r.returncode, r.stdout) == (0, "tok-2"), r.stderr
    # the dead copy left the container with the unmount; one mount remains
    r = ctr.exec(name, "cat /proc/self/mountinfo")
    assert fuse_mounts_at("/run/sfs/mnt", r.stdout) == 1, r.stdout


def test_remount_right_after_death_replaces_the_dead_mount(make_mount):
    m = make_mount()
    os.stat(m.mnt)                      # attributes cached for 1 s
    kill_daemon(m)
    r = sfs("mount", m.store, m.mnt, "-o", m.option_string())
    assert r.returncode == 0, r.stderr
    assert fuse_mounts_at(m.mnt, Path("/proc/self/mountinfo").read_text()) == 1
