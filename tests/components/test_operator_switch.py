"""Switching an operator from `install` to `existing` deletes nothing in the cluster.

The two programs' registrations are compared the way the engine compares a program with the state
it left: a resource the first run registered and the second does not is deleted, unless it is
`retainOnDelete` (DeleteStep.Apply in pulumi/pulumi pkg/resource/deploy/step.go skips the
provider's Delete for it). A protected one is not deleted either, but the engine refuses the whole
step (`deleteProtectedError`), so the switch would fail: a dropped object must be retained and not
protected. Kubernetes objects only: `random` and `tls` resources live in the state alone.

The children of a ConfigFile (CloudNativePG's manifest, a component the provider expands) never
reach the mocks: they inherit the ConfigFile's retainOnDelete in the engine (`inheritFromParent`,
pkg/resource/deploy/source_eval.go), so the ConfigFile is checked in their place
(tests/components/data/test_postgres_cluster.py checks its CRD transform).
"""

from __future__ import annotations

import json

import pytest

from tools.harness import RegisteredResource, StackRun, read_stack_file, run_stack

OPERATORS = ("cloudnativePg", "prometheusStack", "certManager", "keda", "envoyGateway")
# With the cluster's own Prometheus, the fleet's scaling triggers query it there (sophia:fleet.prometheusUrl).
CLUSTER_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"


def with_operator(stack: str, operator: str, source: str) -> StackRun:
    operators = dict.fromkeys(OPERATORS, "install")
    operators[operator] = source
    overrides = {"sophia:operators": json.dumps(operators)}
    if operator == "prometheusStack" and source == "existing":
        config, _ = read_stack_file(stack)
        fleet = json.loads(config["sophia:fleet"])
        overrides["sophia:fleet"] = json.dumps({**fleet, "prometheusUrl": CLUSTER_PROMETHEUS})
    return run_stack(stack, config_overrides=overrides)


def dropped(before: StackRun, after: StackRun) -> list[RegisteredResource]:
    """Kubernetes objects the first run registered and the second does not: what the engine deletes."""
    remaining = {r.urn for r in after.resources}
    return [r for r in before.resources if r.urn not in remaining and r.type.startswith("kubernetes:")]


# The dr stack's monitoring stack is the service fleet's (prometheusStack switches it there too).
CASES = [(stack, op) for stack in ("prod", "dr") for op in OPERATORS]


@pytest.mark.parametrize(("stack", "operator"), CASES)
def test_switching_an_operator_to_existing_deletes_nothing_in_the_cluster(stack: str, operator: str) -> None:
    installed = with_operator(stack, operator, "install")
    switched = with_operator(stack, operator, "existing")
    gone = dropped(installed, switched)
    assert gone, f"{operator}: the switch takes something out of the program"
    deleted = [r.name for r in gone if not r.retain_on_delete]
    assert deleted == [], f"{operator}: `pulumi up` would delete these from the cluster"
    blocked = [r.name for r in gone if r.protect]
    assert blocked == [], f"{operator}: protected, so the engine would refuse to drop them and the switch would fail"


# What each switch takes out of the program (by type and object name): the test above covers these.
LEAVING = {
    "cloudnativePg": {("kubernetes:yaml/v2:ConfigFile", None)},
    "prometheusStack": {
        ("kubernetes:core/v1:Namespace", "monitoring"),
        ("kubernetes:helm.sh/v3:Release", "monitoring"),
        ("kubernetes:core/v1:Secret", "grafana-admin"),
    },
    "certManager": {
        ("kubernetes:core/v1:Namespace", "cert-manager"),
        ("kubernetes:helm.sh/v3:Release", "cert-manager"),
    },
    "keda": {("kubernetes:core/v1:Namespace", "keda"), ("kubernetes:helm.sh/v3:Release", "keda")},
    "envoyGateway": {
        ("kubernetes:core/v1:Namespace", "envoy-gateway-system"),
        ("kubernetes:helm.sh/v3:Release", "eg"),
    },
}


@pytest.mark.parametrize("operator", OPERATORS)
def test_what_leaves_the_program_is_the_operator_install(operator: str) -> None:
    gone = dropped(with_operator("prod", operator, "install"), with_operator("prod", operator, "existing"))
    names = {(r.type, (r.inputs.get("metadata") or {}).get("name") or r.inputs.get("name")) for r in gone}
    assert names == LEAVING[operator]
