from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from tests.helpers import stack_config
from tools.harness import (
    SECRET_PLACEHOLDER,
    SECRET_SIG_KEY,
    SECRET_SIG_VALUE,
    RegisteredResource,
    StackFileError,
    StackRun,
    read_stack_file,
    run_stack,
)

FIXTURE = Path(__file__).parent / "fixtures" / "secret_project"


@pytest.mark.parametrize("stack", ["prod", "dr", "dev"])
def test_every_shipped_stack_runs(stack: str) -> None:
    run = run_stack(stack)
    assert run.project == "sophia"
    assert run.stack == stack
    root = run.named(f"sophia-{stack}")
    assert root.type == "sophia:platform:Platform"
    assert root.urn == f"urn:pulumi:{stack}::sophia::sophia:platform:Platform::sophia-{stack}"
    assert root.parent == f"urn:pulumi:{stack}::sophia::pulumi:pulumi:Stack::sophia-{stack}"
    assert run.outputs["environment"] == stack
    # Every non-root resource hangs under another registered resource.
    urns = {r.urn for r in run.resources}
    assert all(r.parent in urns for r in run.resources if r is not root)


def test_urns_carry_every_ancestor_type_like_the_engine() -> None:
    run = run_stack("prod")
    assert (
        run.named("ai-core").urn == "urn:pulumi:prod::sophia::sophia:platform:Platform$sophia:compute:GpuPool::ai-core"
    )
    assert run.named("ai-core-0").urn == (
        "urn:pulumi:prod::sophia::sophia:platform:Platform$sophia:compute:GpuPool"
        "$pulumi-python:dynamic/lambda:Instance::ai-core-0"
    )


def test_runs_are_independent() -> None:
    first = run_stack("dr")
    run_stack("prod")
    again = run_stack("dr")
    assert [r.urn for r in first.resources] == [r.urn for r in again.resources]


def test_inputs_are_engine_shaped() -> None:
    run = run_stack("test", project_dir=FIXTURE)
    pet = run.named("box-pet")
    assert pet.type == "random:index/randomPet:RandomPet"
    assert pet.protect is True
    assert pet.custom is True
    assert pet.parent == run.named("box").urn
    assert pet.urn == "urn:pulumi:test::fixture::fixture:index:Box$random:index/randomPet:RandomPet::box-pet"
    # numbers arrive as floats, the secret in its wrapper, camelCase keys as the provider schema names them
    assert pet.inputs["length"] == 3.0
    assert isinstance(pet.inputs["length"], float)
    assert pet.inputs["keepers"]["token"] == {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": SECRET_PLACEHOLDER}
    assert pet.inputs["keepers"]["team"] == "infra"
    assert run.outputs["token"] == {SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": SECRET_PLACEHOLDER}


def test_secure_values_become_placeholders() -> None:
    config, secret_keys = read_stack_file("test", FIXTURE)
    assert config["fixture:token"] == SECRET_PLACEHOLDER
    assert "fixture:token" in secret_keys
    assert config["fixture:count"] == "3"
    assert config["fixture:tags"] == '{"team": "infra"}'


def test_declared_secrets_are_filled_only_when_asked() -> None:
    config, keys = read_stack_file("prod")
    assert config["sophia:lambdaApiKey"] == SECRET_PLACEHOLDER
    assert "sophia:lambdaApiKey" in keys
    config, keys = read_stack_file("prod", assume_secrets_set=False)
    assert "sophia:lambdaApiKey" not in config


def test_overrides_replace_and_delete_keys() -> None:
    run = run_stack("prod", config_overrides={"sophia:monthlyBudgetUsd": "123"})
    assert run.outputs["monthlyBudgetUsd"] == 123.0
    with pytest.raises(pulumi.RunError, match="sophia:tags: is required"):
        run_stack("prod", config_overrides={"sophia:tags": None})


def test_program_errors_propagate_and_leave_the_runtime_usable() -> None:
    with pytest.raises(pulumi.RunError, match=r"sophia:gpuPools\[0\]\.desired"):
        run_stack(
            "prod",
            config_overrides={
                "sophia:gpuPools": '[{"name": "ab", "instanceType": "gpu_1x_a10", "min": 3, "desired": 4, "max": 3}]'
            },
        )
    assert run_stack("dev").outputs["environment"] == "dev"


def test_missing_stack_file() -> None:
    with pytest.raises(StackFileError, match=r"cannot read Pulumi\.staging\.yaml"):
        run_stack("staging")


def test_unparseable_stack_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: sophia\n")
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    with pytest.raises(StackFileError, match=r"Pulumi\.bad\.yaml is not valid YAML"):
        run_stack("bad", project_dir=tmp_path)


def test_a_failed_program_does_not_poison_the_next_run() -> None:
    """A program that fails inside an apply leaves nothing behind for the next run to re-raise."""
    dr = json.loads(stack_config("dr")["sophia:dr"])
    with pytest.raises(ValueError, match="backupReplicaBucket"):
        run_stack("dr", config_overrides={"sophia:dr": json.dumps({**dr, "backupReplicaBucket": "other-bucket"})})
    assert run_stack("dr").outputs["drWorstCaseFailoverSeconds"] == 50.0


def _record(
    urn: str, parent: str | None = None, depends_on: tuple[str, ...] = (), **inputs: tuple[str, ...]
) -> RegisteredResource:
    return RegisteredResource(
        type="t",
        name=urn,
        urn=urn,
        parent=parent,
        provider=None,
        inputs={},
        protect=False,
        custom=True,
        depends_on=depends_on,
        property_dependencies=dict(inputs),
    )


def test_waits_for_follows_explicit_input_and_parent_edges_transitively() -> None:
    policy = _record("policy")
    component = _record("component", depends_on=("policy",))
    child = _record("child", parent="component")  # held back by its parent's dependency
    reader = _record("reader", value=("child",))  # an input from the child
    unrelated = _record("unrelated", parent="component-2")
    run = StackRun("p", "s", (policy, component, child, reader, unrelated), {})
    assert run.waits_for(child, policy)
    assert run.waits_for(reader, policy)
    assert not run.waits_for(unrelated, policy)
    assert not run.waits_for(policy, reader)


def _project(tmp_path: Path, program: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: fixture\nruntime: python\n")
    (tmp_path / "Pulumi.test.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(program)
    return tmp_path


def test_outputs_are_settled_all_at_once_and_each_resource_sees_the_last_of_a_chain(tmp_path: Path) -> None:
    """3,000 chained applies and 300 resources: the harness waits for them together (linear), and
    every registration still sees its value."""
    program = (
        "import pulumi\nimport pulumi_random as random\n"
        "value = pulumi.Output.from_input(0)\n"
        "for _ in range(3000):\n    value = value.apply(lambda v: v + 1)\n"
        "for i in range(300):\n    random.RandomPet(f'pet-{i}', prefix=value.apply(str))\n"
    )
    run = run_stack("test", project_dir=_project(tmp_path, program))
    pets = run.by_type("random:index/randomPet:RandomPet")
    assert len(pets) == 300
    assert {p.inputs["prefix"] for p in pets} == {"3000"}


def test_an_output_that_fails_still_fails_the_run(tmp_path: Path) -> None:
    """In a child process: the SDK chains the failure's causes so deeply that the interpreter's
    recursion bookkeeping is left off (CPython 3.11) for whatever the process parses next."""
    program = (
        "import pulumi\nimport pulumi_random as random\n"
        "def boom(_: int) -> str:\n    raise ValueError('the program broke in an apply')\n"
        "random.RandomPet('pet', prefix=pulumi.Output.from_input(1).apply(boom))\n"
    )
    project = _project(tmp_path, program)
    check = (
        "import sys\nfrom pathlib import Path\nfrom tools.harness import run_stack\n"
        "try:\n    run_stack('test', project_dir=Path(sys.argv[1]))\n"
        "except ValueError as error:\n    print('failed:', error)\n    sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, str(project)],
        cwd=Path(__file__).resolve().parent.parent.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the program broke in an apply" in result.stdout
