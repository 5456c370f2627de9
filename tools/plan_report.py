"""The plan as a pull-request reviewer reads it (pure: documents in, text out).

`plan_document` (tools/plan.py) is the JSON a run produces; this module compares two of them
(`compare`) and renders one, with or without the comparison, as GitHub markdown with a Mermaid
diagram of the components (`render_markdown`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.catalog import HOURS_PER_MONTH

Document = Mapping[str, Any]
COMMENT_MARKER = "<!-- sophia-plan -->"
HOURS = float(HOURS_PER_MONTH)


@dataclass(frozen=True)
class Change:
    """One resource that differs between two plans."""

    urn: str
    name: str
    type: str
    keys: tuple[str, ...] = ()
    """Top-level inputs that differ (for changed resources)."""


@dataclass(frozen=True)
class Comparison:
    added: tuple[Change, ...] = ()
    removed: tuple[Change, ...] = ()
    changed: tuple[Change, ...] = ()
    cost_delta_usd: float | None = 0.0
    """None when the base plan carries no cost (a base too old to price, or one that failed)."""
    group_deltas: Mapping[str, float] = field(default_factory=dict)
    base_verdict: str | None = None
    """How the base branch's plan of this stack ended, when it was not clean."""

    @property
    def empty(self) -> bool:
        no_cost_change = self.cost_delta_usd is not None and abs(self.cost_delta_usd) < 0.005
        return not (self.added or self.removed or self.changed) and no_cost_change


def _by_urn(document: Document) -> dict[str, Mapping[str, Any]]:
    return {r["urn"]: r for r in document.get("resources", [])}


def _groups(document: Document) -> dict[str, float]:
    return dict((document.get("cost") or {}).get("byGroup", {}))


def compare(old: Document, new: Document, base_verdict: str | None = None) -> Comparison:
    """What `new` adds, removes and changes relative to `old`, and the monthly cost difference."""
    before, after = _by_urn(old), _by_urn(new)
    added = tuple(Change(u, after[u]["name"], after[u]["type"]) for u in sorted(after.keys() - before.keys()))
    removed = tuple(Change(u, before[u]["name"], before[u]["type"]) for u in sorted(before.keys() - after.keys()))
    changed = []
    for urn in sorted(before.keys() & after.keys()):
        old_inputs, new_inputs = before[urn].get("inputs") or {}, after[urn].get("inputs") or {}
        keys = tuple(sorted(k for k in old_inputs.keys() | new_inputs.keys() if old_inputs.get(k) != new_inputs.get(k)))
        protect_changed = before[urn].get("protect") != after[urn].get("protect")
        if keys or protect_changed:
            changed.append(Change(urn, after[urn]["name"], after[urn]["type"], keys + (("protect",) * protect_changed)))
    old_groups, new_groups = _groups(old), _groups(new)
    deltas = {
        group: round(new_groups.get(group, 0.0) - old_groups.get(group, 0.0), 2)
        for group in sorted(old_groups.keys() | new_groups.keys())
        if abs(new_groups.get(group, 0.0) - old_groups.get(group, 0.0)) >= 0.005
    }
    old_cost = (old.get("cost") or {}).get("monthlyUsd")
    new_total = float((new.get("cost") or {}).get("monthlyUsd", 0.0))
    delta = None if old_cost is None else round(new_total - float(old_cost), 2)
    return Comparison(added, removed, tuple(changed), delta, deltas if old_cost is not None else {}, base_verdict)


def component_tree(document: Document) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    """The program's own components (`sophia:` types) and each one's nearest component ancestor."""
    resources = _by_urn(document)
    components = {u: r for u, r in resources.items() if str(r["type"]).startswith("sophia:")}
    parents: dict[str, str] = {}
    for urn, component in components.items():
        parent = component.get("parent")
        while parent and parent not in components:
            parent = (resources.get(parent) or {}).get("parent")
        if parent:
            parents[urn] = parent
    return components, parents


def cost_by_component(document: Document) -> dict[str, float]:
    """Monthly cost per top-level component (the platform's direct component children)."""
    resources = _by_urn(document)
    components, parents = component_tree(document)
    roots = {u for u in components if parents.get(u) is None}
    tops = {u for u, p in parents.items() if p in roots}
    items = (document.get("cost") or {}).get("items", [])
    totals: dict[str, float] = {}
    for item in items:
        urn = item["urn"]
        while urn and urn not in tops:
            urn = (resources.get(urn) or {}).get("parent")
        name = components[urn]["name"] if urn in components else "(stack)"
        totals[name] = totals.get(name, 0.0) + float(item["monthlyUsd"])
    return {name: round(amount, 2) for name, amount in sorted(totals.items())}


def mermaid(document: Document) -> str:
    """A flowchart of the components: nesting as edges, one node per component."""
    components, parents = component_tree(document)
    ids = {urn: f"c{index}" for index, urn in enumerate(sorted(components))}
    lines = ["flowchart LR"]
    for urn in sorted(components):
        component = components[urn]
        kind = str(component["type"]).rsplit(":", 1)[-1]
        lines.append(f'  {ids[urn]}["{component["name"]}<br/><small>{kind}</small>"]')
    for urn, parent in sorted(parents.items()):
        lines.append(f"  {ids[parent]} --> {ids[urn]}")
    return "\n".join(lines)


def _money(amount: float, signed: bool = False) -> str:
    return f"{'+' if signed and amount > 0 else ''}{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def _comparison_section(comparison: Comparison, max_items: int | None = None) -> list[str]:
    base = [f"The base branch's plan: {comparison.base_verdict}.", ""] if comparison.base_verdict else []
    if comparison.empty:
        return [*base, "No change against the base branch.", ""]
    out = [
        *base,
        "| change | count |",
        "|---|---|",
        f"| added | {len(comparison.added)} |",
        f"| removed | {len(comparison.removed)} |",
        f"| changed | {len(comparison.changed)} |",
        "",
    ]
    for title, changes in (
        ("Removed", comparison.removed),
        ("Added", comparison.added),
        ("Changed", comparison.changed),
    ):
        if changes:
            out.append(f"<details><summary>{title} ({len(changes)})</summary>\n")
            shown = changes if max_items is None else changes[:max_items]
            for change in shown:
                keys = f": {', '.join(change.keys)}" if change.keys else ""
                out.append(f"- `{change.name}` ({change.type}){keys}")
            if len(shown) < len(changes):
                out.append(f"- ... and {len(changes) - len(shown)} more (the full plan is in the run's artifacts)")
            out += ["", "</details>", ""]
    if comparison.group_deltas:
        out += ["| cost group | change / month |", "|---|---|"]
        out += [f"| {g} | {_money(d, signed=True)} |" for g, d in comparison.group_deltas.items()]
        out.append("")
    return out


def _cost_section(document: Document) -> list[str]:
    cost = document.get("cost") or {}
    monthly = float(cost.get("monthlyUsd", 0.0))
    out: list[str] = []
    groups = cost.get("byGroup", {})
    if groups:
        out += ["| cost group | per month | per hour |", "|---|---:|---:|"]
        out += [f"| {g} | {_money(a)} | {_money(a / HOURS)} |" for g, a in groups.items()]
        out += [f"| **total** | **{_money(monthly)}** | {_money(monthly / HOURS)} |", ""]
    pools = document.get("autoscaling") or []
    if pools:
        out += ["| autoscaled pool | floor / month | expected burst / month | off-hours saving / month |"]
        out += ["|---|---:|---:|---:|"]
        out += [
            f"| {p['pool']} | {_money(p['floorMonthlyUsd'])} | {_money(p['expectedBurstMonthlyUsd'])} "
            f"| {_money(p['offHoursSavingMonthlyUsd'])} |"
            for p in pools
        ]
        out.append("")
    by_kind = cost.get("byServiceKind", {})
    if by_kind:
        out += ["| service kind (share of its pools) | per month |", "|---|---:|"]
        out += [f"| {kind} | {_money(amount)} |" for kind, amount in by_kind.items()]
        out.append("")
    by_component = cost_by_component(document)
    if by_component:
        out += ["| component | per month |", "|---|---:|"]
        out += [f"| {name} | {_money(amount)} |" for name, amount in by_component.items()]
        out.append("")
    return out


def _policy_section(document: Document, max_items: int | None = None) -> list[str]:
    violations: Sequence[Mapping[str, Any]] = (document.get("policies") or {}).get("violations", [])
    if not violations:
        return ["Policies: no violations.", ""]
    out = ["| policy | level | severity | resource | finding | fix |", "|---|---|---|---|---|---|"]
    shown = violations if max_items is None else violations[:max_items]
    if len(shown) < len(violations):
        out.insert(0, f"{len(violations)} violations; the first {len(shown)}:")
    for v in shown:
        resource = str(v.get("urn") or "stack").rsplit("::", 1)[-1]
        finding = f"{v['message']} | {v['remediation']}"
        out.append(f"| `{v['policy']}` | {v['level']} | {v['severity']} | `{resource}` | {finding} |")
    return [*out, ""]


def verdict(exit_code: int) -> str:
    return {0: "clean", 1: "blocked: mandatory policy violation or over budget"}.get(exit_code, "bad input")


def render_markdown(
    document: Document,
    comparison: Comparison | None = None,
    exit_code: int = 0,
    *,
    marker: bool = True,
    diagram: bool = True,
    max_items: int | None = None,
) -> str:
    """One PR comment: verdict, cost against budget (and the base branch), changes, policies, diagram.

    `diagram=False` and `max_items` make a shorter rendering for a comment that must fit GitHub's limit."""
    monthly = float((document.get("cost") or {}).get("monthlyUsd", 0.0))
    budget = document.get("budgetUsd")
    budget_text = f" of {_money(float(budget))} budget ({monthly / float(budget):.0%})" if budget else ""
    delta_text = ""
    if comparison is not None and comparison.cost_delta_usd is not None:
        delta_text = f", {_money(comparison.cost_delta_usd, signed=True)} against the base branch"
    elif comparison is not None:
        delta_text = ", the base branch's cost is unknown"
    resources = len(document.get("resources", []))
    out = [
        *([COMMENT_MARKER] if marker else []),
        f"### Plan: `{document.get('stack', '?')}` ({verdict(exit_code)})",
        "",
        f"**{_money(monthly)}/month**{budget_text}{delta_text}; {resources} resources.",
        "",
    ]
    if comparison is not None:
        out += _comparison_section(comparison, max_items)
    out += _cost_section(document) + _policy_section(document, max_items)
    if diagram:
        out += ["<details><summary>Components</summary>", "", "```mermaid", mermaid(document), "```", "", "</details>"]
    return "\n".join(out) + "\n"
