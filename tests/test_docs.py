"""The README stays short, every link in the docs resolves, and every alert's runbook link lands."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from components.observability.alert_rules import CostFacts, PoolFacts, render_rule_groups
from components.services.alerts import render_service_rules
from settings import parse_settings
from settings.observability import AlertThresholds
from tests.helpers import stack_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """Explicit `<a id>` anchors and GitHub's slugs of the page's headings."""
    text = page.read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)} links to a missing {target}"
        if anchor:
            assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)} links to a missing anchor {target}"


def _alerts() -> list[dict[str, Any]]:
    document = render_rule_groups(
        AlertThresholds(),
        [PoolFacts("ai-core", Decimal("1.49"), 10)],
        CostFacts(Decimal("1.49"), Decimal(1000)),
        ["postgres"],
        30,
        dr_addresses=["203.0.113.7"],
    )
    services = render_service_rules(parse_settings(stack_config("prod")).services, "sophia-apps", AlertThresholds())
    groups = [*document["groups"], *services["groups"]]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alerts_runbook_link_lands_in_the_readme_and_the_alert_table() -> None:
    readme = _anchors(ROOT / "README.md")
    table = _anchors(ROOT / "docs" / "monitoring.md")
    alerts = _alerts()
    assert len(alerts) >= 15
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        anchor = url.partition("#")[2]
        assert url.split("#")[0].endswith("/README.md"), url
        assert anchor in readme, f"{rule['alert']}: README.md has no anchor {anchor}"
        assert anchor in table, f"{rule['alert']}: docs/monitoring.md has no row {anchor}"
