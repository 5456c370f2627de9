"""Backup and restore-verification settings: each rule, broken alone on the valid prod config, names its key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.settings.broken import Broken, assert_rejected, backups, monitoring

BROKEN: list[Broken] = [
    (
        "replica in the same region",
        "sophia:backups",
        backups(replicaRegion="us-west-1"),
        "sophia:backups.replicaRegion",
    ),
    (
        "replica bucket is the source",
        "sophia:backups",
        backups(replicaBucket="sophia-prod-backups"),
        "sophia:backups.replicaBucket",
    ),
    ("replica bucket without region", "sophia:backups", backups(replicaRegion=None), "sophia:backups.replicaRegion"),
    (
        "prod without a replica",
        "sophia:backups",
        backups(replicaRegion=None, replicaBucket=None),
        "sophia:backups.replicaBucket",
    ),
    (
        "bad cron",
        "sophia:monitoring",
        monitoring(restoreVerification={"schedule": "daily"}),
        "sophia:monitoring.restoreVerification.schedule",
    ),
]


@pytest.mark.parametrize(("case", "key", "value", "expected_key"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_names_its_key(case: str, key: str, value: Any, expected_key: str) -> None:
    assert_rejected(key, value, expected_key)
