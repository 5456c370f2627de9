"""Drive the node-group service as cluster-autoscaler does, over real gRPC on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import grpc

from autoscaler.config import OWNER_TAG, POOL_TAG, PoolSpec, ServiceConfig, Taint
from autoscaler.groups import NodeGroups
from autoscaler.kube import KubeApi
from autoscaler.protos import externalgrpc_pb2 as pb
from autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
from autoscaler.server import TlsFiles, running
from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.endpoint import Endpoint
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from tests.providers.lambda_cloud.emulator import LambdaEmulator

SSH_KEY = "sophia-test-key"
CLUSTER = "sophia-test"
FAKE_NODE_REASON = "k8s.io/cluster-autoscaler/fake-node-reason"


def pool_spec(name: str = "burst", **changes: Any) -> PoolSpec:
    spec = PoolSpec(
        name=name,
        instance_type="gpu_1x_a10",
        min=1,
        max=4,
        floor=1,
        region="us-west-1",
        fallback_regions=("us-west-2",),
        ssh_key_names=(SSH_KEY,),
        labels={},
        taints=(Taint("sophia.ai/pool", name, "NoSchedule"),),
        tags={"owner": "platform-infra", "cost-centre": "cc-1"},
    )
    return replace(spec, **changes)


def config(*pools: PoolSpec) -> ServiceConfig:
    return ServiceConfig(cluster=CLUSTER, pools=pools or (pool_spec(),))


@dataclass
class Clock:
    """A wall clock tests move by hand (schedules); monotonic time stays real."""

    at: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 18, 0, tzinfo=UTC))  # Mon 10:00 PST

    def __call__(self) -> datetime:
        return self.at


def ours(emulator: LambdaEmulator, pool: str | None = None) -> list[Any]:
    """Billing instances the service launched (owner tag), in `pool` if given."""
    result = []
    for instance in emulator.live():
        tags = {t["key"]: t["value"] for t in instance.tags}
        if tags.get(OWNER_TAG) == CLUSTER and (pool is None or tags.get(POOL_TAG) == pool):
            result.append(instance)
    return result


def launch_keys(emulator: LambdaEmulator) -> list[str]:
    return [{t["key"]: t["value"] for t in i.tags}[LAUNCH_KEY_TAG] for i in ours(emulator)]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a condition (never a fixed sleep); fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Autoscaler:
    """The calls cluster-autoscaler's externalgrpc client makes (cloudprovider/externalgrpc @1.36.1)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = pb_grpc.CloudProviderStub(channel)  # type: ignore[no-untyped-call]

    def loop(self) -> dict[str, tuple[int, int, int]]:
        """One scan: Refresh first, then every group's bounds and target size."""
        self.stub.Refresh(pb.RefreshRequest(), timeout=5)
        groups = self.stub.NodeGroups(pb.NodeGroupsRequest(), timeout=5).nodeGroups
        return {g.id: (g.minSize, g.maxSize, self.target(g.id)) for g in groups}

    def target(self, group: str) -> int:
        return int(self.stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=group), timeout=5).targetSize)

    def nodes(self, group: str) -> list[Any]:
        return list(self.stub.NodeGroupNodes(pb.NodeGroupNodesRequest(id=group), timeout=5).instances)

    def increase(self, group: str, delta: int) -> None:
        self.stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=group, delta=delta), timeout=5)

    def decrease(self, group: str, delta: int) -> None:
        self.stub.NodeGroupDecreaseTargetSize(pb.NodeGroupDecreaseTargetSizeRequest(id=group, delta=delta), timeout=5)

    def delete(self, group: str, provider_ids: list[str], *, fake: bool = False) -> None:
        """DeleteNodes; a fake node (a failed create) has Name = ProviderID = the instance id."""
        annotations: Mapping[str, str] = {FAKE_NODE_REASON: "create-error"} if fake else {}
        nodes = [pb.ExternalGrpcNode(providerID=p, name=p, annotations=annotations) for p in provider_ids]
        self.stub.NodeGroupDeleteNodes(pb.NodeGroupDeleteNodesRequest(id=group, nodes=nodes), timeout=5)

    def group_for(self, provider_id: str, labels: Mapping[str, str] | None = None) -> str:
        node = pb.ExternalGrpcNode(providerID=provider_id, name="node", labels=labels or {})
        response = self.stub.NodeGroupForNode(pb.NodeGroupForNodeRequest(node=node), timeout=5)
        return str(response.nodeGroup.id)

    def template(self, group: str) -> bytes:
        request = pb.NodeGroupTemplateNodeInfoRequest(id=group)
        return bytes(self.stub.NodeGroupTemplateNodeInfo(request, timeout=5).nodeBytes)


@dataclass
class Service:
    groups: NodeGroups
    ca: Autoscaler
    port: int


def endpoint_for(emulator: LambdaEmulator) -> Endpoint:
    return Endpoint(base_url=emulator.base_url, api_key=ApiKey(emulator.api_key))


def new_groups(
    emulator: LambdaEmulator, service_config: ServiceConfig, clock: Clock | None = None, kube: KubeApi | None = None
) -> NodeGroups:
    endpoint = endpoint_for(emulator)
    client = LambdaCloudClient(endpoint.api_key, endpoint.base_url)
    return NodeGroups(
        service_config, client, endpoint.watcher(client), join_token="join-token", kube=kube, now=clock or Clock()
    )


@contextmanager
def serve(
    emulator: LambdaEmulator,
    service_config: ServiceConfig,
    clock: Clock | None = None,
    tls: TlsFiles | None = None,
    kube: KubeApi | None = None,
) -> Iterator[Service]:
    groups = new_groups(emulator, service_config, clock, kube)
    with running(groups, "127.0.0.1:0", tls) as port, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        wait_for(groups.fresh_enough, "the first listing")
        yield Service(groups, Autoscaler(channel), port)


def settled(service: Service, emulator: LambdaEmulator, group: str) -> bool:
    """Target size equals what the API bills and nothing is waiting to launch or terminate."""
    groups = service.groups
    with groups._lock:
        busy = bool(groups._to_terminate) or any(s.state in ("queued", "launching") for s in groups._slots.values())
    return not busy and service.ca.target(group) == len(ours(emulator, group))


def in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
