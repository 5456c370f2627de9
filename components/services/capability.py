"""How much work a node of each Lambda instance type does, for weighting traffic across pools (pure).

The plan asks for "weighted load balancing based on GPU capabilities" (1.2). A GPU service's weight
on a pool is the dense BF16 tensor throughput of the pool's GPU (NVIDIA's data sheets, TFLOPS
without sparsity) times the GPUs per instance; a CPU-only service's weight is the node's vCPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies.catalog import load_lambda_catalog
from settings.services import DR_INSTANCE_TYPES

# Dense BF16/FP16 tensor TFLOPS per GPU, from NVIDIA's data sheets (half the "with sparsity" figure).
GPU_TFLOPS: Mapping[str, int] = {
    "gpu_1x_a10": 125,  # A10 data sheet: BF16 125 (250 with sparsity)
    "gpu_1x_a6000": 155,  # RTX A6000 data sheet: tensor 309.7 with sparsity
    "gpu_1x_a100": 312,  # A100 data sheet: BF16 312 (624 with sparsity)
    "gpu_8x_a100": 312,
    "gpu_1x_gh200": 989,  # GH200 data sheet: BF16 1,979 with sparsity (the H100 part)
    "gpu_1x_h100_sxm5": 989,  # H100 SXM5 data sheet: BF16 1,979 with sparsity
    "gpu_8x_h100_sxm5": 989,
}
WEIGHT_TOTAL = 1000
"""HTTPRoute backend weights of one service add up to this (per mille)."""


def capability(instance_type: str, uses_gpus: bool) -> int:
    """The relative capability of one node of `instance_type` (a Lambda type, or an EC2 type of the DR
    region's node groups) for a GPU or a CPU-only service."""
    ec2 = DR_INSTANCE_TYPES.get(instance_type)
    if ec2 is not None:
        return ec2.gpu_tflops * ec2.gpus if uses_gpus else ec2.vcpus
    spec = load_lambda_catalog().instance_type(instance_type)
    if uses_gpus:
        return GPU_TFLOPS[instance_type] * spec.gpus
    return spec.vcpus


def split(total: int, shares: Sequence[int]) -> list[int]:
    """`total` split in proportion to `shares` as integers that add up to it (largest remainder)."""
    whole = sum(shares)
    if total == 0 or whole == 0:
        return [0] * len(shares)
    exact = [total * share / whole for share in shares]
    parts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts
