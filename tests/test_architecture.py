"""The import directions in pyproject.toml ([tool.importlinter]) hold, and breaking one is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    only = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *only],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_every_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("components/data/namespace.py", "import components.dr.region", "data-alone"),
        ("components/data/namespace.py", "import components.compute.gpu_pool", "data-alone"),
        ("components/dr/cache.py", "import components.platform", "layers"),
        ("components/observability/monitoring.py", "import components.platform", "layers"),
        ("providers/lambda_cloud/client.py", "import components.tags", "providers-below-components"),
        ("settings/data.py", "import components.kube", "settings-pure"),
        ("components/data/namespace.py", "import providers.lambda_cloud.client", "data-alone"),
        ("components/kube.py", "import components.lambda_cloud.provider", "alias-unused"),
        ("components/compute/gpu_pool.py", "import components.lambda_cloud", "alias-unused"),
        ("failover/promoter.py", "import settings.dr", "failover-self-contained"),
        ("autoscaler/groups.py", "import settings.compute", "autoscaler-standalone"),
        ("autoscaler/server.py", "import components.compute.gpu_pool", "autoscaler-standalone"),
        ("providers/lambda_cloud/launcher.py", "import autoscaler.config", "providers-below-components"),
        ("settings/data.py", "import policies.rules.aws", "settings-pure"),
        ("policies/rules/aws.py", "import settings", "pack-self-contained"),
        ("policies/costing/model.py", "import tools.harness", "pack-self-contained"),
        ("components/platform.py", "import policies.pack", "program-uses-pack-data-only"),
        ("policies/costing/model.py", "import policies.rules.cost", "pack-data-below-rules"),
        ("policies/model/workloads.py", "import policies.rules.kubernetes", "pack-layers"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree_copy: Path, module: str, bad_import: str, contract: str) -> None:
    path = tree_copy / module
    assert lint_imports(tree_copy, contract).returncode == 0  # the copy itself keeps the contract
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(tree_copy, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout, result.stdout
