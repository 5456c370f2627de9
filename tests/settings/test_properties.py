"""Property-based: no invalid config escapes with anything but a SettingsError naming its key."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.catalog import load_lambda_catalog
from settings import SettingsError, StackSettings, parse_settings
from tests.helpers import decoded, stack_config

CATALOG = load_lambda_catalog()
TYPES = sorted(CATALOG.instance_types)
REGIONS = sorted(CATALOG.regions)

pool_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)


@st.composite
def valid_pool(draw: st.DrawFn, name: str) -> dict[str, Any]:
    low = draw(st.integers(0, 20))
    desired = draw(st.integers(low, low + 20))
    high = draw(st.integers(max(desired, 1), desired + 20))
    pool: dict[str, Any] = {
        "name": name,
        "instanceType": draw(st.sampled_from(TYPES)),
        "min": low,
        "desired": desired,
        "max": high,
    }
    if draw(st.booleans()):
        stop, start = draw(st.lists(st.integers(0, 23), min_size=2, max_size=2, unique=True))
        pool["offHours"] = {
            "timezone": draw(st.sampled_from(["UTC", "America/Los_Angeles", "Europe/Berlin"])),
            "stopAt": f"{stop:02d}:00",
            "startAt": f"{start:02d}:30",
        }
    return pool


@st.composite
def valid_config(draw: st.DrawFn) -> dict[str, Any]:
    """A decoded config document (key without namespace -> value)."""
    names = draw(st.lists(pool_names, min_size=1, max_size=5, unique=True))
    region = draw(st.sampled_from(REGIONS))
    fallbacks = draw(st.lists(st.sampled_from([r for r in REGIONS if r != region]), max_size=3, unique=True))
    nodes = draw(st.integers(1, 9))
    environment = draw(st.sampled_from(["prod", "dr", "dev"]))
    document: dict[str, Any] = {
        "environment": environment,
        "lambdaRegion": region,
        "lambdaFallbackRegions": fallbacks,
        "gpuPools": [draw(valid_pool(name)) for name in names],
        "lambdaAccess": {
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3x ops",
            "sshAllowedCidrs": draw(
                st.lists(st.sampled_from(["203.0.113.0/24", "198.51.100.7/32", "8.8.0.0/16"]), min_size=1, unique=True)
            ),
        },
        "dataLayer": {
            "redis": {
                "masters": draw(st.integers(3, 12)),
                "replicasPerMaster": draw(st.integers(0, 3)),
                "storageGib": draw(st.integers(1, 1000)),
            },
            "postgres": {"readReplicas": draw(st.integers(0, 5)), "storageGib": draw(st.integers(1, 5000))},
            "qdrant": {
                "clusters": draw(st.integers(1, 6)),
                "nodesPerCluster": nodes,
                "replicationFactor": draw(st.integers(1, nodes)),
                "storageGib": draw(st.integers(1, 999)),
            },
        },
        "monthlyBudgetUsd": str(draw(st.integers(1, 10**7))),
        "tags": {"owner": "platform", "costCentre": draw(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True))},
    }
    if environment != "dr" or draw(st.booleans()):
        document["kubernetes"] = {
            "version": f"1.{draw(st.integers(28, 37))}",
            "storageClass": "fast-ssd",
            "clientNamespaces": draw(st.lists(st.sampled_from(["sophia-apps", "ml", "web"]), unique=True)),
        }
        document["backups"] = {"s3Bucket": "sophia-backups", "s3Region": "us-west-1"}
        if environment == "prod":
            document["backups"] |= {"replicaBucket": "sophia-backups-replica", "replicaRegion": "us-east-1"}
        document["monitoring"] = {
            "thresholds": {"memoryUsage": draw(st.floats(0.01, 0.99)), "cpuMinutes": draw(st.integers(1, 60))}
        }
    if environment == "dr" or draw(st.booleans()):
        second = draw(st.integers(0, 255))
        document["dr"] = {
            **decoded(stack_config("dr"), "sophia:dr"),
            "vpcCidr": f"10.{second}.0.0/16",
            # Above the shipped failover's worst case (50 s) and lag alert (5 s).
            "rtoSeconds": draw(st.integers(51, 3600)),
            "rpoSeconds": draw(st.integers(5, 3600)),
        }
    return document


def encode(document: dict[str, Any]) -> dict[str, str]:
    """As the engine hands config to the program: namespaced keys, structured values as JSON."""
    return {f"sophia:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in document.items()}


def mutations(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Ways to break exactly one rule: (expected key, function applying it)."""
    pool = document["gpuPools"][0]
    return [
        ("sophia:gpuPools[0].min", lambda d: d["gpuPools"][0].update(min=pool["desired"] + 1)),
        ("sophia:gpuPools[0].desired", lambda d: d["gpuPools"][0].update(desired=pool["max"] + 1)),
        ("sophia:gpuPools[0].min", lambda d: d["gpuPools"][0].update(min=-1)),
        ("sophia:gpuPools[0].instanceType", lambda d: d["gpuPools"][0].update(instanceType=pool["instanceType"] + "x")),
        ("sophia:gpuPools[0].mni", lambda d: d["gpuPools"][0].update(mni=1)),
        ("sophia:lambdaRegion", lambda d: d.update(lambdaRegion=d["lambdaRegion"] + "-old")),
        ("sophia:dataLayer.redis.masters", lambda d: d["dataLayer"]["redis"].update(masters=2)),
        (
            "sophia:dataLayer.qdrant.replicationFactor",
            lambda d: d["dataLayer"]["qdrant"].update(
                replicationFactor=d["dataLayer"]["qdrant"]["nodesPerCluster"] + 1
            ),
        ),
        ("sophia:monthlyBudgetUsd", lambda d: d.update(monthlyBudgetUsd="-" + d["monthlyBudgetUsd"])),
        ("sophia:monthlyBudgetUsd", lambda d: d.update(monthlyBudgetUsd="0")),
        (
            "sophia:dr.vpcCidr",
            lambda d: d.update(dr={**decoded(stack_config("dr"), "sophia:dr"), "vpcCidr": "100.64.0.0/16"}),
        ),
        ("sophia:gpuPoolz", lambda d: d.update(gpuPoolz=[])),
        ("sophia:lambdaAccess.sshAllowedCidrs", lambda d: d["lambdaAccess"].update(sshAllowedCidrs=["0.0.0.0/0"])),
        ("sophia:lambdaAccess", lambda d: d.pop("lambdaAccess")),
        ("sophia:kubernetes.version", lambda d: d.update(kubernetes={"version": "1.99", "storageClass": "x"})),
    ]


@settings(max_examples=150, deadline=None)
@given(valid_config())
def test_valid_configs_parse(document: dict[str, Any]) -> None:
    parsed = parse_settings(encode(document))
    assert isinstance(parsed, StackSettings)
    assert [p.name for p in parsed.gpu_pools] == [p["name"] for p in document["gpuPools"]]


@settings(max_examples=300, deadline=None)
@given(valid_config(), st.data())
def test_one_broken_rule_fails_naming_its_key(document: dict[str, Any], data: st.DataObject) -> None:
    key, mutate = data.draw(st.sampled_from(mutations(document)))
    mutate(document)
    try:
        parse_settings(encode(document))
    except SettingsError as error:
        assert key in error.keys, f"{key} not in {error}"
        assert "\n" not in str(error)
    else:
        raise AssertionError(f"accepted a config broken at {key}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(valid_config(), st.data())
def test_junk_anywhere_gives_settings_error_or_settings(document: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from([*document, "gpuPoolz", "budget"]))
    junk = data.draw(json_values | st.text(max_size=30))
    config = encode(document)
    config[f"sophia:{key}"] = junk if isinstance(junk, str) else json.dumps(junk)
    try:
        parse_settings(config)
    except SettingsError as error:
        assert all(k.startswith("sophia:") for k in error.keys)
        assert "\n" not in str(error)
