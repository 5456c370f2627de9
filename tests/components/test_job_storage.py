"""No job keeps storage after it ends, and none waits for a node with a store's worth of local disk.

Each Job and CronJob pod's volumes are walked. A volume backed by a claim (a PersistentVolumeClaim
or a generic ephemeral volume) is retained after the run unless its class is one the stack
creates with `reclaimPolicy: Delete`; its size counts once per run. Every emptyDir must have a
size limit (node-local disk that goes with the pod, bounded so a run cannot fill a node), and what
a pod takes of its node's disk (its emptyDirs' limits, or its ephemeral-storage request if larger)
stays small: a request as large as a store (500 GiB in prod) leaves the pod Pending on every node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tools.harness import StackRun, run_stack

JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NODE_DISK_BOUND_GIB = 4.0
"""The most node-local disk a job pod may take: scripts' scratch files, never a store's data."""


def runs_per_day(schedule: str) -> int:
    """Runs a five-field cron schedule makes in a day (minute and hour fields; every day assumed)."""
    minute, hour = schedule.split()[:2]

    def count(field: str, span: int) -> int:
        if field == "*":
            return span
        if field.startswith("*/"):
            return -(-span // int(field[2:]))
        return len(field.split(","))

    return count(minute, 60) * count(hour, 24)


def gib(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024, "Ti": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def retained_gib_per_day(run: StackRun) -> tuple[float, list[str]]:
    """Storage left behind by a day of job runs, and every unbounded emptyDir found."""
    deleting = {
        r.inputs["metadata"]["name"] for r in run.by_type(STORAGE_CLASS) if r.inputs.get("reclaimPolicy") == "Delete"
    }
    jobs: list[tuple[str, Mapping[str, Any], int]] = [
        (r.name, r.inputs["spec"]["template"]["spec"], 1) for r in run.by_type(JOB)
    ]
    jobs += [
        (
            r.name,
            r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            runs_per_day(r.inputs["spec"]["schedule"]),
        )
        for r in run.by_type(CRONJOB)
    ]
    return tally(jobs, deleting)


def tally(jobs: list[tuple[str, Mapping[str, Any], int]], deleting: set[str]) -> tuple[float, list[str]]:
    retained = 0.0
    unbounded = []
    for name, pod, runs in jobs:
        for volume in pod.get("volumes", []):
            claim = None
            if "ephemeral" in volume:
                claim = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
            elif "persistentVolumeClaim" in volume:
                claim = {"storageClassName": None, "resources": {"requests": {"storage": "1Ti"}}}
            if claim is not None and claim.get("storageClassName") not in deleting:
                retained += runs * gib(claim["resources"]["requests"]["storage"])
            if "emptyDir" in volume and "sizeLimit" not in volume["emptyDir"]:
                unbounded.append(f"{name}/{volume['name']}")
    return retained, unbounded


@pytest.mark.parametrize("stack", ["prod", "dev", "dr"])
def test_a_day_of_job_runs_retains_no_storage(stack: str) -> None:
    run = run_stack(stack)
    assert run.by_type(CRONJOB), "the stack runs backup or restore jobs"
    retained, unbounded = retained_gib_per_day(run)
    assert retained == 0
    assert unbounded == []


def test_the_measure_counts_a_claim_on_a_retaining_class() -> None:
    """What the restore checks did before: an ephemeral claim on the stores' Retain class, every day."""
    claim = {"storageClassName": "fast-ssd-retain", "resources": {"requests": {"storage": "500Gi"}}}
    pod = {"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}]}
    assert tally([("postgres-restore-check", pod, runs_per_day("30 4 * * *"))], set()) == (500, [])
    assert tally([("postgres-restore-check", pod, 1)], {"fast-ssd-retain"}) == (0, [])
    assert tally([("x", {"volumes": [{"name": "tmp", "emptyDir": {}}]}, 1)], set()) == (0, ["x/tmp"])
    assert runs_per_day("*/15 * * * *") == 96


def job_pods(run: StackRun) -> list[tuple[str, Mapping[str, Any]]]:
    pods = [(r.name, r.inputs["spec"]["template"]["spec"]) for r in run.by_type(JOB)]
    return pods + [(r.name, r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]) for r in run.by_type(CRONJOB)]


def node_disk_gib(pod: Mapping[str, Any]) -> float:
    """What a pod takes of its node's disk: its emptyDirs' limits, or its ephemeral-storage request
    (the larger of its biggest init container's and the sum of its main containers') if larger."""
    empty_dirs = sum(gib(v["emptyDir"].get("sizeLimit", "0Gi")) for v in pod.get("volumes", []) if "emptyDir" in v)

    def requested(container: Mapping[str, Any]) -> float:
        return gib(container.get("resources", {}).get("requests", {}).get("ephemeral-storage", "0Gi"))

    init = max((requested(c) for c in pod.get("initContainers", [])), default=0.0)
    return max(empty_dirs, init, sum(requested(c) for c in pod["containers"]))


@pytest.mark.parametrize("stack", ["prod", "dev", "dr"])
def test_no_job_pod_needs_a_node_with_a_stores_worth_of_local_disk(stack: str) -> None:
    taken = {name: node_disk_gib(pod) for name, pod in job_pods(run_stack(stack))}
    assert taken
    assert {name: size for name, size in taken.items() if size > NODE_DISK_BOUND_GIB} == {}


def test_the_disk_measure_counts_a_scheduler_request() -> None:
    """What the restore checks did before: 500 GiB of ephemeral-storage on the main container."""
    container = {"resources": {"requests": {"ephemeral-storage": "500Gi"}}}
    pod = {"containers": [container], "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "500Gi"}}]}
    assert node_disk_gib(pod) == 500
    assert node_disk_gib({"containers": [{}], "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]}) == 1
