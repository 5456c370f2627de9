"""The gRPC face of `NodeGroups`: cluster-autoscaler's `externalgrpc` CloudProvider service.

Every call answers from memory (the listing the poller keeps fresh and the requests not yet fulfilled)
and returns well within cluster-autoscaler's `grpc_timeout`; launches and terminations happen on the
service's worker. Errors map to gRPC codes: an unknown group NOT_FOUND, a request beyond a group's
bounds or for an instance it does not own FAILED_PRECONDITION or INVALID_ARGUMENT, a stale listing
UNAVAILABLE (cluster-autoscaler then skips its loop rather than act on old sizes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from autoscaler.config import GPU_LABEL, INSTANCE_TYPE_LABEL, POOL_LABEL, PoolSpec, gpu_model
from autoscaler.groups import GroupError, NodeGroups, StaleError
from autoscaler.protos import externalgrpc_pb2 as pb
from autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
from autoscaler.template import node_price, pod_price, pod_requests, template_node_bytes

log = logging.getLogger("sophia.autoscaler")
T = TypeVar("T")
STATES = {
    "running": pb.InstanceStatus.instanceRunning,
    "creating": pb.InstanceStatus.instanceCreating,
    "deleting": pb.InstanceStatus.instanceDeleting,
}


def _hours(request: Any) -> float:
    """The priced period; an hour when the request names none (the price expander asks for now..now+1h)."""
    if not (request.HasField("startTimestamp") and request.HasField("endTimestamp")):
        return 1.0
    return float(max(request.endTimestamp.ToSeconds() - request.startTimestamp.ToSeconds(), 0)) / 3600.0


class CloudProvider(pb_grpc.CloudProviderServicer):
    def __init__(self, groups: NodeGroups) -> None:
        self.groups = groups
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def _call(self, name: str, context: grpc.ServicerContext, body: Callable[[], T]) -> T:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        try:
            return body()
        except StaleError as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except GroupError as error:
            code = grpc.StatusCode.NOT_FOUND if "not found" in str(error) else grpc.StatusCode.FAILED_PRECONDITION
            context.abort(code, str(error))
        raise AssertionError("unreachable")  # context.abort raises

    def _group(self, pool: PoolSpec) -> pb.NodeGroup:
        low, high = self.groups.bounds(pool.name)
        return pb.NodeGroup(
            id=pool.name,
            minSize=low,
            maxSize=high,
            debug=f"{pool.name}: {pool.instance_type}, Pulumi floor {pool.floor}, burst {low}-{high}",
        )

    # -- cloud provider ------------------------------------------------------------------------

    def NodeGroups(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupsResponse:  # noqa: N802
        return self._call(
            "NodeGroups",
            context,
            lambda: pb.NodeGroupsResponse(nodeGroups=[self._group(p) for p in self.groups.config.pools]),
        )

    def NodeGroupForNode(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupForNodeResponse:  # noqa: N802
        def answer() -> pb.NodeGroupForNodeResponse:
            node = request.node
            name = self.groups.group_for(node.providerID, dict(node.labels))
            if name is None:
                return pb.NodeGroupForNodeResponse(nodeGroup=pb.NodeGroup(id=""))
            return pb.NodeGroupForNodeResponse(nodeGroup=self._group(self.groups.pool(name)))

        return self._call("NodeGroupForNode", context, answer)

    def PricingNodePrice(self, request: Any, context: grpc.ServicerContext) -> pb.PricingNodePriceResponse:  # noqa: N802
        def answer() -> pb.PricingNodePriceResponse:
            labels = dict(request.node.labels)
            pool = self.groups.config.pool(labels.get(POOL_LABEL, ""))
            if pool is None:
                pool = next(
                    (p for p in self.groups.config.pools if p.instance_type == labels.get(INSTANCE_TYPE_LABEL)), None
                )
            if pool is None:
                raise GroupError(f"node {request.node.name!r} not found in any node group (no {POOL_LABEL} label)")
            return pb.PricingNodePriceResponse(price=node_price(pool, _hours(request)))

        return self._call("PricingNodePrice", context, answer)

    def PricingPodPrice(self, request: Any, context: grpc.ServicerContext) -> pb.PricingPodPriceResponse:  # noqa: N802
        def answer() -> pb.PricingPodPriceResponse:
            requests = pod_requests(request.pod_bytes)
            hours = _hours(request)
            return pb.PricingPodPriceResponse(price=pod_price(requests, self.groups.config.pools, hours))

        return self._call("PricingPodPrice", context, answer)

    def GPULabel(self, request: Any, context: grpc.ServicerContext) -> pb.GPULabelResponse:  # noqa: N802
        return pb.GPULabelResponse(label=GPU_LABEL)

    def GetAvailableGPUTypes(self, request: Any, context: grpc.ServicerContext) -> pb.GetAvailableGPUTypesResponse:  # noqa: N802
        response = pb.GetAvailableGPUTypesResponse()
        for pool in self.groups.config.pools:
            response.gpuTypes[gpu_model(pool.instance_type)].Clear()
        return response

    def Cleanup(self, request: Any, context: grpc.ServicerContext) -> pb.CleanupResponse:  # noqa: N802
        return pb.CleanupResponse()

    def Refresh(self, request: Any, context: grpc.ServicerContext) -> pb.RefreshResponse:  # noqa: N802
        def answer() -> pb.RefreshResponse:
            if not self.groups.fresh_enough():
                raise StaleError("no recent answer from the Lambda API; skipping this loop is safer than guessing")
            return pb.RefreshResponse()

        return self._call("Refresh", context, answer)

    # -- node groups -------------------------------------------------------------------------------

    def NodeGroupTargetSize(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupTargetSizeResponse:  # noqa: N802
        return self._call(
            "NodeGroupTargetSize",
            context,
            lambda: pb.NodeGroupTargetSizeResponse(targetSize=self.groups.target_size(request.id)),
        )

    def NodeGroupIncreaseSize(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupIncreaseSizeResponse:  # noqa: N802
        def answer() -> pb.NodeGroupIncreaseSizeResponse:
            self.groups.increase(request.id, request.delta)
            return pb.NodeGroupIncreaseSizeResponse()

        return self._call("NodeGroupIncreaseSize", context, answer)

    def NodeGroupDeleteNodes(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupDeleteNodesResponse:  # noqa: N802
        def answer() -> pb.NodeGroupDeleteNodesResponse:
            self.groups.delete_nodes(request.id, [(n.providerID or n.name, dict(n.labels)) for n in request.nodes])
            return pb.NodeGroupDeleteNodesResponse()

        return self._call("NodeGroupDeleteNodes", context, answer)

    def NodeGroupDecreaseTargetSize(  # noqa: N802
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.NodeGroupDecreaseTargetSizeResponse:
        def answer() -> pb.NodeGroupDecreaseTargetSizeResponse:
            self.groups.decrease(request.id, request.delta)
            return pb.NodeGroupDecreaseTargetSizeResponse()

        return self._call("NodeGroupDecreaseTargetSize", context, answer)

    def NodeGroupNodes(self, request: Any, context: grpc.ServicerContext) -> pb.NodeGroupNodesResponse:  # noqa: N802
        def answer() -> pb.NodeGroupNodesResponse:
            response = pb.NodeGroupNodesResponse()
            for node in self.groups.nodes(request.id):
                instance = response.instances.add(id=node.provider_id)
                instance.status.instanceState = STATES[node.state]
                if node.error_code:
                    instance.status.errorInfo.errorCode = node.error_code
                    instance.status.errorInfo.errorMessage = node.error_message
                    instance.status.errorInfo.instanceErrorClass = node.error_class
            return response

        return self._call("NodeGroupNodes", context, answer)

    def NodeGroupTemplateNodeInfo(  # noqa: N802
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.NodeGroupTemplateNodeInfoResponse:
        def answer() -> pb.NodeGroupTemplateNodeInfoResponse:
            pool = self.groups.pool(request.id)
            return pb.NodeGroupTemplateNodeInfoResponse(
                nodeBytes=template_node_bytes(pool, self.groups.storage_gib(pool.instance_type))
            )

        return self._call("NodeGroupTemplateNodeInfo", context, answer)

    def NodeGroupGetOptions(  # noqa: N802
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.NodeGroupAutoscalingOptionsResponse:
        """UNIMPLEMENTED, always: cluster-autoscaler then uses its flags for every option.

        Any answer replaces all of a group's options, and the protocol has no field for the node
        startup time: externalgrpc_node_group.go (1.36.1) builds the options without it, so an answer
        would set MaxNodeStartupTime to 0 and every registered node that is not ready yet would count
        as unready at once (clusterstate.go), making the autoscaler add more. codes.Unimplemented
        becomes cloudprovider.ErrNotImplemented, and node_group_config_processor.go falls back to the
        defaults (the flags the Deployment sets) for every option.
        """
        with self._lock:
            self.calls["NodeGroupGetOptions"] = self.calls.get("NodeGroupGetOptions", 0) + 1
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "per-group options are not used: the autoscaler's flags apply")
        raise AssertionError("unreachable")  # context.abort raises


@dataclass(frozen=True)
class TlsFiles:
    """mTLS as upstream's example service: our key and certificate, and the CA that signs clients'."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes


def build_server(groups: NodeGroups, address: str, tls: TlsFiles | None, workers: int = 8) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="externalgrpc"))
    pb_grpc.add_CloudProviderServicer_to_server(CloudProvider(groups), server)  # type: ignore[no-untyped-call]
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key_pem, tls.cert_pem)], root_certificates=tls.ca_pem, require_client_auth=True
        )
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return server, port


@contextmanager
def running(groups: NodeGroups, address: str, tls: TlsFiles | None = None) -> Iterator[int]:
    """Serve on `address` with the poller and worker running; yields the bound port; stops all on exit."""
    server, port = build_server(groups, address, tls)
    stop = threading.Event()
    threads = [
        threading.Thread(target=groups.run_poller, args=(stop,), name="lambda-poller", daemon=True),
        threading.Thread(target=groups.run_worker, args=(stop,), name="lambda-worker", daemon=True),
    ]
    if groups.reaper is not None:
        threads.append(threading.Thread(target=groups.reaper.run, args=(stop,), name="node-reaper", daemon=True))
    server.start()
    for thread in threads:
        thread.start()
    try:
        yield port
    finally:
        stop.set()
        groups.wake()
        server.stop(grace=None).wait()
        for thread in threads:
            thread.join(timeout=30)
