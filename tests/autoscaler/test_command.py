"""The documented start command, `python -m autoscaler`, as a process: mTLS as upstream's example (a
client without a certificate from our CA is refused), and a restart that rebuilds every size from the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import grpc
import pytest

from autoscaler.protos import externalgrpc_pb2 as pb
from tests.autoscaler.conftest import TEST_SCALE
from tests.autoscaler.harness import Autoscaler, config, launch_keys, ours, pool_spec, wait_for
from tests.autoscaler.pki import issue, make_ca
from tests.providers.lambda_cloud.emulator import LambdaEmulator
from tools.gen_protos import PROJECT_ROOT

SERVER_NAME = "lambda-node-groups.test"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    make_ca(folder, "ca")
    make_ca(folder, "rogue-ca")
    issue(folder, "server", "ca", f"DNS:{SERVER_NAME}", "serverAuth")
    issue(folder, "client", "ca", "DNS:cluster-autoscaler-grpc-client", "clientAuth")
    issue(folder, "rogue", "rogue-ca", "DNS:cluster-autoscaler-grpc-client", "clientAuth")
    return folder


@contextmanager
def service_process(emulator: LambdaEmulator, pools_file: Path, pki: Path) -> Iterator[int]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")},  # never a real cluster
        "LAMBDA_API_KEY": emulator.api_key,
        "LAMBDA_API_URL": emulator.base_url,
        "LAMBDA_API_TIME_SCALE": str(TEST_SCALE),
        "CLUSTER_JOIN_TOKEN": "join-token",
    }
    command = [
        sys.executable, "-m", "autoscaler", "--address", "127.0.0.1:0", "--pools-file", str(pools_file),
        "--tls-key", str(pki / "server.key"), "--tls-cert", str(pki / "server.crt"), "--tls-ca", str(pki / "ca.crt"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on port "), line
        yield int(line.split()[-1])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def _channel(port: int, pki: Path, client: str | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.crt").read_bytes(),
        private_key=(pki / f"{client}.key").read_bytes() if client else None,
        certificate_chain=(pki / f"{client}.crt").read_bytes() if client else None,
    )
    return grpc.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )


def test_the_command_serves_mtls_and_a_restart_loses_nothing(
    emulator: LambdaEmulator, certificates: Path, tmp_path: Path
) -> None:
    pools_file = tmp_path / "pools.json"
    document = asdict(config(pool_spec(max=5)))
    pools_file.write_text(json.dumps(document), encoding="utf-8")
    with service_process(emulator, pools_file, certificates) as port:
        for stranger in (None, "rogue"):
            with _channel(port, certificates, stranger) as channel:
                stub = Autoscaler(channel).stub
                with pytest.raises(grpc.RpcError) as refused:
                    stub.NodeGroups(pb.NodeGroupsRequest(), timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        with _channel(port, certificates, "client") as channel:
            ca = Autoscaler(channel)
            wait_for(lambda: _answers(ca), "the first listing")
            ca.increase("burst", 2)
            wait_for(lambda: len(ours(emulator)) == 2, "two launched")
            before = sorted(n.id for n in ca.nodes("burst"))
    with service_process(emulator, pools_file, certificates) as port, _channel(port, certificates, "client") as channel:
        ca = Autoscaler(channel)
        wait_for(lambda: _answers(ca), "the first listing after the restart")
        assert ca.loop() == {"burst": (0, 4, 2)}
        after = sorted(n.id for n in ca.nodes("burst"))
        assert after == before == sorted(f"lambda://{k}" for k in launch_keys(emulator))
    assert emulator.launches_accepted == 2


def _answers(ca: Autoscaler) -> bool:
    try:
        ca.loop()
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            return False
        raise
    return True
