"""`DrKubernetes`: the DR region's EKS cluster, where the Postgres replica cluster and Qdrant run.

Private nodes in the three private subnets; the API endpoint is private plus public only to
`eks.publicAccessCidrs` (operators and deploy runners; docs/dr.md argues why not private-only);
authentication is by EKS access entries only, one per principal of `eks.deployRoleArn` and
`eks.operatorArns`; Kubernetes Secrets are envelope-encrypted with the region's data key;
control-plane audit logs go to CloudWatch.

Volumes are encrypted with the data key where they are made, never through an account default:
the nodes' root volumes by their launch template, PersistentVolumes by the StorageClass's
`kmsKeyId` (the EBS CSI driver). NetworkPolicies are enforced (the VPC CNI's network-policy
agent), and pods get AWS rights through EKS Pod Identity, one role per job: the node role holds
only what a node needs (join, CNI, image pulls)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.dr.data_key import KEY_USE_ACTIONS
from settings.dr import EksSettings

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
NODE_AMI_TYPE = "AL2023_x86_64_STANDARD"
NODE_ROOT_DEVICE = "/dev/xvda"  # the root device of the EKS-optimized Amazon Linux AMIs
NODE_ROOT_GIB = 50  # images and logs; data lives on PersistentVolumes
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
EBS_CSI_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
# "enableNetworkPolicy": without it the VPC CNI ignores NetworkPolicy objects (EKS User Guide,
# "Configure your cluster for Kubernetes network policies").
VPC_CNI_CONFIGURATION = json.dumps({"enableNetworkPolicy": "true"})
# Pod Identity's trust: the EKS Auth service assumes the role for the pod (EKS User Guide, "Comparing
# EKS Pod Identity and IRSA"); one role serves the same service account in any cluster.
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class DrKubernetesArgs:
    """Inputs of `DrKubernetes`."""

    eks: EksSettings
    """`sophia:dr.eks`."""
    region: str
    account: str
    """The AWS account id (Pod Identity roles admit only this account's EKS)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    """The data key: Secrets, node root volumes, PersistentVolumes."""
    kms_key_alias: str
    """Its alias, by which IAM policies name it."""
    tags: Mapping[str, str]
    provider: aws.Provider


def encrypted_node_template(
    resource_name: str,
    description: str,
    *,
    kms_key_arn: pulumi.Input[str],
    root_gib: int,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.LaunchTemplate:
    """A managed node group's launch template: the root volume encrypted with the DR data key (the
    account's EBS defaults stay untouched), IMDSv2 only. Every DR node group launches from one."""
    return aws.ec2.LaunchTemplate(
        resource_name,
        description=f"{description}: root volume encrypted with the DR data key, IMDSv2 only",
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=NODE_ROOT_DEVICE,
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    encrypted="true",
                    kms_key_id=kms_key_arn,
                    volume_size=root_gib,
                    volume_type="gp3",
                    delete_on_termination="true",
                ),
            )
        ],
        # Session tokens only; two hops so host-network agents still reach IMDS. The node role
        # holds no data rights, so a pod that reaches IMDS gains nothing from the bucket or key.
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=2
        ),
        tag_specifications=[
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=dict(tags))
            for kind in ("instance", "volume")
        ],
        tags=dict(tags),
        opts=opts,
    )


def ebs_csi_key_policy(region: str, account: str, key_alias: str) -> str:
    """What the EBS CSI driver needs on the key to create and attach encrypted volumes (EKS User
    Guide, "Store Kubernetes volumes with Amazon EBS": a customer key); grants only for AWS resources.
    The key is named by its alias (`kms:ResourceAliases`), so the policy is known at preview."""
    keys = f"arn:aws:kms:{region}:{account}:key/*"
    this_key = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias}}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": keys,
                    "Condition": {**this_key, "Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {"Effect": "Allow", "Action": KEY_USE_ACTIONS, "Resource": keys, "Condition": this_key},
            ],
        }
    )


def replica_bucket_policy(
    bucket: str,
    read_prefixes: Sequence[str],
    write_prefix: str | None = None,
    extra_statements: Sequence[Mapping[str, object]] = (),
) -> str:
    """Read `read_prefixes` of the replica bucket (and write only under `write_prefix`), and KMS only
    as S3 uses it for this bucket. The bucket has S3 Bucket Keys: KMS then sees the *bucket* ARN as
    the encryption context, not the object's ("S3 Bucket Keys use the bucket ARN as encryption
    context", S3 User Guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys"); the object
    form is kept for objects written without a bucket key."""
    arn = f"arn:aws:s3:::{bucket}"
    prefixes = [*read_prefixes, *([write_prefix] if write_prefix else [])]
    statements: list[dict[str, object]] = [
        # Not limited by s3:prefix: every barman-cloud command starts with HeadBucket, which S3
        # authorizes as ListBucket with no prefix, so a prefix condition refuses it (barman
        # cloud_providers/aws_s3.py, EnterpriseDB/barman#929). Listing shows key names only.
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"{arn}/{p}*" for p in prefixes]},
    ]
    kms_actions = ["kms:Decrypt"]
    if write_prefix:
        statements.append(
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"{arn}/{write_prefix}*"}
        )
        kms_actions.append("kms:GenerateDataKey")
    statements.append(
        {
            "Effect": "Allow",
            "Action": kms_actions,
            "Resource": "*",
            "Condition": {"StringLike": {"kms:EncryptionContext:aws:s3:arn": [arn, f"{arn}/*"]}},
        }
    )
    statements.extend(dict(s) for s in extra_statements)
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _assume(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def pod_identity_trust(account: str) -> str:
    """Trust of a Pod Identity role: the EKS Auth service of this account only (it tags the session
    with the cluster, namespace and service account)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that gets a token from the deployer's AWS credentials (`aws eks get-token`)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
                        }
                    },
                }
            ],
        }
    )


class DrKubernetes(pulumi.ComponentResource):
    """`kubeconfig` (secret) reaches the cluster; workloads wait for `ready` (nodes, add-ons)."""

    def __init__(self, name: str, args: DrKubernetesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Kubernetes", name, None, opts)
        self._name, self._args = name, args
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role", assume_role_policy=_assume("eks.amazonaws.com"), tags=tags, opts=child
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        cluster_name = self.cluster_name = f"{name}-eks"
        self.cluster = aws.eks.Cluster(
            cluster_name,
            name=cluster_name,
            version=args.eks.version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=True,
                public_access_cidrs=list(args.eks.public_access_cidrs),
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.kms_key_arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            # Access entries only, each one declared here: no implicit admin for whoever created the
            # cluster (it would collide with the deploy role's own entry).
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
            deletion_protection=True,
            tags=tags,
            # The role's rights before the cluster and until after it: "otherwise, EKS will not be
            # able to properly delete EKS managed EC2 infrastructure" (terraform-provider-aws,
            # eks_cluster docs).
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True, depends_on=[cluster_policy]),
        )
        node_role = aws.iam.Role(
            f"{name}-node-role", assume_role_policy=_assume("ec2.amazonaws.com"), tags=tags, opts=child
        )
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.rsplit('/', 1)[-1]}",
                role=node_role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        launch_template = encrypted_node_template(
            f"{name}-nodes", "DR EKS nodes", kms_key_arn=args.kms_key_arn, root_gib=NODE_ROOT_GIB, tags=tags, opts=child
        )
        self.nodes = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.subnet_ids),
            ami_type=NODE_AMI_TYPE,
            instance_types=[args.eks.node_instance_type],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=args.eks.nodes, min_size=args.eks.nodes, max_size=args.eks.nodes * 2
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=attachments),
        )
        admins = [("deploy", args.eks.deploy_role_arn)] + [
            (f"operator-{index}", arn) for index, arn in enumerate(args.eks.operator_arns)
        ]
        access = [resource for role, arn in admins for resource in self.grant_access(role, arn, CLUSTER_ADMIN_POLICY)]
        self.ready: list[pulumi.Resource] = [self.nodes, *self._addons(name, tags), *access]
        """What workloads wait for: nodes, network-policy enforcement, Pod Identity, the EBS CSI
        driver, and the deployers' access (the Kubernetes provider deploys as the deploy role)."""
        # A secret: it names the cluster's endpoint and CA, and reaches it with the deployer's credentials.
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.endpoint, self.cluster.certificate_authority.data).apply(
                lambda values: kubeconfig(cluster_name, values[0], values[1], args.region)
            )
        )
        self.node_role = node_role
        """The nodes' IAM role (the service fleet's node groups join with it too)."""
        self.register_outputs({"clusterName": cluster_name})

    def _addons(self, name: str, tags: dict[str, str]) -> list[aws.eks.Addon]:
        """The managed add-ons workloads need; each waits for nodes to run its pods on."""
        args = self._args
        after_nodes = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.nodes])
        vpc_cni = aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=self.cluster.name,
            addon_name="vpc-cni",
            configuration_values=VPC_CNI_CONFIGURATION,
            # EKS installs the CNI itself with the cluster: take it over with our configuration.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=tags,
            opts=after_nodes,
        )
        agent = aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=self.cluster.name,
            addon_name="eks-pod-identity-agent",
            tags=tags,
            opts=after_nodes,
        )
        self._agent = agent
        # The add-on binds its own service account (below); the role carries the driver's managed
        # policy and, on top, the data key (the managed policy has no customer-key rights).
        csi_role, _ = self.pod_role(
            "ebs-csi",
            ebs_csi_key_policy(args.region, args.account, args.kms_key_alias),
            managed_policy_arn=EBS_CSI_MANAGED_POLICY,
        )
        ebs_csi = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=csi_role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT[1]
                )
            ],
            tags=tags,
            # The association needs the agent to hand credentials to the controller.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.nodes, agent]),
        )
        return [vpc_cni, agent, ebs_csi]

    def grant_access(
        self, role: str, principal_arn: str, policy_arn: str, namespaces: Sequence[str] = ()
    ) -> list[pulumi.Resource]:
        """An access entry for an IAM principal and one access policy, cluster-wide or limited to
        `namespaces` (EKS User Guide, "Grant IAM users and roles access to Kubernetes APIs")."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        entry = aws.eks.AccessEntry(
            f"{self._name}-access-{role}",
            cluster_name=self.cluster.name,
            principal_arn=principal_arn,
            type="STANDARD",
            tags=dict(args.tags),
            opts=child,
        )
        scope = aws.eks.AccessPolicyAssociationAccessScopeArgs(
            type="namespace" if namespaces else "cluster", namespaces=list(namespaces) or None
        )
        association = aws.eks.AccessPolicyAssociation(
            f"{self._name}-access-{role}",
            cluster_name=self.cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=policy_arn,
            access_scope=scope,
            opts=child,
        )
        return [entry, association]

    def pod_role(
        self,
        role: str,
        policy: pulumi.Input[str],
        service_accounts: Sequence[tuple[str, str]] = (),
        managed_policy_arn: str | None = None,
    ) -> tuple[aws.iam.Role, list[aws.eks.PodIdentityAssociation]]:
        """An IAM role for pods (Pod Identity) with `policy` inline (and `managed_policy_arn`
        attached), bound to each (namespace, service account) of `service_accounts`; pods started
        before their association exists run without credentials, so they wait for the associations."""
        args = self._args
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        iam_role = aws.iam.Role(
            f"{self._name}-{role}-pods",
            assume_role_policy=pod_identity_trust(args.account),
            tags=dict(args.tags),
            opts=child,
        )
        if managed_policy_arn is not None:
            aws.iam.RolePolicyAttachment(
                f"{self._name}-{role}-pods-managed", role=iam_role.name, policy_arn=managed_policy_arn, opts=child
            )
        aws.iam.RolePolicy(f"{self._name}-{role}-pods-policy", role=iam_role.id, policy=policy, opts=child)
        associations = [
            aws.eks.PodIdentityAssociation(
                f"{self._name}-{role}-{namespace}-{account}",
                cluster_name=self.cluster.name,
                namespace=namespace,
                service_account=account,
                role_arn=iam_role.arn,
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self._agent]),
            )
            for namespace, account in service_accounts
        ]
        return iam_role, associations
