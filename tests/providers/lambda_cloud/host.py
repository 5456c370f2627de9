"""The Pulumi CLI's dynamic provider host, started and spoken to exactly as the engine does.

The CLI runs every dynamic resource of a stack through one `python -u -m pulumi.dynamic` process
(the `pulumi-resource-pulumi-python` shim): in the project directory, with the program's
virtualenv, `PULUMI_PROJECT` and the runtime options in its environment, the engine's address as
its only argument. The host prints its port, serves gRPC on four worker threads, and is configured
once with the stack's whole config (secrets wrapped). Every request here carries properties
encoded by the SDK's own serializer (`pulumi.runtime.rpc`): numbers as floats, unknowns as the
unknown sentinel. The host answered `acceptSecrets: false`, so, like the engine, we send it plain
values (sdk/go/common/resource/plugin/provider_plugin.go marshals with KeepSecrets=acceptSecrets).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tools.harness import PROJECT_ROOT, SECRET_SIG_KEY, SECRET_SIG_VALUE

VENV_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
START_TIMEOUT_S = 60.0


class HostError(Exception):
    """An RPC the provider answered with an error (the engine shows its details)."""

    def __init__(self, method: str, error: grpc.RpcError) -> None:
        self.method = method
        self.details = str(error.details()) if hasattr(error, "details") else str(error)
        super().__init__(f"{method}: {self.details}")


@dataclass(frozen=True)
class CheckAnswer:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


@dataclass(frozen=True)
class DiffAnswer:
    changes: bool
    replaces: list[str]
    delete_before_replace: bool


def encode(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties as the engine sends them, through the SDK's serializer."""
    return asyncio.run(rpc.serialize_properties(dict(props), {}))


def decode(struct: struct_pb2.Struct, *, keep_unknowns: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = rpc.deserialize_properties(struct, keep_unknowns)
    return result


def engine_config(config: Mapping[str, str], secret_keys: set[str]) -> struct_pb2.Struct:
    """Configure's `args`: every stack config key as `namespace:key`, strings, secrets wrapped."""
    struct = struct_pb2.Struct()
    for key, value in config.items():
        if key in secret_keys:
            struct[key] = {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": value}
        else:
            struct[key] = value
    return struct


class ProviderHost:
    """One `python -m pulumi.dynamic` process and a gRPC client for it."""

    def __init__(self, *, env: Mapping[str, str], project_dir: Path = PROJECT_ROOT) -> None:
        if not VENV_PYTHON.exists():
            raise RuntimeError(f"{VENV_PYTHON} is missing: `make test` creates the virtualenv the CLI would use")
        self.project_dir = project_dir
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: Any = None
        self.stderr: list[str] = []

    def start(self) -> ProviderHost:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PULUMI_RUNTIME_TOOLCHAIN": "pip",
            "PULUMI_RUNTIME_VIRTUALENV": ".venv",
            "PULUMI_PROJECT": "sophia",
            "PULUMI_CONFIG": "{}",
            **self.env,
        }
        self.process = subprocess.Popen(
            [str(VENV_PYTHON), "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            cwd=self.project_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True).start()
        port_line = self._read_port_line()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port_line}")
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT_S)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        return self

    def _read_port_line(self) -> int:
        assert self.process is not None
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the provider host did not print its port (got {line!r}): {' '.join(self.stderr)}")
        return int(line)

    def _drain(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self.stderr.append(raw.decode(errors="replace").rstrip())

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ProviderHost:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the engine's calls ---------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request)
        except grpc.RpcError as error:
            raise HostError(method, error) from None

    def configure(self, config: Mapping[str, str], secret_keys: set[str]) -> bool:
        response = self._call(
            "Configure",
            provider_pb2.ConfigureRequest(args=engine_config(config, secret_keys), acceptSecrets=True),
        )
        return bool(response.acceptSecrets)

    def check(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckAnswer:
        response = self._call(
            "Check", provider_pb2.CheckRequest(urn=urn, olds=encode(olds), news=encode(news), randomSeed=b"0" * 32)
        )
        return CheckAnswer(
            decode(response.inputs, keep_unknowns=True), [(f.property, f.reason) for f in response.failures]
        )

    def diff(
        self,
        resource_id: str,
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any],
    ) -> DiffAnswer:
        response = self._call(
            "Diff",
            provider_pb2.DiffRequest(
                id=resource_id, urn=urn, olds=encode(olds), news=encode(news), old_inputs=encode(old_inputs)
            ),
        )
        return DiffAnswer(
            changes=response.changes == provider_pb2.DiffResponse.DIFF_SOME,
            replaces=list(response.replaces),
            delete_before_replace=bool(response.deleteBeforeReplace),
        )

    def create(self, urn: str, properties: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self._call("Create", provider_pb2.CreateRequest(urn=urn, properties=encode(properties)))
        return str(response.id), decode(response.properties)

    def read(
        self, resource_id: str, urn: str, properties: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        response = self._call(
            "Read",
            provider_pb2.ReadRequest(id=resource_id, urn=urn, properties=encode(properties), inputs=encode(inputs)),
        )
        new_inputs = decode(response.inputs) if response.HasField("inputs") else None
        return str(response.id), decode(response.properties), new_inputs or None

    def update(
        self,
        resource_id: str,
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any],
    ) -> dict[str, Any]:
        response = self._call(
            "Update",
            provider_pb2.UpdateRequest(
                id=resource_id, urn=urn, olds=encode(olds), news=encode(news), old_inputs=encode(old_inputs)
            ),
        )
        return decode(response.properties)

    def delete(self, resource_id: str, urn: str, properties: Mapping[str, Any], old_inputs: Mapping[str, Any]) -> None:
        self._call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=resource_id, urn=urn, properties=encode(properties), old_inputs=encode(old_inputs)
            ),
        )

    def timed_check(self, urn: str, news: Mapping[str, Any]) -> float:
        """Seconds a Check takes to answer, queueing for a worker thread included."""
        started = time.monotonic()
        self.check(urn, {}, news)
        return time.monotonic() - started
