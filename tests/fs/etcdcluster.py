"""A three-member etcd cluster on 127.0.0.1 for tests, from Debian's /usr/bin/etcd.

Ports are derived from the test process's pid (two runs at once do not
collide), data directories are fresh under the test's tmp dir, and the
cluster token is unique per start. Heartbeat/election are short (50/500 ms,
election 10x heartbeat) and progress notifications come every second, so
fault tests stay short. Teardown sends SIGTERM to the saved pids, then
SIGKILL after a timeout (a last member can hang in shutdown); nothing is
ever killed by name. Everything listens on loopback only.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"


def base_port():
    """A block of 16 ports from the pid, in 20000-59999, away from 2379/2380."""
    return 20000 + (os.getpid() % 2500) * 16


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, log_path):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.stopped = False  # SIGSTOP'd

    @property
    def url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"


class EtcdCluster:
    def __init__(self, base_dir, size=3, extra_args=(), port_offset=0):
        self.base_dir = Path(base_dir)
        self.extra_args = list(extra_args)
        port = base_port() + port_offset
        self.token = f"sfs-test-{os.getpid()}-{time.time_ns()}"
        self.members = []
        for i in range(size):
            name = f"n{i + 1}"
            self.members.append(Member(name, port + 2 * i, port + 2 * i + 1,
                                       self.base_dir / name, self.base_dir / f"{name}.log"))
        # A port nobody listens on: the "dead first endpoint".
        self.dead_port = port + 2 * size

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
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"{}")
            except ValueError:
                return e.code, {}

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
            live = [m for m in self.members if m.proc and m.proc.poll() is None and not m.stopped]
            sts = [self.status(m) for m in live]
            if live and all(s and s.get("leader") for s in sts):
                return
            for m in self.members:
                if m.proc and m.proc.poll() is not None and not m.stopped and m.proc.returncode:
                    raise RuntimeError(f"etcd {m.name} exited {m.proc.returncode}: "
                                       f"{m.log_path.read_text()[-2000:]}")
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
        member.proc.kill()
        member.proc.wait(timeout=10)

    def etcdctl(self, *args, user=None, check=True, timeout=20):
        cmd = [ETCDCTL, "--endpoints", ",".join(self.endpoints), "--dial-timeout", "2s"]
        if user:
            cmd += ["--user", user]
        r = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL, capture_output=True,
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
