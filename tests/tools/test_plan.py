from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools import plan
from tools.harness import PROJECT_ROOT, SECRET_PLACEHOLDER, run_stack
from tools.redact import REDACTED

FIXTURE = Path(__file__).parent / "fixtures" / "secret_project"


def run_plan(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = plan.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_text_plan_prints_the_tree_and_counts(stack: str) -> None:
    code, out, err = run_plan("--stack", stack)
    assert code == 0, err
    assert out.startswith(f"Stack sophia/{stack}: ")
    assert f"\nsophia-{stack} (sophia:platform:Platform)\n" in out
    assert "By type:\n  " in out
    assert "sophia:platform:Platform  1" in out or "sophia:platform:Platform" in out.split("By type:")[1]


def test_dr_tree_nests_children_under_their_component() -> None:
    _, out, _ = run_plan("--stack", "dr")
    assert "sophia-dr (sophia:platform:Platform)\n  sophia-dr-aws (pulumi:providers:aws)\n" in out


def test_json_plan_has_every_resource() -> None:
    code, out, _ = run_plan("--stack", "dr", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "dr"
    names = [r["name"] for r in document["resources"]]
    assert names == [r.name for r in run_stack("dr").resources]
    for resource in document["resources"]:
        assert set(resource) == {"type", "name", "urn", "parent", "protect", "inputs"}


def test_json_plan_redacts_secrets() -> None:
    document = plan.plan_document(run_stack("test", project_dir=FIXTURE))
    pet = next(r for r in document["resources"] if r["name"] == "box-pet")  # type: ignore[attr-defined]
    assert pet["inputs"]["keepers"] == {"token": REDACTED, "team": "infra"}
    assert pet["protect"] is True
    assert document["outputs"] == {"token": REDACTED, "petLength": 3.0}
    assert SECRET_PLACEHOLDER not in json.dumps(document)


def test_bad_config_exits_2_with_one_line() -> None:
    broken = PROJECT_ROOT / "Pulumi.broken-test.yaml"
    text = (PROJECT_ROOT / "Pulumi.prod.yaml").read_text().replace("max: 10", "max: 1")
    broken.write_text(text)
    try:
        code, out, err = run_plan("--stack", "broken-test")
    finally:
        broken.unlink()
    assert code == plan.EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1
    assert "sophia:gpuPools[0].desired: must be <= max" in err


def test_cli_process_prints_no_traceback(tmp_path: Path) -> None:
    broken = PROJECT_ROOT / "Pulumi.typo-test.yaml"
    broken.write_text((PROJECT_ROOT / "Pulumi.dev.yaml").read_text().replace("storageGib: 20", "storageGb: 20"))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tools.plan", "--stack", "typo-test"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        broken.unlink()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: invalid stack config: sophia:dataLayer.postgres.storageGib: is required; "
        "sophia:dataLayer.postgres.storageGb: unknown key; allowed here: readReplicas, storageGib"
    ]
