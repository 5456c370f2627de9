"""The Nodes of terminated burst instances are deleted through the Kubernetes API (k3s's cloud provider
never does it), and no other Node ever is: against a small Kubernetes API over verified HTTPS on
127.0.0.1, with the service over real gRPC and the Lambda emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoscaler.config import LAUNCH_KEY_LABEL, POOL_LABEL, OffHours
from autoscaler.kube import KubeApi, KubeApiError
from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.launcher import LAUNCH_KEY_TAG
from tests.autoscaler.fake_kube import TOKEN, FakeKube
from tests.autoscaler.harness import Clock, config, ours, pool_spec, serve, wait_for
from tests.autoscaler.pki import issue, make_ca
from tests.providers.lambda_cloud.emulator import LambdaEmulator

PULUMI_KEY = "f" * 24
GONE_KEY = "0123456789abcdef01234567"  # an instance terminated while the service was not running


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kube-pki")
    make_ca(folder, "kube-ca")
    make_ca(folder, "other-ca")
    issue(folder, "apiserver", "kube-ca", "IP:127.0.0.1", "serverAuth")
    (folder / "token").write_text(TOKEN + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def fake(pki: Path) -> Iterator[FakeKube]:
    with FakeKube(pki / "apiserver.crt", pki / "apiserver.key", page_size=2) as kube:
        yield kube


def kube_api(fake: FakeKube, pki: Path, ca: str = "kube-ca") -> KubeApi:
    return KubeApi(fake.url, pki / "token", pki / f"{ca}.crt")


def register(fake: FakeKube, emulator: LambdaEmulator, pool: str) -> dict[str, str]:
    """A Node per burst instance of the pool, as its k3s agent registers it: provider ID -> name."""
    registered = {}
    for instance in ours(emulator, pool):
        key = {t["key"]: t["value"] for t in instance.tags}[LAUNCH_KEY_TAG]
        name = f"{pool}-{key[:8]}"
        fake.add_node(name, f"lambda://{key}", {POOL_LABEL: pool, LAUNCH_KEY_LABEL: key})
        registered[f"lambda://{key}"] = name
    return registered


def test_the_client_verifies_the_api_server_and_sends_its_token(fake: FakeKube, pki: Path, tmp_path: Path) -> None:
    fake.add_node("a", "k3s://a")
    assert [n["metadata"]["name"] for n in kube_api(fake, pki).list_nodes()] == ["a"]
    with pytest.raises(KubeApiError, match="SSLError"):
        kube_api(fake, pki, ca="other-ca").list_nodes()
    (tmp_path / "token").write_text("someone-else", encoding="utf-8")
    with pytest.raises(KubeApiError, match="401"):
        KubeApi(fake.url, tmp_path / "token", pki / "kube-ca.crt").list_nodes()


def test_only_the_nodes_of_terminated_burst_instances_are_deleted(
    emulator: LambdaEmulator, fake: FakeKube, pki: Path
) -> None:
    # Pulumi's floor instance: its node has k3s's own provider ID; another node names its launch key.
    LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url).launch_instance(
        {
            "region_name": "us-west-1",
            "instance_type_name": "gpu_1x_a10",
            "ssh_key_names": ["sophia-test-key"],
            "name": "sophia-test-burst-0",
            "tags": [{"key": "pool", "value": "burst"}, {"key": LAUNCH_KEY_TAG, "value": PULUMI_KEY}],
        }
    )
    kept = {
        fake.add_node("sophia-test-burst-0", "k3s://sophia-test-burst-0", {POOL_LABEL: "burst"})["metadata"]["name"],
        fake.add_node("pulumi-keyed", f"lambda://{PULUMI_KEY}")["metadata"]["name"],  # its instance lives
        fake.add_node("ip-10-1-2-3", "aws:///us-west-2a/i-0abc")["metadata"]["name"],  # not ours at all
        fake.add_node("lambda-ish", "lambda://not-a-launch-key")["metadata"]["name"],
        fake.add_node("no-provider-id", "")["metadata"]["name"],
    }
    fake.add_node("left-behind", f"lambda://{GONE_KEY}")
    with serve(emulator, config(pool_spec(max=5)), kube=kube_api(fake, pki)) as service:
        ca = service.ca
        # At start: the node of an instance that went while the service was down.
        wait_for(lambda: "left-behind" not in fake.names(), "the left-behind node deleted at start")
        ca.increase("burst", 2)
        wait_for(lambda: len(ours(emulator)) == 2, "two burst instances")
        nodes = register(fake, emulator, "burst")
        victim = sorted(nodes)[0]
        ca.delete("burst", [victim])
        wait_for(lambda: nodes[victim] not in fake.names(), "the terminated instance's node deleted")
        assert fake.names() == kept | {nodes[p] for p in nodes if p != victim}
        assert [n["spec"]["providerID"] for n in fake.deleted] == [f"lambda://{GONE_KEY}", victim]
        assert service.groups.reaper is not None
        service.groups.reaper.request()  # another pass: nothing else goes
        service.groups.poll()
        wait_for(lambda: fake.requests.count("GET /api/v1/nodes") >= 8, "more passes")
        assert len(fake.deleted) == 2
        assert fake.names() == kept | {nodes[p] for p in nodes if p != victim}


def test_hibernation_deletes_the_nodes_of_the_instances_it_terminates(
    emulator: LambdaEmulator, fake: FakeKube, pki: Path
) -> None:
    """Hibernation terminates without cluster-autoscaler (no ToBeDeleted taint): the service alone
    knows those nodes are gone."""
    schedule = OffHours("America/Los_Angeles", "20:00", "07:00", weekends_off=True)
    clock = Clock(datetime(2026, 11, 30, 15, 30, tzinfo=UTC))  # Monday 07:30 PST
    pool = pool_spec("dev", min=2, floor=0, max=3, off_hours=schedule)
    with serve(emulator, config(pool), clock, kube=kube_api(fake, pki)) as service:
        wait_for(lambda: len(ours(emulator, "dev")) == 2, "woken to min 2")
        nodes = register(fake, emulator, "dev")
        clock.at = datetime(2026, 12, 1, 4, 1, tzinfo=UTC)  # Monday 20:01 PST: off
        wait_for(lambda: fake.names() == set(), "both nodes deleted after hibernation")
        assert sorted(n["spec"]["providerID"] for n in fake.deleted) == sorted(nodes)
        assert ours(emulator, "dev") == []
        assert service.groups.counters.hibernated == 2
