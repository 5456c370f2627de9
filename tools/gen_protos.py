"""Generate the Python modules of `autoscaler/protos/*.proto` with grpcio-tools (`make proto`).

The generated modules are checked in beside their `.proto` files so that the service and the
Pulumi program import them without a build step; `tests/autoscaler/test_protos.py` regenerates them
into a temporary folder and fails when the checked-in copies differ. The pinned grpcio-tools
(requirements-dev.txt) is what makes the output reproducible.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = Path("autoscaler") / "protos"
# Only the service protocol has a service; the Kubernetes subsets are messages only.
GRPC_PROTOS = frozenset({"externalgrpc.proto"})


def generated_names(proto: Path) -> list[str]:
    stem = proto.stem
    names = [f"{stem}_pb2.py", f"{stem}_pb2.pyi"]
    if proto.name in GRPC_PROTOS:
        names.append(f"{stem}_pb2_grpc.py")
    return names


def generate(out_root: Path) -> list[Path]:
    """Write every generated module under `out_root` (mirroring `autoscaler/protos/`); returns their paths."""
    include = Path(protoc.__file__).resolve().parent / "_proto"
    written: list[Path] = []
    for proto in sorted((PROJECT_ROOT / PROTO_DIR).glob("*.proto")):
        relative = proto.relative_to(PROJECT_ROOT)
        args = [
            "grpc_tools.protoc",
            f"-I{PROJECT_ROOT}",
            f"-I{include}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
        ]
        if proto.name in GRPC_PROTOS:
            args.append(f"--grpc_python_out={out_root}")
        if protoc.main([*args, str(relative)]) != 0:
            raise SystemExit(f"protoc failed on {relative}")
        written.extend(out_root / PROTO_DIR / name for name in generated_names(proto))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            target = PROJECT_ROOT / path.relative_to(tmp)
            shutil.copyfile(path, target)
            print(f"wrote {target.relative_to(PROJECT_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
