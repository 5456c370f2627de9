"""Policy evaluation throughput: resources per second through the pack's analyzer, at 1,000 and 10,000 resources.

    .venv/bin/python bench/policy_eval.py [--sizes 1000 10000]

The synthetic stack mixes the types the rules look at (GPU instances and firewall rulesets,
RDS, ElastiCache, S3 buckets with their settings, security groups, Kubernetes workloads)
in engine shape, each compliant, and runs every policy through the pack's analyzer: one
AnalyzeRequest per resource, one AnalyzeStackRequest.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.harness import RegisteredResource, StackRun
from tools.policy_eval import POLICY_CONFIG_DIR, evaluate, load_policy_config

STACK_URN = "urn:pulumi:prod::sophia::"
TLS_ONLY = (
    '{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", '
    '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}'
)
AWS = f"{STACK_URN}pulumi:providers:aws::aws"


def _resource(type_: str, name: str, inputs: dict[str, Any], **kwargs: Any) -> RegisteredResource:
    return RegisteredResource(
        type=type_,
        name=name,
        urn=f"{STACK_URN}{type_}::{name}",
        parent=None,
        provider=kwargs.pop("provider", None),
        inputs=inputs,
        protect=True,
        custom=True,
        **kwargs,
    )


def _group(i: int) -> list[RegisteredResource]:
    """Twelve resources of mixed kinds, each compliant."""
    bucket = _resource("aws:s3/bucket:Bucket", f"b{i}", {"tags": {"purpose": "logs"}}, provider=f"{AWS}::id")
    deps = {"bucket": (bucket.urn,)}
    container = {
        "name": "api",
        "image": "ghcr.io/sophia/api:1.4.2",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001.0,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    return [
        _resource(
            "pulumi-python:dynamic/lambda:Instance",
            f"ai-core-{i}",
            {
                "name": f"i{i}",
                "instance_type": "gpu_1x_gh200",
                "region": "us-west-1",
                "fallback_regions": [],
                "ssh_key_names": ["sophia-prod-ai-core"],
                "firewall_ruleset_ids": [f"fw{i}-id"],
                "tags": {"pool": "ai-core", "cost-centre": "c"},
            },
            property_dependencies={
                "firewall_ruleset_ids": (f"{STACK_URN}pulumi-python:dynamic/lambda:FirewallRuleset::fw{i}",)
            },
        ),
        _resource(
            "pulumi-python:dynamic/lambda:FirewallRuleset",
            f"fw{i}",
            {
                "name": f"fw{i}",
                "region": "us-west-1",
                "rules": [
                    {
                        "protocol": "tcp",
                        "port_range": [22.0, 22.0],
                        "source_network": "203.0.113.0/24",
                        "description": "ssh",
                    }
                ],
            },
        ),
        _resource(
            "aws:rds/instance:Instance",
            f"db{i}",
            {
                "instanceClass": "db.r6g.large",
                "storageEncrypted": True,
                "backupRetentionPeriod": 7.0,
                "deletionProtection": True,
                "multiAz": True,
                "allocatedStorage": 100.0,
            },
            provider=f"{AWS}::id",
        ),
        _resource(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            f"rg{i}",
            {
                "nodeType": "cache.r6g.large",
                "atRestEncryptionEnabled": True,
                "transitEncryptionEnabled": True,
                "authToken": "x",
                "snapshotRetentionLimit": 7.0,
            },
            provider=f"{AWS}::id",
        ),
        bucket,
        _resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"pab{i}",
            {
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            provider=f"{AWS}::id",
            property_dependencies=deps,
        ),
        _resource(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"ver{i}",
            {"versioningConfiguration": {"status": "Enabled"}},
            provider=f"{AWS}::id",
            property_dependencies=deps,
        ),
        _resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"sse{i}",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
            provider=f"{AWS}::id",
            property_dependencies=deps,
        ),
        _resource(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"policy{i}",
            {"policy": TLS_ONLY},
            provider=f"{AWS}::id",
            property_dependencies=deps,
        ),
        _resource(
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            f"owner{i}",
            {"rule": {"objectOwnership": "BucketOwnerEnforced"}},
            provider=f"{AWS}::id",
            property_dependencies=deps,
        ),
        _resource(
            "aws:ec2/securityGroup:SecurityGroup",
            f"sg{i}",
            {"ingress": [{"protocol": "tcp", "fromPort": 5432.0, "toPort": 5432.0, "cidrBlocks": ["10.0.0.0/16"]}]},
            provider=f"{AWS}::id",
        ),
        _resource(
            "kubernetes:apps/v1:Deployment",
            f"dep{i}",
            {
                "metadata": {"namespace": "apps"},
                "spec": {
                    "template": {
                        "spec": {
                            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [container],
                        }
                    }
                },
            },
        ),
    ]


def synthetic_stack(count: int) -> StackRun:
    provider = RegisteredResource(
        type="pulumi:providers:aws",
        name="aws",
        urn=AWS,
        parent=None,
        provider=None,
        inputs={
            "region": "us-east-1",
            "defaultTags": '{"tags": {"owner": "o", "cost-centre": "c", "environment": "prod"}}',
        },
        protect=False,
        custom=True,
    )
    key = _resource("pulumi-python:dynamic/lambda:SshKey", "key", {"name": "sophia-prod-ai-core", "public_key": "k"})
    resources = [provider, key]
    i = 0
    while len(resources) < count:
        resources.extend(_group(i))
        i += 1
    return StackRun(project="sophia", stack="prod", resources=tuple(resources[:count]), outputs={})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    config = load_policy_config(POLICY_CONFIG_DIR / "prod.json")
    config["sophia-cost-stack-budget"] = {"monthlyBudgetUsd": 10**9}
    config["sophia-gpupool-size-bounds"] = {"poolBounds": {"ai-core": {"min": 0, "max": 10**6}}}
    print(f"{'resources':>9} {'seconds':>8} {'resources/s':>12} {'peak RSS MiB':>12} {'violations':>10}")
    for count in args.sizes:
        run = synthetic_stack(count)
        started = time.perf_counter()
        evaluation = evaluate(run, config)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is KiB on Linux
        print(f"{count:>9} {elapsed:>8.2f} {count / elapsed:>12.0f} {peak:>12.0f} {len(evaluation.violations):>10}")


if __name__ == "__main__":
    main()
