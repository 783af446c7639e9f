"""Conformance of the listings through Debian's boto3: ListSecrets (Filters,
SortOrder, MaxResults and NextToken, IncludePlannedDeletion; reference
aws-semantics.md §5.5) and ListSecretVersionIds (IncludeDeprecated, paging;
§5.6). This module's server holds only the secrets made here."""

import pytest
from botocore.exceptions import ClientError

from apihelpers import error_of, offline_env, raw_json, server, sm, store  # noqa: F401


@pytest.fixture(scope="module")
def corpus(server, offline_env):
    from apihelpers import boto
    c = boto(server.url)
    made = [
        ("prod/db/password", "the main database", {"team": "data", "env": "prod"}),
        ("prod/api-key", "an API key for billing", {"env": "prod"}),
        ("dev/db/password", "a secret for testing", {"team": "data", "env": "dev"}),
        ("COMPANYthings", "Mixed case Words", {}),
        ("mixed-Name/x", "two kinds of separator", {}),
        ("gone", "scheduled for deletion", {"env": "old"}),
    ]
    for name, description, tags in made:
        c.create_secret(Name=name, SecretString="v", Description=description,
                        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    c.delete_secret(SecretId="gone")
    return [m[0] for m in made]


def names(sm, **kw):
    return sorted(s["Name"] for s in sm.list_secrets(**kw)["SecretList"])


def filtered(sm, *filters, **kw):
    return names(sm, Filters=[{"Key": k, "Values": v} for k, v in filters], **kw)


def test_entries_shape(sm, corpus):
    r = sm.list_secrets()
    entry = next(s for s in r["SecretList"] if s["Name"] == "prod/api-key")
    assert "SecretVersionsToStages" in entry and "VersionIdsToStages" not in entry
    assert entry["Description"] == "an API key for billing"
    assert entry["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert "NextToken" not in r


def test_planned_deletion_hidden_unless_asked(sm, server, corpus):
    assert "gone" not in names(sm)
    # Debian's botocore 1.29 does not know IncludePlannedDeletion (its aws
    # CLI does: test_api_cli.py): sent raw.
    status, body = raw_json(server, "ListSecrets", {"IncludePlannedDeletion": True})
    assert status == 200
    entry = next(s for s in body["SecretList"] if s["Name"] == "gone")
    assert isinstance(entry["DeletedDate"], float)
    status, body = raw_json(server, "ListSecrets", {"IncludePlannedDeletion": False})
    assert "gone" not in [s["Name"] for s in body["SecretList"]]


def test_name_filter_is_a_case_sensitive_prefix(sm, corpus):
    assert filtered(sm, ("name", ["prod/"])) == ["prod/api-key", "prod/db/password"]
    assert filtered(sm, ("name", ["Prod/"])) == []
    assert filtered(sm, ("name", ["prod/db", "dev/"])) == ["dev/db/password", "prod/db/password"]
    # A value is not split at spaces.
    assert filtered(sm, ("name", ["prod/db password"])) == []


def test_description_filter_matches_words(sm, corpus):
    assert filtered(sm, ("description", ["main"])) == ["prod/db/password"]
    assert filtered(sm, ("description", ["a sec"])) == ["dev/db/password"]
    assert filtered(sm, ("description", ["MIXED"])) == ["COMPANYthings"]
    assert filtered(sm, ("description", ["ain"])) == []


def test_tag_filters(sm, corpus):
    assert filtered(sm, ("tag-key", ["team"])) == ["dev/db/password", "prod/db/password"]
    assert filtered(sm, ("tag-value", ["pro"])) == ["prod/api-key", "prod/db/password"]
    assert filtered(sm, ("tag-key", ["team"]), ("tag-value", ["dev"])) == ["dev/db/password"]


def test_all_filter(sm, corpus):
    assert filtered(sm, ("all", ["billing"])) == ["prod/api-key"]
    assert filtered(sm, ("all", ["data"])) == ["dev/db/password", "prod/db/password"]
    # Names split at their separator and at case changes.
    assert filtered(sm, ("all", ["password"])) == ["dev/db/password", "prod/db/password"]
    assert filtered(sm, ("all", ["things"])) == []
    assert filtered(sm, ("all", ["ythings"])) == ["COMPANYthings"]
    # A name mixing two kinds of separator is one word.
    assert filtered(sm, ("all", ["name"])) == []
    assert filtered(sm, ("all", ["mixed-na"])) == ["mixed-Name/x"]


def test_negation(sm, corpus):
    assert filtered(sm, ("name", ["!prod/"])) == ["COMPANYthings", "dev/db/password",
                                                  "mixed-Name/x"]
    assert filtered(sm, ("tag-key", ["!team"]), ("name", ["prod/"])) == ["prod/api-key"]


def test_regions_and_services_match_nothing(sm, corpus):
    assert filtered(sm, ("primary-region", ["us-east-1"])) == []
    assert filtered(sm, ("owning-service", ["rds"])) == []
    assert len(filtered(sm, ("owning-service", ["!rds"]))) == 5


def test_filter_validation(sm, corpus):
    with pytest.raises(ClientError) as e:
        sm.list_secrets(Filters=[{"Key": "colour", "Values": ["red"]}])
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.list_secrets(Filters=[{"Key": "name", "Values": ["bad*char"]}])
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm.list_secrets(Filters=[{"Key": "name", "Values": [str(i) for i in range(11)]}])
    assert error_of(e)[0] == "ValidationException"


def test_sort_order(sm, corpus):
    asc = [s["Name"] for s in sm.list_secrets(SortOrder="asc")["SecretList"]]
    desc = [s["Name"] for s in sm.list_secrets(SortOrder="desc")["SecretList"]]
    assert asc == list(reversed(desc))
    assert asc[:2] == ["prod/db/password", "prod/api-key"]  # by CreatedDate
    with pytest.raises(ClientError) as e:
        sm.list_secrets(SortOrder="sideways")
    assert error_of(e)[0] == "ValidationException"


def test_paging(sm, corpus):
    seen, tokens = [], []
    kw = {"MaxResults": 2}
    while True:
        r = sm.list_secrets(**kw)
        assert len(r["SecretList"]) <= 2
        seen += [s["Name"] for s in r["SecretList"]]
        if "NextToken" not in r:
            break
        assert r["NextToken"] not in tokens
        tokens.append(r["NextToken"])
        kw["NextToken"] = r["NextToken"]
    assert sorted(seen) == sorted(set(corpus) - {"gone"})
    assert len(tokens) == 2
    # The SDK's paginator ends too.
    pages = list(sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 1}))
    assert sum(len(p["SecretList"]) for p in pages) == 5
    with pytest.raises(ClientError) as e:
        sm.list_secrets(NextToken="not-a-token")
    assert error_of(e)[0] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as e:
        sm.list_secrets(MaxResults=101)
    assert error_of(e)[0] == "ValidationException"


def test_list_version_ids(sm, corpus):
    name = "prod/db/password"
    ids = [sm.put_secret_value(SecretId=name, SecretString=f"v{i}")["VersionId"]
           for i in range(4)]
    r = sm.list_secret_version_ids(SecretId=name)
    assert r["Name"] == name and r["ARN"].endswith(r["ARN"][-7:])
    listed = {v["VersionId"]: v for v in r["Versions"]}
    assert set(listed) == set(ids[-2:])  # the rest carry no label
    assert listed[ids[-1]]["VersionStages"] == ["AWSCURRENT"]
    assert listed[ids[-2]]["VersionStages"] == ["AWSPREVIOUS"]
    entry = listed[ids[-1]]
    assert entry["KmsKeyIds"] and "CreatedDate" in entry
    every = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(every) == 5
    assert sum("VersionStages" not in v for v in every) == 3
    # Paging, newest first, one at a time.
    got, kw = [], {"SecretId": name, "IncludeDeprecated": True, "MaxResults": 2}
    while True:
        page = sm.list_secret_version_ids(**kw)
        got += [v["VersionId"] for v in page["Versions"]]
        if "NextToken" not in page:
            break
        kw["NextToken"] = page["NextToken"]
    assert got == [v["VersionId"] for v in every] and got[0] == ids[-1]


def test_list_version_ids_of_a_deleted_secret_and_unknown(sm, corpus):
    assert sm.list_secret_version_ids(SecretId="gone")["Versions"]
    with pytest.raises(ClientError) as e:
        sm.list_secret_version_ids(SecretId="never-made")
    assert error_of(e)[0] == "ResourceNotFoundException"
