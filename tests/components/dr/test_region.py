"""The dr stack under the mock runtime: network, audit trail, cache, failover, stack wiring."""

from __future__ import annotations

import ipaddress
import json
import keyword
import re
from typing import Any

import pulumi_aws
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from tests.helpers import stack_config
from tools.harness import PRIMARY_STACK_OUTPUTS, PRIMARY_STACK_SECRET_OUTPUTS, EchoMocks, StackRun, run_stack
from tools.redact import is_secret

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def of_type(run: StackRun, token: str) -> list[Any]:
    return run.by_type(token)


def test_private_data_subnets_span_three_zones_and_stay_private() -> None:
    run = run_stack("dr")
    subnets = {r.name: r.inputs for r in of_type(run, "aws:ec2/subnet:Subnet")}
    private = {n: s for n, s in subnets.items() if "-private-" in n}
    assert sorted(s["availabilityZone"] for s in private.values()) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    vpc = ipaddress.IPv4Network("10.40.0.0/16")
    assert all(ipaddress.IPv4Network(s["cidrBlock"]).subnet_of(vpc) for s in subnets.values())
    assert not any(s["mapPublicIpOnLaunch"] for s in subnets.values())
    # Private subnets route out through their own zone's NAT, never straight to the internet gateway.
    tables = [r.inputs for r in of_type(run, "aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    assert len(tables) == 3
    assert all("natGatewayId" in t["routes"][0] and "gatewayId" not in t["routes"][0] for t in tables)


def test_data_ports_open_only_to_the_vpc() -> None:
    (group,) = [r for r in of_type(run_stack("dr"), "aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("-data")]
    rules = group.inputs["ingress"]
    assert sorted(int(r["fromPort"]) for r in rules) == [5432, 6333, 6379]
    assert all(r["cidrBlocks"] == ["10.40.0.0/16"] for r in rules)


def test_flow_logs_and_cloudtrail_go_to_the_hardened_audit_bucket() -> None:
    run = run_stack("dr")
    (flow_log,) = of_type(run, "aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestination"] == "arn:aws:s3:::sophia-dr-audit/flow-logs/"
    (trail,) = of_type(run, "aws:cloudtrail/trail:Trail")
    assert trail.inputs["isMultiRegionTrail"] is True
    assert trail.inputs["enableLogFileValidation"] is True
    assert "kmsKeyId" in trail.inputs
    (bucket,) = of_type(run, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "sophia-dr-audit"
    assert bucket.protect
    policy = json.loads(next(r for r in of_type(run, "aws:s3/bucketPolicy:BucketPolicy")).inputs["policy"])
    writers = next(s for s in policy["Statement"] if s["Sid"] == "LogServicesWrite")
    assert writers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert all(k.inputs["enableKeyRotation"] for k in of_type(run, "aws:kms/key:Key"))


def test_cache_is_encrypted_authenticated_multi_az_and_protected() -> None:
    run = run_stack("dr")
    (group,) = of_type(run, "aws:elasticache/replicationGroup:ReplicationGroup")
    inputs = group.inputs
    for flag in ("atRestEncryptionEnabled", "transitEncryptionEnabled", "automaticFailoverEnabled", "multiAzEnabled"):
        assert inputs[flag] is True, flag
    assert inputs["parameterGroupName"] == "default.redis7.cluster.on"
    assert (inputs["numNodeGroups"], inputs["replicasPerNodeGroup"]) == (3.0, 1.0)
    assert inputs["finalSnapshotIdentifier"] == "sophia-dr-dr-cache-redis-final"
    assert inputs["snapshotRetentionLimit"] == 7.0
    assert "snapshotArns" not in inputs  # a cache that starts empty (docs/dr.md, Redis)
    assert is_secret(inputs["authToken"])
    assert group.protect
    assert is_secret(run.outputs["drCacheAuthToken"])


def test_failover_records_and_checks_meet_the_rto() -> None:
    run = run_stack("dr")
    checks = of_type(run, "aws:route53/healthCheck:HealthCheck")
    assert {c.inputs["fqdn"] for c in checks} == {"api-primary.sophia.ai", "api-dr.sophia.ai"}
    assert all((c.inputs["requestInterval"], c.inputs["failureThreshold"]) == (10.0, 3.0) for c in checks)
    # The failover pair (the fleet's gateway alias of the secondary endpoint is tested in test_services.py).
    records = {
        r.inputs["failoverRoutingPolicies"][0]["type"]: r.inputs
        for r in of_type(run, "aws:route53/record:Record")
        if "failoverRoutingPolicies" in r.inputs
    }
    assert records["PRIMARY"]["records"] == ["api-primary.sophia.ai"]
    assert records["SECONDARY"]["records"] == ["api-dr.sophia.ai"]
    assert {r["ttl"] for r in records.values()} == {20.0}
    # 10 s x 3 failed checks + 20 s TTL, under the 60 s RTO.
    assert run.outputs["drWorstCaseFailoverSeconds"] == 50.0


def test_dr_reads_only_what_prod_exports() -> None:
    """The StackReference fixture the harness serves is what the prod program really exports:
    every key, the same value where prod knows it at preview, and the same secrecy."""
    prod = run_stack("prod").outputs
    for key, value in PRIMARY_STACK_OUTPUTS.items():
        assert key in prod, key
        exported = prod[key]
        assert is_secret(exported) == (key in PRIMARY_STACK_SECRET_OUTPUTS), key
        known = exported["value"] if is_secret(exported) else exported
        if known != UNKNOWN:
            assert known == value, key


def test_replica_streams_from_the_primary_with_certificates() -> None:
    run = run_stack("dr")
    (cluster,) = run.by_type("kubernetes:postgresql.cnpg.io/v1:Cluster")
    spec = cluster.inputs["spec"]
    # One CloudNativePG distributed topology: this cluster is "dr", prod's "primary" takes the writes.
    assert spec["replica"] == {"self": "dr", "primary": "primary", "source": "primary"}
    assert spec["bootstrap"] == {"pg_basebackup": {"source": "primary"}}
    source, own = spec["externalClusters"]
    assert own["name"] == "dr"
    # The host waits for prod to admit this region's NAT addresses (test_replication_path.py).
    assert source["connectionParameters"]["host"] == UNKNOWN
    assert source["connectionParameters"]["sslmode"] == "verify-full"
    assert source["connectionParameters"]["user"] == "streaming_replica"
    # Streaming first; the archive only as the fallback (test_postgres_replica.py).
    assert "connectionParameters" in source
    assert cluster.protect
    key_secret = run.named("postgres-client-tls")
    assert is_secret(key_secret.inputs["stringData"])


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_aws_input_is_a_property_of_its_resource_type() -> None:
    """Each registered AWS resource's inputs are arguments its pulumi-aws class accepts."""
    run = run_stack("dr")
    checked = 0
    for resource in run.resources:
        if not resource.type.startswith("aws:") or not resource.custom:
            continue
        _, module_path, class_name = resource.type.split(":")
        package = module_path.split("/")[0]
        module = getattr(pulumi_aws, package + "_" if keyword.iskeyword(package) else package)
        accepted = set(getattr(module, class_name)._internal_init.__code__.co_varnames)
        unknown = {key for key in resource.inputs if _snake(key) not in accepted and key != "__defaults"}
        assert unknown == set(), f"{resource.type} {resource.name}: {unknown}"
        checked += 1
    assert checked > 40


def test_replica_bucket_setting_must_match_what_prod_replicates_to() -> None:
    dr = json.loads(stack_config("dr")["sophia:dr"])
    with pytest.raises(ValueError, match=re.escape("sophia:dr.backupReplicaBucket is 'other-bucket' but the prod")):
        run_stack("dr", config_overrides={"sophia:dr": json.dumps({**dr, "backupReplicaBucket": "other-bucket"})})


def test_qdrant_is_restored_from_the_replicated_snapshots_on_schedule() -> None:
    run = run_stack("dr")
    jobs = {r.name: r.inputs["spec"] for r in run.by_type("kubernetes:batch/v1:CronJob")}
    assert sorted(j for j in jobs if j.endswith("-dr-restore")) == [
        "qdrant-0-dr-restore",
        "qdrant-1-dr-restore",
        "qdrant-2-dr-restore",
    ]
    spec = jobs["qdrant-1-dr-restore"]
    assert spec["schedule"] == "0 3 * * *"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    plan_env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert plan_env["MANIFESTS"] == "s3://sophia-prod-backups-replica/qdrant/qdrant-1/manifests"
    # DR's own snapshots never land on the primary's replicated ones.
    config = next(r for r in run.resources if r.name == "qdrant-1-config").inputs["data"]["production.yaml"]
    assert "snapshots_path: /dr/qdrant/qdrant-1" in config  # its own snapshots never land on the primary's keys
    (statefulset,) = [r for r in run.by_type("kubernetes:apps/v1:StatefulSet") if r.name == "qdrant-1"]
    assert "ACCESS_KEY" not in json.dumps(statefulset.inputs)  # Pod Identity, not keys
    reader = json.loads(run.named("sophia-dr-dr-eks-backup-reader-pods-policy").inputs["policy"])
    (get,) = [s for s in reader["Statement"] if s["Action"] == "s3:GetObject"]
    assert "arn:aws:s3:::sophia-prod-backups-replica/qdrant/*" in get["Resource"]


class OtherRegionPrimary(EchoMocks):
    """A prod stack that replicates its backups to another region than the DR region."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == "pulumi:pulumi:StackReference":
            outputs["outputs"] = {**outputs["outputs"], "backupReplicaRegion": "us-west-2"}
        return resource_id, outputs


def test_prods_backup_replica_region_must_be_the_dr_region() -> None:
    with pytest.raises(
        ValueError, match=re.escape("replicates its backups to 'us-west-2' (its sophia:backups.replicaRegion)")
    ):
        run_stack("dr", mock_impl=OtherRegionPrimary())
