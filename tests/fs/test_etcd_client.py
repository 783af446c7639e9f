"""The etcd client of src/cluster against a real three-member etcd cluster.

tests/live/etcd_live.c runs one scenario per call and checks its own
results (exit 0 and "ok SCENARIO"); this module starts the cluster
(etcdcluster.py), injects faults between runs, and checks timings.
Only 127.0.0.1 is reached.
"""

import http.server
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import REPO
from etcdcluster import ETCD, EtcdCluster

LIVE = REPO / "build" / "tests" / "etcd_live"

pytestmark = pytest.mark.skipif(not os.access(ETCD, os.X_OK),
                                reason="etcd-server not installed (scripts/install-deps)")


def live(scenario, endpoints, *extra, timeout=40):
    if not LIVE.is_file():
        pytest.fail(f"{LIVE} not found: build it with `make`", pytrace=False)
    t0 = time.monotonic()
    r = subprocess.run([str(LIVE), scenario, ",".join(endpoints), *extra],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0 and f"ok {scenario}" in r.stdout, \
        f"{scenario}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}"
    results = {}
    for line in r.stdout.splitlines():
        if line.startswith("result "):
            _, key, value = line.split(" ", 2)
            results[key] = value
    return results, elapsed, r.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster of the test's own, for faults that would spoil the shared one."""
    made = []

    def factory(*extra_args):
        c = EtcdCluster(tmp_path / f"etcd{len(made)}", extra_args=extra_args, port_offset=8)
        made.append(c)
        c.start()
        return c
    yield factory
    for c in made:
        c.stop()


def test_fixture_cluster_has_one_leader_and_is_on_loopback(cluster):
    leader = cluster.leader()
    assert leader is not None
    for m in cluster.members:
        assert m.url.startswith("http://127.0.0.1:")
    ids = {cluster.status(m)["leader"] for m in cluster.members}
    assert len(ids) == 1


def test_put_range_paging_at_a_pinned_revision(cluster):
    results, _, _ = live("kv", cluster.endpoints)
    assert results["version"].startswith("3.4")


def test_txn_cas_and_create_if_absent(cluster):
    live("txn", cluster.endpoints)


def test_watch_order_progress_and_compacted_start(cluster):
    live("watch", cluster.endpoints)


def test_failover_when_the_first_endpoint_is_dead(cluster):
    dead = f"http://127.0.0.1:{cluster.dead_port}"
    results, _, log = live("failover", [dead] + cluster.endpoints)
    assert results["endpoint"] == cluster.endpoints[0]
    assert float(results["seconds"]) < 5
    assert "not sent" in log


def test_no_member_reachable_is_not_sent(cluster):
    dead = f"http://127.0.0.1:{cluster.dead_port}"
    live("all-dead", [dead, dead])


class HeadlessGateway(http.server.BaseHTTPRequestHandler):
    """Answers every call 200 without the header etcd always sends, and a
    watch with a fragment (part of one revision's events)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v3/watch":
            body = (b'{"result":{"header":{"revision":"2"},"fragment":true,"events":'
                    b'[{"kv":{"key":"L2g=","mod_revision":"2","value":"dg=="}}]}}\n')
        else:
            body = b'{"kvs":[],"count":"0"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_answers_without_a_header_and_fragments_are_refused():
    """No etcd: a fake gateway. A write answered without a header has an
    unknown outcome (etcd may have applied it), a read so answered is
    -EBADMSG, and a watch refuses a fragment, saying so."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HeadlessGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _, _, log = live("headless", [f"http://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
        server.server_close()
    assert "malformed answer" in log and "its outcome is unknown" in log
    assert "refused: a fragment of a revision's events" in log


def test_quorum_lost_gives_the_unknown_outcome_in_time(own_cluster):
    c = own_cluster()
    leader = c.leader()
    others = [m for m in c.members if m is not leader]
    # Stop the leader and one follower: the client talks to the survivor.
    survivor = others[0]
    c.sigstop(leader)
    c.sigstop(others[1])
    results, elapsed, log = live("quorum-lost", [survivor.url])
    # client timeout 3 s per unary call; the watch ends by "no leader" or
    # by the 4 s watchdog
    assert float(results["put_seconds"]) < 4.5
    assert float(results["range_seconds"]) < 4.5
    assert float(results["watch_seconds"]) < 8
    c.sigcont(leader)
    c.sigcont(others[1])
    c.wait_ready()


def test_auth_password_file_permissions_and_reauth_after_expiry(own_cluster, tmp_path):
    c = own_cluster("--auth-token-ttl", "1")
    c.etcdctl("user", "add", "root:rootpw")
    c.etcdctl("user", "add", "sfs:s3cret")
    c.etcdctl("role", "add", "sfs-rw")
    c.etcdctl("role", "grant-permission", "sfs-rw", "--prefix=true", "readwrite", "/sfs/")
    c.etcdctl("user", "grant-role", "sfs", "sfs-rw")
    c.etcdctl("auth", "enable")
    pw = tmp_path / "etcd-password"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    _, _, log = live("auth", c.endpoints, "sfs", str(pw), "1")
    assert "token refused; authenticating again" in log
    assert "s3cret" not in log
    # a wrong password is refused, not retried forever
    bad = tmp_path / "bad-password"
    bad.write_text("nope\n")
    r = subprocess.run([str(LIVE), "kv", ",".join(c.endpoints), "sfs", str(bad)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "want 0" in r.stdout and "nope" not in r.stderr
    assert "authentication as sfs failed" in r.stderr
