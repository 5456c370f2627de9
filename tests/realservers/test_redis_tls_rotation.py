"""A renewed certificate goes live on every Redis node without a restart and without a failed request.

Six pods with their tls-reload sidecars (`redis_tls_reload.sh`, as the pods run it) and the
certificate Secret mounted the way the kubelet mounts it. An application works the cluster the
whole time, and a second client opens a new TLS connection to some node for every request.
The certificate is renewed (a new key and leaf from the same CA, what cert-manager does); every
node must present the new one to new connections within seconds, a restarted node must rejoin
over the cluster bus with it, and no request may fail.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import redis

from components.data.redis_cluster import TLS_RELOAD_SCRIPT
from tests.realservers.certs import make_certs
from tests.realservers.redis_nodes import USERS
from tests.realservers.redis_pods import DOMAIN, PodSet, answers, healthy, pod_set, wait_until

__all__ = ["pod_set"]


def presented(pods: PodSet, ordinal: int) -> bytes:
    """The certificate (DER) a node presents to a new connection."""
    context = ssl.create_default_context(cafile=str(pods.certs.ca))
    context.check_hostname = False
    with (
        socket.create_connection((pods.pods[ordinal].ip, pods.port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        cert = tls.getpeercert(binary_form=True)
    assert cert is not None
    return cert


def presents(pods: PodSet, ordinal: int, certificate: bytes) -> bool:
    return presented(pods, ordinal) == certificate


def der(path: object) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(str(path)).read_text())


@pytest.fixture
def sidecars(pod_set: PodSet) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


class Load:
    """Requests on open connections (the cluster client) and on a new connection each time."""

    def __init__(self, pods: PodSet) -> None:
        self.pods = pods
        self.requests = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        client = self.pods.cluster_client()
        index = 0
        while not self._stop.is_set():
            try:
                client.set(f"rotation:{index}", str(index))
                assert client.get(f"rotation:{index}") == str(index).encode()
                fresh = self.pods.client(random.choice(list(self.pods.pods)), user="default")
                assert fresh.ping()
                fresh.close()
                self.requests += 3
            except (redis.RedisError, OSError, AssertionError) as error:
                self.failures.append(repr(error))
            index += 1
        client.close()

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_renewed_certificate_goes_live_under_load_without_a_failed_request(
    pod_set: PodSet, sidecars: list[subprocess.Popen[bytes]]
) -> None:
    pods = pod_set
    for ordinal in range(6):
        pods.start(ordinal)
    for ordinal in range(6):
        wait_until(partial(answers, pods, ordinal), 20, f"pod {ordinal}")
    created = pods.cluster_script(3, 1, list(range(6)))
    assert created.returncode == 0, created.stderr
    for ordinal, pod in pods.pods.items():
        live = pod.data / "tls-live"
        env = {
            "PATH": os.environ["PATH"],
            "TLS_DIR": str(pods.tls_dir),
            "LIVE_DIR": str(live),
            "REDIS_HOST": pod.ip,
            "PORT": str(pods.port),
            "INTERVAL_SECONDS": "0.5",
            "REDIS_CLI_OPTIONS": "--user admin",
            "REDISCLI_AUTH": USERS.admin,
        }
        log = (pod.data / "tls-reload.log").open("ab")
        sidecars.append(subprocess.Popen(["sh", str(TLS_RELOAD_SCRIPT)], env=env, stdout=log, stderr=log))

        def live_now(o: int = ordinal, directory: object = live) -> bool:
            path = pods.client(o).config_get("tls-cert-file")["tls-cert-file"]
            return str(path).startswith(str(directory))

        wait_until(live_now, 20, f"the sidecar of pod {ordinal} to take over the certificate")
    old = der(pods.certs.cert)
    assert all(presented(pods, o) == old for o in pods.pods)

    with Load(pods) as load:
        wait_until(lambda: load.requests > 300, 30, "load before the renewal")
        renewed = make_certs(
            pods.root,
            ip_addresses=[f"{pods.subnet}.{n}" for n in range(1, 255)],
            dns_names=[f"*.{DOMAIN}"],
            name="renewed",
        )
        pods.mount_certificate(renewed)
        started = time.monotonic()
        new = der(renewed.cert)
        assert new != old
        for ordinal in pods.pods:
            wait_until(partial(presents, pods, ordinal, new), 30, f"pod {ordinal} to present the new certificate")
        took = time.monotonic() - started
        requests_before = load.requests
        wait_until(lambda: load.requests > requests_before + 300, 30, "load after the renewal")
    print(f"\nredis TLS renewal: live on all 6 nodes {took:.1f}s after the Secret changed; {load.requests} requests")
    assert load.failures == []
    # A replica restarted now meets its peers and its master over new TLS connections only.
    replica = next(o for o in pods.pods if pods.client(o).info("replication")["role"] == "slave")
    pods.stop(replica)
    pods.start(replica)
    wait_until(lambda: all(healthy(pods, o) for o in pods.pods), 60, "the restarted replica back in the cluster")
