"""What the promoter does in AWS: read the primary's Route 53 health, promote the CloudNativePG
replica cluster on the DR EKS cluster, and keep Route 53 on DR (boto3, and the EKS API over HTTPS)."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.request
from typing import Any

# Route 53 calls an endpoint unhealthy when 18% of its checkers or fewer see it healthy.
HEALTHY_SHARE = 0.18
TIMEOUT_S = 10.0


def primary_healthy(route53: Any, health_check_id: str) -> bool:
    """The latest observation of every Route 53 checker, judged as Route 53 judges them."""
    observations = route53.get_health_check_status(HealthCheckId=health_check_id)["HealthCheckObservations"]
    if not observations:
        return True  # no data yet is no evidence of an outage
    healthy = sum(1 for o in observations if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success"))
    return healthy / len(observations) > HEALTHY_SHARE


def eks_token(sts: Any, cluster: str) -> str:
    """A bearer token for the EKS API, as `aws eks get-token` makes one: a presigned GetCallerIdentity."""

    def name_the_cluster(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", name_the_cluster)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


# DR's name in the CloudNativePG distributed topology (components/dr/postgres_replica.py SELF; this
# package imports nothing of the program, and tests/failover/test_handler.py keeps the two equal).
DR_CLUSTER = "dr"
PROMOTION_PATCH = {"spec": {"replica": {"primary": DR_CLUSTER}}}
"""Make DR the topology's primary without a promotion token: a failover (CloudNativePG promotes the
designated primary once it has replayed what it has); prod has to be rebuilt from DR to rejoin."""


class EksCnpgPromotion:
    """Promote by naming DR the primary of the CloudNativePG distributed topology (its operator
    promotes the designated primary), and pin Route 53 to DR by inverting the primary's health check."""

    def __init__(
        self, *, eks: Any, sts: Any, route53: Any, cluster: str, namespace: str, name: str, health_check_id: str
    ) -> None:
        self.eks, self.sts, self.route53 = eks, sts, route53
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.health_check_id = health_check_id

    def promote_database(self) -> None:
        described = self.eks.describe_cluster(name=self.cluster)["cluster"]
        path = f"/apis/postgresql.cnpg.io/v1/namespaces/{self.namespace}/clusters/{self.name}"
        request = urllib.request.Request(  # noqa: S310 - an https URL read from the EKS API
            described["endpoint"] + path,
            data=json.dumps(PROMOTION_PATCH).encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {eks_token(self.sts, self.cluster)}",
                "Content-Type": "application/merge-patch+json",
            },
        )
        with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
            ca.write(base64.b64decode(described["certificateAuthority"]["data"]))
            ca.flush()
            context = ssl.create_default_context(cafile=ca.name)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:  # noqa: S310
                response.read()

    def pin_traffic_to_dr(self) -> None:
        pin_traffic_to_dr(self.route53, self.health_check_id)


def pin_traffic_to_dr(route53: Any, health_check_id: str) -> None:
    """Make the primary's health check fail whatever the primary's state, so Route 53 answers with DR
    even once the primary comes back. Route 53 counts a disabled check as always healthy and "to stop
    routing traffic to a resource, change the value of Inverted" (UpdateHealthCheck): disabled and
    inverted is always unhealthy. Inverting alone would not do: a dead primary would pass."""
    route53.update_health_check(HealthCheckId=health_check_id, Disabled=True, Inverted=True)


def release_traffic(route53: Any, health_check_id: str) -> None:
    """Failback's last step: the primary's health check decides again."""
    route53.update_health_check(HealthCheckId=health_check_id, Disabled=False, Inverted=False)
