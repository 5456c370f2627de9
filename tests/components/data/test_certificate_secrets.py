"""cert-manager takes over the leaf certificates with no manual step.

Before the leaves went to cert-manager, the program wrote each store's certificate Secret itself.
The engine deletes a resource that leaves the program at the end of the update; had cert-manager
been pointed at the same Secret, that delete would have hit the Secret cert-manager had just taken
over. So cert-manager's Secrets have names of their own: none is a Secret the program manages now
or managed then, and nothing the stacks render still reads an old one (which the upgrade deletes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.data.certificate import leaf_secret_name
from tools.harness import StackRun, run_stack

SECRET = "kubernetes:core/v1:Secret"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
# The certificate Secrets the program managed before cert-manager issued the leaves, per stack
# (the Secrets ending in `tls` that `run_stack` registered at c8bf5ff^1, the main before issue 16).
MANAGED_BEFORE = {
    "prod": {"postgres-replication-tls", "postgres-server-tls", "qdrant-0-tls", "qdrant-1-tls", "qdrant-2-tls"}
    | {"redis-tls"},
    "dev": {"qdrant-0-tls", "redis-tls"},
    "dr": {"primary-replication-tls", "qdrant-0-tls", "qdrant-1-tls", "qdrant-2-tls"},
}
# Still written by the program (pulumi-tls leaves used outside cert-manager's reach).
STILL_MANAGED = {"postgres-replication-tls", "primary-replication-tls"}


def managed_secrets(run: StackRun) -> set[str]:
    return {r.inputs["metadata"]["name"] for r in run.by_type(SECRET)}


def certificate_targets(run: StackRun) -> set[str]:
    return {r.inputs["spec"]["secretName"] for r in run.by_type(CERTIFICATE)}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("stack", ["prod", "dev", "dr"])
def test_no_secret_is_both_the_programs_and_cert_managers(stack: str) -> None:
    run = run_stack(stack)
    targets = certificate_targets(run)
    assert targets, "cert-manager issues the stores' certificates"
    assert targets.isdisjoint(managed_secrets(run))
    assert targets.isdisjoint(MANAGED_BEFORE[stack])
    assert MANAGED_BEFORE[stack] & managed_secrets(run) == MANAGED_BEFORE[stack] & STILL_MANAGED


@pytest.mark.parametrize("stack", ["prod", "dev", "dr"])
def test_nothing_reads_a_secret_the_upgrade_deletes(stack: str) -> None:
    """The old Secrets leave the program and are deleted: no volume, env, RBAC rule, scrape config
    or CloudNativePG `certificates` entry may name one. A Certificate keeps its own name (the same
    object, updated in place), so only its metadata is let through."""
    run = run_stack(stack)
    deleted = MANAGED_BEFORE[stack] - STILL_MANAGED
    readers = []
    for resource in run.resources:
        inputs = dict(resource.inputs)
        if resource.type == CERTIFICATE:
            inputs.pop("metadata", None)
        readers += [(resource.name, s) for s in strings(inputs) if s in deleted]
    assert readers == []


def test_leaves_from_pulumi_keep_their_name() -> None:
    assert leaf_secret_name("redis-tls") == "redis-tls-cert-manager"
    assert leaf_secret_name("postgres-replication-tls", "pulumi") == "postgres-replication-tls"
