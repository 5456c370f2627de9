"""GpuPool as the stacks build it, under the mock runtime."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys

import dill

from autoscaler.template import template_labels
from components.compute.autoscaler import pool_spec
from providers.lambda_cloud.resources import launch_key
from settings import parse_settings
from tests.autoscaler.join_script import agent_flags
from tests.helpers import decoded, stack_config
from tools.harness import PROJECT_ROOT, SECRET_PLACEHOLDER, SECRET_SIG_KEY, RegisteredResource, StackRun, run_stack
from tools.redact import is_secret, redact

INSTANCE = "pulumi-python:dynamic/lambda:Instance"
RULESET = "pulumi-python:dynamic/lambda:FirewallRuleset"
SSH_KEY = "pulumi-python:dynamic/lambda:SshKey"
POOL = "sophia:compute:GpuPool"


def children(run: StackRun, parent: RegisteredResource, type_: str) -> list[RegisteredResource]:
    return [r for r in run.resources if r.parent == parent.urn and r.type == type_]


def test_prod_pools_match_settings() -> None:
    """Autoscaled: Pulumi runs each pool's floor, `min`, or none for the off-hours dev pool; protected in prod."""
    run = run_stack("prod")
    pools = {p.name: p for p in run.by_type(POOL)}
    assert set(pools) == {"ai-core", "business", "data", "dev"}
    expected = {
        "ai-core": ("gpu_1x_gh200", 2),
        "business": ("gpu_1x_a6000", 2),
        "data": ("gpu_1x_a100", 2),
        "dev": ("gpu_1x_a10", 0),
    }
    for name, (instance_type, floor) in expected.items():
        instances = children(run, pools[name], INSTANCE)
        assert [i.name for i in instances] == [f"{name}-{n}" for n in range(floor)]
        for index, instance in enumerate(instances):
            assert instance.protect
            inputs = instance.inputs
            assert inputs["instance_type"] == instance_type
            assert inputs["name"] == f"sophia-prod-{name}-{index}"
            assert inputs["region"] == "us-west-1"
            assert inputs["fallback_regions"] == ["us-west-2", "us-east-1"]
            assert inputs["ssh_key_names"] == [f"sophia-prod-{name}"]
            assert inputs["tags"]["pool"] == name
            assert inputs["tags"]["cost-centre"] == "sophia-ai-prod"
            assert instance.parent == pools[name].urn


def test_launch_key_is_derived_from_the_engine_urn() -> None:
    run = run_stack("prod")
    instances = run.by_type(INSTANCE)
    assert instances
    for instance in instances:
        assert instance.inputs["launch_key"] == launch_key(instance.urn)
    assert len({i.inputs["launch_key"] for i in instances}) == len(instances)


def test_ssh_only_from_configured_networks_in_every_candidate_region() -> None:
    run = run_stack("prod")
    for pool in run.by_type(POOL):
        rulesets = children(run, pool, RULESET)
        assert sorted(r.inputs["region"] for r in rulesets) == ["us-east-1", "us-west-1", "us-west-2"]
        for ruleset in rulesets:
            # Besides SSH, the service fleet's gateway (sophia:lambdaAccess.ingress), and Postgres from the
            # DR NAT addresses (tests/components/dr/test_replication_path.py).
            rules = [r for r in ruleset.inputs["rules"] if r["port_range"] != [5432.0, 5432.0]]
            ssh = {
                "protocol": "tcp",
                "port_range": [22.0, 22.0],
                "source_network": "203.0.113.0/24",
                "description": "SSH from 203.0.113.0/24",
            }
            gateway = [
                {"protocol": "tcp", "port_range": [p, p], "source_network": "0.0.0.0/0", "description": f"gateway {n}"}
                for p, n in ((80.0, "http"), (443.0, "https"))
            ]
            assert rules == [ssh, *gateway]
        [key] = children(run, pool, SSH_KEY)
        assert key.inputs["public_key"].startswith("ssh-ed25519 ")


def test_without_the_autoscaler_pulumi_runs_desired() -> None:
    run = run_stack("prod", config_overrides={"sophia:autoscaler": None})
    counts = {p.name: len(children(run, p, INSTANCE)) for p in run.by_type(POOL)}
    assert counts == {"ai-core": 2, "business": 2, "data": 2, "dev": 1}
    assert (
        run_stack("prod", config_overrides={"sophia:autoscaler": None}).outputs["gpuPools"]["dev"]["hourlyCostUsd"]
        == 0.75
    )


def test_scaling_down_removes_the_highest_indexes() -> None:
    pools = json.loads(json.dumps(_prod_pools()))
    pools[0]["min"] = pools[0]["desired"] = 3
    bigger = run_stack("prod", config_overrides={"sophia:gpuPools": json.dumps(pools)})
    pools[0]["min"] = pools[0]["desired"] = 2
    smaller = run_stack("prod", config_overrides={"sophia:gpuPools": json.dumps(pools)})
    names = {r.urn for r in bigger.by_type(INSTANCE)} - {r.urn for r in smaller.by_type(INSTANCE)}
    assert [n.rsplit("::", 1)[1] for n in names] == ["ai-core-2"]


def test_pool_cost_is_exported() -> None:
    outputs = run_stack("prod").outputs["gpuPools"]
    assert outputs["ai-core"]["hourlyCostUsd"] == 2.98
    assert outputs["dev"]["hourlyCostUsd"] == 0.0  # off-hours pool: every instance is the autoscaler's


def test_dr_stack_has_no_lambda_resources() -> None:
    assert [r for r in run_stack("dr").resources if r.type.startswith("pulumi-python:dynamic")] == []


def test_no_secret_in_provider_or_inputs_and_the_provider_loads_in_the_project_root() -> None:
    run = run_stack("prod")
    for resource in run.resources:
        if not resource.type.startswith("pulumi-python:dynamic"):
            continue
        wrapped = resource.inputs["__provider"]
        assert wrapped[SECRET_SIG_KEY]
        raw = base64.b64decode(wrapped["value"])
        assert SECRET_PLACEHOLDER.encode() not in raw
        # Secrets (the join token in user data) stay wrapped as secrets; nothing else may carry them.
        assert SECRET_PLACEHOLDER not in json.dumps(
            redact({k: v for k, v in resource.inputs.items() if k != "__provider"})
        )
        assert type(dill.loads(raw)).__module__.startswith("providers.lambda_cloud")
    assert SECRET_PLACEHOLDER not in json.dumps(run.outputs)
    sample = run.by_type(INSTANCE)[0].inputs["__provider"]["value"]
    script = "import base64, sys, dill; print(type(dill.loads(base64.b64decode(sys.stdin.read()))).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", script], input=sample, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "InstanceProvider"


def test_cluster_join_user_data_is_a_secret_with_label_and_taint() -> None:
    run = run_stack("dev", config_overrides={"sophia:autoscaler": None})
    [instance] = run.by_type(INSTANCE)
    user_data = instance.inputs["user_data"]
    assert is_secret(user_data)
    text = user_data["value"]
    assert text.startswith("#cloud-config\n")
    assert "--node-label sophia.ai/pool=dev" in text
    assert "--node-taint sophia.ai/pool=dev:NoSchedule" in text
    assert "INSTALL_K3S_VERSION=v1.31.4+k3s1" in text
    assert f"K3S_TOKEN={SECRET_PLACEHOLDER}" in text


def test_floor_nodes_register_with_the_labels_of_the_pools_template() -> None:
    """Pulumi's floor nodes and the autoscaler's burst nodes of a pool look alike to the scheduler: a pod
    that selects the GPU model or the instance type fits either (else the autoscaler would add burst
    nodes for pods the idle floor could take)."""
    run = run_stack("prod")
    settings = parse_settings(stack_config("prod"))
    checked = 0
    for pool in settings.gpu_pools:
        template = template_labels(pool_spec(pool, "us-west-1", (), {}))
        wanted = {k: v for k, v in template.items() if k not in ("kubernetes.io/os", "kubernetes.io/arch")}
        for instance in run.by_type(INSTANCE):
            if instance.inputs["name"].startswith(f"sophia-prod-{pool.name}-"):
                flags = agent_flags(instance.inputs["user_data"]["value"])
                assert flags.labels == wanted, pool.name
                assert flags.kubelet_args == []  # k3s's own provider ID: never in a node group
                assert "sophia.ai/gpu" in flags.labels
                checked += 1
    assert checked == 6  # every floor instance of prod (dev's floor is 0: offHours)


def _prod_pools() -> list[dict[str, object]]:
    pools: list[dict[str, object]] = decoded(stack_config("prod"), "sophia:gpuPools")
    return pools


def test_dynamic_resources_leave_the_pickler_unwrapped() -> None:
    """pulumi.dynamic wraps pickle's Pickler on every resource; ours unwrap it again, or a large
    stack (or a long test session) overflows the stack while pickling a provider."""
    original = getattr(pickle._Pickler, "_batch_setitems")  # noqa: B009 - private, untyped in typeshed
    for _ in range(3):
        run = run_stack("prod")
    assert len(run.by_type("pulumi-python:dynamic/lambda:Instance")) == 6
    assert getattr(pickle._Pickler, "_batch_setitems") is original  # noqa: B009
