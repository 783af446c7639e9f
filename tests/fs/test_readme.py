"""README.md matches the binary (issue 15, item 5): where `make` leaves it,
what needs `make install`, and commands and options that exist."""

import re

from conftest import REPO, sfs

README = (REPO / "README.md").read_text()


def section(title):
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert m, f"no section '## {title}' in README.md"
    return m.group(1)


def test_using_it_says_where_the_binary_is_and_what_needs_make_install():
    text = section("Using it")
    prose = text.split("```")[0]
    assert "`make` builds `bin/secretsfs`" in prose
    assert "make install" in prose
    for needs_install in ("`secretsfs`", "mount -t", "fuse.secretsfs", "/sbin/mount.fuse.secretsfs"):
        assert needs_install in prose.replace("\n", " "), needs_install
    # The first command of the example installs before calling secretsfs.
    block = text.split("```sh\n", 1)[1]
    first_secretsfs = block.index("secretsfs ")
    assert "make install" in block[:first_secretsfs]


def test_readme_commands_and_mount_options_exist():
    top = sfs("--help").stdout
    commands = set(re.findall(r"^  ([a-z][a-z-]*) ", top, re.M))
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    code = "\n".join(blocks + spans)
    used = set(re.findall(r"(?:^|\n)(?:bin/)?secretsfs ([a-z][a-z-]+)", code))
    assert used, "no secretsfs command in README.md"
    assert used <= commands, used - commands
    mount_usage = sfs("mount", "--help").stdout
    for opt in re.findall(r"`([a-z_]+)=", README):
        assert f"{opt}=" in mount_usage, opt
    assert "nonempty" in mount_usage


def test_readme_names_the_daemon_log_in_quick_start_and_errors():
    quick = section("Quick start")
    assert "secretsfs.log" in quick and "When something is refused" in quick
    errors = section("When something is refused")
    assert "`STORE.log` beside the store" in errors and "/dev/log" in errors
    assert "journalctl -t secretsfs" in errors and "log_file=FILE" in errors
