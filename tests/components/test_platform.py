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


def test_primary_stacks_get_aws_providers_only_for_their_backup_buckets() -> None:
    prod = {p.name: p.inputs["region"] for p in run_stack("prod").by_type("pulumi:providers:aws")}
    assert prod == {"sophia-prod-aws-backups": "us-west-1", "sophia-prod-aws-backup-replica": "us-east-1"}
    dev = {p.name: p.inputs["region"] for p in run_stack("dev").by_type("pulumi:providers:aws")}
    assert dev == {"sophia-dev-aws-backups": "us-west-1"}
