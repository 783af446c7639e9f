"""No stale value under caching: an update through one path is read at once
through every other (issue: performance, correctness under caching)."""

import json
import os

from conftest import read_file, sfs, write_file


def test_update_through_one_path_read_through_another_at_once(mounted):
    m = mounted
    os.makedirs(m.p("app"))
    for i in range(50):
        main = json.dumps({"user": "u", "password": f"p{i}"}).encode()
        # Through the file itself...
        write_file(m.p("app/db"), main)
        assert read_file(m.p("app/db")) == main
        assert read_file(m.p(".stages/AWSCURRENT/app/db")) == main
        assert read_file(m.p(".fields/app/db/password")) == f"p{i}".encode()
        # ...and through the AWSCURRENT view, read back through the file.
        staged = json.dumps({"user": "u", "password": f"s{i}"}).encode()
        write_file(m.p(".stages/AWSCURRENT/app/db"), staged)
        assert read_file(m.p("app/db")) == staged
        assert os.stat(m.p("app/db")).st_size in (len(staged), len(main))


def test_update_through_the_cli_read_at_once(mounted):
    m = mounted
    write_file(m.p("s"), b"before")
    assert read_file(m.p("s")) == b"before"
    r = sfs("import", m.mnt, input=json.dumps({"Name": "s", "SecretString": "after"}) + "\n")
    assert r.returncode == 0, r.stderr
    assert read_file(m.p("s")) == b"after"
    # Label moves (UpdateSecretVersionStage) show at once too.
    previous = os.getxattr(m.p("s"), "user.sm.stage.AWSPREVIOUS")
    os.setxattr(m.p("s"), "user.sm.stage.AWSCURRENT", previous)
    assert read_file(m.p("s")) == b"before"


def test_a_second_mount_of_the_same_store_is_refused(mounted, tmp_path):
    """One daemon per store keeps every cache exact: a second mount would
    change the store behind the first one's back."""
    m = mounted
    other = tmp_path / "second"
    other.mkdir()
    r = sfs("mount", m.store, other, "-o", f"key_file={m.key}")
    assert r.returncode == 1
    assert "already mounted" in r.stderr
