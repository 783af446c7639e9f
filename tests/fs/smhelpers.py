"""Helpers shared by test_xattrs.py, test_views.py, test_keys.py and
test_conformance.py: a module-scoped mount, xattr shorthands, and parsers
for the attributes secretsfs exposes (BRIEF section 3)."""

import ctypes
import errno
import itertools
import json
import os
import re
import shutil
import tempfile


from conftest import Mount, write_file

ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCOUNT = "000000000000"
REGION = "us-east-1"
KEY_ARN_RE = re.compile(
    rf"^arn:aws:kms:{REGION}:{ACCOUNT}:key/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_counter = itertools.count(1)


def uniq(prefix="s"):
    """A fresh secret name (unique within this test run)."""
    return f"{prefix}{next(_counter)}"


def arn_re(name):
    return re.compile(rf"^arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                      rf"{re.escape(name)}-[A-Za-z0-9]{{6}}$")


def module_mount():
    """Generator body for a module-scoped mount fixture."""
    base = tempfile.mkdtemp(prefix="secretsfs-test-", dir="/tmp")
    os.chmod(base, 0o755)
    m = None
    try:
        m = Mount(base)
        m.mount()
        yield m
    finally:
        if m is not None:
            m.cleanup()
        else:
            shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- xattrs

def xget(path, name):
    return os.getxattr(str(path), name).decode()


def xset(path, name, value, flags=0):
    if isinstance(value, str):
        value = value.encode()
    os.setxattr(str(path), name, value, flags)


def xdel(path, name):
    os.removexattr(str(path), name)


def xlist(path):
    return os.listxattr(str(path))


def describe(path):
    return json.loads(xget(path, "user.sm.describe"))


def version_lines(path):
    """user.sm.versions as [(id, date, [labels])], oldest first."""
    out = []
    for line in xget(path, "user.sm.versions").splitlines():
        parts = line.split(" ")
        assert len(parts) == 3, f"bad user.sm.versions line {line!r}"
        vid, date, labels = parts
        out.append((vid, date, [l for l in labels.split(",") if l]))
    return out


def version_ids(path):
    return [v[0] for v in version_lines(path)]


def labels_of(path):
    """{label: version id} from user.sm.versions."""
    out = {}
    for vid, _, labels in version_lines(path):
        for l in labels:
            assert l not in out, f"label {l} on two versions"
            out[l] = vid
    return out


def stage(path, label):
    return xget(path, f"user.sm.stage.{label}")


def state(path):
    """Everything the metadata of a secret shows, for 'changed nothing'."""
    names = sorted(xlist(path))
    values = {}
    for n in names:
        values[n] = xget(path, n)
    return values


def put(path, data):
    write_file(str(path), data)


def read(path):
    with open(str(path), "rb") as f:
        return f.read()


def commit(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """open/write/close; returns (step, errno) of the first failure, or
    None. Lets a test see that an error surfaced at close."""
    if isinstance(data, str):
        data = data.encode()
    try:
        fd = os.open(str(path), flags, 0o600)
    except OSError as e:
        return ("open", e.errno)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        return ("write", e.errno)
    try:
        os.close(fd)
    except OSError as e:
        return ("close", e.errno)
    return None


_libc = ctypes.CDLL(None, use_errno=True)
_libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                           ctypes.c_size_t]
_libc.getxattr.restype = ctypes.c_ssize_t
_libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.listxattr.restype = ctypes.c_ssize_t


def raw_getxattr(path, name, size):
    """getxattr(2) with a caller-chosen buffer size: (length, errno)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.getxattr(os.fsencode(str(path)), name.encode(),
                       buf if size else None, size)
    return (n, ctypes.get_errno() if n < 0 else 0)


def raw_listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.listxattr(os.fsencode(str(path)), buf if size else None, size)
    return (n, ctypes.get_errno() if n < 0 else 0)


def ename(e):
    return errno.errorcode.get(e, str(e))
