"""First deployments must not race: each ordering AWS needs, checked on the harness's dependency
graph (explicit and input dependencies, and what a component's own dependencies hold back)."""

from __future__ import annotations

import pytest

from tools.harness import RegisteredResource, StackRun, run_stack


@pytest.fixture(scope="module")
def dr() -> StackRun:
    return run_stack("dr")


def one(run: StackRun, token: str, name_part: str = "") -> RegisteredResource:
    (resource,) = [r for r in run.by_type(token) if name_part in r.name]
    return resource


def test_trail_waits_for_its_bucket_policy(dr: StackRun) -> None:
    trail = one(dr, "aws:cloudtrail/trail:Trail")
    policy = one(dr, "aws:s3/bucketPolicy:BucketPolicy", "audit")
    assert dr.waits_for(trail, policy)


def test_flow_log_waits_for_the_audit_bucket_policy(dr: StackRun) -> None:
    flow_log = one(dr, "aws:ec2/flowLog:FlowLog")
    assert dr.waits_for(flow_log, one(dr, "aws:s3/bucketPolicy:BucketPolicy", "audit"))


def test_eks_cluster_waits_for_its_role_policy(dr: StackRun) -> None:
    cluster = one(dr, "aws:eks/cluster:Cluster")
    attachment = dr.named("sophia-dr-dr-eks-cluster-policy")
    assert attachment.urn in cluster.depends_on  # explicit: kept until the cluster is deleted


@pytest.mark.parametrize("addon", ["aws-ebs-csi-driver", "vpc-cni", "eks-pod-identity-agent"])
def test_workloads_wait_for_the_add_ons(dr: StackRun, addon: str) -> None:
    (target,) = [a for a in dr.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == addon]
    workloads = [
        *dr.by_type("kubernetes:core/v1:Namespace"),
        *dr.by_type("kubernetes:storage.k8s.io/v1:StorageClass"),
        one(dr, "kubernetes:postgresql.cnpg.io/v1:Cluster"),
        *dr.by_type("kubernetes:apps/v1:StatefulSet"),
        *dr.by_type("kubernetes:batch/v1:CronJob"),
    ]
    for workload in workloads:
        assert dr.waits_for(workload, target), workload.name


def test_volume_users_wait_for_the_storage_class(dr: StackRun) -> None:
    classes = {c.inputs["metadata"]["name"]: c for c in dr.by_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    for user in [one(dr, "kubernetes:postgresql.cnpg.io/v1:Cluster"), *dr.by_type("kubernetes:apps/v1:StatefulSet")]:
        assert dr.waits_for(user, classes["encrypted-retain"]), user.name
    # The restore checks' scratch volumes are of their own class.
    scratch_users = [
        job
        for job in dr.by_type("kubernetes:batch/v1:CronJob")
        if any("ephemeral" in v for v in job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"])
    ]
    assert scratch_users
    for job in scratch_users:
        assert dr.waits_for(job, classes["encrypted-scratch"]), job.name


def test_replication_waits_for_versioning_on_both_buckets() -> None:
    prod = run_stack("prod")
    replication = one(prod, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    versionings = prod.by_type("aws:s3/bucketVersioning:BucketVersioning")
    assert len(versionings) == 2
    for versioning in versionings:
        assert prod.waits_for(replication, versioning), versioning.name
