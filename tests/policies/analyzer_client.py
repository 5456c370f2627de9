"""Talk to the pack as the Pulumi CLI does: start it through the Python language host's launcher
(`<python> -u -m pulumi.policy <engine> <pack-dir>`, in the pack's directory, with the environment the
CLI's policy proxy sets), read the port it prints, and speak the analyzer protocol over gRPC."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc
from pulumi_policy import EnforcementLevel

from policies.pack import all_policies
from tests.policies.helpers import STACK
from tools.policy_eval import engine_config

LEVELS = {
    EnforcementLevel.ADVISORY: analyzer_pb2.ADVISORY,
    EnforcementLevel.MANDATORY: analyzer_pb2.MANDATORY,
    EnforcementLevel.DISABLED: analyzer_pb2.DISABLED,
    EnforcementLevel.REMEDIATE: analyzer_pb2.REMEDIATE,
}


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine's log endpoint the CLI hands a plugin; it keeps what the pack logs."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:  # noqa: N802 - gRPC method
        self.logs.append(request.message)
        return empty_pb2.Empty()


@contextlib.contextmanager
def engine() -> Iterator[tuple[str, _Engine]]:
    servicer = _Engine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0)


@contextlib.contextmanager
def serve(pack: Path, python: str, stack: str = STACK) -> Iterator[tuple[analyzer_pb2_grpc.AnalyzerStub, Any]]:
    """Start the pack as the CLI's Python language host does and yield a stub on its port."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(pack.parent),
        "PULUMI_PROJECT": "sophia",
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps({"aws:region": "us-east-1"}),
    }
    with engine() as (address, logs):
        process = subprocess.Popen(
            [python, "-u", "-m", "pulumi.policy", address, str(pack)],
            cwd=pack,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.isdigit():
                process.kill()
                _, stderr = process.communicate(timeout=60)
                raise AssertionError(f"the pack did not start: {line!r}\n{stderr}\n{logs.logs}")
            with grpc.insecure_channel(f"127.0.0.1:{line}") as channel:
                grpc.channel_ready_future(channel).result(timeout=60)
                yield analyzer_pb2_grpc.AnalyzerStub(channel), process
        finally:
            process.terminate()
            process.wait(timeout=60)


def configure_request(config: dict[str, Any]) -> analyzer_pb2.ConfigureAnalyzerRequest:
    """The CLI's ConfigureAnalyzerRequest for a --policy-pack-config file (defaults applied, validated)."""
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, (level, properties) in engine_config(all_policies(), config).items():
        request.policyConfig[name].enforcementLevel = LEVELS[level]
        request.policyConfig[name].properties.CopyFrom(json_format.ParseDict(properties, struct_pb2.Struct()))
    return request


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(value, struct_pb2.Struct())
