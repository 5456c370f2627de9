"""`FailoverGuard`: the primary's side of the lease on the PostgreSQL primary role (docs/dr.md).

A one-replica Deployment next to the primary's database runs `failover/guard.sh` with the pinned
aws-cli image: every `RENEW_SECONDS` it renews the primary's lease in the DR region's DynamoDB
table, and it fences the CloudNativePG Cluster (`cnpg.io/fencedInstances: ["*"]`, which stops the
postmaster without a failover) when DR holds the lease, or when it could not renew for
`SELF_FENCE_SECONDS` (it may be cut off while DR takes over, which DR does only after a lease and
a margin). It reaches AWS with an IAM user of its own that may touch the lease item and nothing
else, and the Kubernetes API with a Role on the one Cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.data.placement import StorePlacement, labels
from components.kube import AWS_CLI_IMAGE, container_security, pod_security, resources
from failover import PACKAGE_DIR
from failover.lease import ITEM_KEY
from failover.promoter import RENEW_SECONDS, SELF_FENCE_SECONDS

GUARD_SCRIPT = PACKAGE_DIR / "guard.sh"
GUARD_UID = 1000  # any non-root user: the aws-cli image needs only a writable HOME
DEPLOYMENT = "postgres-failover-guard"  # alert_rules.FAILOVER_GUARD watches it by this name


@dataclass(frozen=True)
class FailoverGuardArgs:
    """Inputs of `FailoverGuard`."""

    lease_table: str
    """`sophia:dataLayer.postgres.drReplication.failoverLeaseTable`."""
    lease_region: str
    """The DR region (`sophia:backups.replicaRegion`)."""
    cnpg_cluster: str
    placement: StorePlacement
    aws_provider: aws.Provider
    """A provider in `lease_region`."""
    cluster_is_replica: bool = False
    """The cluster is being rebuilt as a replica of DR (failback): nothing to fence, only renew."""


def guard_policy(table_arn: str) -> str:
    """The lease item and nothing else: read it, create it, renew it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    "Resource": table_arn,
                    "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ITEM_KEY]}},
                }
            ],
        }
    )


class FailoverGuard(pulumi.ComponentResource):
    """The guard Deployment `postgres-failover-guard` in the data namespace."""

    def __init__(self, name: str, args: FailoverGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:FailoverGuard", name, None, opts)
        ns = args.placement.namespace
        aws_child = pulumi.ResourceOptions(parent=self, provider=args.aws_provider)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(provider=args.aws_provider)).account_id
        table_arn = account.apply(
            lambda account_id: f"arn:aws:dynamodb:{args.lease_region}:{account_id}:table/{args.lease_table}"
        )
        user = aws.iam.User(f"{name}-user", path="/sophia/", opts=aws_child)
        policy = aws.iam.UserPolicy(
            f"{name}-lease", user=user.name, policy=table_arn.apply(guard_policy), opts=aws_child
        )
        # Rotate with `pulumi up --replace <this key's URN>`: the Secret and the pod follow.
        key = aws.iam.AccessKey(f"{name}-key", user=user.name, opts=aws_child)
        child = pulumi.ResourceOptions(parent=self)
        credentials = k8s.core.v1.Secret(
            f"{name}-aws",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{DEPLOYMENT}-aws", namespace=ns),
            string_data={
                "AWS_ACCESS_KEY_ID": key.id,
                "AWS_SECRET_ACCESS_KEY": key.secret,  # a secret output of AccessKey
            },
            opts=child,
        )
        script = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns),
            data={"guard.sh": GUARD_SCRIPT.read_text(encoding="utf-8")},
            opts=child,
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns), opts=child
        )
        role = k8s.rbac.v1.Role(
            f"{name}-fence",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["postgresql.cnpg.io"],
                    resources=["clusters"],
                    resource_names=[args.cnpg_cluster],
                    verbs=["get", "patch"],
                )
            ],
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-fence",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=DEPLOYMENT),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=DEPLOYMENT, namespace=ns)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, service_account]),
        )
        pod_labels = labels(DEPLOYMENT, "failover-guard")
        env = {
            "LEASE_TABLE": args.lease_table,
            "AWS_REGION": args.lease_region,
            "RENEW_SECONDS": str(int(RENEW_SECONDS)),
            "SELF_FENCE_SECONDS": str(int(SELF_FENCE_SECONDS)),
            "CLUSTER_ROLE": "replica" if args.cluster_is_replica else "primary",
            "STATE_DIR": "/tmp/guard",  # noqa: S108 - an emptyDir: state lives as long as the pod
            "HOME": "/tmp",  # noqa: S108 - the aws CLI writes its cache there
            "CNPG_NAMESPACE": ns,
            "CNPG_CLUSTER": args.cnpg_cluster,
        }
        secret_env = [
            k8s.core.v1.EnvVarArgs(
                name=variable,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=f"{DEPLOYMENT}-aws", key=variable)
                ),
            )
            for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns, labels=pod_labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                # Never two guards at once: their fencing and unfencing must not interleave.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=pod_labels,
                        # A new key or script restarts the guard.
                        annotations={
                            "sophia.ai/credentials": key.id,
                            "sophia.ai/script": hashlib.sha256(GUARD_SCRIPT.read_bytes()).hexdigest()[:16],
                        },
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=DEPLOYMENT,
                        security_context=pod_security(GUARD_UID),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="guard",
                                image=AWS_CLI_IMAGE,
                                command=["sh", "/guard/guard.sh"],
                                env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()] + secret_env,
                                resources=resources("50m", "128Mi"),
                                security_context=container_security(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="script", mount_path="/guard", read_only=True),
                                    k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="script", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=DEPLOYMENT)
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
                            ),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[credentials, script, binding, policy]),
        )
        # DNS, the Kubernetes API and DynamoDB (HTTPS); nothing comes in.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DEPLOYMENT, namespace=ns),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pod_labels),
                policy_types=["Ingress", "Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=p) for p in (443, 6443, 53)]
                    ),
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53)]
                    ),
                ],
            ),
            opts=child,
        )
        self.register_outputs({"deployment": DEPLOYMENT})
