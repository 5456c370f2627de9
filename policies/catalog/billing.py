"""Loader for `billing.json`: how each resource type bills, for the types the cost model does not price."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

BILLING_PATH = Path(__file__).with_name("billing.json")
CATEGORIES = ("opaque", "usage", "free")
"""In order of precedence: a type matching an opaque pattern is opaque even if a free one matches too."""


@dataclass(frozen=True)
class BillingClasses:
    patterns: Mapping[str, Mapping[str, str]]
    """category -> type pattern (fnmatch) -> why."""

    def classify(self, resource_type: str) -> tuple[str, str] | None:
        """(category, reason) of the first matching pattern, exact names before wildcards."""
        for category in CATEGORIES:
            table = self.patterns.get(category, {})
            if resource_type in table:
                return category, table[resource_type]
            for pattern, reason in table.items():
                if fnmatch.fnmatchcase(resource_type, pattern):
                    return category, reason
        return None


@cache
def load_billing_classes(path: Path = BILLING_PATH) -> BillingClasses:
    document = json.loads(path.read_text(encoding="utf-8"))
    return BillingClasses(MappingProxyType({c: MappingProxyType(dict(document.get(c, {}))) for c in CATEGORIES}))
