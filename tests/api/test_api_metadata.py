"""Conformance of the metadata and lifecycle operations through Debian's
boto3: DescribeSecret, TagResource, UntagResource, UpdateSecretVersionStage,
DeleteSecret, RestoreSecret (reference aws-semantics.md §5.4, 5.8-5.11, §8)."""

import datetime

import pytest
from botocore.exceptions import ClientError

from apihelpers import arn_re, error_of, offline_env, server, sm, store, uniq  # noqa: F401


def now():
    return datetime.datetime.now(datetime.timezone.utc)


# ------------------------------------------------------------ DescribeSecret

def test_describe_shape(sm):
    name = uniq()
    v = sm.create_secret(Name=name, SecretString="x", Description="about it",
                         Tags=[{"Key": "k", "Value": "v"}])["VersionId"]
    d = sm.describe_secret(SecretId=name)
    assert arn_re(name).match(d["ARN"]) and d["Name"] == name
    assert d["Description"] == "about it"
    assert d["Tags"] == [{"Key": "k", "Value": "v"}]
    assert d["VersionIdsToStages"] == {v: ["AWSCURRENT"]}
    assert "SecretVersionsToStages" not in d
    for field in ("CreatedDate", "LastChangedDate"):
        assert isinstance(d[field], datetime.datetime)
        assert abs((now() - d[field]).total_seconds()) < 60
    for absent in ("DeletedDate", "LastAccessedDate", "RotationEnabled", "KmsKeyId"):
        assert absent not in d


def test_describe_unknown(sm):
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=uniq("never"))
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_describe_scheduled_for_deletion(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    r = sm.delete_secret(SecretId=name, RecoveryWindowInDays=10)
    d = sm.describe_secret(SecretId=name)
    assert d["DeletedDate"] == r["DeletionDate"]
    assert "VersionIdsToStages" in d


# ------------------------------------------------------------ Tag / Untag

def test_tag_merges_and_overwrites(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "a", "Value": "1"}])
    r = sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "2"},
                                             {"Key": "b", "Value": "3"}])
    assert set(r) == {"ResponseMetadata"}
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags == {"a": "2", "b": "3"}


def test_untag_and_empty_list_after(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    assert "Tags" not in sm.describe_secret(SecretId=name)
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=name, TagKeys=["a", "not-there"])
    # Once tags existed, an empty list is shown (reference §5.4).
    assert sm.describe_secret(SecretId=name)["Tags"] == []
    sm.untag_resource(SecretId=name, TagKeys=["still-not-there"])


def test_tag_limits(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert error_of(e)[0] == "InvalidParameterException"
    sm.tag_resource(SecretId=name, Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "v", "Value": "v" * 257}])
    assert error_of(e)[0] == "InvalidParameterException"
    sm.tag_resource(SecretId=name, Tags=[{"Key": f"t{i}", "Value": ""} for i in range(49)])
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "one-too-many", "Value": ""}])
    assert error_of(e)[0] == "LimitExceededException"
    # All or nothing: the refused request added none of its tags.
    with pytest.raises(ClientError):
        sm.tag_resource(SecretId=name, Tags=[{"Key": "t0", "Value": "changed"},
                                             {"Key": "aws:x", "Value": ""}])
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert len(tags) == 50 and tags["t0"] == ""


def test_tag_untag_scheduled_for_deletion(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "b"}])
    assert error_of(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        sm.untag_resource(SecretId=name, TagKeys=["a"])
    assert error_of(e)[0] == "InvalidRequestException"


# ------------------------------------------------------------ UpdateSecretVersionStage

def test_move_current_needs_remove_from(sm):
    name = uniq()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2",
                             VersionStages=["AWSPENDING"])["VersionId"]
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                       MoveToVersionId=v2)
    code, message = error_of(e)
    assert code == "InvalidParameterException" and v1 in message
    r = sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                       MoveToVersionId=v2, RemoveFromVersionId=v1)
    assert r["Name"] == name and arn_re(name).match(r["ARN"])
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    # The target keeps AWSPENDING; the old current becomes AWSPREVIOUS.
    assert sorted(stages[v2]) == ["AWSCURRENT", "AWSPENDING"]
    assert stages[v1] == ["AWSPREVIOUS"]


def test_remove_from_must_hold_the_label(sm):
    name = uniq()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2")["VersionId"]
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                       MoveToVersionId=v1, RemoveFromVersionId=v1)
    assert error_of(e)[0] == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                   MoveToVersionId=v1, RemoveFromVersionId=v2)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "1"


def test_custom_label_add_move_remove(sm):
    name = uniq()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="2")["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", MoveToVersionId=v1)
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert sorted(stages[v1]) == ["AWSPREVIOUS", "MINE"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", MoveToVersionId=v2,
                                   RemoveFromVersionId=v1)
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert sorted(stages[v2]) == ["AWSCURRENT", "MINE"] and stages[v1] == ["AWSPREVIOUS"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="MINE", RemoveFromVersionId=v2)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"][v2] == ["AWSCURRENT"]


def test_stage_errors(sm):
    name = uniq()
    v1 = sm.create_secret(Name=name, SecretString="1")["VersionId"]
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=name, VersionStage="X",
                                       MoveToVersionId="0" * 32)
    assert error_of(e)[0] == "InvalidParameterException"
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=name, VersionStage="X", MoveToVersionId=v1)
    assert error_of(e)[0] == "InvalidRequestException"


# ------------------------------------------------------------ DeleteSecret / RestoreSecret

def test_delete_default_window_and_restore(sm):
    name = uniq()
    arn = sm.create_secret(Name=name, SecretString="x", Tags=[{"Key": "t", "Value": "v"}])["ARN"]
    r = sm.delete_secret(SecretId=name)
    assert r["ARN"] == arn and r["Name"] == name
    days = (r["DeletionDate"] - now()).total_seconds() / 86400
    assert 29.9 < days < 30.1
    r2 = sm.restore_secret(SecretId=name)
    assert r2["ARN"] == arn and r2["Name"] == name
    d = sm.describe_secret(SecretId=name)
    assert "DeletedDate" not in d and d["Tags"] == [{"Key": "t", "Value": "v"}]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"


@pytest.mark.parametrize("days,ok", [(6, False), (7, True), (30, True), (31, False)])
def test_delete_window_bounds(sm, days, ok):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    if ok:
        r = sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
        assert abs((r["DeletionDate"] - now()).total_seconds() / 86400 - days) < 0.1
    else:
        with pytest.raises(ClientError) as e:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
        assert error_of(e)[0] == "InvalidParameterException"


def test_delete_force_and_window_together(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error_of(e)[0] == "InvalidParameterException"


def test_force_delete(sm):
    name = uniq()
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    r = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert r["ARN"] == arn and abs((r["DeletionDate"] - now()).total_seconds()) < 60
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=name)
    assert error_of(e)[0] == "ResourceNotFoundException"
    # The name is free at once, with a new ARN.
    arn2 = sm.create_secret(Name=name, SecretString="y")["ARN"]
    assert arn2 != arn and arn_re(name).match(arn2)


def test_force_delete_of_nothing_and_of_a_scheduled_secret(sm):
    ghost = uniq("ghost")
    r = sm.delete_secret(SecretId=ghost, ForceDeleteWithoutRecovery=True)
    assert r["Name"] == ghost and arn_re(ghost).match(r["ARN"])
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    sm.delete_secret(SecretId=name)
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name)
    assert error_of(e)[0] == "InvalidRequestException"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.restore_secret(SecretId=name)
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_delete_unknown(sm):
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=uniq("never"))
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_restore_live_secret_is_a_no_op(sm):
    name = uniq()
    sm.create_secret(Name=name, SecretString="x")
    assert sm.restore_secret(SecretId=name)["Name"] == name
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"
