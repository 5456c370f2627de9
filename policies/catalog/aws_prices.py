"""Loader for `aws_prices.json`: the dated AWS price table the cost model uses (stdlib only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

AWS_PRICES_PATH = Path(__file__).with_name("aws_prices.json")


@dataclass(frozen=True)
class AwsPrices:
    as_of: date
    region: str
    source: str
    ec2_hourly: Mapping[str, Decimal]
    rds_hourly: Mapping[str, Decimal]
    aurora_hourly: Mapping[str, Decimal]
    aurora_acu_hourly: Decimal
    rds_multi_az_factor: Decimal
    elasticache_hourly: Mapping[str, Decimal]
    ebs_gib_month: Mapping[str, Decimal]
    """Per volume type (gp3, gp2, io1, io2, st1, sc1, standard)."""
    ebs_provisioned_iops_month: Decimal
    gp3_extra_iops_month: Decimal
    gp3_extra_throughput_mibps_month: Decimal
    rds_gp3_gib_month: Decimal
    eks_cluster_hourly: Decimal
    eks_nodegroup_default_instance_type: str
    """What EKS launches when a node group names no instance type (and no launch template)."""
    nat_gateway_hourly: Decimal
    load_balancer_hourly: Decimal
    public_ipv4_hourly: Decimal
    route53_health_check_month: Decimal
    route53_zone_month: Decimal
    kms_key_month: Decimal


def _prices(table: Mapping[str, Any]) -> Mapping[str, Decimal]:
    return MappingProxyType({name: Decimal(str(price)) for name, price in table.items()})


@cache
def load_aws_prices(path: Path = AWS_PRICES_PATH) -> AwsPrices:
    document = json.loads(path.read_text(encoding="utf-8"))

    def amount(key: str) -> Decimal:
        return Decimal(str(document[key]))

    return AwsPrices(
        as_of=date.fromisoformat(document["as_of"]),
        region=document["region"],
        source=document["source"],
        ec2_hourly=_prices(document["ec2_hourly"]),
        rds_hourly=_prices(document["rds_hourly"]),
        aurora_hourly=_prices(document["aurora_hourly"]),
        aurora_acu_hourly=amount("aurora_acu_hourly"),
        rds_multi_az_factor=amount("rds_multi_az_factor"),
        elasticache_hourly=_prices(document["elasticache_hourly"]),
        ebs_gib_month=_prices(document["ebs_gib_month"]),
        ebs_provisioned_iops_month=amount("ebs_provisioned_iops_month"),
        gp3_extra_iops_month=amount("gp3_extra_iops_month"),
        gp3_extra_throughput_mibps_month=amount("gp3_extra_throughput_mibps_month"),
        rds_gp3_gib_month=amount("rds_gp3_gib_month"),
        eks_cluster_hourly=amount("eks_cluster_hourly"),
        eks_nodegroup_default_instance_type=str(document["eks_nodegroup_default_instance_type"]),
        nat_gateway_hourly=amount("nat_gateway_hourly"),
        load_balancer_hourly=amount("load_balancer_hourly"),
        public_ipv4_hourly=amount("public_ipv4_hourly"),
        route53_health_check_month=amount("route53_health_check_month"),
        route53_zone_month=amount("route53_zone_month"),
        kms_key_month=amount("kms_key_month"),
    )
