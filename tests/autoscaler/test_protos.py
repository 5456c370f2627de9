"""The checked-in generated code is what `make proto` writes, and the template Node's bytes are a
`k8s.io/api/core/v1` Node by Kubernetes' own definition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_tools import protoc

from autoscaler.config import PROVIDER_ID_PREFIX
from autoscaler.template import template_node_bytes
from tests.autoscaler.harness import pool_spec
from tools.gen_protos import PROJECT_ROOT, PROTO_DIR, generate

# A copy of kubernetes/api and kubernetes/apimachinery, when this machine has one (read with git).
API_GIT = Path(os.environ.get("K8S_API_GIT_DIR", "/work/.mirror/kubernetes+api/repo"))
APIMACHINERY_GIT = Path(os.environ.get("K8S_APIMACHINERY_GIT_DIR", "/work/.mirror/kubernetes+apimachinery/repo"))
UPSTREAM_TAG = "v0.36.2"  # the k8s.io/api and apimachinery cluster-autoscaler-1.36.1 builds with


def test_generated_code_is_current(tmp_path: Path) -> None:
    for path in generate(tmp_path):
        checked_in = PROJECT_ROOT / path.relative_to(tmp_path)
        assert checked_in.read_bytes() == path.read_bytes(), f"{checked_in} is stale: run `make proto`"
    expected = {p.relative_to(tmp_path).name for p in (tmp_path / PROTO_DIR).iterdir()}
    present = {p.name for p in (PROJECT_ROOT / PROTO_DIR).glob("*_pb2*")}
    assert present == expected, "generated files without a .proto (or the reverse)"


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one protobuf message, read by hand: no schema involved."""
    out: list[tuple[int, int, bytes | int]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            out.append((number, wire, varint()))
        elif wire == 2:
            length = varint()
            out.append((number, wire, data[i : i + length]))
            i += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _one(data: bytes, number: int) -> bytes:
    found = [v for n, w, v in _fields(data) if n == number and w == 2]
    assert len(found) == 1, f"field {number}: {len(found)} occurrences"
    assert isinstance(found[0], bytes)
    return found[0]


def _map(data: bytes, number: int) -> dict[bytes, bytes]:
    entries = [v for n, _, v in _fields(data) if n == number]
    return {_one(e, 1): _one(e, 2) for e in entries if isinstance(e, bytes)}


def test_template_bytes_follow_upstream_field_numbers() -> None:
    """Read with nothing but the numbers in k8s.io/api core/v1 generated.proto (v0.36.2):
    Node{metadata=1, spec=2, status=3}, ObjectMeta{name=1, labels=11}, NodeSpec{providerID=3, taints=5},
    Taint{key=1, value=2, effect=3}, NodeStatus{capacity=1, allocatable=2, conditions=4},
    Quantity{string=1}, NodeCondition{type=1, status=2}."""
    node = template_node_bytes(pool_spec("ai-core", instance_type="gpu_1x_gh200"), now=1_800_000_000)
    metadata, spec, status = _one(node, 1), _one(node, 2), _one(node, 3)
    assert _one(metadata, 1) == b"template-ai-core"
    labels = _map(metadata, 11)
    assert labels[b"sophia.ai/pool"] == b"ai-core"
    assert labels[b"kubernetes.io/arch"] == b"arm64"
    assert _one(spec, 3) == f"{PROVIDER_ID_PREFIX}template-ai-core".encode()
    taint = _one(spec, 5)
    assert (_one(taint, 1), _one(taint, 2), _one(taint, 3)) == (b"sophia.ai/pool", b"ai-core", b"NoSchedule")
    capacity = {k: _one(v, 1) for k, v in _map(status, 1).items()}
    assert capacity == {b"cpu": b"64", b"memory": b"432Gi", b"nvidia.com/gpu": b"1", b"pods": b"110"}
    assert {k: _one(v, 1) for k, v in _map(status, 2).items()} == capacity
    conditions = {_one(c, 1): _one(c, 2) for n, _, c in _fields(status) if n == 4 and isinstance(c, bytes)}
    assert conditions[b"Ready"] == b"True"


UPSTREAM_DECODE = """
import sys
sys.path.insert(0, sys.argv[1])
from google.protobuf.unknown_fields import UnknownFieldSet
from k8s.io.api.core.v1 import generated_pb2 as core
data = sys.stdin.buffer.read()
node = core.Node()
node.ParseFromString(data)
unknown = sum(len(UnknownFieldSet(m)) for m in (node, node.metadata, node.spec, node.status, *node.status.conditions))
print(node.metadata.name, node.spec.providerID, node.status.capacity["memory"].string,
      node.status.allocatable["nvidia.com/gpu"].string, node.spec.taints[0].effect,
      [c.type for c in node.status.conditions][0], unknown, node.SerializeToString(deterministic=True) == data)
"""


@pytest.mark.skipif(not (API_GIT.is_dir() and APIMACHINERY_GIT.is_dir()), reason="no copy of kubernetes/api here")
def test_template_decodes_with_kubernetes_own_generated_proto(tmp_path: Path) -> None:
    """Compile upstream's full core/v1 generated.proto (and what it imports) and decode our bytes with it."""
    sources = {
        "k8s.io/api/core/v1/generated.proto": (API_GIT, "core/v1/generated.proto"),
        **{
            f"k8s.io/apimachinery/{path}": (APIMACHINERY_GIT, path)
            for path in (
                "pkg/api/resource/generated.proto",
                "pkg/apis/meta/v1/generated.proto",
                "pkg/runtime/generated.proto",
                "pkg/runtime/schema/generated.proto",
                "pkg/util/intstr/generated.proto",
            )
        },
    }
    for target, (git_dir, path) in sources.items():
        text = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{UPSTREAM_TAG}:{path}"], check=True, capture_output=True
        ).stdout
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target).write_bytes(text)
    include = Path(protoc.__file__).resolve().parent / "_proto"
    out = tmp_path / "out"
    out.mkdir()
    for target in sources:
        assert protoc.main(["protoc", f"-I{tmp_path}", f"-I{include}", f"--python_out={out}", target]) == 0
    node = template_node_bytes(pool_spec("data", instance_type="gpu_1x_a100"), now=1_800_000_000)
    result = subprocess.run(
        [sys.executable, "-c", UPSTREAM_DECODE, str(out)], input=node, capture_output=True, check=True
    )
    # Every field known to upstream's definition, and its own encoding gives back the same bytes.
    assert result.stdout.decode().split() == [
        "template-data",
        "lambda://template-data",
        "200Gi",
        "1",
        "NoSchedule",
        "Ready",
        "0",
        "True",
    ]
