"""The promoter's AWS Lambda entry point. EventBridge runs it every minute; each run watches for
`RUN_SECONDS`, stepping every `POLL_SECONDS`, so a failure is acted on within seconds, not minutes
(the Route 53 health-check metric behind a CloudWatch alarm has one-minute resolution)."""

from __future__ import annotations

import logging
import os
from typing import Any

import boto3

from failover.aws import EksCnpgPromotion, primary_healthy
from failover.lease import DynamoLeaseStore
from failover.promoter import RUN_SECONDS, Promoter

log = logging.getLogger("sophia.failover")
log.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    env = os.environ
    region = env["AWS_REGION"]
    route53 = boto3.client("route53")
    check = env["PRIMARY_HEALTH_CHECK_ID"]
    promoter = Promoter(
        DynamoLeaseStore(boto3.client("dynamodb", region_name=region), env["LEASE_TABLE"]),
        lambda: primary_healthy(route53, check),
        EksCnpgPromotion(
            eks=boto3.client("eks", region_name=region),
            sts=boto3.client("sts", region_name=region),
            route53=route53,
            cluster=env["EKS_CLUSTER"],
            namespace=env["CNPG_NAMESPACE"],
            name=env["CNPG_CLUSTER"],
            health_check_id=check,
        ),
    )
    outcome = promoter.run(RUN_SECONDS)
    log.info("promoter: %s", outcome.reason)
    return {"promoted": outcome.promoted, "reason": outcome.reason}
