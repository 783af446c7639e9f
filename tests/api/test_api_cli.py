"""A smoke test of Debian's /usr/bin/aws (awscli 2.9.19, its own vendored
botocore) against `secretsfs serve`, offline (reference aws-endpoint.md
§3.1, §3.4): the main operations, exit codes, binary values and dates as
the CLI prints them."""

import base64
import re

from apihelpers import aws, server, store, uniq  # noqa: F401


def test_cli_main_operations(server, store):
    e = store.env
    name = uniq("cli")
    rc, out, err = aws(server.url, e, "create-secret", "--name", name,
                       "--secret-string", "s3cr3t", "--description", "from the CLI",
                       "--tags", "Key=env,Value=ci")
    assert rc == 0, err
    arn = out["ARN"]
    rc, out, err = aws(server.url, e, "get-secret-value", "--secret-id", name)
    assert rc == 0, err
    assert out["SecretString"] == "s3cr3t" and out["VersionStages"] == ["AWSCURRENT"]
    # The CLI prints timestamps as ISO 8601 with an offset.
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", out["CreatedDate"])
    rc, out, err = aws(server.url, e, "put-secret-value", "--secret-id", arn,
                       "--secret-string", "n3w", "--version-stages", "AWSCURRENT", "EXTRA")
    assert rc == 0, err
    assert sorted(out["VersionStages"]) == ["AWSCURRENT", "EXTRA"]
    rc, out, _ = aws(server.url, e, "get-secret-value", "--secret-id", name,
                     "--version-stage", "AWSPREVIOUS")
    assert rc == 0 and out["SecretString"] == "s3cr3t"
    rc, out, _ = aws(server.url, e, "describe-secret", "--secret-id", name)
    assert rc == 0 and out["Description"] == "from the CLI" and out["Tags"][0]["Key"] == "env"
    rc, out, _ = aws(server.url, e, "list-secrets", "--filters", f"Key=name,Values={name}")
    assert rc == 0 and [s["Name"] for s in out["SecretList"]] == [name]
    rc, out, _ = aws(server.url, e, "list-secret-version-ids", "--secret-id", name)
    assert rc == 0 and len(out["Versions"]) == 2
    rc, _, _ = aws(server.url, e, "tag-resource", "--secret-id", name,
                   "--tags", "Key=a,Value=b")
    assert rc == 0
    rc, _, _ = aws(server.url, e, "untag-resource", "--secret-id", name, "--tag-keys", "a")
    assert rc == 0
    rc, out, _ = aws(server.url, e, "update-secret", "--secret-id", name,
                     "--description", "changed")
    assert rc == 0 and "VersionId" not in out
    rc, out, _ = aws(server.url, e, "get-random-password", "--password-length", "20",
                     "--exclude-punctuation")
    assert rc == 0 and len(out["RandomPassword"]) == 20
    rc, out, _ = aws(server.url, e, "delete-secret", "--secret-id", name,
                     "--recovery-window-in-days", "7")
    assert rc == 0 and out["Name"] == name
    rc, out, _ = aws(server.url, e, "list-secrets", "--include-planned-deletion",
                     "--filters", f"Key=name,Values={name}")
    assert rc == 0 and out["SecretList"][0]["Name"] == name
    rc, out, _ = aws(server.url, e, "restore-secret", "--secret-id", name)
    assert rc == 0 and out["ARN"] == arn
    rc, out, _ = aws(server.url, e, "delete-secret", "--secret-id", name,
                     "--force-delete-without-recovery")
    assert rc == 0


def test_cli_errors_exit_254(server, store):
    rc, out, err = aws(server.url, store.env, "get-secret-value", "--secret-id", "never-made")
    assert rc == 254
    assert "An error occurred (ResourceNotFoundException) when calling the GetSecretValue " \
        "operation" in err


def test_cli_binary(server, store, tmp_path):
    name = uniq("clibin")
    f = tmp_path / "blob"
    f.write_bytes(b"\x00\x01\x02\xff")
    rc, _, err = aws(server.url, store.env, "create-secret", "--name", name,
                     "--secret-binary", f"fileb://{f}")
    assert rc == 0, err
    rc, out, _ = aws(server.url, store.env, "get-secret-value", "--secret-id", name)
    assert rc == 0 and base64.b64decode(out["SecretBinary"]) == b"\x00\x01\x02\xff"
    # Given on the command line, a value is base64 to CLI v2.
    rc, _, err = aws(server.url, store.env, "put-secret-value", "--secret-id", name,
                     "--secret-binary", "AAEC/w==")
    assert rc == 0, err
