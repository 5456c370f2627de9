"""`DrPromoter`: automated, fenced promotion of the DR PostgreSQL (docs/dr.md, "Failover").

The lease on the primary role is one item of a DynamoDB table in the DR region. The promoter is an
AWS Lambda (`failover/handler.py`) that EventBridge invokes every minute and that polls for most of
it: when the primary's Route 53 health check fails and the primary's guard has stopped renewing the
lease for a lease and a margin, it takes the lease over, names DR the primary of the CloudNativePG
topology (a patch of the DR Cluster through the EKS API), and pins the primary's health check to
unhealthy so Route 53 never fails back by itself.

Why a scheduled function rather than "health-check alarm -> EventBridge -> function": Route 53
publishes `HealthCheckStatus` to CloudWatch at one-minute resolution, so an alarm cannot fire in
time for a 60 s RTO; polling `GetHealthCheckStatus` sees each checker's latest observation within
seconds. Why not a controller in the DR cluster: the function needs no node of its own to be
healthy, and its only cluster access is one PATCH on one object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from failover import PACKAGE_DIR
from failover.promoter import FUNCTION_TIMEOUT_SECONDS, SCHEDULE_SECONDS

# The Kubernetes group the promoter's EKS access entry maps its role to; a Role grants it one object.
PROMOTER_GROUP = "sophia:failover-promoter"
LOG_RETENTION_DAYS = 400


@dataclass(frozen=True)
class DrPromoterArgs:
    """Inputs of `DrPromoter`."""

    lease_table: str
    """`sophia:dr.failover.leaseTable`."""
    region: str
    """`sophia:dr.awsRegion`."""
    eks_cluster_name: str
    primary_health_check_id: pulumi.Input[str]
    eks_cluster: aws.eks.Cluster
    subnet_ids: Sequence[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    cnpg_namespace: str
    cnpg_cluster: str
    tags: Mapping[str, str]
    provider: aws.Provider
    kubernetes_provider: k8s.Provider


# The function's modules: the handler and what it imports (tests import them from the archive alone).
FUNCTION_MODULES = ("__init__.py", "aws.py", "handler.py", "lease.py", "promoter.py")


def function_code() -> pulumi.AssetArchive:
    """Part of the `failover` package: boto3 comes with the Lambda Python runtime."""
    return pulumi.AssetArchive(
        {f"failover/{module}": pulumi.FileAsset(str(PACKAGE_DIR / module)) for module in FUNCTION_MODULES}
    )


def promoter_policy(table_arn: str, cluster_arn: str) -> str:
    """Read and conditionally write the lease item, read and pin the primary's health check, find the
    EKS endpoint. Nothing else: the PATCH on the Cluster is Kubernetes RBAC (the access entry).

    Built from names, not outputs, so the policy pack can check it at preview. Route 53 health-check
    ids exist only once created, hence `healthcheck/*`: the role can read and update health checks
    and nothing else of Route 53 (the records stay out of its reach)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    "Resource": table_arn,
                    "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["postgres"]}},
                },
                {
                    "Effect": "Allow",
                    "Action": ["route53:GetHealthCheckStatus", "route53:UpdateHealthCheck"],
                    "Resource": "arn:aws:route53:::healthcheck/*",
                },
                {"Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
            ],
        }
    )


class DrPromoter(pulumi.ComponentResource):
    """`lease_table` (its name), `function_name`."""

    def __init__(self, name: str, args: DrPromoterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Promoter", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(provider=args.provider)).account_id
        # Losing the table would lose who holds the primary role: protected, and recoverable.
        table = aws.dynamodb.Table(
            f"{name}-lease",
            name=args.lease_table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            attributes=[aws.dynamodb.TableAttributeArgs(name="id", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True),
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=tags,
            opts=child,
        )
        grants: list[pulumi.Resource] = [
            aws.iam.RolePolicy(
                f"{name}-policy",
                role=role.id,
                policy=account.apply(
                    lambda account_id: promoter_policy(
                        f"arn:aws:dynamodb:{args.region}:{account_id}:table/{args.lease_table}",
                        f"arn:aws:eks:{args.region}:{account_id}:cluster/{args.eks_cluster_name}",
                    )
                ),
                opts=child,
            ),
            # Network interfaces in the VPC and its own log stream.
            aws.iam.RolePolicyAttachment(
                f"{name}-vpc-access",
                role=role.name,
                policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
                opts=child,
            ),
        ]
        function_name = f"{name}-promoter"
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )
        # In the VPC: the EKS API is reached on its private endpoint; AWS APIs through the NAT.
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="The DR promoter: HTTPS out (AWS APIs, the EKS API)",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=["0.0.0.0/0"], description="HTTPS"
                )
            ],
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-eks-api",
            security_group_id=args.eks_cluster.vpc_config.cluster_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="The DR promoter reaches the EKS API",
            opts=child,
        )
        access = aws.eks.AccessEntry(
            f"{name}-access",
            cluster_name=args.eks_cluster.name,
            principal_arn=role.arn,
            kubernetes_groups=[PROMOTER_GROUP],
            type="STANDARD",
            tags=tags,
            opts=child,
        )
        self._rbac(name, args)
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            runtime="python3.12",
            handler="failover.handler.handler",
            code=function_code(),
            role=role.arn,
            timeout=FUNCTION_TIMEOUT_SECONDS,
            memory_size=256,
            # One promoter at a time; the lease's conditional write would stop a second one anyway.
            reserved_concurrent_executions=1,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(args.subnet_ids), security_group_ids=[security_group.id]
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "LEASE_TABLE": table.name,
                    "PRIMARY_HEALTH_CHECK_ID": args.primary_health_check_id,
                    "EKS_CLUSTER": args.eks_cluster.name,
                    "CNPG_NAMESPACE": args.cnpg_namespace,
                    "CNPG_CLUSTER": args.cnpg_cluster,
                }
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[*grants, logs, access]),
        )
        schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description="Run the DR promoter; each run watches the primary for most of the minute",
            schedule_expression=f"rate({SCHEDULE_SECONDS // 60} minute)",
            tags=tags,
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=schedule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=schedule.name,
            arn=function.arn,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[permission]),
        )
        # A promoter that fails every run would leave DR unable to take over: make it visible.
        aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            alarm_description="The DR promoter failed or did not run for 3 minutes: automatic failover is not working",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": function.name},
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="breaching",
            tags=tags,
            opts=child,
        )
        self.lease_table = table.name
        self.function_name = function.name
        self.register_outputs({"leaseTable": self.lease_table, "functionName": self.function_name})

    def _rbac(self, name: str, args: DrPromoterArgs) -> None:
        """The promoter may read and patch the one CloudNativePG Cluster, nothing else."""
        opts = pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider)
        role = k8s.rbac.v1.Role(
            f"{name}-cluster-patch",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="failover-promoter", namespace=args.cnpg_namespace),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["postgresql.cnpg.io"],
                    resources=["clusters"],
                    resource_names=[args.cnpg_cluster],
                    verbs=["get", "patch"],
                )
            ],
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-cluster-patch",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="failover-promoter", namespace=args.cnpg_namespace),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name="failover-promoter"
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="Group", name=PROMOTER_GROUP, api_group="rbac.authorization.k8s.io")
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider, depends_on=[role]),
        )
