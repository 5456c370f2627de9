"""The service image holds what the service imports, and installs the pins the tests ran with."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tools.gen_protos import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "autoscaler" / "Dockerfile"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_image_installs_the_same_pins_as_the_program() -> None:
    image = _pins(PROJECT_ROOT / "autoscaler" / "requirements.txt")
    program = _pins(PROJECT_ROOT / "requirements.txt")
    assert image == {name: program[name] for name in image}
    assert set(image) == {"grpcio", "protobuf", "requests", "tenacity"}


def _copied_sources() -> list[str]:
    """Every source path of the Dockerfile's COPY lines (continuations joined), but requirements."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        if line.startswith("COPY "):
            sources += shlex.split(line)[1:-1]
    return sources


def test_the_files_the_image_copies_are_all_the_service_imports(tmp_path: Path) -> None:
    for source in _copied_sources():
        origin = PROJECT_ROOT / source
        target = tmp_path / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, target)
    script = "import autoscaler.__main__, autoscaler.server, autoscaler.template; print('ok')"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "autoscaler", "--help"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "--pools-file" in usage.stdout
