"""A three-member etcd cluster on 127.0.0.1 for tests, from Debian's /usr/bin/etcd.

Ports are derived from the test process's pid (two runs at once do not
collide; a block some other process holds a port of is passed over), below
the kernel's ephemeral ports (any outgoing connection may hold one of
those), and a member that exits on its own is an error. Data directories are fresh under the test's tmp dir, and the
cluster token is unique per start. Heartbeat/election are short (50/500 ms,
election 10x heartbeat) and progress notifications come every second, so
fault tests stay short. Teardown sends SIGTERM to the saved pids, then
SIGKILL after a timeout (a last member can hang in shutdown); nothing is
ever killed by name. Everything listens on loopback only, unless a test
places the members itself (addresses and network namespaces it made, for
the partition test): then each member runs under `nsenter --net` in its
namespace and listens on its address there, and this process reaches them
from the namespace named client_netns.
"""

import concurrent.futures
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


PORT_LOW, PORT_BLOCKS = 20000, 798  # 20000-32767, under Linux's ephemeral 32768-60999


def base_port():
    """A block of 16 ports from the pid, in 20000-32767, away from 2379/2380."""
    return PORT_LOW + (os.getpid() % PORT_BLOCKS) * 16


def port_free(port):
    """Nothing listens on 127.0.0.1:port nor holds it for a connection
    (SO_REUSEADDR, as etcd binds: a closed connection's TIME_WAIT is no bar)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


NSENTER = "/usr/bin/nsenter"
CLONE_NEWNET = 0x40000000


def in_netns(netns, argv):
    """argv run in network namespace netns (made by `ip netns add`), or as is
    when netns is None. nsenter --net changes nothing else (the mount
    namespace stays this one's, so FUSE mounts made there are seen here) and
    execs argv without a fork: the pid started is argv's own."""
    return [NSENTER, f"--net=/run/netns/{netns}", *argv] if netns else list(argv)


class NetnsCaller:
    """Runs callables on one thread of this process that has entered a
    network namespace (setns moves the calling thread alone), so that the
    sockets they open are that namespace's."""

    def __init__(self, netns):
        self.netns = netns
        self.pool = concurrent.futures.ThreadPoolExecutor(1, initializer=self._enter)

    def _enter(self):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns into {self.netns}: {os.strerror(e)}")
        finally:
            os.close(fd)

    def __call__(self, fn):
        return self.pool.submit(fn).result()

    def close(self):
        self.pool.shutdown(wait=True)


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, log_path,
                 address="127.0.0.1", netns=None):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.log_path = log_path
        self.address = address
        self.netns = netns  # None: this process's network namespace
        self.proc = None
        self.stopped = False  # SIGSTOP'd
        self.killed = False   # SIGKILL'd by kill(): its exit is no error

    @property
    def url(self):
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://{self.address}:{self.peer_port}"


class EtcdCluster:
    def __init__(self, base_dir, size=3, extra_args=(), port_offset=0,
                 addresses=None, netns=None, client_netns=None):
        """addresses, netns: one per member (default 127.0.0.1 in this
        process's namespace); client_netns: where this process reaches the
        members from (post, status, etcdctl), None for its own."""
        self.base_dir = Path(base_dir)
        self.extra_args = list(extra_args)
        port = base_port() + port_offset
        if not netns:  # a namespace of the test's own has every port free
            for _ in range(PORT_BLOCKS):
                if all(port_free(p) for p in range(port, port + 2 * size + 1)):
                    break
                port = PORT_LOW + (port - PORT_LOW + 16) % (PORT_BLOCKS * 16)
        self.token = f"sfs-test-{os.getpid()}-{time.time_ns()}"
        self.members = []
        for i in range(size):
            name = f"n{i + 1}"
            self.members.append(Member(name, port + 2 * i, port + 2 * i + 1,
                                       self.base_dir / name, self.base_dir / f"{name}.log",
                                       address=addresses[i] if addresses else "127.0.0.1",
                                       netns=netns[i] if netns else None))
        # A port nobody listens on: the "dead first endpoint".
        self.dead_port = port + 2 * size
        self.client_netns = client_netns
        self.caller = NetnsCaller(client_netns) if client_netns else None

    @property
    def endpoints(self):
        return [m.url for m in self.members]

    def start(self, timeout=20.0):
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.data_dir.mkdir(parents=True, exist_ok=False)
            args = [ETCD, "--name", m.name, "--data-dir", str(m.data_dir),
                    "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
                    "--listen-peer-urls", m.peer_url,
                    "--initial-advertise-peer-urls", m.peer_url,
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", self.token,
                    "--heartbeat-interval", "50", "--election-timeout", "500",
                    "--experimental-watch-progress-notify-interval", "1s",
                    "--pre-vote=true", "--log-outputs", "stderr",
                    *self.extra_args]
            args = in_netns(m.netns, args)
            log = open(m.log_path, "wb")
            m.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        self.wait_ready(timeout)

    def post(self, member, path, body=None, timeout=2.0, token=None):
        """POST JSON to one member; (status, parsed body)."""
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(member.url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", token)

        def exchange():
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                try:
                    return e.code, json.loads(e.read() or b"{}")
                except ValueError:
                    return e.code, {}
        return self.caller(exchange) if self.caller else exchange()

    def status(self, member, timeout=1.0):
        try:
            code, body = self.post(member, "/v3/maintenance/status", timeout=timeout)
        except (OSError, ValueError):
            return None
        return body if code == 200 else None

    def wait_ready(self, timeout=20.0):
        """Every running, unstopped member answers status and knows a leader."""
        deadline = time.monotonic() + timeout
        while True:
            # Two members elect a leader without the third: a member that
            # died (a port taken, say) must not pass for a cluster of three.
            for m in self.members:
                if m.proc and m.proc.poll() is not None and not m.killed:
                    raise RuntimeError(f"etcd {m.name} exited {m.proc.returncode}: "
                                       f"{m.log_path.read_text()[-2000:]}")
            live = [m for m in self.members if m.proc and m.proc.poll() is None and not m.stopped]
            sts = [self.status(m) for m in live]
            if live and all(s and s.get("leader") for s in sts):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("etcd cluster not ready")
            time.sleep(0.1)

    def leader(self):
        """The member that is leader now (by its member id in status)."""
        for m in self.members:
            if m.stopped or not m.proc or m.proc.poll() is not None:
                continue
            s = self.status(m)
            if s and s.get("leader") and s["leader"] == s.get("header", {}).get("member_id"):
                return m
        return None

    def sigstop(self, member):
        os.kill(member.proc.pid, signal.SIGSTOP)
        member.stopped = True

    def sigcont(self, member):
        os.kill(member.proc.pid, signal.SIGCONT)
        member.stopped = False

    def kill(self, member):
        """SIGKILL one member (it stays dead)."""
        if member.stopped:
            self.sigcont(member)
        member.killed = True
        member.proc.kill()
        member.proc.wait(timeout=10)

    def etcdctl(self, *args, user=None, check=True, timeout=20):
        cmd = [ETCDCTL, "--endpoints", ",".join(self.endpoints), "--dial-timeout", "2s"]
        if user:
            cmd += ["--user", user]
        r = subprocess.run(in_netns(self.client_netns, cmd + list(args)), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, env={**os.environ, "ETCDCTL_API": "3"})
        if check and r.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {r.stderr}")
        return r

    def stop(self, timeout=5.0):
        for m in self.members:
            if m.proc and m.proc.poll() is None:
                if m.stopped:
                    os.kill(m.proc.pid, signal.SIGCONT)
                    m.stopped = False
                m.proc.terminate()
        deadline = time.monotonic() + timeout
        for m in self.members:
            if not m.proc:
                continue
            try:
                m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(timeout=10)
        if self.caller:
            self.caller.close()
