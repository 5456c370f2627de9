"""No job keeps storage after it ends: the storage its runs leave behind per day is zero in every stack.

Each Job and CronJob pod's volumes are walked. A volume backed by a claim (a PersistentVolumeClaim
or a generic ephemeral volume) is retained after the run unless its class is one the stack
creates with `reclaimPolicy: Delete`; its size counts once per run. Every emptyDir must have a
size limit (node-local disk that goes with the pod, bounded so a run cannot fill a node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tools.harness import StackRun, run_stack

JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


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
