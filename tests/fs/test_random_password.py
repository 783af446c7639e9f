"""secretsfs random-password: GetRandomPassword (reference §11)."""

import string

import pytest

from conftest import sfs

PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def pw(*args):
    r = sfs("random-password", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n") and r.stderr == ""
    return r.stdout[:-1]


def test_default_is_32_with_every_type():
    seen = set()
    for _ in range(20):
        p = pw()
        assert len(p) == 32
        assert " " not in p
        assert any(c in string.ascii_uppercase for c in p)
        assert any(c in string.ascii_lowercase for c in p)
        assert any(c in string.digits for c in p)
        assert any(c in PUNCT for c in p)
        assert set(p) <= set(string.ascii_letters + string.digits + PUNCT)
        seen.add(p)
    assert len(seen) == 20


def test_punctuation_set_is_exactly_32():
    assert len(PUNCT) == 32
    chars = set("".join(pw("--length", "4096") for _ in range(3)))
    assert set(PUNCT) <= chars  # every punctuation character turns up


@pytest.mark.parametrize("n", ["1", "4", "4096"])
def test_lengths_accepted(n):
    args = ["--length", n]
    if n == "1":
        args.append("--no-require-each-included-type")
    assert len(pw(*args)) == int(n)


@pytest.mark.parametrize("n", ["0", "4097", "-1", "x"])
def test_lengths_refused(n):
    r = sfs("random-password", "--length", n)
    assert r.returncode == 2 and r.stdout == ""


def test_exclusions_keep_the_length():
    for _ in range(10):
        p = pw("--length", "50", "--exclude-characters", "abcABC012!@#")
        assert len(p) == 50 and not set(p) & set("abcABC012!@#")
    p = pw("--exclude-numbers", "--exclude-punctuation")
    assert p.isalpha() and len(p) == 32
    p = pw("--exclude-uppercase", "--exclude-lowercase", "--exclude-punctuation")
    assert p.isdigit()


def test_include_space_and_impossible_requests():
    p = pw("--length", "200", "--exclude-numbers", "--exclude-punctuation",
           "--exclude-uppercase", "--exclude-lowercase", "--include-space")
    assert p == " " * 200
    r = sfs("random-password", "--length", "3")  # four required types
    assert r.returncode == 2 and "required" in r.stderr
    r = sfs("random-password", "--exclude-numbers", "--exclude-punctuation",
            "--exclude-uppercase", "--exclude-lowercase")
    assert r.returncode == 2
    r = sfs("random-password", "--exclude-characters", string.digits)
    assert r.returncode == 2
