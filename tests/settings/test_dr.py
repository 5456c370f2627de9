"""DR region settings: each rule, broken alone on the valid prod config, names its key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.settings.broken import DR, FAILOVER, Broken, assert_rejected

EKS: dict[str, Any] = DR["eks"]


def _without(values: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}


BROKEN: list[Broken] = [
    (
        "promotion slower than rto",
        "sophia:dr",
        {**DR, "rtoSeconds": 45, "failover": {**FAILOVER, "ttlSeconds": 5}},
        "sophia:dr.rtoSeconds",
    ),
    (
        "lease table name",
        "sophia:dr",
        {**DR, "failover": {**FAILOVER, "leaseTable": "lease table"}},
        "sophia:dr.failover.leaseTable",
    ),
    ("public cidr", "sophia:dr", {**DR, "vpcCidr": "8.8.0.0/16"}, "sophia:dr.vpcCidr"),
    ("host bits in cidr", "sophia:dr", {**DR, "vpcCidr": "10.40.0.1/16"}, "sophia:dr.vpcCidr"),
    ("cidr too wide", "sophia:dr", {**DR, "vpcCidr": "10.0.0.0/8"}, "sophia:dr.vpcCidr"),
    ("not a cidr", "sophia:dr", {**DR, "vpcCidr": "10.40.0.0/33"}, "sophia:dr.vpcCidr"),
    ("unknown aws region", "sophia:dr", {**DR, "awsRegion": "us-east-9"}, "sophia:dr.awsRegion"),
    ("zero rto", "sophia:dr", {**DR, "rtoSeconds": 0}, "sophia:dr.rtoSeconds"),
    ("failover slower than rto", "sophia:dr", {**DR, "failover": {**FAILOVER, "ttlSeconds": 30}}, "sophia:dr.failover"),
    (
        "30 s checks blow the rto",
        "sophia:dr",
        {**DR, "failover": {**FAILOVER, "healthCheckIntervalSeconds": 30}},
        "sophia:dr.failover",
    ),
    (
        "check interval route 53 lacks",
        "sophia:dr",
        {**DR, "failover": {**FAILOVER, "healthCheckIntervalSeconds": 15}},
        "sophia:dr.failover.healthCheckIntervalSeconds",
    ),
    (
        "lag alert above rpo",
        "sophia:dr",
        {**DR, "replicationLagAlertSeconds": 6},
        "sophia:dr.replicationLagAlertSeconds",
    ),
    (
        "two zones",
        "sophia:dr",
        {**DR, "availabilityZones": ["us-east-1a", "us-east-1b"]},
        "sophia:dr.availabilityZones",
    ),
    (
        "zone of another region",
        "sophia:dr",
        {**DR, "availabilityZones": ["us-east-1a", "us-east-1b", "us-west-2c"]},
        "sophia:dr.availabilityZones",
    ),
    ("bad stack reference", "sophia:dr", {**DR, "primaryStack": "prod"}, "sophia:dr.primaryStack"),
    (
        "eks open to the world",
        "sophia:dr",
        {**DR, "eks": {**EKS, "publicAccessCidrs": ["0.0.0.0/0"]}},
        "sophia:dr.eks.publicAccessCidrs",
    ),
    (
        "eks allow-list of a private network",
        "sophia:dr",
        {**DR, "eks": {**EKS, "publicAccessCidrs": ["10.0.0.0/16"]}},
        "sophia:dr.eks.publicAccessCidrs",
    ),
    (
        "eks allow-list unset",
        "sophia:dr",
        {**DR, "eks": _without(EKS, "publicAccessCidrs")},
        "sophia:dr.eks.publicAccessCidrs",
    ),
    ("deploy role unset", "sophia:dr", {**DR, "eks": _without(EKS, "deployRoleArn")}, "sophia:dr.eks.deployRoleArn"),
    (
        "deploy role not an arn",
        "sophia:dr",
        {**DR, "eks": {**EKS, "deployRoleArn": "sophia-dr-deploy"}},
        "sophia:dr.eks.deployRoleArn",
    ),
    (
        "operator is a service-linked role",
        "sophia:dr",
        {
            **DR,
            "eks": {
                **EKS,
                "operatorArns": [
                    "arn:aws:iam::123456789012:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS"
                ],
            },
        },
        "sophia:dr.eks.operatorArns",
    ),
    ("no operator", "sophia:dr", {**DR, "eks": {**EKS, "operatorArns": []}}, "sophia:dr.eks.operatorArns"),
    (
        "operator twice",
        "sophia:dr",
        {**DR, "eks": {**EKS, "operatorArns": [EKS["operatorArns"][0]] * 2}},
        "sophia:dr.eks.operatorArns",
    ),
    (
        "deploy role also an operator",
        "sophia:dr",
        {**DR, "eks": {**EKS, "operatorArns": [EKS["deployRoleArn"]]}},
        "sophia:dr.eks.operatorArns",
    ),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)


def test_a_cache_larger_than_one_replication_group_is_refused() -> None:
    cache = {**DR.get("elasticache", {}), "shards": 100, "replicasPerShard": 5}
    message = assert_rejected("sophia:dr", {**DR, "elasticache": cache}, "sophia:dr.elasticache.shards", "dr")
    assert "600 nodes" in message


def test_seeding_the_cache_is_refused_with_the_reason() -> None:
    cache = {**DR.get("elasticache", {}), "seedRdbArns": ["arn:aws:s3:::sophia-prod-backups-replica/redis/a.rdb"]}
    message = assert_rejected("sophia:dr", {**DR, "elasticache": cache}, "sophia:dr.elasticache.seedRdbArns", "dr")
    assert "starts empty" in message
