"""Conformance of the value operations through Debian's boto3: CreateSecret,
GetSecretValue, PutSecretValue, UpdateSecret (reference aws-semantics.md
§5.1-5.3, 5.7, §7, §17), each asserting the service's shapes and errors."""

import datetime
import uuid

import pytest
from botocore.exceptions import ClientError

from apihelpers import (arn_re, error_of, offline_env, raw_json, server, sm, store,  # noqa: F401
                        uniq, UUID_RE)


def token():
    return str(uuid.uuid4())


# ------------------------------------------------------------ CreateSecret

def test_create_with_string_then_get(sm):
    name, tok = uniq(), token()
    r = sm.create_secret(Name=name, SecretString="hunter2", ClientRequestToken=tok)
    assert arn_re(name).match(r["ARN"])
    assert r["Name"] == name and r["VersionId"] == tok
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == "hunter2" and "SecretBinary" not in g
    assert g["VersionId"] == tok and g["VersionStages"] == ["AWSCURRENT"]
    assert g["ARN"] == r["ARN"] and g["Name"] == name
    assert isinstance(g["CreatedDate"], datetime.datetime)
    age = datetime.datetime.now(datetime.timezone.utc) - g["CreatedDate"]
    assert abs(age.total_seconds()) < 60


def test_create_token_defaults_to_a_uuid(sm):
    # boto3 fills ClientRequestToken with a UUID; it is the VersionId.
    r = sm.create_secret(Name=uniq(), SecretString="v")
    assert UUID_RE.match(r["VersionId"])


def test_create_binary_round_trip(sm):
    name = uniq()
    value = bytes([0, 1, 2, 255, 10, 0])
    sm.create_secret(Name=name, SecretBinary=value)
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretBinary"] == value and "SecretString" not in g


def test_binary_that_is_valid_utf8_stays_binary(sm):
    # The type is what the request said, not what the bytes look like.
    name = uniq()
    sm.create_secret(Name=name, SecretBinary=b"plain text")
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretBinary"] == b"plain text" and "SecretString" not in g


def test_string_keeps_unicode_and_control_characters(sm):
    name = uniq()
    value = "p\u00e4ss \U0001f511\n\t\"quoted\"\\ \x01"
    sm.create_secret(Name=name, SecretString=value)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == value


def test_create_without_value(sm):
    name = uniq()
    r = sm.create_secret(Name=name)
    assert set(r) - {"ResponseMetadata"} == {"ARN", "Name"}
    d = sm.describe_secret(SecretId=name)
    assert "VersionIdsToStages" not in d
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    code, message = error_of(e)
    assert code == "ResourceNotFoundException" and "AWSCURRENT" in message
    p = sm.put_secret_value(SecretId=name, SecretString="first",
                            VersionStages=["AWSPENDING"])
    # The first version gets AWSCURRENT whatever was asked.
    assert "AWSCURRENT" in p["VersionStages"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "first"


def test_create_existing_name(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="a")
    assert error_of(e)[0] == "ResourceExistsException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_create_replay_with_same_token(sm):
    name, tok = uniq(), token()
    first = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=tok)
    again = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=tok)
    assert {k: again[k] for k in ("ARN", "Name", "VersionId")} == \
        {k: first[k] for k in ("ARN", "Name", "VersionId")}
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="other", ClientRequestToken=tok)
    assert error_of(e)[0] == "ResourceExistsException"
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in versions] == [tok]


def test_create_both_values_refused(sm):
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="a", SecretBinary=b"b")
    assert error_of(e)[0] == "InvalidParameterException"


@pytest.mark.parametrize("bad", ["with space", "star*", "q?", "back\\slash"])
def test_create_invalid_name(sm, bad):
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=bad, SecretString="x")
    assert error_of(e)[0] == "ValidationException"


def test_create_name_of_512_and_513(sm):
    long = "n" * 500 + uniq("")[:12]
    long = (long + "x" * 512)[:512]
    sm.create_secret(Name=long, SecretString="x")
    assert sm.get_secret_value(SecretId=long)["Name"] == long
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="m" * 513, SecretString="x")
    assert error_of(e)[0] == "ValidationException"


def test_create_with_all_name_characters(sm):
    name = f"a/b_c+d=e.f@g-{uniq()}"
    sm.create_secret(Name=name, SecretString="x")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"


def test_create_with_description_tags_and_default_key(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x", Description="the db",
                     KmsKeyId="alias/aws/secretsmanager",
                     Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": ""}])
    d = sm.describe_secret(SecretId=name)
    assert d["Description"] == "the db"
    assert "KmsKeyId" not in d  # the default key is not shown
    assert sorted((t["Key"], t["Value"]) for t in d["Tags"]) == [("env", "prod"), ("team", "")]


def test_create_value_size_limits(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x" * 65536)
    assert len(sm.get_secret_value(SecretId=name)["SecretString"]) == 65536
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="x" * 65537)
    assert error_of(e)[0] == "ValidationException"
    # Bytes count, not characters: 32,769 two-byte characters are too many.
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="\u00e9" * 32769)
    assert error_of(e)[0] == "ValidationException"


def test_create_empty_string_refused(sm):
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="")
    assert error_of(e)[0] == "ValidationException"


def test_create_below_a_secret_is_refused(sm):
    # In secretsfs every prefix of a name is a folder (docs/api.md).
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=f"{name}/child", SecretString="y")
    assert error_of(e)[0] == "InvalidRequestException"


def test_create_with_replicas_is_refused(sm):
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=uniq(), SecretString="x",
                         AddReplicaRegions=[{"Region": "eu-west-1"}])
    assert error_of(e)[0] == "InvalidRequestException"


def test_create_name_scheduled_for_deletion(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="y")
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "scheduled for deletion" in message


# ------------------------------------------------------------ GetSecretValue

def test_get_by_arn_and_partial_arn(sm):
    name = f"prod/{uniq()}"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert sm.get_secret_value(SecretId=arn)["Name"] == name
    partial = arn[:-7]
    assert sm.get_secret_value(SecretId=partial)["Name"] == name
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=arn[:-1] + ("A" if arn[-1] != "A" else "B"))
    assert error_of(e)[0] == "ResourceNotFoundException"
    # A name with the suffix but no arn: prefix is not the secret.
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=arn.split(":secret:")[1])
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_partial_arn_of_a_name_ending_like_a_suffix(sm):
    name = f"{uniq()}-abc123"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert sm.get_secret_value(SecretId=arn)["Name"] == name
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=arn[:-7])
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_get_versions_and_stages(sm):
    name = uniq()
    v1, v2 = token(), token()
    sm.create_secret(Name=name, SecretString="one", ClientRequestToken=v1)
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=v2)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "one" and prev["VersionId"] == v1
    assert prev["VersionStages"] == ["AWSPREVIOUS"]
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    both = sm.get_secret_value(SecretId=name, VersionId=v2, VersionStage="AWSCURRENT")
    assert both["SecretString"] == "two"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSCURRENT")
    assert error_of(e)[0] == "InvalidRequestException"
    missing = token()
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=missing)
    code, message = error_of(e)
    assert code == "ResourceNotFoundException" and missing in message
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    code, message = error_of(e)
    assert code == "ResourceNotFoundException" and "AWSPENDING" in message


def test_get_unknown_and_scheduled_for_deletion(sm):
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=uniq("never"))
    assert error_of(e)[0] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "marked for deletion" in message


def test_get_sets_last_accessed_date_to_the_day(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    sm.get_secret_value(SecretId=name)
    day = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    assert (day.hour, day.minute, day.second) == (0, 0, 0)
    assert day.date() == datetime.datetime.now(datetime.timezone.utc).date()


def test_get_invalid_secret_id(sm):
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="bad name")
    assert error_of(e)[0] == "ValidationException"


# ------------------------------------------------------------ PutSecretValue

def test_put_same_value_new_token_makes_a_version(sm):
    # Over the API a new token always makes a version, as the service does
    # (the filesystem's "same value, no version" stays a filesystem rule).
    name = uniq()
    sm.create_secret(Name=name, SecretString="same")
    p = sm.put_secret_value(SecretId=name, SecretString="same")
    assert p["VersionStages"] == ["AWSCURRENT"]
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert len(versions) == 2
    stages = {v["VersionId"]: v["VersionStages"] for v in versions}
    assert stages[p["VersionId"]] == ["AWSCURRENT"]
    assert ["AWSPREVIOUS"] in stages.values()


def test_put_replay_and_conflicting_token(sm):
    name, tok = uniq(), token()
    sm.create_secret(Name=name, SecretString="a")
    first = sm.put_secret_value(SecretId=name, SecretString="b", ClientRequestToken=tok)
    again = sm.put_secret_value(SecretId=name, SecretString="b", ClientRequestToken=tok)
    assert again["VersionId"] == first["VersionId"] == tok
    assert again["VersionStages"] == ["AWSCURRENT"]
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 2
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="c", ClientRequestToken=tok)
    assert error_of(e)[0] == "ResourceExistsException"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretBinary=b"b", ClientRequestToken=tok)
    assert error_of(e)[0] == "ResourceExistsException"


def test_put_token_lengths(sm, server):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a")
    for n in (32, 64):
        sm.put_secret_value(SecretId=name, SecretString=str(n), ClientRequestToken="T" * n)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="x", ClientRequestToken="T" * 65)
    assert error_of(e)[0] == "ValidationException"
    # botocore itself refuses a token under 32 characters: sent raw.
    status, body = raw_json(server, "PutSecretValue", {
        "SecretId": name, "SecretString": "x", "ClientRequestToken": "T" * 31})
    assert status == 400 and body["__type"] == "ValidationException"
    # Any characters: AWS's own examples are not UUIDs.
    sm.put_secret_value(SecretId=name, SecretString="y",
                        ClientRequestToken="EXAMPLE1-90ab-cdef-fedc-ba987SECRET1")


def test_put_with_stages(sm):
    name = uniq()
    cur = sm.create_secret(Name=name, SecretString="current")["VersionId"]
    p = sm.put_secret_value(SecretId=name, SecretString="pending", VersionStages=["AWSPENDING"])
    assert p["VersionStages"] == ["AWSPENDING"]
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == "current" and g["VersionId"] == cur
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == \
        "pending"
    # Custom labels move; a version left without any is deprecated.
    a = sm.put_secret_value(SecretId=name, SecretString="a", VersionStages=["L1"])["VersionId"]
    sm.put_secret_value(SecretId=name, SecretString="b", VersionStages=["L1"])
    ids = [v["VersionId"] for v in sm.list_secret_version_ids(SecretId=name)["Versions"]]
    assert a not in ids
    every = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    deprecated = [v for v in every if v["VersionId"] == a]
    assert deprecated and "VersionStages" not in deprecated[0]
    assert a not in sm.describe_secret(SecretId=name)["VersionIdsToStages"]


def test_put_moves_current_and_previous(sm):
    name = uniq()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="3")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v3: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}
    assert v1 not in stages


def test_put_errors(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a")
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name)
    assert error_of(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="a", SecretBinary=b"a")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=uniq("never"), SecretString="a")
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="a",
                            VersionStages=[f"L{i}" for i in range(21)])
    assert error_of(e)[0] == "ValidationException"
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="b")
    assert error_of(e)[0] == "InvalidRequestException"


def test_twenty_labels_at_most(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a")
    # AWSCURRENT and 19 more fit; the 21st does not.
    sm.put_secret_value(SecretId=name, SecretString="b",
                        VersionStages=[f"L{i}" for i in range(18)])
    sm.put_secret_value(SecretId=name, SecretString="c", VersionStages=["L18"])
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="d", VersionStages=["L19"])
    assert error_of(e)[0] == "LimitExceededException"


# ------------------------------------------------------------ UpdateSecret

def test_update_description_only(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a", Description="old")
    r = sm.update_secret(SecretId=name, Description="new")
    assert "VersionId" not in r and r["Name"] == name and arn_re(name).match(r["ARN"])
    assert sm.describe_secret(SecretId=name)["Description"] == "new"
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1
    sm.update_secret(SecretId=name, Description="")
    assert "Description" not in sm.describe_secret(SecretId=name)


def test_update_value_and_replay(sm):
    name, tok = uniq(), token()
    sm.create_secret(Name=name, SecretString="a")
    r = sm.update_secret(SecretId=name, SecretString="b", ClientRequestToken=tok,
                         Description="with value")
    assert r["VersionId"] == tok
    g = sm.get_secret_value(SecretId=name)
    assert g["SecretString"] == "b" and g["VersionStages"] == ["AWSCURRENT"]
    assert sm.describe_secret(SecretId=name)["Description"] == "with value"
    again = sm.update_secret(SecretId=name, SecretString="b", ClientRequestToken=tok)
    assert again["VersionId"] == tok
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=name, SecretString="c", ClientRequestToken=tok)
    assert error_of(e)[0] == "ResourceExistsException"


def test_update_kms_key_and_errors(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="a")
    sm.update_secret(SecretId=name, KmsKeyId="alias/aws/secretsmanager")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=name, KmsKeyId="alias/no-such-key")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=name, Description="d" * 2049)
    assert error_of(e)[0] == "ValidationException"
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=name, Description="x")
    assert error_of(e)[0] == "InvalidRequestException"
