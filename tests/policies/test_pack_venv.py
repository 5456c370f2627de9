"""The pack in its own virtualenv, as a user or CI runs it: a copy of policies/ alone, `python -m venv` and
`pip install -r requirements.txt` (from PyPI) inside it, then the launcher the Pulumi CLI's Python
language host uses for policy packs (`<pack>/venv/bin/python -u -m pulumi.policy <engine> <pack>`, in
the pack's directory, with the policy proxy's PULUMI_* environment), spoken to over gRPC.

Nothing runs through the project's interpreter, and nothing is cached outside the test's temporary
directory. PyPI must be reachable: without it the test fails, it does not skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from policies.pack import PACK_DIR, PACK_VERSION, all_policies
from tests.policies.analyzer_client import configure_request, serve, struct
from tools.policy_eval import POLICY_CONFIG_DIR, load_policy_config

PIP_TIMEOUT_S = 900
PROVIDER = analyzer_pb2.AnalyzerProviderResource(
    type="pulumi:providers:aws", urn="urn:pulumi:prod::sophia::pulumi:providers:aws::default", name="default"
)


@pytest.fixture(scope="module")
def pack_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of policies/ (under another name) with its virtualenv built from its requirements."""
    root = tmp_path_factory.mktemp("pack-venv")
    pack = root / "sophia-guardrails-published"
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("__pycache__", "venv", "*.pyc"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "TMPDIR": str(root),
    }
    subprocess.run([sys.executable, "-m", "venv", str(pack / "venv")], check=True, env=env, timeout=300)
    python = pack / "venv" / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--requirement", "requirements.txt"],
        cwd=pack,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )
    assert install.returncode == 0, f"pip install -r requirements.txt failed (is PyPI reachable?):\n{install.stderr}"
    return pack


def test_the_venv_holds_only_the_packs_requirements(pack_venv: Path) -> None:
    python = str(pack_venv / "venv" / "bin" / "python")
    probe = "import importlib.util as u; print([m for m in ('pulumi_aws', 'pydantic', 'settings') if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe], cwd=pack_venv, capture_output=True, text=True, check=True, env={})
    assert found.stdout.strip() == "[]"


def test_the_pack_runs_from_its_own_virtualenv_through_the_cli_launcher(pack_venv: Path) -> None:
    python = str(pack_venv / "venv" / "bin" / "python")
    with serve(pack_venv, python, stack="prod") as (stub, _):
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)
        assert (info.name, info.version) == ("sophia-guardrails", PACK_VERSION)
        assert sorted(p.name for p in info.policies) == sorted(p.name for p in all_policies())

        stub.Configure(configure_request(load_policy_config(POLICY_CONFIG_DIR / "prod.json")), timeout=60)

        def analyze(public: bool) -> list[tuple[str, int]]:
            request = analyzer_pb2.AnalyzeRequest(
                type="aws:rds/instance:Instance",
                name="db",
                urn="urn:pulumi:prod::sophia::aws:rds/instance:Instance::db",
                properties=struct(
                    {
                        "engine": "postgres",
                        "instanceClass": "db.r6g.large",
                        "allocatedStorage": 100.0,
                        "storageEncrypted": True,
                        "publiclyAccessible": public,
                        "backupRetentionPeriod": 7.0,
                        "deletionProtection": True,
                        "multiAz": True,
                        "tags": {"owner": "o", "cost-centre": "c", "environment": "prod"},
                    }
                ),
                options=analyzer_pb2.AnalyzerResourceOptions(protect=True),
                provider=PROVIDER,
            )
            response = stub.Analyze(request, timeout=60)
            return [(d.policyName, d.enforcementLevel) for d in response.diagnostics]

        assert analyze(public=False) == []
        assert analyze(public=True) == [("aws-rds-instance-not-public", analyzer_pb2.MANDATORY)]

        bucket = analyzer_pb2.AnalyzerResource(
            type="aws:s3/bucket:Bucket",
            name="open",
            urn="urn:pulumi:prod::sophia::aws:s3/bucket:Bucket::open",
            properties=struct({"bucket": "open", "arn": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"}),
            provider=PROVIDER,
        )
        stack = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[bucket]), timeout=60)
        found = {(d.policyName, d.urn) for d in stack.diagnostics}
        assert ("aws-s3-bucket-public-access-blocked", bucket.urn) in found
        assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in stack.diagnostics)

        with pytest.raises(grpc.RpcError) as refused:
            stub.Configure(configure_request(load_policy_config(POLICY_CONFIG_DIR / "dev.json")), timeout=60)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
