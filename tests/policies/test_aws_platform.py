"""AWS platform rules (EKS, EC2, load balancer listeners, CloudTrail), written with pulumi-aws's classes:
a compliant baseline passes; each broken property fails with its message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.helpers import DELETE, aws, messages, program, skipped, with_

EKS: dict[str, Any] = {
    "role_arn": "arn:aws:iam::123456789012:role/eks",
    "version": "1.31",
    "vpc_config": {
        "subnet_ids": ["subnet-1", "subnet-2"],
        "endpoint_private_access": True,
        "endpoint_public_access": True,
        "public_access_cidrs": ["203.0.113.0/24"],
    },
    "encryption_config": {"provider": {"key_arn": "arn:aws:kms:us-east-1:1:key/k"}, "resources": ["secrets"]},
    "enabled_cluster_log_types": ["api", "audit", "authenticator"],
}


def eks(**changes: Any) -> Any:
    return program(lambda: aws.eks.Cluster("eks", **with_(EKS, **changes)))


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        (
            "aws-eks-cluster-secrets-encrypted",
            {"encryption_config": DELETE},
            "secrets are not encrypted with a KMS key (encryptionConfig).",
        ),
        (
            "aws-eks-cluster-endpoint-not-public",
            {"vpc_config": with_(EKS["vpc_config"], public_access_cidrs=DELETE)},
            "the API endpoint is public to every address (no publicAccessCidrs).",
        ),
        (
            "aws-eks-cluster-endpoint-not-public",
            {"vpc_config": with_(EKS["vpc_config"], endpoint_public_access=DELETE, public_access_cidrs=["0.0.0.0/0"])},
            "the API endpoint is public to 0.0.0.0/0 (the whole internet).",
        ),
        (
            "aws-eks-cluster-control-plane-logs",
            {"enabled_cluster_log_types": ["api"]},
            "control plane logs audit, authenticator are off.",
        ),
        ("aws-eks-cluster-supported-version", {"version": "1.24"}, "version 1.24 is not supported"),
        ("aws-eks-cluster-supported-version", {"version": DELETE}, "no version is pinned"),
    ],
)
def test_eks_cluster(policy: str, change: dict[str, Any], expected: str) -> None:
    assert messages(policy, eks()) == []
    assert [m[: len(expected)] for m in messages(policy, eks(**change))] == [expected]


def test_a_private_endpoint_needs_no_source_ranges() -> None:
    private = {"subnet_ids": ["subnet-1"], "endpoint_public_access": False}
    assert messages("aws-eks-cluster-endpoint-not-public", eks(vpc_config=private)) == []


def test_the_secrets_key_may_be_created_in_the_same_preview() -> None:
    def build() -> None:
        key = aws.kms.Key("k", enable_key_rotation=True)
        aws.eks.Cluster(
            "eks", **with_(EKS, encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]})
        )

    run = program(build, first_preview=True)
    assert messages("aws-eks-cluster-secrets-encrypted", run) == []
    assert skipped("aws-eks-cluster-secrets-encrypted", run) == []


def test_node_group_ssh() -> None:
    base = {
        "cluster_name": "eks",
        "node_role_arn": "arn:aws:iam::1:role/nodes",
        "subnet_ids": ["subnet-1"],
        "scaling_config": {"desired_size": 1, "max_size": 2, "min_size": 1},
    }
    policy = "aws-eks-nodegroup-no-public-ssh"
    assert messages(policy, program(lambda: aws.eks.NodeGroup("ng", **base))) == []
    restricted = {"ec2_ssh_key": "ops", "source_security_group_ids": ["sg-ops"]}
    assert messages(policy, program(lambda: aws.eks.NodeGroup("ng", **base, remote_access=restricted))) == []
    open_ssh = {"ec2_ssh_key": "ops"}
    assert messages(policy, program(lambda: aws.eks.NodeGroup("ng", **base, remote_access=open_ssh))) == [
        "remoteAccess opens SSH to 0.0.0.0/0 (no sourceSecurityGroupIds)."
    ]


INSTANCE: dict[str, Any] = {
    "ami": "ami-1",
    "instance_type": "m6i.large",
    "associate_public_ip_address": False,
    "metadata_options": {"http_tokens": "required"},
    "root_block_device": {"encrypted": True},
}


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-ec2-instance-no-public-ip", {"associate_public_ip_address": True}, "associatePublicIpAddress is true."),
        (
            "aws-ec2-instance-imdsv2-required",
            {"metadata_options": {"http_tokens": "optional"}},
            "metadataOptions.httpTokens is not 'required' (IMDSv1 allowed).",
        ),
        (
            "aws-ec2-instance-imdsv2-required",
            {"metadata_options": DELETE},
            "metadataOptions.httpTokens is not 'required' (IMDSv1 allowed).",
        ),
    ],
)
def test_ec2_instance(policy: str, change: dict[str, Any], expected: str) -> None:
    assert messages(policy, program(lambda: aws.ec2.Instance("i", **INSTANCE))) == []
    assert messages(policy, program(lambda: aws.ec2.Instance("i", **with_(INSTANCE, **change)))) == [expected]


def test_launch_templates() -> None:
    ok = {
        "metadata_options": {"http_tokens": "required"},
        "network_interfaces": [{"associate_public_ip_address": "false"}],
    }
    assert messages("aws-ec2-instance-no-public-ip", program(lambda: aws.ec2.LaunchTemplate("lt", **ok))) == []
    assert messages("aws-ec2-instance-imdsv2-required", program(lambda: aws.ec2.LaunchTemplate("lt", **ok))) == []
    public = with_(ok, network_interfaces=[{"associate_public_ip_address": "true"}])
    assert messages("aws-ec2-instance-no-public-ip", program(lambda: aws.ec2.LaunchTemplate("lt", **public))) == [
        "network interface 0 asks for a public IP address."
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"protocol": "HTTPS", "port": 443, "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}, []),
        (
            {
                "protocol": "HTTP",
                "port": 80,
                "default_actions": [
                    {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
                ],
            },
            [],
        ),
        (
            {"protocol": "HTTPS", "port": 443, "ssl_policy": "ELBSecurityPolicy-2016-08"},
            ["sslPolicy ELBSecurityPolicy-2016-08 allows TLS below 1.2 or weak ciphers."],
        ),
        ({"protocol": "HTTPS", "port": 443}, ["sslPolicy (the default) allows TLS below 1.2 or weak ciphers."]),
        (
            {"protocol": "HTTP", "port": 8080, "default_actions": [{"type": "forward", "target_group_arn": "arn:tg"}]},
            ["port 8080 serves plain HTTP (not a redirect to HTTPS)."],
        ),
    ],
    ids=["https", "redirect", "old-policy", "default-policy", "plain-http"],
)
def test_listeners(args: dict[str, Any], expected: list[str]) -> None:
    base = {"load_balancer_arn": "arn:lb", "default_actions": [{"type": "forward", "target_group_arn": "arn:tg"}]}
    run = program(lambda: aws.lb.Listener("l", **{**base, **args}))
    assert messages("aws-lb-listener-tls", run) == expected


TRAIL: dict[str, Any] = {
    "s3_bucket_name": "audit",
    "enable_log_file_validation": True,
    "is_multi_region_trail": True,
    "include_global_service_events": True,
    "kms_key_id": "arn:aws:kms:us-east-1:1:key/k",
}


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        ("aws-cloudtrail-trail-log-validation", {"enable_log_file_validation": DELETE}, "enableLogFileValidation"),
        ("aws-cloudtrail-trail-encrypted", {"kms_key_id": DELETE}, "kmsKeyId is not set."),
        ("aws-cloudtrail-trail-multi-region", {"is_multi_region_trail": False}, "isMultiRegionTrail is not true."),
        (
            "aws-cloudtrail-trail-multi-region",
            {"include_global_service_events": False},
            "includeGlobalServiceEvents is false.",
        ),
    ],
)
def test_cloudtrail(policy: str, change: dict[str, Any], expected: str) -> None:
    assert messages(policy, program(lambda: aws.cloudtrail.Trail("t", **TRAIL))) == []
    found = messages(policy, program(lambda: aws.cloudtrail.Trail("t", **with_(TRAIL, **change))))
    assert [m[: len(expected)] for m in found] == [expected]
