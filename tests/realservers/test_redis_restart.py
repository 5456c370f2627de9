"""Every Redis pod restarts on a new address: the cluster must come back by itself.

Six pods (3 masters, 3 replicas) on distinct loopback addresses, TLS, started by the pods'
start-up script and formed by the cluster Job's script. All six are stopped, then started again
with their data directories on addresses none of them had before (what a drained node pool or a
restart of the whole StatefulSet does); the DNS names stay. Within 60 s every node must report
cluster_state:ok with a live bus link to every peer at its new address (and every replica its
replication link up), and every key written before must be readable.
"""

from __future__ import annotations

import time
from functools import partial

from tests.realservers.redis_pods import PodSet, answers, healthy, pod_set, wait_until

__all__ = ["pod_set"]
KEYS = 2000
RECOVERY_SECONDS = 60


def test_all_pods_restart_on_new_addresses_and_the_cluster_recovers(pod_set: PodSet) -> None:
    pods = pod_set
    for ordinal in range(6):
        pods.start(ordinal)
    for ordinal in range(6):
        wait_until(partial(answers, pods, ordinal), 20, f"pod {ordinal}")
    created = pods.cluster_script(masters=3, replicas=1, ordinals=list(range(6)))
    assert created.returncode == 0, created.stderr
    client = pods.cluster_client()
    for index in range(KEYS):
        client.set(f"key:{index}", f"value-{index}")
    client.close()
    # Every write on disk (AOF everysec) before the stop.
    for ordinal in range(6):
        pods.client(ordinal).execute_command("BGREWRITEAOF")  # type: ignore[no-untyped-call]
    before = {o: pods.pods[o].ip for o in range(6)}

    for ordinal in range(6):
        pods.stop(ordinal)
    started = time.monotonic()
    for ordinal in range(6):
        pods.start(ordinal)  # a new address, the same data directory
    assert all(pods.pods[o].ip != before[o] for o in range(6))
    assert not set(before.values()) & {p.ip for p in pods.pods.values()}

    for ordinal in range(6):
        wait_until(
            partial(healthy, pods, ordinal),
            max(0.1, RECOVERY_SECONDS - (time.monotonic() - started)),
            f"pod {ordinal}: cluster_state:ok, every peer connected at its new address, replication up",
        )
    client = pods.cluster_client()
    missing = wait_until(
        lambda: all(client.get(f"key:{i}") == f"value-{i}".encode() for i in range(KEYS)),
        max(1.0, RECOVERY_SECONDS - (time.monotonic() - started)),
        "every key readable",
    )
    elapsed = time.monotonic() - started
    client.close()
    print(f"\nredis: all 6 pods restarted on new addresses; cluster ok and {KEYS} keys readable in {elapsed:.1f}s")
    assert missing >= 0
    assert elapsed < RECOVERY_SECONDS
    # Each node now dials its peers at their new addresses.
    addresses = {line[1].split(":")[0] for line in pods.nodes(0)}
    assert addresses == {p.ip for p in pods.pods.values()}
