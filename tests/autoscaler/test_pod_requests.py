"""A pod's requests as the scheduler counts them (k8s.io/component-helpers resource.PodRequests): the
price expander prices a pod by them, so sidecars and pod-level resources must count."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from autoscaler.protos import k8s_core_v1_pb2 as core
from autoscaler.template import pod_requests


def _container(containers: Any, name: str, cpu: str, *, sidecar: bool = False) -> None:
    container = containers.add(name=name)
    container.resources.requests["cpu"].string = cpu
    if sidecar:
        container.restartPolicy = "Always"


def test_sidecars_run_alongside_the_containers_and_add_up() -> None:
    pod = core.Pod()
    _container(pod.spec.containers, "app", "1")
    _container(pod.spec.initContainers, "proxy", "500m", sidecar=True)
    assert pod_requests(pod.SerializeToString())["cpu"] == Decimal("1.5")  # before: the larger, 1


def test_an_init_container_runs_beside_the_sidecars_started_before_it() -> None:
    pod = core.Pod()
    _container(pod.spec.containers, "app", "1")
    _container(pod.spec.initContainers, "proxy", "500m", sidecar=True)
    _container(pod.spec.initContainers, "migrate", "2")
    assert pod_requests(pod.SerializeToString())["cpu"] == Decimal("2.5")


def test_pod_level_requests_replace_cpu_and_memory_but_not_gpus() -> None:
    pod = core.Pod()
    container = pod.spec.containers.add(name="infer")
    container.resources.requests["cpu"].string = "1"
    container.resources.requests["nvidia.com/gpu"].string = "1"
    pod.spec.resources.requests["cpu"].string = "8"
    pod.spec.resources.limits["memory"].string = "64Gi"  # a limit alone is the request
    requests = pod_requests(pod.SerializeToString())
    assert requests["cpu"] == 8
    assert requests["memory"] == 64 * 2**30
    assert requests["nvidia.com/gpu"] == 1


def test_overhead_is_added_last() -> None:
    pod = core.Pod()
    _container(pod.spec.containers, "app", "1")
    pod.spec.overhead["cpu"].string = "250m"
    assert pod_requests(pod.SerializeToString())["cpu"] == Decimal("1.25")
