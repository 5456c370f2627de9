"""Resize the Redis Cluster 3 -> 4 -> 3 masters with the cluster Job's own script, on real servers.

Pods on their own loopback addresses, started by the pods' start-up script. Growing: two empty
pods join (a master and its replica) and slots move onto the new master. Shrinking: the two
highest ordinals leave although they form a whole shard (master and replica): its slots move to
the kept masters first, and a node is deleted only once it holds no slot (the script checks the
cluster's view before each deletion, and `del-node` refuses a node with slots). An
application writes throughout; no key is lost. Then a pod whose volume was replaced (empty data
directory, same name) is joined again by the same script.
"""

from __future__ import annotations

import threading
from functools import partial

from tests.realservers.redis_pods import PodSet, answers, healthy, pod_set, wait_until

__all__ = ["pod_set"]
KEYS = 3000


def masters_with_slots(pods: PodSet, ordinal: int = 0) -> dict[str, int]:
    """Node host name -> slot count, for every master holding slots."""
    result = {}
    for fields in pods.nodes(ordinal):
        if "master" in fields[2] and len(fields) > 8:
            host = fields[1].split(",")[1]
            slots = 0
            for part in fields[8:]:
                if part.startswith("["):
                    continue
                low, _, high = part.partition("-")
                slots += int(high or low) - int(low) + 1
            result[host] = slots
    return result


def roles(pods: PodSet, ordinal: int = 0) -> dict[str, str]:
    return {f[1].split(",")[1]: ("master" if "master" in f[2] else "replica") for f in pods.nodes(ordinal)}


class Writer:
    """An application writing keys while the cluster is resized; every acknowledged key must survive."""

    def __init__(self, pods: PodSet) -> None:
        self.pods = pods
        self.written: dict[str, str] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        client = self.pods.cluster_client()
        index = 0
        while not self._stop.is_set():
            key = f"live:{index}"
            try:
                client.set(key, str(index))
                self.written[key] = str(index)
            except Exception:  # noqa: BLE001 - counted: a resize may redirect, never lose
                self.errors += 1
            index += 1
        client.close()

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def all_keys_present(pods: PodSet, expected: dict[str, str]) -> list[str]:
    client = pods.cluster_client()
    try:
        return [k for k, v in expected.items() if client.get(k) != v.encode()]
    finally:
        client.close()


def test_resize_three_to_four_to_three_masters_and_rejoin_a_replaced_pod(pod_set: PodSet) -> None:
    pods = pod_set
    for ordinal in range(6):
        pods.start(ordinal)
    for ordinal in range(6):
        wait_until(partial(answers, pods, ordinal), 20, f"pod {ordinal}")
    result = pods.cluster_script(3, 1, list(range(6)))
    assert result.returncode == 0, result.stderr
    client = pods.cluster_client()
    expected = {f"key:{i}": str(i) for i in range(KEYS)}
    for key, value in expected.items():
        client.set(key, value)
    client.close()

    # 3 -> 4 masters: the StatefulSet runs 8 pods, then the Job joins the two new ones.
    with Writer(pods) as writer:
        for ordinal in (6, 7):
            pods.start(ordinal)
        for ordinal in (6, 7):
            wait_until(partial(answers, pods, ordinal), 20, f"pod {ordinal}")
        grown = pods.cluster_script(4, 1, list(range(8)))
    assert grown.returncode == 0, grown.stderr + grown.stdout[-3000:]
    print(f"\n{grown.stderr}(writes refused while growing: {writer.errors})")
    slots = masters_with_slots(pods)
    assert len(slots) == 4, slots
    assert sum(slots.values()) == 16384
    assert min(slots.values()) >= 16384 // 4 - 200, slots  # the new master got its share
    assert sorted(roles(pods).values()).count("replica") == 4
    assert all_keys_present(pods, expected) == []
    assert all_keys_present(pods, writer.written) == []

    # 4 -> 3 masters: pods 6 and 7 go, and they are a whole shard (the new master and its replica):
    # its data has no copy on a kept pod, so its slots must move before either node goes.
    leaving = {pods.pods[6].name, pods.pods[7].name}
    assert sorted(roles(pods)[name] for name in leaving) == ["master", "replica"]
    assert any(masters_with_slots(pods).get(name) for name in leaving)
    with Writer(pods) as writer:
        shrunk = pods.cluster_script(3, 1, list(range(8)))
    assert shrunk.returncode == 0, shrunk.stderr
    print(f"{shrunk.stderr}(writes refused while shrinking: {writer.errors})")
    # Nothing left on the leaving pods, and they are no longer in the cluster.
    view = {f[1].split(",")[1] for f in pods.nodes(0)}
    assert not view & leaving
    # Only now does the StatefulSet shrink.
    for ordinal in (6, 7):
        pods.remove(ordinal)
    wait_until(lambda: all(healthy(pods, o) for o in range(6)), 30, "a healthy 6-pod cluster")
    slots = masters_with_slots(pods)
    assert len(slots) == 3
    assert sum(slots.values()) == 16384
    assert sorted(roles(pods).values()) == ["master"] * 3 + ["replica"] * 3
    assert all_keys_present(pods, expected) == []
    assert all_keys_present(pods, writer.written) == []

    # A replica's volume is replaced: the pod comes back empty under the same name.
    replica = next(o for o in range(6) if roles(pods)[pods.pods[o].name] == "replica")
    pods.stop(replica)
    pods.start(replica, empty=True)
    wait_until(lambda: pods.client(replica).ping(), 20, "the replaced pod")
    rejoined = pods.cluster_script(3, 1, list(range(6)))
    assert rejoined.returncode == 0, rejoined.stderr
    print(rejoined.stderr)
    wait_until(lambda: all(healthy(pods, o) for o in range(6)), 30, "the replaced pod back as a replica")
    assert sorted(roles(pods).values()) == ["master"] * 3 + ["replica"] * 3
    assert len(pods.nodes(0)) == 6  # its former identity is forgotten
    assert all_keys_present(pods, expected) == []
