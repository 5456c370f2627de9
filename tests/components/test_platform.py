from __future__ import annotations

import json

from tools.harness import run_stack


def test_dr_gets_an_explicit_tagged_aws_provider() -> None:
    run = run_stack("dr")
    provider = run.named("sophia-dr-aws")
    assert provider.type == "pulumi:providers:aws"
    assert provider.parent == run.named("sophia-dr").urn
    assert provider.inputs["region"] == "us-east-1"
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "project": "sophia",
        "environment": "dr",
        "owner": "platform-infra",
        "cost-centre": "sophia-ai-dr",
        "managed-by": "pulumi",
    }


def test_stacks_without_dr_settings_have_no_aws_provider() -> None:
    assert run_stack("prod").by_type("pulumi:providers:aws") == []
