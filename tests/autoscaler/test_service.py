"""The node-group service through the call sequences cluster-autoscaler makes, over real gRPC, against
the Lambda emulator with faults: no leak, no duplicate, sizes that match the API, within the bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from autoscaler.config import LAUNCH_KEY_LABEL, OWNER_TAG, POOL_LABEL, OffHours
from autoscaler.protos import externalgrpc_pb2 as pb
from autoscaler.protos import k8s_core_v1_pb2 as core
from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.fleet import FleetProvider
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from providers.lambda_cloud.provider import InstanceProvider
from tests.autoscaler.harness import (
    CLUSTER,
    Clock,
    config,
    launch_keys,
    ours,
    pool_spec,
    serve,
    settled,
    wait_for,
)
from tests.providers.lambda_cloud.conftest import fleet_props, instance_props
from tests.providers.lambda_cloud.emulator import LambdaEmulator

LAUNCH = "POST /instance-operations/launch"
LIST = "GET /instances"


def running_ids(nodes: list[pb.Instance]) -> list[str]:
    return sorted(n.id for n in nodes if n.status.instanceState == pb.InstanceStatus.instanceRunning)


def test_scale_up_launches_each_requested_instance_once(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec(max=5, floor=1, min=1))) as service:
        ca = service.ca
        assert ca.loop() == {"burst": (0, 4, 0)}  # the group holds burst only: max 5 less Pulumi's floor of 1
        ca.increase("burst", 3)
        assert ca.target("burst") == 3  # at once, before any launch
        creating = ca.nodes("burst")
        assert [n.status.instanceState for n in creating] == [pb.InstanceStatus.instanceCreating] * 3
        wait_for(lambda: len(running_ids(ca.nodes("burst"))) == 3, "three running instances")
        assert emulator.launches_accepted == 3
        assert sorted(f"lambda://{k}" for k in launch_keys(emulator)) == running_ids(ca.nodes("burst"))
        # The provider IDs do not change from request to registration: CA tracks them throughout.
        assert {n.id for n in creating} == {n.id for n in ca.nodes("burst")}
        for node_id in running_ids(ca.nodes("burst")):
            assert ca.group_for(node_id) == "burst"
        assert ca.loop() == {"burst": (0, 4, 3)}


def test_never_above_max(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec(max=3, floor=1, min=1))) as service:
        service.ca.increase("burst", 2)
        with pytest.raises(grpc.RpcError) as refused:
            service.ca.increase("burst", 1)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "above its max 2" in str(refused.value.details())
        wait_for(lambda: settled(service, emulator, "burst"), "two launches")
        assert len(ours(emulator)) == 2


def test_scale_down_terminates_exactly_the_nodes_named(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        ca.increase("burst", 3)
        wait_for(lambda: len(running_ids(ca.nodes("burst"))) == 3, "three running")
        victims = running_ids(ca.nodes("burst"))[:2]
        ca.delete("burst", victims)
        assert ca.target("burst") == 1  # at once
        wait_for(lambda: len(ours(emulator)) == 1, "two terminated")
        assert [f"lambda://{k}" for k in launch_keys(emulator)] == running_ids(ca.nodes("burst"))
        assert set(victims).isdisjoint(running_ids(ca.nodes("burst")))
        wait_for(lambda: settled(service, emulator, "burst"), "settled")


def test_decrease_target_drops_only_unlaunched_requests(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        ca.increase("burst", 1)
        wait_for(lambda: len(ours(emulator)) == 1, "one launched")
        wait_for(lambda: settled(service, emulator, "burst"), "settled")
        with pytest.raises(grpc.RpcError) as refused:
            ca.decrease("burst", -1)
        assert "would delete launched ones" in str(refused.value.details())
        assert len(ours(emulator)) == 1


def test_pulumi_instances_and_the_autoscalers_never_meet(emulator: LambdaEmulator) -> None:
    """Pulumi's floor instances carry a launch key but no owner tag: not in any group, never deleted."""
    client = LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url)
    pulumi_key = "f" * 24
    pulumi_id = client.launch_instance(
        {
            "region_name": "us-west-1",
            "instance_type_name": "gpu_1x_a10",
            "ssh_key_names": ["sophia-test-key"],
            "name": "sophia-test-burst-0",
            "tags": [{"key": "pool", "value": "burst"}, {"key": LAUNCH_KEY_TAG, "value": pulumi_key}],
        }
    )
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        assert ca.target("burst") == 0
        assert ca.nodes("burst") == []
        # k3s's own provider ID, ours with Pulumi's launch key, or its instance id: not the group's.
        assert ca.group_for("k3s://sophia-test-burst-0", {POOL_LABEL: "burst"}) == ""
        assert ca.group_for(f"lambda://{pulumi_key}") == ""
        assert ca.group_for(f"lambda://{pulumi_id}") == ""
        with pytest.raises(grpc.RpcError) as refused:
            ca.delete("burst", [f"lambda://{pulumi_id}"])
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        ca.increase("burst", 1)
        wait_for(lambda: settled(service, emulator, "burst"), "one burst instance")
        assert emulator.status_of(emulator.instances[pulumi_id]) in ("booting", "active")
        assert ca.target("burst") == 1


def test_node_group_for_node_by_instance_id_or_launch_key_label(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        service.ca.increase("burst", 1)
        wait_for(lambda: len(ours(emulator)) == 1, "one launched")
        wait_for(lambda: settled(service, emulator, "burst"), "listed")
        instance = ours(emulator)[0]
        key = {t["key"]: t["value"] for t in instance.tags}[LAUNCH_KEY_TAG]
        assert service.ca.group_for(f"lambda://{instance.id}") == "burst"
        assert service.ca.group_for("", {LAUNCH_KEY_LABEL: key}) == "burst"
        assert service.ca.group_for("lambda://" + "0" * 32) == ""


def test_rate_limits_server_errors_and_lost_answers_leave_no_leak_and_no_duplicate(emulator: LambdaEmulator) -> None:
    emulator.faults.errors += [("POST", "/instance-operations/launch", 429, "global/rate-limited", 2)]
    emulator.faults.errors += [("GET", "/instances", 503, "global/internal-error", 2)]
    # A launch that happened but whose answer was lost (dropped connection, then a 502 after the fact).
    emulator.faults.lost_answers += [("POST", "/instance-operations/launch", None, "")]
    emulator.faults.lost_answers += [("POST", "/instance-operations/launch", 502, "global/internal-error")]
    with serve(emulator, config(pool_spec(max=6))) as service:
        service.ca.increase("burst", 4)
        wait_for(lambda: settled(service, emulator, "burst") and len(ours(emulator)) == 4, "four instances")
        assert emulator.launches_accepted == 4
        assert len(set(launch_keys(emulator))) == 4
        assert emulator.answers[(LAUNCH, 429, "global/rate-limited")] >= 2
        assert len(running_ids(service.ca.nodes("burst"))) + len(service.ca.nodes("burst")) >= 4


def test_insufficient_capacity_fails_over_then_reports_a_create_error(emulator: LambdaEmulator) -> None:
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    emulator.capacity[("us-west-2", "gpu_1x_a10")] = 1
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        ca.increase("burst", 2)
        wait_for(
            lambda: any(n.status.HasField("errorInfo") for n in ca.nodes("burst")), "a create error for the second"
        )
        assert [i.region for i in ours(emulator)] == ["us-west-2"]
        failed = [n for n in ca.nodes("burst") if n.status.HasField("errorInfo")]
        assert len(failed) == 1
        assert failed[0].status.instanceState == pb.InstanceStatus.instanceCreating
        assert failed[0].status.errorInfo.instanceErrorClass == 1  # OutOfResourcesErrorClass: CA backs off
        assert failed[0].status.errorInfo.errorCode == "insufficient-capacity"
        assert ca.target("burst") == 2
        # CA deletes the fake node of a failed create: the request goes, nothing is terminated.
        ca.delete("burst", [failed[0].id], fake=True)
        assert ca.target("burst") == 1
        wait_for(lambda: settled(service, emulator, "burst"), "settled")
        assert len(ours(emulator)) == 1


def test_scale_from_zero_uses_the_template_and_respects_the_flag(emulator: LambdaEmulator) -> None:
    pools = (pool_spec("zero", min=0, floor=0, max=2), pool_spec("never", min=0, floor=0, max=2, scale_from_zero=False))
    with serve(emulator, config(*pools)) as service:
        ca = service.ca
        assert ca.loop() == {"zero": (0, 2, 0), "never": (0, 0, 0)}
        node = core.Node()
        node.ParseFromString(ca.template("zero"))
        assert node.metadata.labels[POOL_LABEL] == "zero"
        assert node.status.allocatable["nvidia.com/gpu"].string == "1"
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("sophia.ai/pool", "zero", "NoSchedule")]
        ca.increase("zero", 1)
        with pytest.raises(grpc.RpcError):
            ca.increase("never", 1)
        wait_for(lambda: settled(service, emulator, "zero") and len(ours(emulator, "zero")) == 1, "woken from zero")
        assert ours(emulator, "never") == []


def test_restart_rebuilds_every_size_from_the_api(emulator: LambdaEmulator) -> None:
    pools = (pool_spec("a", max=5), pool_spec("b", max=5))
    with serve(emulator, config(*pools)) as first:
        first.ca.increase("a", 2)
        first.ca.increase("b", 1)
        wait_for(lambda: settled(first, emulator, "a") and settled(first, emulator, "b"), "three launched")
        before = {g: sorted(n.id for n in first.ca.nodes(g)) for g in ("a", "b")}
    with serve(emulator, config(*pools)) as second:
        assert second.ca.loop() == {"a": (0, 4, 2), "b": (0, 4, 1)}
        assert {g: sorted(n.id for n in second.ca.nodes(g)) for g in ("a", "b")} == before
        second.ca.delete("a", before["a"][:1])
        wait_for(lambda: len(ours(emulator, "a")) == 1, "a shrunk after the restart")
    assert emulator.launches_accepted == 3


def test_off_hours_hibernate_and_wake(emulator: LambdaEmulator) -> None:
    schedule = OffHours("America/Los_Angeles", "20:00", "07:00", weekends_off=True)
    clock = Clock(datetime(2026, 11, 30, 15, 30, tzinfo=UTC))  # Monday 07:30 PST: working hours
    pool = pool_spec("dev", min=1, floor=0, max=3, off_hours=schedule)
    with serve(emulator, config(pool), clock) as service:
        ca = service.ca
        wait_for(lambda: len(ours(emulator, "dev")) == 1, "woken to min 1")
        assert ca.loop()["dev"] == (1, 3, 1)
        with pytest.raises(grpc.RpcError) as refused:
            ca.delete("dev", [n.id for n in ca.nodes("dev")])
        assert "below its min 1" in str(refused.value.details())
        clock.at = datetime(2026, 12, 1, 4, 1, tzinfo=UTC)  # Monday 20:01 PST: off
        wait_for(lambda: ours(emulator, "dev") == [], "hibernated")
        assert ca.loop()["dev"] == (0, 3, 0)
        ca.increase("dev", 1)  # a pod at night wakes one (scaleFromZero); the sweep leaves it to CA
        wait_for(lambda: settled(service, emulator, "dev") and len(ours(emulator, "dev")) == 1, "night instance")
        night = ours(emulator, "dev")[0].id
        service.groups.poll()
        assert [i.id for i in ours(emulator, "dev")] == [night]
    assert {t["key"]: t["value"] for t in emulator.instances[night].tags}[OWNER_TAG] == CLUSTER


def test_a_stale_listing_stops_the_autoscaler_loop(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        assert service.groups.fresh_enough()
        service.groups.clock = lambda: 1e12  # as if the API had not answered for ages
        with pytest.raises(grpc.RpcError) as refused:
            service.ca.loop()
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_options_echo_the_defaults_with_the_pools_delays(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec(scale_down_delay_minutes=35))) as service:
        defaults = pb.NodeGroupAutoscalingOptions(
            scaleDownUtilizationThreshold=0.5,
            scaleDownGpuUtilizationThreshold=0.6,
            scaleDownUnneededDuration=duration_pb2.Duration(seconds=600),
            scaleDownUnreadyDuration=duration_pb2.Duration(seconds=1200),
            MaxNodeProvisionDuration=duration_pb2.Duration(seconds=900),
        )
        request = pb.NodeGroupAutoscalingOptionsRequest(id="burst", defaults=defaults)
        options = service.ca.stub.NodeGroupGetOptions(request, timeout=5).nodeGroupAutoscalingOptions
        assert options.scaleDownUnneededDuration.seconds == 35 * 60
        assert options.MaxNodeProvisionDuration.seconds == 20 * 60  # 5 min queue + the 1-GPU 15 min boot allowance
        assert options.scaleDownUtilizationThreshold == 0.5
        assert options.scaleDownGpuUtilizationThreshold == 0.6
        assert options.scaleDownUnreadyDuration.seconds == 1200
        empty = service.ca.stub.NodeGroupGetOptions(pb.NodeGroupAutoscalingOptionsRequest(id="burst"), timeout=5)
        assert not empty.HasField("nodeGroupAutoscalingOptions")


def test_prices_for_the_price_expander(emulator: LambdaEmulator) -> None:
    start, end = timestamp_pb2.Timestamp(seconds=0), timestamp_pb2.Timestamp(seconds=7200)
    with serve(emulator, config(pool_spec(), replace(pool_spec("big"), instance_type="gpu_1x_a100"))) as service:
        stub = service.ca.stub
        node = pb.ExternalGrpcNode(name="template-node-for-big-1", labels={POOL_LABEL: "big"})
        price = stub.PricingNodePrice(pb.PricingNodePriceRequest(node=node, startTimestamp=start, endTimestamp=end))
        assert price.price == pytest.approx(2 * 1.29)
        pod = core.Pod()
        container = pod.spec.containers.add(name="infer")
        container.resources.requests["nvidia.com/gpu"].string = "1"
        container.resources.requests["cpu"].string = "500m"
        request = pb.PricingPodPriceRequest(pod_bytes=pod.SerializeToString(), startTimestamp=start, endTimestamp=end)
        assert stub.PricingPodPrice(request).price == pytest.approx(2 * 0.75)  # the cheaper pool's whole GPU
        small = core.Pod()
        small.spec.containers.add(name="stabilization").resources.requests["cpu"].string = "500m"
        request = pb.PricingPodPriceRequest(pod_bytes=small.SerializeToString(), startTimestamp=start, endTimestamp=end)
        assert 0 < stub.PricingPodPrice(request).price < 0.1


def test_rulesets_are_found_by_name_and_decide_the_regions(emulator: LambdaEmulator) -> None:
    """The pools document names the rulesets (known at preview); a region without one is never used."""
    client = LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url)
    rule = [{"protocol": "tcp", "port_range": [22, 22], "source_network": "203.0.113.0/24", "description": "ssh"}]
    ruleset = client.create_firewall_ruleset("sophia-test-burst-us-west-2", "us-west-2", rule)
    names = {"us-west-1": ("sophia-test-burst-us-west-1",), "us-west-2": ("sophia-test-burst-us-west-2",)}
    with serve(emulator, config(pool_spec(firewall_rulesets=names))) as service:
        service.ca.increase("burst", 1)
        wait_for(lambda: settled(service, emulator, "burst") and len(ours(emulator)) == 1, "one launched")
    [instance] = ours(emulator)
    assert instance.region == "us-west-2"
    assert instance.firewall_ruleset_ids == [ruleset["id"]]


def test_while_the_lambda_api_is_down_the_autoscaler_waits_and_nothing_is_launched(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        emulator.faults.errors.append(("GET", "/instances", 503, "global/internal-error", 10**6))
        wait_for(lambda: not service.groups.fresh_enough(), "the listing to go stale")
        for call in (ca.loop, lambda: ca.increase("burst", 1), lambda: ca.target("burst")):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        emulator.faults.errors.clear()
        wait_for(service.groups.fresh_enough, "a fresh listing once the API is back")
        assert ca.loop() == {"burst": (0, 3, 0)}
        assert emulator.launches_accepted == 0


def test_pulumis_fleet_and_instance_records_leave_burst_instances_alone(
    emulator: LambdaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other direction: Pulumi's fleet adopts and its records terminate only their own launch keys."""
    monkeypatch.setenv("LAMBDA_API_KEY", emulator.api_key)
    monkeypatch.setenv("LAMBDA_API_URL", emulator.base_url)
    with serve(emulator, config(pool_spec())) as service:
        service.ca.increase("burst", 1)
        wait_for(lambda: settled(service, emulator, "burst") and len(ours(emulator)) == 1, "one burst instance")
        [burst] = ours(emulator)
        record = instance_props("sophia-test-burst-0", tags={"pool": "burst"}, ssh_key_names=["sophia-test-key"])
        FleetProvider().create(fleet_props([record]))
        InstanceProvider().delete(record["launch_key"], record)
        assert [i.id for i in ours(emulator)] == [burst.id]
        assert emulator.launches_accepted == 2  # the fleet launched its own, adopted nothing
        assert service.ca.target("burst") == 1
