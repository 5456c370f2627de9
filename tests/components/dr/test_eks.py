"""The DR region's EKS cluster under the mock runtime: volumes encrypted with the DR data key
without touching account defaults, the key admitting who launches and attaches volumes,
NetworkPolicies enforced, and AWS rights held by pods (Pod Identity) rather than by nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.harness import RegisteredResource, StackRun, run_stack

ACCOUNT = "123456789012"  # the harness's caller identity
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_stack("dr")


def statements(resource: RegisteredResource, key: str = "policy") -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(resource.inputs[key])
    return list(document["Statement"])


def data_key(run: StackRun) -> RegisteredResource:
    return run.named("sophia-dr-dr-data-key")


def test_no_account_wide_ebs_setting_is_changed(run: StackRun) -> None:
    assert run.by_type("aws:ebs/encryptionByDefault:EncryptionByDefault") == []
    assert run.by_type("aws:ebs/defaultKmsKey:DefaultKmsKey") == []


def test_data_key_admits_the_account_and_the_auto_scaling_role(run: StackRun) -> None:
    key = data_key(run)
    by_sid = {s["Sid"]: s for s in statements(key)}
    assert by_sid["AccountAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    use = by_sid["AutoScalingUsesKey"]
    assert use["Principal"] == {"AWS": SLR}
    assert {"kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"} <= set(use["Action"])
    grants = by_sid["AutoScalingAttachesVolumes"]
    assert (grants["Principal"], grants["Action"]) == ({"AWS": SLR}, "kms:CreateGrant")
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert key.protect


def test_the_auto_scaling_role_exists_before_the_key_and_outlives_the_stack(run: StackRun) -> None:
    (role,) = run.by_type("aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert role.inputs["awsServiceName"] == "autoscaling.amazonaws.com"
    # Account-wide and shared with every Auto Scaling group: a destroy must not delete it.
    assert role.retain_on_delete
    # KMS refuses a key policy naming a principal that does not exist yet.
    assert role.urn in data_key(run).depends_on


def test_node_root_volumes_are_encrypted_by_the_launch_template_with_the_data_key(run: StackRun) -> None:
    """Every node group, the service fleet's too, launches from a template of its own that encrypts
    the root volume with the data key and requires IMDSv2 (the account's EBS defaults stay as they are)."""
    groups = run.by_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) > 1  # the cluster's own group and the fleet's standby groups
    templates = {t.urn: t for t in run.by_type("aws:ec2/launchTemplate:LaunchTemplate")}
    for nodes in groups:
        (template_urn,) = [u for u in nodes.property_dependencies["launchTemplate"] if u in templates]
        template = templates[template_urn]
        (mapping,) = template.inputs["blockDeviceMappings"]
        assert mapping["deviceName"] == "/dev/xvda"  # the AL2023 AMIs' root device
        assert mapping["ebs"]["encrypted"] == "true"
        assert data_key(run).urn in template.property_dependencies["blockDeviceMappings"]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert nodes.inputs["amiType"].startswith("AL2023_x86_64_")
        assert "diskSize" not in nodes.inputs  # the launch template sizes the disk
    assert len(templates) == len(groups)


def test_persistent_volumes_are_encrypted_with_the_data_key_by_the_storage_class(run: StackRun) -> None:
    classes = run.by_type("kubernetes:storage.k8s.io/v1:StorageClass")
    # The stores' volumes outlive their claims; the restore checks' scratch volumes go with their pods.
    assert {c.inputs["metadata"]["name"]: c.inputs["reclaimPolicy"] for c in classes} == {
        "encrypted-retain": "Retain",
        "encrypted-scratch": "Delete",
    }
    for storage in classes:
        assert storage.inputs["provisioner"] == "ebs.csi.aws.com"
        assert storage.inputs["parameters"]["encrypted"] == "true"
        assert "kmsKeyId" in storage.inputs["parameters"]
        assert data_key(run).urn in storage.property_dependencies["parameters"]


def test_ebs_csi_driver_gets_key_rights_through_pod_identity(run: StackRun) -> None:
    addons = {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}
    csi = addons["aws-ebs-csi-driver"]
    (association,) = csi.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    assert addons["eks-pod-identity-agent"].urn in csi.depends_on
    role = run.named("sophia-dr-dr-eks-ebs-csi-pods")
    assert role.urn in csi.property_dependencies["podIdentityAssociations"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    # The key by its alias: known at preview, so the policy pack reads the policy.
    (alias,) = run.by_type("aws:kms/alias:Alias")
    assert data_key(run).urn in alias.property_dependencies["targetKeyId"]
    this_key = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias.inputs["name"]}}
    policy = statements(run.named("sophia-dr-dr-eks-ebs-csi-pods-policy"))
    (grant,) = [s for s in policy if "kms:CreateGrant" in s["Action"]]
    assert grant["Resource"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"
    assert grant["Condition"] == {**this_key, "Bool": {"kms:GrantIsForAWSResource": "true"}}
    (use,) = [s for s in policy if "kms:Decrypt" in s["Action"]]
    assert use["Condition"] == this_key
    managed = run.named("sophia-dr-dr-eks-ebs-csi-pods-managed").inputs["policyArn"]
    assert managed == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def test_network_policies_are_enforced_by_the_vpc_cni(run: StackRun) -> None:
    (cni,) = [a for a in run.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # EKS installs the CNI with the cluster: the add-on must take it over, not fail on the conflict.
    assert cni.inputs["resolveConflictsOnCreate"] == "OVERWRITE"


def test_nodes_hold_no_data_rights(run: StackRun) -> None:
    node_role = run.named("sophia-dr-dr-eks-node-role")
    attached = [
        a.inputs["policyArn"]
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if node_role.urn in a.property_dependencies.get("role", ())
    ]
    assert sorted(p.rsplit("/", 1)[-1] for p in attached) == [
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
    ]
    inline = [
        p
        for p in run.by_type("aws:iam/rolePolicy:RolePolicy")
        if node_role.urn in p.property_dependencies.get("role", ())
    ]
    assert inline == []


def test_data_pods_get_least_privilege_roles_through_pod_identity(run: StackRun) -> None:
    associations = {
        (a.inputs["namespace"], a.inputs["serviceAccount"]): a
        for a in run.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    assert set(associations) == {
        ("sophia-data", "dr-backup-reader"),
        ("sophia-data", "qdrant"),
        ("sophia-data", "postgres"),  # CloudNativePG's account: prod's archive read, its own written
    }
    reader = statements(run.named("sophia-dr-dr-eks-backup-reader-pods-policy"))
    writes = [s for s in reader if "s3:PutObject" in json.dumps(s["Action"])]
    assert writes == []  # the primary's backups are read-only here
    qdrant = statements(run.named("sophia-dr-dr-eks-qdrant-pods-policy"))
    (write,) = [s for s in qdrant if "s3:PutObject" in json.dumps(s["Action"])]
    assert write["Resource"] == "arn:aws:s3:::sophia-prod-backups-replica/dr/qdrant/*"
    statefulsets = [r for r in run.by_type("kubernetes:apps/v1:StatefulSet") if r.name.startswith("qdrant-")]
    assert {s.inputs["spec"]["template"]["spec"]["serviceAccountName"] for s in statefulsets} == {"qdrant"}
    accounts = {
        j.name: j.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
        for j in run.by_type("kubernetes:batch/v1:CronJob")
    }
    # Every job that reads backups holds the reader's role; the certificate rollouts hold only their
    # own Kubernetes rights (an account of their own, with no AWS role: no association above).
    rollouts = {job: account for job, account in accounts.items() if job.endswith("-tls-rollout")}
    assert rollouts
    assert all(account == job for job, account in rollouts.items())
    assert {account for job, account in accounts.items() if job not in rollouts} == {"dr-backup-reader"}


def test_pods_with_pod_identity_may_reach_the_agent_under_default_deny(run: StackRun) -> None:
    agent = {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80.0}]}
    policies = {p.name: p.inputs["spec"] for p in run.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    for name in ("qdrant-0-network", "qdrant-jobs-network"):
        assert agent in policies[name]["egress"], name


def test_pod_kms_conditions_match_the_bucket_key_encryption_context(run: StackRun) -> None:
    """With S3 Bucket Keys, KMS sees the bucket ARN (no `/*`) as `aws:s3:arn`."""
    bucket_key_context = "arn:aws:s3:::sophia-prod-backups-replica"
    for role in ("backup-reader", "qdrant"):
        (kms,) = [
            s for s in statements(run.named(f"sophia-dr-dr-eks-{role}-pods-policy")) if str(s["Action"]).count("kms:")
        ]
        allowed = kms["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
        assert bucket_key_context in allowed, role


def test_deployers_and_operators_get_access_entries_and_nobody_else(run: StackRun) -> None:
    (cluster,) = run.by_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    # The promoter's own entry maps its role to a Kubernetes group (test_promoter.py).
    entries = {
        e.inputs["principalArn"]
        for e in run.by_type("aws:eks/accessEntry:AccessEntry")
        if not e.inputs.get("kubernetesGroups")
    }
    assert entries == {
        "arn:aws:iam::123456789012:role/sophia-dr-deploy",
        "arn:aws:iam::123456789012:role/sophia-operators",
    }
    for association in run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}
    # The Kubernetes provider deploys as the deploy role: its entry exists first.
    (deploy,) = [
        a
        for a in run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.name.endswith("access-deploy")
    ]
    for namespace in run.by_type("kubernetes:core/v1:Namespace"):  # the data's and cert-manager's
        assert run.waits_for(namespace, deploy), namespace.name
    endpoint = cluster.inputs["vpcConfig"]
    assert (endpoint["endpointPrivateAccess"], endpoint["publicAccessCidrs"]) == (True, ["203.0.113.0/24"])
