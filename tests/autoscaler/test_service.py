"""The node-group service through the call sequences cluster-autoscaler makes, over real gRPC, against
the Lambda emulator with faults: no leak, no duplicate, sizes that match the API, within the bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from autoscaler.config import GPU_LABEL, LAUNCH_KEY_LABEL, OWNER_TAG, POOL_LABEL, JoinSpec, OffHours
from autoscaler.protos import externalgrpc_pb2 as pb
from autoscaler.protos import k8s_core_v1_pb2 as core
from autoscaler.template import parse_quantity, pod_requests
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
from tests.autoscaler.join_script import agent_flags
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
        # Every instance is reported once, under the provider ID it registers with.
        assert sorted(n.id for n in service.ca.nodes("burst")) == sorted(f"lambda://{k}" for k in launch_keys(emulator))


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
        # The emulator shows the instance gone before the service's next listing does (a race on a
        # loaded machine): take that listing now, as the poller would.
        service.groups.poll()
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


def test_options_are_unimplemented_so_the_autoscaler_keeps_its_flags(emulator: LambdaEmulator) -> None:
    """Any answer would replace every option and zero MaxNodeStartupTime, which the protocol cannot carry
    (externalgrpc_node_group.go @1.36.1): UNIMPLEMENTED is what makes the autoscaler use its flags."""
    with serve(emulator, config(pool_spec())) as service:
        defaults = pb.NodeGroupAutoscalingOptions(
            scaleDownUnneededDuration=duration_pb2.Duration(seconds=600),
            MaxNodeProvisionDuration=duration_pb2.Duration(seconds=900),
        )
        for request in (
            pb.NodeGroupAutoscalingOptionsRequest(id="burst", defaults=defaults),
            pb.NodeGroupAutoscalingOptionsRequest(id="burst"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                service.ca.stub.NodeGroupGetOptions(request, timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED


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


def test_a_launch_that_fails_before_reaching_the_api_is_a_create_error_not_a_stuck_request(
    emulator: LambdaEmulator,
) -> None:
    """The ruleset lookup runs before the launch: its failure must reach cluster-autoscaler as a create
    error it backs off on (class Other), and the request must not stay 'creating' for ever."""
    names = {"us-west-1": ("sophia-test-burst-us-west-1",)}
    LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url).create_firewall_ruleset(
        "sophia-test-burst-us-west-1", "us-west-1", []
    )
    emulator.faults.errors.append(("GET", "/firewall-rulesets", 400, "global/invalid-parameters", 1))
    with serve(emulator, config(pool_spec(firewall_rulesets=names))) as service:
        ca = service.ca
        ca.increase("burst", 1)
        wait_for(lambda: any(n.status.HasField("errorInfo") for n in ca.nodes("burst")), "a create error")
        [failed] = ca.nodes("burst")
        assert failed.status.instanceState == pb.InstanceStatus.instanceCreating
        assert failed.status.errorInfo.instanceErrorClass == 99  # OtherErrorClass
        assert failed.status.errorInfo.errorCode == "invalid-parameters"
        assert emulator.launches_accepted == 0
        ca.delete("burst", [failed.id], fake=True)
        assert ca.target("burst") == 0
        ca.increase("burst", 1)  # the fault was one answer: the next request launches
        wait_for(lambda: settled(service, emulator, "burst") and len(ours(emulator)) == 1, "a launch")


TERMINATE = "POST /instance-operations/terminate"


def test_a_termination_the_api_keeps_refusing_does_not_hold_launches_back(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec(max=6))) as service:
        ca = service.ca
        ca.increase("burst", 1)
        wait_for(lambda: len(running_ids(ca.nodes("burst"))) == 1, "one running instance")
        emulator.faults.errors.append(("POST", "/instance-operations/terminate", 503, "global/internal-error", 10**6))
        [victim] = running_ids(ca.nodes("burst"))
        ca.delete("burst", [victim])
        wait_for(lambda: emulator.calls[TERMINATE] > 0, "a first termination attempt")
        ca.increase("burst", 2)
        # Before: the worker took the failing termination first every time, and nothing launched.
        wait_for(lambda: len(ours(emulator)) == 3, "two launches while the termination keeps failing")
        assert emulator.launches_accepted == 3
        [(instance_id, termination)] = service.groups._to_terminate.items()
        assert emulator.status_of(emulator.instances[instance_id]) == "active"
        assert termination.attempts >= 1
        assert termination.not_before > 0  # each refusal sets a time before which it is not tried again
        assert ca.target("burst") == 2  # still deleted as far as the autoscaler is concerned
        emulator.faults.errors.clear()
        wait_for(lambda: len(ours(emulator)) == 2, "the termination once the API takes it")
        assert victim not in running_ids(ca.nodes("burst"))


def test_a_termination_refused_for_good_is_reported_on_the_node_and_logged(
    emulator: LambdaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        ca.increase("burst", 1)
        wait_for(lambda: len(running_ids(ca.nodes("burst"))) == 1, "one running instance")
        emulator.faults.errors.append(("POST", "/instance-operations/terminate", 403, "global/account-inactive", 1))
        [victim] = running_ids(ca.nodes("burst"))
        ca.delete("burst", [victim])
        assert ca.target("burst") == 0
        # Before: the refusal was dropped without a word and the instance came back as a healthy node.
        wait_for(lambda: any(n.status.HasField("errorInfo") for n in ca.nodes("burst")), "the refusal on the node")
        [node] = ca.nodes("burst")
        assert node.id == victim
        assert node.status.instanceState == pb.InstanceStatus.instanceRunning
        assert node.status.errorInfo.errorCode == "termination-failed/account-inactive"
        assert node.status.errorInfo.instanceErrorClass == 99
        assert ca.target("burst") == 1  # it still runs and bills: counted again
        assert service.groups.counters.termination_failures == 1
        assert any(r.levelname == "ERROR" and "still runs and bills" in r.getMessage() for r in caplog.records)
        ca.delete("burst", [victim])  # the autoscaler asks again: tried again
        wait_for(lambda: ours(emulator) == [], "terminated when asked again")


def test_delete_nodes_again_for_a_node_already_leaving_is_not_an_error(emulator: LambdaEmulator) -> None:
    with serve(emulator, config(pool_spec())) as service:
        ca = service.ca
        ca.increase("burst", 2)
        wait_for(lambda: len(running_ids(ca.nodes("burst"))) == 2, "two running instances")
        victim = running_ids(ca.nodes("burst"))[0]
        ca.delete("burst", [victim])
        ca.delete("burst", [victim])  # a retried call: before, FAILED_PRECONDITION (not the group's)
        assert ca.target("burst") == 1
        wait_for(lambda: len(ours(emulator)) == 1, "one terminated")
        service.groups.poll()
        ca.delete("burst", [victim])  # terminating or gone in the listing: still done
        assert ca.target("burst") == 1
        assert emulator.calls[TERMINATE] == 1


def test_a_failed_wake_up_backs_off_doubling_up_to_a_cap(emulator: LambdaEmulator) -> None:
    """The schedule's own launches are outside cluster-autoscaler's backoff: without one of its own, the
    service relaunched as soon as the autoscaler deleted the failed request, every poll."""
    for region in ("us-west-1", "us-west-2"):
        emulator.capacity[(region, "gpu_1x_a10")] = 0
    schedule = OffHours("America/Los_Angeles", "20:00", "07:00", weekends_off=True)
    clock = Clock(datetime(2026, 11, 30, 15, 30, tzinfo=UTC))  # Monday 07:30 PST: working hours
    no_capacity = (LAUNCH, 400, "instance-operations/launch/insufficient-capacity")

    def tries() -> int:
        return emulator.answers[no_capacity] // 2  # one launch tries both regions

    with serve(emulator, config(pool_spec("dev", min=1, floor=0, max=3, off_hours=schedule)), clock) as service:
        ca, groups = service.ca, service.groups

        def fail_and_delete(expected_tries: int) -> None:
            wait_for(lambda: any(n.status.HasField("errorInfo") for n in ca.nodes("dev")), "the failed wake-up")
            assert tries() == expected_tries
            ca.delete("dev", [n.id for n in ca.nodes("dev")], fake=True)  # as cluster-autoscaler does

        def nothing_asked_for() -> None:
            groups.poll()
            groups.poll()
            assert ca.target("dev") == 0
            assert tries() == tries_before

        fail_and_delete(1)
        tries_before = 1
        nothing_asked_for()  # before: a new wake-up on the next poll
        clock.at += timedelta(minutes=5, seconds=1)  # the first delay: 5 min
        groups.poll()
        fail_and_delete(2)
        tries_before = 2
        clock.at += timedelta(minutes=5, seconds=1)
        nothing_asked_for()  # the second delay is 10 min
        clock.at += timedelta(minutes=5)
        groups.poll()
        fail_and_delete(3)
        assert groups._wake_backoff["dev"][0] == 3
        for count in (4, 5, 6):
            clock.at += timedelta(minutes=30, seconds=1)  # capped at 30 min
            groups.poll()
            fail_and_delete(count)
        assert groups._wake_backoff["dev"][1] - clock.at == timedelta(minutes=30)
        emulator.capacity[("us-west-1", "gpu_1x_a10")] = None  # capacity is back
        clock.at += timedelta(minutes=30, seconds=1)
        groups.poll()
        wait_for(lambda: len(ours(emulator, "dev")) == 1, "the wake-up once there is capacity")
        wait_for(lambda: "dev" not in groups._wake_backoff, "the backoff reset by a successful wake-up")


KUBELET_SETS = frozenset({"kubernetes.io/os", "kubernetes.io/arch"})  # from the machine itself


def test_a_burst_node_registers_with_the_templates_labels_and_the_reported_provider_id(
    emulator: LambdaEmulator,
) -> None:
    """What the instance really boots with (the user data the API received) against what the template
    tells the autoscaler: the GPU label (GPULabel's), pool and instance type; the provider ID the
    service reports for it."""
    joined = replace(
        config(pool_spec(instance_type="gpu_1x_gh200")), join=JoinSpec("https://k8s.test:6443", "v1.31.4+k3s1")
    )
    with serve(emulator, joined) as service:
        ca = service.ca
        template = core.Node()
        template.ParseFromString(ca.template("burst"))
        ca.increase("burst", 1)
        wait_for(lambda: len(ours(emulator)) == 1, "one launch")
        [instance] = ours(emulator)
        key = {t["key"]: t["value"] for t in instance.tags}[LAUNCH_KEY_TAG]
        assert instance.user_data is not None
        flags = agent_flags(instance.user_data)
        wanted = {k: v for k, v in template.metadata.labels.items() if k not in KUBELET_SETS}
        assert wanted.items() <= flags.labels.items()
        assert flags.labels[GPU_LABEL] == "gh200" == template.metadata.labels[GPU_LABEL]
        assert flags.labels["node.kubernetes.io/instance-type"] == "gpu_1x_gh200"
        assert flags.labels[LAUNCH_KEY_LABEL] == key
        assert flags.kubelet_args == [f"provider-id=lambda://{key}"]
        assert [n.id for n in ca.nodes("burst")] == [f"lambda://{key}"]
        assert flags.taints == ["sophia.ai/pool=burst:NoSchedule"]


def test_the_template_node_offers_what_a_real_node_can_give(emulator: LambdaEmulator) -> None:
    """Allocatable below capacity as the kubelet keeps it (k3s: 5% of the disk; memory under what the
    kernel leaves), and ephemeral storage from the API's instance type, so a pod that requests disk
    can start a pool from zero."""
    with serve(emulator, config(pool_spec(instance_type="gpu_1x_a10", min=0, floor=0))) as service:
        node = core.Node()
        node.ParseFromString(service.ca.template("burst"))
    capacity = {k: parse_quantity(v.string) for k, v in node.status.capacity.items()}
    allocatable = {k: parse_quantity(v.string) for k, v in node.status.allocatable.items()}
    disk = 512 * 2**30  # the emulator's GET /instance-types: storage_gib 512 for a 1-GPU type
    assert capacity["ephemeral-storage"] == disk
    assert allocatable["ephemeral-storage"] == disk * 95 // 100 // 1024 * 1024  # in whole Ki, rounded down
    assert 190 * 2**30 < capacity["memory"] < 200 * 2**30  # the catalog's 200 GiB less the kernel's share
    assert allocatable["memory"] == capacity["memory"] - 100 * 2**20
    assert allocatable["cpu"] == capacity["cpu"] == 30
    assert allocatable["nvidia.com/gpu"] == 1
    assert "topology.kubernetes.io/region" not in node.metadata.labels
    pod = core.Pod()
    pod.spec.containers.add(name="cache").resources.requests["ephemeral-storage"].string = "100Gi"
    requests = pod_requests(pod.SerializeToString())
    assert all(requests[name] <= allocatable.get(name, 0) for name in requests)  # it fits: scale from zero
