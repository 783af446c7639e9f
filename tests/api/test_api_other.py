"""Conformance of the other operations: GetRandomPassword (reference
aws-semantics.md §11), BatchGetSecretValue (§5.16, by raw HTTP: Debian's
clients predate it), the resource policies mapped onto the store's access
policy (§5.17) and the replication actions' clear errors (§5.15)."""

import json
import string

import pytest
from botocore.exceptions import ClientError

from apihelpers import (error_of, offline_env, raw_json, server, sm, store,  # noqa: F401
                        uniq)

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


# ------------------------------------------------------------ GetRandomPassword

def test_password_defaults(sm):
    for _ in range(5):
        p = sm.get_random_password()["RandomPassword"]
        assert len(p) == 32 and " " not in p
        assert any(c in string.ascii_uppercase for c in p)
        assert any(c in string.ascii_lowercase for c in p)
        assert any(c in string.digits for c in p)
        assert any(c in PUNCTUATION for c in p)


def test_password_rules(sm):
    p = sm.get_random_password(PasswordLength=100, ExcludeCharacters="abcdefXYZ0123",
                               ExcludePunctuation=True)["RandomPassword"]
    assert len(p) == 100 and not set(p) & set("abcdefXYZ0123" + PUNCTUATION)
    p = sm.get_random_password(PasswordLength=50, ExcludeNumbers=True, ExcludeUppercase=True,
                               ExcludeLowercase=True)["RandomPassword"]
    assert len(p) == 50 and set(p) <= set(PUNCTUATION)
    p = sm.get_random_password(PasswordLength=4096, IncludeSpace=True)["RandomPassword"]
    assert len(p) == 4096
    assert len(sm.get_random_password(PasswordLength=1,
                                      RequireEachIncludedType=False)["RandomPassword"]) == 1


def test_password_errors(sm):
    with pytest.raises(ClientError) as e:
        sm.get_random_password(PasswordLength=4097)
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.get_random_password(PasswordLength=2)  # four classes required
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.get_random_password(ExcludeNumbers=True, ExcludeUppercase=True,
                               ExcludeLowercase=True, ExcludePunctuation=True)
    assert error_of(e)[0] == "InvalidParameterException"


# ------------------------------------------------------------ BatchGetSecretValue

def test_batch_by_ids(server, sm):
    a, b, gone = uniq(), uniq(), uniq()
    sm.create_secret(Name=a, SecretString="A")
    arn_b = sm.create_secret(Name=b, SecretBinary=b"\x00B")["ARN"]
    sm.create_secret(Name=gone, SecretString="G")
    sm.delete_secret(SecretId=gone)
    status, body = raw_json(server, "BatchGetSecretValue",
                            {"SecretIdList": [a, arn_b, "never-made", gone]})
    assert status == 200
    values = {v["Name"]: v for v in body["SecretValues"]}
    assert values[a]["SecretString"] == "A" and values[a]["VersionStages"] == ["AWSCURRENT"]
    assert values[b]["SecretBinary"] == "AEI="
    assert isinstance(values[a]["CreatedDate"], float)
    errors = {e["SecretId"]: e for e in body["Errors"]}
    assert errors["never-made"]["ErrorCode"] == "ResourceNotFoundException"
    assert errors[gone]["ErrorCode"] == "InvalidRequestException"
    assert all(e["Message"] for e in body["Errors"])


def test_batch_by_filters_with_paging(server, sm):
    prefix = uniq("batch") + "/"
    for i in range(3):
        sm.create_secret(Name=f"{prefix}{i}", SecretString=str(i))
    got, token = [], None
    while True:
        req = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 2}
        if token:
            req["NextToken"] = token
        status, body = raw_json(server, "BatchGetSecretValue", req)
        assert status == 200 and body["Errors"] == []
        got += [(v["Name"], v["SecretString"]) for v in body["SecretValues"]]
        token = body.get("NextToken")
        if not token:
            break
    assert sorted(got) == [(f"{prefix}{i}", str(i)) for i in range(3)]


def test_batch_parameter_rules(server):
    for req in ({}, {"SecretIdList": ["a"], "Filters": [{"Key": "name", "Values": ["a"]}]},
                {"SecretIdList": ["a"], "MaxResults": 2}):
        status, body = raw_json(server, "BatchGetSecretValue", req)
        assert status == 400 and body["__type"] == "InvalidParameterException", req
    status, body = raw_json(server, "BatchGetSecretValue",
                            {"SecretIdList": [str(i) for i in range(21)]})
    assert status == 400 and body["__type"] == "ValidationException"


# ------------------------------------------------------------ resource policies, replication

def test_get_resource_policy_without_a_policy(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    r = sm.get_resource_policy(SecretId=name)
    assert r["Name"] == name and "ResourcePolicy" not in r


def test_put_and_delete_resource_policy_say_why_not(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    with pytest.raises(ClientError) as e:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=policy)
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "policy=" in message
    with pytest.raises(ClientError) as e:
        sm.delete_resource_policy(SecretId=name)
    assert error_of(e)[0] == "InvalidRequestException"


def test_validate_resource_policy(sm):
    good = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "ci"},
                                      "Action": "secretsmanager:GetSecretValue",
                                      "Resource": "*"}]})
    r = sm.validate_resource_policy(ResourcePolicy=good)
    assert r["PolicyValidationPassed"] is True and r["ValidationErrors"] == []
    r = sm.validate_resource_policy(ResourcePolicy=json.dumps({"Statement": [{"Effect": "Maybe"}]}))
    assert r["PolicyValidationPassed"] is False
    assert r["ValidationErrors"][0]["CheckName"] == "SYNTAX_CHECK"
    r = sm.validate_resource_policy(ResourcePolicy="not json")
    assert r["PolicyValidationPassed"] is False


@pytest.mark.parametrize("call,args", [
    ("replicate_secret_to_regions", {"AddReplicaRegions": [{"Region": "eu-west-1"}]}),
    ("remove_regions_from_replication", {"RemoveReplicaRegions": ["eu-west-1"]}),
    ("stop_replication_to_replica", {}),
])
def test_replication_is_not_built(sm, call, args):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        getattr(sm, call)(SecretId=name, **args)
    code, message = error_of(e)
    assert code == "InvalidRequestException" and "not built" in message
