"""The shell tools of BRIEF section 6 against the real mount: cp -a, tar
--xattrs, rsync -aX, sed -i, vim, install, dd, tee -a, >>, find -newer,
ls -l and stat. Each test checks what the tool leaves: the value, the
versions (`.versions/NAME/`), mode, owner, `user.tag.*`, and that nothing
is left behind (no stray name in the folder, none in `.deleted/`, no
history for a temporary name). docs/tools.md says what each tool does
underneath and how secretsfs maps it."""

import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Mount, ok, read_file, run, write_file

q = shlex.quote


# ================================================================ helpers


def tags(path):
    """The user.tag.* attributes of path, as {key: value}."""
    out = {}
    for n in os.listxattr(str(path)):
        if n.startswith("user.tag."):
            out[n[len("user.tag."):]] = os.getxattr(str(path), n).decode()
    return out


def set_tags(path, **kv):
    for k, v in kv.items():
        ok(run(["setfattr", "-n", f"user.tag.{k}", "-v", v, path]))


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def walk(top):
    """Relative paths of every file and folder below top (readdir's view)."""
    found = set()
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        for n in dirs + files:
            found.add(os.path.normpath(os.path.join(rel, n)))
    return found


def with_folders(names):
    """names plus every folder they imply."""
    out = set(names)
    for n in names:
        parts = n.split("/")
        for i in range(1, len(parts)):
            out.add("/".join(parts[:i]))
    return out


def versioned(m):
    """Names that have a history in .versions/ (a folder holding files)."""
    top = m.mnt / ".versions"
    names = set()
    for root, dirs, files in os.walk(top):
        if files:
            names.add(os.path.relpath(root, top))
    return names


def assert_clean(m, secrets, gone=()):
    """The mount holds exactly `secrets` (and their folders), only they have
    versions, `.deleted/` is empty, and none of `gone` opens."""
    assert walk(m.mnt) == with_folders(secrets)
    assert versioned(m) <= set(secrets), versioned(m) - set(secrets)
    assert ok(run(["ls", "-A", m.mnt / ".deleted"])) == "", \
        f"left in .deleted/: {sorted(walk(m.mnt / '.deleted'))}"
    for g in gone:
        assert not os.path.lexists(m.p(g)), f"{g} left behind"


def nversions(m, name):
    return len(m.versions(name))


def make_tree(base):
    """A source folder on disk: modes, an owner, tags, and one user.*
    attribute that is not a tag (secretsfs refuses it with EOPNOTSUPP)."""
    app = Path(base) / "app"
    (app / "sub").mkdir(parents=True)
    os.chmod(app, 0o755)
    os.chmod(app / "sub", 0o750)
    write_file(app / "db.json", b'{"user":"admin","password":"s3cret"}')
    os.chmod(app / "db.json", 0o640)
    os.chown(app / "db.json", 1000, 1000)
    set_tags(app / "db.json", team="ops", env="prod")
    os.setxattr(app / "db.json", "user.misc", b"not a tag")
    write_file(app / "sub" / "token", b"tok-123\n")
    os.chmod(app / "sub" / "token", 0o400)
    set_tags(app / "sub" / "token", rotation="30d")
    return app


TREE = {  # relative name: (value, mode, uid, tags)
    "db.json": (b'{"user":"admin","password":"s3cret"}', 0o640, 1000,
                {"team": "ops", "env": "prod"}),
    "sub/token": (b"tok-123\n", 0o400, 0, {"rotation": "30d"}),
}


def assert_tree(root, tree=TREE, owners=True):
    """Files below root have the values, modes, owners and tags of tree."""
    for rel, (value, mode, uid, tg) in tree.items():
        p = Path(root) / rel
        assert read_file(p) == value, rel
        assert mode_of(p) == mode, (rel, oct(mode_of(p)))
        if owners:
            assert os.lstat(p).st_uid == uid, rel
        assert tags(p) == tg, rel


def populate(m, folder):
    """TREE written into the mount with plain syscalls (open, write, close,
    chmod, chown, setxattr): no tool in between."""
    for rel, (value, mode, uid, tg) in TREE.items():
        p = m.p(f"{folder}/{rel}")
        os.makedirs(p.parent, exist_ok=True)
        write_file(p, value)
        os.chmod(p, mode)
        os.chown(p, uid, uid)
        for k, v in tg.items():
            os.setxattr(p, f"user.tag.{k}", v.encode())
    os.chmod(m.p(f"{folder}/sub"), 0o750)


@pytest.fixture
def src(tmpdir_sfs):
    return make_tree(tmpdir_sfs)


# ================================================================ cp -a

def test_cp_a_into_and_out_of_the_mount(mounted, src, tmpdir_sfs):
    m = mounted
    ok(run(["cp", "-a", src, m.p("app")]))   # user.misc skipped quietly
    assert_tree(m.p("app"))
    assert mode_of(m.p("app")) == 0o755
    assert mode_of(m.p("app/sub")) == 0o750
    assert "user.misc" not in os.listxattr(m.p("app/db.json"))
    for rel in TREE:
        assert nversions(m, f"app/{rel}") == 1
    assert_clean(m, {f"app/{rel}" for rel in TREE})

    out = tmpdir_sfs / "out"
    ok(run(["cp", "-a", m.p("app"), out]))
    assert_tree(out)
    assert mode_of(out / "sub") == 0o750
    # the read-only metadata travels too: it is what the copy was
    assert os.getxattr(out / "db.json", "user.sm.name") == b"app/db.json"

    # and back in under another name: user.sm.* is derived, cp -a skips it
    ok(run(["cp", "-a", out, m.p("again")]))
    assert_tree(m.p("again"))
    assert os.getxattr(m.p("again/db.json"), "user.sm.name") == \
        b"again/db.json"
    assert nversions(m, "again/db.json") == 1
    assert_clean(m, {f"{d}/{r}" for d in ("app", "again") for r in TREE})


def test_cp_a_over_existing_secrets(mounted, src):
    """A second cp -a of the same tree makes no version; a changed file
    one."""
    m = mounted
    ok(run(["cp", "-a", src, m.p("app")]))
    write_file(src / "sub" / "token", b"tok-456\n")
    ok(run(["cp", "-a", f"{src}/.", m.p("app")]))
    assert nversions(m, "app/db.json") == 1
    assert nversions(m, "app/sub/token") == 2
    assert read_file(m.p("app/sub/token")) == b"tok-456\n"
    assert_clean(m, {f"app/{rel}" for rel in TREE})


def test_sizes_right_after_cp_preserve(mounted, src, tmpdir_sfs):
    m = mounted
    write_file(m.p("old"), b"x")
    ok(run(["cp", "-a", src, m.p("app")]))
    ok(run(["cp", "-p", src / "db.json", m.p("old")]))
    sizes = {rel: os.stat(m.p(f"app/{rel}")).st_size for rel in TREE}
    sizes["old"] = os.stat(m.p("old")).st_size
    archive = tmpdir_sfs / "a.tar"
    r = run(["tar", "-C", m.mnt, "-cf", archive, "app", "old"])
    listing = ok(run(["tar", "-tvf", archive])).splitlines()
    archived = {ln.split()[-1]: int(ln.split()[2]) for ln in listing
                if not ln.startswith("d")}
    want = {"db.json": len(TREE["db.json"][0]),
            "sub/token": len(TREE["sub/token"][0]),
            "old": len(TREE["db.json"][0])}
    assert read_file(m.p("app/db.json")) == TREE["db.json"][0]
    assert sizes == want
    assert r.returncode == 0, r.stderr
    assert archived == {("old" if k == "old" else f"app/{k}"): v
                        for k, v in want.items()}


# ================================================================ tar

def test_tar_xattrs_out_of_the_mount(mounted, tmpdir_sfs):
    m = mounted
    populate(m, "app")
    archive = tmpdir_sfs / "a.tar"
    ok(run(["tar", "--xattrs", "-C", m.mnt, "-cf", archive, "app"]))
    listing = ok(run(["tar", "--xattrs", "-tvvf", archive]))
    assert "user.tag.team" in listing and "user.tag.rotation" in listing
    out = tmpdir_sfs / "out"
    out.mkdir()
    ok(run(["tar", "--xattrs", "-C", out, "-xf", archive]))
    assert_tree(out / "app")
    assert mode_of(out / "app" / "sub") == 0o750
    assert_clean(m, {f"app/{rel}" for rel in TREE})


def test_tar_without_xattrs_into_the_mount(mounted, src, tmpdir_sfs):
    """Plain tar -x: open(O_CREAT|O_EXCL), and on EEXIST unlink + create,
    which restores the secret: one version for a changed file, none for an
    unchanged one, nothing in .deleted."""
    m = mounted
    archive = tmpdir_sfs / "a.tar"
    ok(run(["tar", "-C", src.parent, "-cf", archive, "app"]))
    ok(run(["tar", "-C", m.mnt, "-xf", archive]))
    notags = {r: (v, md, u, {}) for r, (v, md, u, _) in TREE.items()}
    assert_tree(m.p("app"), notags)
    write_file(src / "sub" / "token", b"tok-456\n")
    ok(run(["tar", "-C", src.parent, "-cf", archive, "app"]))
    ok(run(["tar", "-C", m.mnt, "-xf", archive]))
    assert read_file(m.p("app/sub/token")) == b"tok-456\n"
    assert nversions(m, "app/sub/token") == 2
    assert nversions(m, "app/db.json") == 1
    assert_clean(m, {f"app/{rel}" for rel in TREE})


@pytest.mark.parametrize("origin", ["disk", "mount"])
def test_tar_xattrs_into_the_mount(mounted, src, tmpdir_sfs, origin):
    m = mounted
    archive = tmpdir_sfs / "a.tar"
    if origin == "disk":
        ok(run(["tar", "--xattrs", "-C", src.parent, "-cf", archive, "app"]))
    else:
        populate(m, "app")
        ok(run(["tar", "--xattrs", "-C", m.mnt, "-cf", archive, "app"]))
    os.mkdir(m.p("x"))
    r = run(["tar", "--xattrs", "-C", m.p("x"), "-xf", archive])
    assert r.returncode == 0, r.stderr
    assert_tree(m.p("x/app"))
    assert os.getxattr(m.p("x/app/db.json"), "user.sm.name") == \
        b"x/app/db.json"
    names = {f"x/app/{rel}" for rel in TREE}
    if origin == "mount":
        names |= {f"app/{rel}" for rel in TREE}
    assert_clean(m, names)


# ================================================================ rsync

@pytest.mark.parametrize("dest", ["rs", ""], ids=["subfolder", "root"])
def test_rsync_aX(mounted, src, dest):
    m = mounted
    pre = f"{dest}/" if dest else ""
    target = f"{m.mnt}/{pre}"
    ok(run(["rsync", "-aX", "--filter=-x user.misc", f"{src}/", target]))
    assert_tree(m.p(pre) if dest else m.mnt)
    assert mode_of(m.p(f"{pre}sub")) == 0o750
    names = {f"{pre}{rel}" for rel in TREE}
    ids = {n: m.versions(n) for n in names}
    assert all(len(v) == 1 for v in ids.values())
    assert_clean(m, names)

    # an unchanged tree: rsync re-sends what it cannot tell apart by
    # mtime, and the same value makes no version
    ok(run(["rsync", "-aX", "--filter=-x user.misc", f"{src}/", target]))
    assert {n: m.versions(n) for n in names} == ids

    # one file changed: exactly one new version, for that file only
    write_file(src / "db.json", b'{"user":"admin","password":"n3w-s3cret"}')
    os.utime(src / "db.json", (1_000_000_000, 1_000_000_000))
    ok(run(["rsync", "-aX", "--filter=-x user.misc", f"{src}/", target]))
    assert read_file(m.p(f"{pre}db.json")) == \
        b'{"user":"admin","password":"n3w-s3cret"}'
    after = {n: m.versions(n) for n in names}
    changed = f"{pre}db.json"
    assert len(after[changed]) == 2 and set(ids[changed]) < set(after[changed])
    assert all(after[n] == ids[n] for n in names if n != changed)
    assert mode_of(m.p(changed)) == 0o640
    assert os.lstat(m.p(changed)).st_uid == 1000
    assert tags(m.p(changed)) == {"team": "ops", "env": "prod"}
    assert_clean(m, names)


def test_rsync_inplace(mounted, src):
    """--inplace writes over the secret (no temp file, no rename)."""
    m = mounted
    ok(run(["rsync", "-aX", "--filter=-x user.misc", f"{src}/",
            f"{m.mnt}/app/"]))
    write_file(src / "sub" / "token", b"tok-4567890\n")
    ok(run(["rsync", "-aX", "--inplace", "--filter=-x user.misc", f"{src}/",
            f"{m.mnt}/app/"]))
    assert read_file(m.p("app/sub/token")) == b"tok-4567890\n"
    assert nversions(m, "app/sub/token") == 2
    assert nversions(m, "app/db.json") == 1
    assert_clean(m, {f"app/{rel}" for rel in TREE})


def test_rsync_X_non_tag_xattr_is_partial_transfer(mounted, src):
    """Documented caveat: an xattr secretsfs does not store (user.misc) is
    EOPNOTSUPP, which rsync -X reports (exit 23); the values and tags
    arrive anyway."""
    m = mounted
    r = run(["rsync", "-aX", f"{src}/", f"{m.mnt}/app/"])
    assert r.returncode == 23 and "user.misc" in r.stderr
    assert_tree(m.p("app"))
    assert_clean(m, {f"app/{rel}" for rel in TREE})


# ================================================================ sed -i

@pytest.mark.parametrize("name", ["cfg.json", "app/cfg.json"])
def test_sed_i_json(mounted, name):
    m = mounted
    if "/" in name:
        os.mkdir(m.p("app"))
    write_file(m.p(name), b'{"user":"admin","password":"old"}')
    os.chmod(m.p(name), 0o640)
    os.chown(m.p(name), 1000, 1000)
    set_tags(m.p(name), team="ops")
    os.setxattr(m.p(name), "user.sm.description", b"db login")
    before = m.versions(name)
    ok(run(["sed", "-i", 's/"old"/"new"/', m.p(name)]))
    assert read_file(m.p(name)) == b'{"user":"admin","password":"new"}'
    after = m.versions(name)
    assert len(after) == 2 and set(before) < set(after)
    assert mode_of(m.p(name)) == 0o640
    assert os.lstat(m.p(name)).st_uid == 1000
    assert tags(m.p(name)) == {"team": "ops"}
    assert os.getxattr(m.p(name), "user.sm.description") == b"db login"
    assert read_file(m.mnt / ".fields" / name / "password") == b"new"
    assert_clean(m, {name})


# ================================================================ vim

@pytest.fixture
def vim_mount():
    """A mount outside /tmp: vim's 'backupskip' (/tmp/*) would otherwise
    skip the writebackup logic (the 4913 probe and NAME~) entirely."""
    base = tempfile.mkdtemp(prefix="secretsfs-test-", dir="/var/tmp")
    os.chmod(base, 0o755)
    m = None
    try:
        m = Mount(base)
        m.mount()
        (m.dir / "home").mkdir()
        yield m
    finally:
        if m is not None:
            m.cleanup()
        else:
            shutil.rmtree(base, ignore_errors=True)


VIMS = {
    # no vimrc, 'nocompatible': backupcopy=auto
    "Nu-NONE-es": (["vim", "-Nu", "NONE", "-es"], False),
    # -es skips every initialization (no system vimrc): 'compatible',
    # backupcopy=yes
    "es": (["vim", "-es"], False),
    # a terminal vim: /etc/vim/vimrc and defaults.vim, backupcopy=auto
    "defaults": (["vim"], True),
}
EDITS = {"s": ["-c", "s/old/new/"], "normal": ["-c", "normal! $ciwnew"]}


def vim(m, variant, edit, path, home=None, extra=()):
    argv, tty = VIMS[variant]
    argv = [*argv, *extra, *EDITS[edit], "-c", "wq", str(path)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(home or m.dir / "home"), "TERM": "xterm",
           "LANG": "C.UTF-8"}
    if tty:
        argv = ["script", "-qec", " ".join(q(a) for a in argv), "/dev/null"]
    return subprocess.run(argv, cwd=m.mnt, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


def vim_case(m, variant, edit, name, mode, uid):
    folder = os.path.dirname(name)
    if folder:
        os.makedirs(m.p(folder), exist_ok=True)
    write_file(m.p(name), b"password=old")
    os.chmod(m.p(name), mode)
    os.chown(m.p(name), uid, uid)
    set_tags(m.p(name), owner="team-a")
    before = m.versions(name)
    r = vim(m, variant, edit, m.p(name))
    assert r.returncode == 0, r.stdout + r.stderr
    # 'fixendofline' adds the newline the value lacked
    assert read_file(m.p(name)) == b"password=new\n"
    after = m.versions(name)
    assert len(after) == 2 and set(before) < set(after)
    assert mode_of(m.p(name)) == mode
    assert os.lstat(m.p(name)).st_uid == uid
    assert tags(m.p(name)) == {"owner": "team-a"}
    base = os.path.basename(name)
    pre = f"{folder}/" if folder else ""
    assert_clean(m, {name}, gone=[f"{pre}{base}~", f"{pre}.{base}.swp",
                                  f"{pre}.{base}.swpx", f"{pre}4913"])
    assert not any(p.name.endswith("~") for p in (m.dir / "home").iterdir())


@pytest.mark.parametrize("variant", list(VIMS))
@pytest.mark.parametrize("mode,uid", [(0o600, 1000), (0o640, 0)],
                         ids=["0600-rename-path", "0640-copy-path"])
def test_vim_top_level(vim_mount, variant, mode, uid):
    vim_case(vim_mount, variant, "s", "secret", mode, uid)


def test_vim_normal_mode_edit(vim_mount):
    vim_case(vim_mount, "defaults", "normal", "pw", 0o600, 0)


@pytest.mark.parametrize("variant", list(VIMS))
def test_vim_in_a_folder(vim_mount, variant):
    vim_case(vim_mount, variant, "s", "app/secret", 0o600, 0)


@pytest.mark.parametrize("variant", ["Nu-NONE-es", "es"])
def test_vim_backup_stays_in_the_mount(vim_mount, variant):
    m = vim_mount
    write_file(m.p("secret"), b"password=old")
    r = vim(m, variant, "s", m.p("secret"), home=m.dir / "no-such-home",
            extra=["-i", "NONE"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_file(m.p("secret")) == b"password=new\n"
    assert nversions(m, "secret") == 2
    assert_clean(m, {"secret"}, gone=["secret~", ".secret.swp", "4913"])


# ================================================================ install

def test_install_mode_owner(mounted, tmpdir_sfs):
    m = mounted
    s = tmpdir_sfs / "src"
    write_file(s, b"api-key-123")
    os.mkdir(m.p("etc"))
    ok(run(["install", "-m", "0400", "-o", "1000", s, m.p("etc/key")]))
    st = os.lstat(m.p("etc/key"))
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert st.st_uid == 1000
    assert read_file(m.p("etc/key")) == b"api-key-123"
    assert nversions(m, "etc/key") == 1
    # again over the existing secret (install unlinks, then creates: the
    # create restores it): the same value makes no version, a new one one
    ok(run(["install", "-m", "0400", "-o", "1000", s, m.p("etc/key")]))
    assert nversions(m, "etc/key") == 1
    write_file(s, b"api-key-456")
    ok(run(["install", "-m", "0440", "-o", "1000", s, m.p("etc/key")]))
    assert read_file(m.p("etc/key")) == b"api-key-456"
    assert mode_of(m.p("etc/key")) == 0o440
    assert nversions(m, "etc/key") == 2
    assert_clean(m, {"etc/key"})


# ================================================================ dd, tee, >>

def test_dd_new_secret_in_blocks(mounted):
    m = mounted
    data = os.urandom(1000)
    r = subprocess.run(["dd", f"of={m.p('blob')}", "bs=64", "status=none"],
                       input=data, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert read_file(m.p("blob")) == data
    assert nversions(m, "blob") == 1            # one commit at close
    assert_clean(m, {"blob"})


def test_dd_notrunc_and_trunc(mounted):
    m = mounted
    write_file(m.p("d"), b"AAAAAAAAAA")
    ok(run(["sh", "-c", f"printf xy | dd of={q(str(m.p('d')))} bs=1 seek=3 "
            "conv=notrunc status=none"]))
    assert read_file(m.p("d")) == b"AAAxyAAAAA"
    assert nversions(m, "d") == 2
    ok(run(["sh", "-c",
            f"printf new | dd of={q(str(m.p('d')))} status=none"]))
    assert read_file(m.p("d")) == b"new"
    assert nversions(m, "d") == 3
    assert_clean(m, {"d"})


def test_appending_with_tee_a_and_redirect(mounted):
    m = mounted
    p = q(str(m.p("log")))
    ok(run(["sh", "-c", f"printf 'line1\\n' > {p}"]))
    ok(run(["sh", "-c", f"printf 'line2\\n' | tee -a {p} >/dev/null"]))
    assert read_file(m.p("log")) == b"line1\nline2\n"
    assert nversions(m, "log") == 2
    ok(run(["sh", "-c", f"echo line3 >> {p}"]))
    assert read_file(m.p("log")) == b"line1\nline2\nline3\n"
    assert nversions(m, "log") == 3
    values = sorted(read_file(m.mnt / ".versions" / "log" / v)
                    for v in m.versions("log"))
    assert values == [b"line1\n", b"line1\nline2\n",
                      b"line1\nline2\nline3\n"]
    assert_clean(m, {"log"})


# ================================================================ find, ls, stat

def test_find_newer(mounted, tmpdir_sfs):
    m = mounted
    os.mkdir(m.p("f"))
    write_file(m.p("f/a"), b"a")
    write_file(m.p("f/b"), b"b")
    time.sleep(0.05)
    ref = tmpdir_sfs / "ref"
    write_file(ref, b"")
    time.sleep(0.05)
    write_file(m.p("f/b"), b"b2")              # a new version moves mtime
    # utimensat is accepted and ignored: touch cannot make a look newer
    ok(run(["touch", m.p("f/a")]))
    ok(run(["touch", "-d", "2030-01-01", m.p("f/a")]))
    out = ok(run(["find", m.mnt, "-type", "f", "-newer", ref])).split()
    assert out == [str(m.p("f/b"))]
    # a reference inside the mount works the same way
    out = ok(run(["find", m.mnt, "-type", "f", "-newer", m.p("f/a")]))
    assert out.split() == [str(m.p("f/b"))]
    assert_clean(m, {"f/a", "f/b"})


def test_ls_l_and_stat(mounted):
    m = mounted
    os.mkdir(m.p("app"), 0o750)
    write_file(m.p("app/pw"), b"hunter2")
    os.chown(m.p("app/pw"), 1000, 1000)
    ok(run(["touch", m.p("app/empty")]))       # a secret with no value
    line = ok(run(["ls", "-ln", m.p("app/pw")])).split()
    assert line[:5] == ["-rw-------", "1", "1000", "1000", "7"]
    assert line[-1] == str(m.p("app/pw"))
    listing = ok(run(["ls", "-l", m.p("app")])).splitlines()
    assert listing[0].startswith("total")
    assert [ln.split()[-1] for ln in listing[1:]] == ["empty", "pw"]
    assert ok(run(["ls", "-ld", m.p("app")])).startswith("drwxr-x---")
    # hidden views and scratch names are not listed
    assert ok(run(["ls", "-A", m.mnt])).split() == ["app"]

    fmt = "%s|%a|%u|%g|%F|%.3Y|%.3Z"
    size, mode, uid, gid, ftype, mtime, ctime = \
        ok(run(["stat", "-c", fmt, m.p("app/pw")])).strip().split("|")
    assert (size, mode, uid, gid, ftype) == \
        ("7", "600", "1000", "1000", "regular file")
    changed = os.getxattr(m.p("app/pw"), "user.sm.last_changed_date").decode()
    created = os.getxattr(m.p("app/pw"), "user.sm.created_date").decode()
    iso = "%Y-%m-%dT%H:%M:%S"
    assert time.strftime(iso, time.gmtime(float(mtime))) == changed[:19]
    assert time.strftime(iso, time.gmtime(float(ctime))) == created[:19]
    assert mtime.split(".")[1] == changed[20:23]
    assert ok(run(["stat", "-c", "%s|%F", m.p("app/empty")])).strip() == \
        "0|regular empty file"

    time.sleep(0.01)
    write_file(m.p("app/pw"), b"hunter3")
    mtime2, ctime2 = ok(run(["stat", "-c", "%.3Y|%.3Z",
                             m.p("app/pw")])).strip().split("|")
    assert float(mtime2) > float(mtime) and ctime2 == ctime
    assert_clean(m, {"app/pw", "app/empty"})
