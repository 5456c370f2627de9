"""GPU pool, Lambda region and access settings: each rule, broken alone on the valid prod config, names its key."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, parse_settings
from tests.helpers import stack_config, with_value
from tests.settings.broken import ACCESS, Broken, assert_rejected, pools

BROKEN: list[Broken] = [
    ("min above max", "sophia:gpuPools", pools(min=12, desired=12), "sophia:gpuPools[0].desired"),
    ("min above desired", "sophia:gpuPools", pools(min=3, desired=2), "sophia:gpuPools[0].min"),
    ("desired above max", "sophia:gpuPools", pools(desired=11), "sophia:gpuPools[0].desired"),
    ("negative min", "sophia:gpuPools", pools(min=-1), "sophia:gpuPools[0].min"),
    ("zero max", "sophia:gpuPools", pools(min=0, desired=0, max=0), "sophia:gpuPools[0].max"),
    ("fractional count", "sophia:gpuPools", pools(desired=2.5), "sophia:gpuPools[0].desired"),
    ("count as text", "sophia:gpuPools", pools(desired="2"), "sophia:gpuPools[0].desired"),
    ("unknown type", "sophia:gpuPools", pools(instanceType="gpu_1x_gh2000"), "sophia:gpuPools[0].instanceType"),
    ("misspelt pool key", "sophia:gpuPools", pools(maxx=3), "sophia:gpuPools[0].maxx"),
    ("bad pool name", "sophia:gpuPools", pools(name="AI Core"), "sophia:gpuPools[0].name"),
    ("duplicate pool", "sophia:gpuPools", pools(name="business"), "sophia:gpuPools"),
    (
        "bad time zone",
        "sophia:gpuPools",
        pools(offHours={"timezone": "Mars/Olympus", "stopAt": "20:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.timezone",
    ),
    (
        "bad clock",
        "sophia:gpuPools",
        pools(offHours={"timezone": "UTC", "stopAt": "24:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.stopAt",
    ),
    (
        "same clock",
        "sophia:gpuPools",
        pools(offHours={"timezone": "UTC", "stopAt": "07:00", "startAt": "07:00"}),
        "sophia:gpuPools[0].offHours.startAt",
    ),
    (
        "per-pool scale-down delay",
        "sophia:gpuPools",
        pools(scaleDownDelayMinutes=30),
        "sophia:gpuPools[0].scaleDownDelayMinutes",
    ),
    (
        "scale-down delay under a boot",
        "sophia:autoscaler",
        {"serviceImage": "ghcr.io/a/b:1", "scaleDownUnneededMinutes": 4},
        "sophia:autoscaler.scaleDownUnneededMinutes",
    ),
    (
        "a pool that can never run a node",
        "sophia:gpuPools",
        pools(min=0, desired=0, scaleFromZero=False),
        "sophia:gpuPools[0].scaleFromZero",
    ),
    ("scale from zero as text", "sophia:gpuPools", pools(scaleFromZero="no"), "sophia:gpuPools[0].scaleFromZero"),
    (
        "autoscaler image unpinned",
        "sophia:autoscaler",
        {"serviceImage": "ghcr.io/a/b:latest"},
        "sophia:autoscaler.serviceImage",
    ),
    (
        "autoscaler image untagged",
        "sophia:autoscaler",
        {"serviceImage": "ghcr.io/a/b"},
        "sophia:autoscaler.serviceImage",
    ),
    (
        "autoscaler namespace",
        "sophia:autoscaler",
        {"serviceImage": "ghcr.io/a/b:1", "namespace": "Kube_System"},
        "sophia:autoscaler.namespace",
    ),
    (
        "misspelt autoscaler key",
        "sophia:autoscaler",
        {"serviceImage": "ghcr.io/a/b:1", "scanInterval": 5},
        "sophia:autoscaler.scanInterval",
    ),
    ("unknown region", "sophia:lambdaRegion", "us-nowhere-1", "sophia:lambdaRegion"),
    ("unknown fallback", "sophia:lambdaFallbackRegions", ["us-west-2", "eu-mars-1"], "sophia:lambdaFallbackRegions[1]"),
    ("fallback repeats primary", "sophia:lambdaFallbackRegions", ["us-west-1"], "sophia:lambdaFallbackRegions"),
    ("pools not a list", "sophia:gpuPools", {"name": "x"}, "sophia:gpuPools"),
    (
        "ssh open to the world",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": ["0.0.0.0/0"]},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "ssh from a private range",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": ["10.0.0.0/8"]},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "no ssh networks",
        "sophia:lambdaAccess",
        {**ACCESS, "sshAllowedCidrs": []},
        "sophia:lambdaAccess.sshAllowedCidrs",
    ),
    (
        "not a public key",
        "sophia:lambdaAccess",
        {**ACCESS, "sshPublicKey": "-----BEGIN"},
        "sophia:lambdaAccess.sshPublicKey",
    ),
    ("join url not https", "sophia:clusterJoin", {"serverUrl": "http://k8s:6443"}, "sophia:clusterJoin.serverUrl"),
    (
        "unpinned k3s",
        "sophia:clusterJoin",
        {"serverUrl": "https://k8s:6443", "k3sVersion": "latest"},
        "sophia:clusterJoin.k3sVersion",
    ),
    ("broken structured value", "sophia:gpuPools", "[{", "sophia:gpuPools"),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)


def test_a_pinned_k3s_version_is_read_from_its_documented_key() -> None:
    join = {"serverUrl": "https://k8s.example.com:6443", "k3sVersion": "v1.32.1+k3s2"}
    settings = parse_settings(with_value(stack_config(), "sophia:clusterJoin", join))
    assert settings.cluster_join is not None
    assert settings.cluster_join.k3s_version == "v1.32.1+k3s2"


def test_a_fallback_region_listed_twice_is_refused() -> None:
    assert_rejected("sophia:lambdaFallbackRegions", ["us-west-2", "us-west-2"], "sophia:lambdaFallbackRegions")


def test_the_autoscaler_needs_nodes_that_join_the_cluster() -> None:
    config = dict(stack_config("prod"))
    del config["sophia:clusterJoin"]
    with pytest.raises(SettingsError) as caught:
        parse_settings(config)
    assert str(caught.value) == (
        "invalid stack config: sophia:autoscaler: needs clusterJoin: burst nodes join the primary cluster to take pods"
    )


def test_the_floor_is_min_when_autoscaled_and_zero_with_off_hours() -> None:
    settings = parse_settings(stack_config("prod"))
    floors = {p.name: (p.floor(autoscaled=True), p.floor(autoscaled=False)) for p in settings.gpu_pools}
    assert floors == {"ai-core": (2, 2), "business": (2, 2), "data": (2, 2), "dev": (0, 1)}


def test_a_pool_scale_down_delay_points_to_the_setting_that_replaced_it() -> None:
    message = assert_rejected(
        "sophia:gpuPools", pools(scaleDownDelayMinutes=30), "sophia:gpuPools[0].scaleDownDelayMinutes"
    )
    assert "sophia:autoscaler.scaleDownUnneededMinutes" in message


def test_a_pool_stuck_at_zero_is_only_refused_when_the_autoscaler_runs_it() -> None:
    config = with_value(stack_config("prod"), "sophia:gpuPools", pools(min=0, desired=1, scaleFromZero=False))
    del config["sophia:autoscaler"]
    settings = parse_settings(config)
    assert settings.gpu_pools[0].floor(autoscaled=False) == 1  # without it, Pulumi runs `desired`
