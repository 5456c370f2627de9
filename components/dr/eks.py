"""`DrKubernetes`: the DR region's EKS cluster, where the Postgres replica cluster and Qdrant run.

Private nodes in the three private subnets; the API endpoint is private plus public only to
`eks.publicAccessCidrs` (the deployers); Kubernetes Secrets are envelope-encrypted with the
region's KMS key; control-plane audit logs go to CloudWatch; EBS volumes are encrypted by
default (the data namespace's `encrypted-retain` StorageClass keeps volumes when claims go away)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings.dr import EksSettings

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "service-role/AmazonEBSCSIDriverPolicy",
)


@dataclass(frozen=True)
class DrKubernetesArgs:
    """Inputs of `DrKubernetes`."""

    eks: EksSettings
    """`sophia:dr.eks`."""
    region: str
    subnet_ids: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    provider: aws.Provider
    replica_bucket: str
    """The primary's backups in this region: pods read them (and write `dr/`) through the node role."""


def replica_bucket_policy(bucket: str) -> str:
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{arn}/*"},
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"{arn}/dr/*"},
                {
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                    "Condition": {"StringLike": {"kms:EncryptionContext:aws:s3:arn": f"{arn}/*"}},
                },
            ],
        }
    )


def _assume(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
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
    """`kubeconfig` (secret) reaches the cluster once `nodes` are up."""

    def __init__(self, name: str, args: DrKubernetesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Kubernetes", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        aws.ebs.EncryptionByDefault(f"{name}-ebs-encryption", enabled=True, opts=child)
        aws.ebs.DefaultKmsKey(f"{name}-ebs-key", key_arn=args.kms_key_arn, opts=child)
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role", assume_role_policy=_assume("eks.amazonaws.com"), tags=tags, opts=child
        )
        aws.iam.RolePolicyAttachment(
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
            access_config=aws.eks.ClusterAccessConfigArgs(authentication_mode="API"),
            deletion_protection=True,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True),
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
        attachments.append(
            aws.iam.RolePolicy(
                f"{name}-node-replica-bucket",
                role=node_role.id,
                policy=replica_bucket_policy(args.replica_bucket),
                opts=child,
            )
        )
        nodes = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.subnet_ids),
            instance_types=[args.eks.node_instance_type],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=args.eks.nodes, min_size=args.eks.nodes, max_size=args.eks.nodes * 2
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=attachments),
        )
        aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[nodes]),
        )
        # A secret: it names the cluster's endpoint and CA, and reaches it with the deployer's credentials.
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.endpoint, self.cluster.certificate_authority.data).apply(
                lambda values: kubeconfig(cluster_name, values[0], values[1], args.region)
            )
        )
        self.nodes = nodes
        self.node_role = node_role
        """The nodes' IAM role (the service fleet's node groups join with it too)."""
        self.register_outputs({"clusterName": cluster_name})
