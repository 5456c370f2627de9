"""The checked-in generated code is what `make proto` writes, and the template Node's bytes carry
`k8s.io/api/core/v1` Node field numbers (upstream v0.36.2, the k8s.io/api cluster-autoscaler-1.36.1
builds with), read by hand with no schema involved."""

from __future__ import annotations

from pathlib import Path

from autoscaler.config import PROVIDER_ID_PREFIX
from autoscaler.template import template_node_bytes
from tests.autoscaler.harness import pool_spec
from tools.gen_protos import PROJECT_ROOT, PROTO_DIR, generate


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
    node = template_node_bytes(pool_spec("ai-core", instance_type="gpu_1x_gh200"), 4096, now=1_800_000_000)
    metadata, spec, status = _one(node, 1), _one(node, 2), _one(node, 3)
    assert _one(metadata, 1) == b"template-ai-core"
    labels = _map(metadata, 11)
    assert labels[b"sophia.ai/pool"] == b"ai-core"
    assert labels[b"kubernetes.io/arch"] == b"arm64"
    assert _one(spec, 3) == f"{PROVIDER_ID_PREFIX}template-ai-core".encode()
    taint = _one(spec, 5)
    assert (_one(taint, 1), _one(taint, 2), _one(taint, 3)) == (b"sophia.ai/pool", b"ai-core", b"NoSchedule")
    capacity = {k: _one(v, 1) for k, v in _map(status, 1).items()}
    # 432 GiB less the kernel's estimated share (432Gi/64 + 16Mi + 64Mi + 248Mi + 4Mi), in Ki.
    memory = (432 * 2**30 - (432 * 2**30 // 64 + 332 * 2**20)) // 1024
    assert capacity == {
        b"cpu": b"64",
        b"memory": f"{memory}Ki".encode(),
        b"ephemeral-storage": f"{4096 * 2**20}Ki".encode(),
        b"nvidia.com/gpu": b"1",
        b"pods": b"110",
    }
    allocatable = {k: _one(v, 1) for k, v in _map(status, 2).items()}
    assert allocatable == {
        **capacity,
        b"memory": f"{memory - 100 * 1024}Ki".encode(),  # the kubelet's memory.available<100Mi
        b"ephemeral-storage": f"{4096 * 2**20 * 95 // 100}Ki".encode(),  # k3s's nodefs.available<5%
    }
    conditions = {_one(c, 1): _one(c, 2) for n, _, c in _fields(status) if n == 4 and isinstance(c, bytes)}
    assert conditions[b"Ready"] == b"True"
