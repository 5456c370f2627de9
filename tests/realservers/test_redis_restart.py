"""Every Redis pod restarts on a new address: the cluster must come back by itself.

Six pods (3 masters, 3 replicas) on distinct loopback addresses, TLS, started by the pods'
start-up script and formed by the cluster Job's script. All six are stopped, then started again
with their data directories on addresses none of them had before (what a drained node pool or a
restart of the whole StatefulSet does); the DNS names stay. Within 60 s every node must report
cluster_state:ok with a live bus link to every peer at its new address (and every replica its
replication link up), and every key written before must be readable.

Then the same full restart with one replica gone for good (its node lost with its volume): its
name never resolves again, so every pod's start-up script gives up on it after RESOLVE_SECONDS
and starts redis-server anyway (in Kubernetes the startupProbe leaves room for that wait), and
the five come back together, the gone one flagged as failed.
"""

from __future__ import annotations

import time
from functools import partial

from components.data.redis_cluster import RESOLVE_SECONDS
from tests.realservers.redis_pods import PodSet, answers, healthy, pod_name, pod_set, wait_until

__all__ = ["pod_set"]
KEYS = 2000
RECOVERY_SECONDS = 60


def form_cluster_with_keys(pods: PodSet) -> None:
    """Six pods, the cluster Job's script, KEYS keys written and on disk."""
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
    # Every write on disk (AOF everysec) before the stop. A replica rewrites its AOF by itself after
    # its first sync, and refuses another meanwhile ("already in progress"): asked again until it takes it.
    for ordinal in range(6):
        wait_until(partial(command_text, pods, ordinal, "BGREWRITEAOF"), 60, f"pod {ordinal}: BGREWRITEAOF accepted")


def test_all_pods_restart_on_new_addresses_and_the_cluster_recovers(pod_set: PodSet) -> None:
    pods = pod_set
    form_cluster_with_keys(pods)
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


def test_a_full_restart_with_a_replica_gone_for_good_comes_back_without_it(pod_set: PodSet) -> None:
    pods = pod_set
    form_cluster_with_keys(pods)
    flags = {fields[1].split(",")[1]: fields[2].split(",") for fields in pods.nodes(0)}
    gone = max(o for o in range(6) if "slave" in flags[pod_name(o)])
    gone_id = command_text(pods, gone, "CLUSTER", "MYID")
    before = {o: pods.pods[o].ip for o in range(6)}

    for ordinal in range(6):
        pods.stop(ordinal)
    pods.remove(gone)  # its name resolves no more
    kept = [o for o in range(6) if o != gone]
    started = time.monotonic()
    for ordinal in kept:
        pods.start(ordinal)
    assert not set(before.values()) & {p.ip for p in pods.pods.values()}

    # Each pod listens once its script has given up on the gone peer: RESOLVE_SECONDS, then
    # redis-server's start (the time limits below are failure timeouts, not measures).
    limit = RESOLVE_SECONDS + RECOVERY_SECONDS
    for ordinal in kept:
        wait_until(
            partial(healthy, pods, ordinal, frozenset({gone_id})),
            limit,
            f"pod {ordinal}: cluster_state:ok, every kept peer connected at its new address, the gone one failed",
        )
    client = pods.cluster_client(kept[0])
    wait_until(
        lambda: all(client.get(f"key:{i}") == f"value-{i}".encode() for i in range(KEYS)), limit, "every key readable"
    )
    client.close()
    elapsed = time.monotonic() - started
    print(f"\nredis: 5 pods restarted without replica {gone}; cluster ok, keys readable in {elapsed:.1f}s")
    for ordinal in kept:
        log = (pods.pods[ordinal].data / "redis.log").read_text(errors="replace")
        assert "redis-start: 1 peer names did not resolve" in log, f"pod {ordinal} did not wait for the gone peer"
    # The gone node keeps the address it had: nothing resolved it, and no one has heard from it since.
    [line] = [fields for fields in pods.nodes(kept[0]) if fields[0] == gone_id]
    assert line[1].split(":")[0] == before[gone]


def command_text(pods: PodSet, ordinal: int, *args: str) -> str:
    raw = pods.client(ordinal).execute_command(*args)  # type: ignore[no-untyped-call]
    return raw.decode() if isinstance(raw, bytes) else str(raw)
