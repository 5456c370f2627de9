"""The shipped stack files match the enhancement plan."""

from __future__ import annotations

import ipaddress
import re

import pulumi
import pytest

from settings import StackSettings, parse_settings
from settings.base import Environment
from tests.helpers import stack_config
from tools.harness import PROJECT_ROOT, run_stack


def load(stack: str) -> StackSettings:
    return parse_settings(stack_config(stack))


def test_prod_has_the_plans_four_pools() -> None:
    settings = load("prod")
    assert settings.environment is Environment.PROD
    pools = {p.name: (p.instance_type, p.min, p.max) for p in settings.gpu_pools}
    assert pools == {
        "ai-core": ("gpu_1x_gh200", 2, 10),
        "business": ("gpu_1x_a6000", 2, 8),
        "data": ("gpu_1x_a100", 2, 6),
        "dev": ("gpu_1x_a10", 1, 3),
    }
    dev_pool = next(p for p in settings.gpu_pools if p.name == "dev")
    assert dev_pool.off_hours is not None


def test_prod_data_layer() -> None:
    layer = load("prod").data_layer
    assert (layer.redis.masters, layer.redis.replicas_per_master) == (3, 1)
    assert layer.postgres.read_replicas == 2
    assert layer.qdrant.clusters >= 3
    assert layer.qdrant.nodes_per_cluster >= 3
    assert layer.qdrant.replication_factor >= 2


def test_dr_is_aws_us_east_1_with_the_plans_targets() -> None:
    settings = load("dr")
    assert settings.environment is Environment.DR
    assert settings.dr is not None
    assert settings.dr.aws_region == "us-east-1"
    assert settings.dr.rto_seconds <= 60
    assert settings.dr.rpo_seconds <= 5
    assert settings.gpu_pools == ()


def test_dev_is_one_a10_and_single_node_services() -> None:
    settings = load("dev")
    assert [(p.instance_type, p.max) for p in settings.gpu_pools] == [("gpu_1x_a10", 1)]
    assert settings.gpu_pools[0].off_hours is not None
    layer = settings.data_layer
    assert layer.redis.replicas_per_master == 0
    assert layer.postgres.read_replicas == 0
    assert (layer.qdrant.clusters, layer.qdrant.nodes_per_cluster) == (1, 1)
    assert settings.monthly_budget_usd < load("prod").monthly_budget_usd


def test_prod_and_dr_agree_on_what_connects_them() -> None:
    prod, dr = load("prod"), load("dr")
    assert prod.backups is not None
    assert dr.dr is not None
    replication = prod.data_layer.postgres.dr_replication
    assert replication is not None
    assert prod.backups.replica_bucket == dr.dr.backup_replica_bucket
    assert prod.backups.replica_region == dr.dr.aws_region
    # prod raises the lag alert; dr's settings hold it to the RPO.
    assert replication.lag_alert_seconds == dr.dr.replication_lag_alert_seconds <= dr.dr.rpo_seconds
    assert dr.data_layer.qdrant == prod.data_layer.qdrant  # DR mirrors the clusters peer for peer


DOCUMENTATION_RANGES = [ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_no_stack_file_holds_a_documentation_range(stack: str) -> None:
    """RFC 5737 ranges are placeholders: deployed, they open nothing to anyone real (or, worse,
    something to someone). What only the organization knows is left out and required instead."""
    text = (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    for found in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b", text):
        network = ipaddress.IPv4Network(found, strict=False)
        # Inside a documentation range (0.0.0.0/0 overlaps them all, and is no placeholder).
        assert not any(network.subnet_of(doc) for doc in DOCUMENTATION_RANGES), f"{stack}: {found}"


@pytest.mark.parametrize(
    ("stack", "keys"),
    [
        ("prod", ["sophia:lambdaAccess.sshAllowedCidrs"]),
        ("dev", ["sophia:lambdaAccess.sshAllowedCidrs"]),
        ("dr", ["sophia:dr.eks.deployRoleArn", "sophia:dr.eks.operatorArns", "sophia:dr.eks.publicAccessCidrs"]),
    ],
)
def test_unset_site_facts_stop_the_stack_naming_each_key(stack: str, keys: list[str]) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_stack(stack, assume_site_facts=False)
    message = str(caught.value)
    for key in keys:
        assert f"{key}: is required" in message, message
