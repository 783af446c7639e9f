"""A minimal inotify watcher for tests, on libc through ctypes.

What a program that watches a file or a folder sees: Watcher().add(path)
watches path (a file: its own events; a folder: its own and its
children's, with the child's name), events(timeout) reads what arrived,
and wait_for(pred, timeout) takes events in order until one satisfies
pred.
Each event is (path watched, name or "", set of event names).
"""

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import time

IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_ALL_EVENTS = 0x00000fff
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

NAMES = {
    IN_ACCESS: "ACCESS", IN_MODIFY: "MODIFY", IN_ATTRIB: "ATTRIB",
    IN_CLOSE_WRITE: "CLOSE_WRITE", IN_CLOSE_NOWRITE: "CLOSE_NOWRITE",
    IN_OPEN: "OPEN", IN_MOVED_FROM: "MOVED_FROM", IN_MOVED_TO: "MOVED_TO",
    IN_CREATE: "CREATE", IN_DELETE: "DELETE", IN_DELETE_SELF: "DELETE_SELF",
    IN_MOVE_SELF: "MOVE_SELF", IN_UNMOUNT: "UNMOUNT",
    IN_Q_OVERFLOW: "Q_OVERFLOW", IN_IGNORED: "IGNORED", IN_ISDIR: "ISDIR",
}

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_HEADER = struct.Struct("iIII")


def names(mask):
    return {n for bit, n in NAMES.items() if mask & bit}


class Watcher:
    def __init__(self):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        self.paths = {}
        self.seen = []
        self.pending = []  # read, not yet looked at by wait_for

    def add(self, path, mask=IN_ALL_EVENTS):
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(str(path)), mask)
        if wd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), str(path))
        self.paths[wd] = str(path)
        return wd

    def events(self, timeout=0.0):
        """The events that arrive within timeout seconds (all already
        queued, then whatever comes until the timeout)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            out += self._read()
        self.seen += out
        return out

    def wait_for(self, pred, timeout):
        """The first event e with pred(e) within timeout seconds and the
        seconds it took, or (None, timeout). The one found is taken; the
        others read wait for the next call (the order of events of two
        watches means little); every event read is kept in seen."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            for i, e in enumerate(self.pending):
                if pred(e):
                    del self.pending[i]
                    return e, time.monotonic() - start
            left = deadline - time.monotonic()
            if left <= 0:
                return None, timeout
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                got = self._read()
                self.seen += got
                self.pending += got

    def _read(self):
        try:
            buf = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return []
            raise
        out = []
        off = 0
        while off < len(buf):
            wd, mask, _cookie, length = _HEADER.unpack_from(buf, off)
            off += _HEADER.size
            name = buf[off:off + length].rstrip(b"\0").decode()
            off += length
            out.append((self.paths.get(wd, "?"), name, names(mask)))
        return out

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
