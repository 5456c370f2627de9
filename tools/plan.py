"""`python -m tools.plan --stack prod [--format text|json|markdown] [--compare OLD.json]`: what a
stack would create, what it costs and which policies it breaks, offline.

Exit codes: 0 clean; 1 a mandatory policy is violated or the stack is over its budget; 2 bad input
(bad stack or policy config, an unreadable --compare file), with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pulumi

from policies.catalog import HOURS_PER_MONTH
from policies.costing import CostReport
from policies.pack import PACK_NAME, PACK_VERSION
from settings import SettingsError
from tools.harness import RegisteredResource, StackFileError, StackRun, run_stack
from tools.plan_cost import stack_cost
from tools.plan_report import compare, render_markdown
from tools.policy_eval import POLICY_CONFIG_DIR, Evaluation, PolicyConfigError, evaluate, load_policy_config
from tools.redact import redact

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2


def plan_document(
    run: StackRun, cost: CostReport | None = None, evaluation: Evaluation | None = None
) -> dict[str, object]:
    """The JSON plan: every resource as the engine sees it (secrets redacted), cost and policy verdicts."""
    document: dict[str, object] = {
        "project": run.project,
        "stack": run.stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "parent": r.parent,
                "protect": r.protect,
                "inputs": redact(dict(r.inputs)),
            }
            for r in run.resources
        ],
        "outputs": redact(dict(run.outputs)),
    }
    if cost is not None:
        document["cost"] = {
            "monthlyUsd": round(float(cost.monthly_usd), 2),
            "hourlyUsd": round(float(cost.hourly_usd), 4),
            "byGroup": {group: round(float(amount), 2) for group, amount in cost.by_group().items()},
            "unpriced": [
                {"urn": u.urn, "name": u.name, "type": u.resource_type, "reason": u.reason} for u in cost.unpriced
            ],
            "unknown": [
                {"urn": u.urn, "name": u.name, "type": u.resource_type, "reason": u.reason} for u in cost.unknown
            ],
            "items": [
                {"urn": i.urn, "name": i.name, "group": i.group, "monthlyUsd": round(float(i.monthly_usd), 2)}
                for i in cost.items
            ],
        }
    budget = run.outputs.get("monthlyBudgetUsd")
    if isinstance(budget, (int, float)):
        document["budgetUsd"] = float(budget)
    if evaluation is not None:
        document["policies"] = {
            "violations": [
                {
                    "policy": v.policy,
                    "level": v.level,
                    "severity": v.severity,
                    "urn": v.urn,
                    "message": v.message,
                    "remediation": v.remediation,
                }
                for v in evaluation.violations
            ],
            "skipped": [{"policy": name, "reason": reason} for name, reason in evaluation.skipped],
        }
    return document


def render_cost(cost: CostReport, budget: float | None, out: TextIO) -> None:
    out.write("\nCost per month (catalog prices, 730 h):\n")
    groups = cost.by_group()
    width = max((len(g) for g in groups), default=5)
    for group, amount in groups.items():
        out.write(f"  {group:<{width}}  ${amount:>12,.2f}  (${amount / HOURS_PER_MONTH:,.2f}/h)\n")
    total = cost.monthly_usd
    share = f" of ${budget:,.0f} budget ({float(total) / budget:.0%})" if budget else ""
    out.write(f"  {'total':<{width}}  ${total:>12,.2f}{share}\n")
    for item in cost.unpriced:
        out.write(f"  not priced: {item.name} ({item.resource_type}): {item.reason}\n")
    if cost.unknown:
        out.write(f"  not priced yet (a price input is unknown until deployment): {len(cost.unknown)}\n")


def render_policies(evaluation: Evaluation, config_path: Path, out: TextIO) -> None:
    mandatory = len(evaluation.mandatory)
    out.write(
        f"\nPolicies ({PACK_NAME} {PACK_VERSION}, config {config_path.name}): "
        f"{len(evaluation.violations)} violations, {mandatory} mandatory\n"
    )
    for v in sorted(evaluation.violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn or "")):
        target = f" {v.resource_name}:" if v.resource_name else ""
        out.write(f"  [{v.level}, {v.severity}] {v.policy}:{target} {v.message}\n      fix: {v.remediation}\n")
    for name, reason in evaluation.skipped:
        out.write(f"  [skipped] {name}: {reason}\n")


def render_text(run: StackRun, out: TextIO) -> None:
    children: dict[str | None, list[RegisteredResource]] = {}
    urns = {r.urn for r in run.resources}
    for resource in run.resources:
        parent = resource.parent if resource.parent in urns else None
        children.setdefault(parent, []).append(resource)

    out.write(f"Stack {run.project}/{run.stack}: {len(run.resources)} resources\n\n")

    def walk(parent: str | None, depth: int) -> None:
        for resource in children.get(parent, []):
            flags = " [protect]" if resource.protect else ""
            out.write(f"{'  ' * depth}{resource.name} ({resource.type}){flags}\n")
            walk(resource.urn, depth + 1)

    walk(None, 0)
    out.write("\nBy type:\n")
    counts = Counter(r.type for r in run.resources)
    width = max((len(t) for t in counts), default=0)
    for type_, count in sorted(counts.items()):
        out.write(f"  {type_:<{width}}  {count}\n")
    if run.outputs:
        out.write("\nOutputs:\n")
        for key, value in sorted(redact(dict(run.outputs)).items()):
            out.write(f"  {key}: {json.dumps(value)}\n")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(prog="plan", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="prod", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    parser.add_argument("--compare", type=Path, help="a JSON plan of the base branch to compare with")
    parser.add_argument("--policy-config", type=Path, help="policy pack config (default policies/config/<stack>.json)")
    args = parser.parse_args(argv)
    config_path = args.policy_config or POLICY_CONFIG_DIR / f"{args.stack}.json"
    try:
        old = _read_plan(args.compare) if args.compare else None
        run = run_stack(args.stack)
        evaluation = evaluate(run, load_policy_config(config_path))
    except (SettingsError, StackFileError, PolicyConfigError, PlanFileError, pulumi.RunError) as error:
        err.write(f"error: {error}\n")
        return EXIT_BAD_INPUT
    cost = stack_cost(run)
    document = plan_document(run, cost, evaluation)
    budget = document.get("budgetUsd")
    budget = budget if isinstance(budget, float) else None
    over_budget = budget is not None and float(cost.monthly_usd) > budget
    code = EXIT_VIOLATION if evaluation.mandatory or over_budget else EXIT_OK
    if args.format == "json":
        json.dump(document, out, indent=2, sort_keys=True)
        out.write("\n")
    elif args.format == "markdown":
        out.write(render_markdown(document, compare(old, document) if old is not None else None, code))
    else:
        render_text(run, out)
        render_cost(cost, budget, out)
        render_policies(evaluation, config_path, out)
    if evaluation.mandatory:
        first = evaluation.mandatory[0]
        err.write(
            f"error: {len(evaluation.mandatory)} mandatory policy violations, first: {first.policy} on "
            f"{first.resource_name or 'the stack'}: {first.message}\n"
        )
    elif over_budget:
        err.write(f"error: ${float(cost.monthly_usd):,.2f} a month is over the ${budget:,.0f} budget\n")
    return code


class PlanFileError(ValueError):
    """A --compare file that is missing, unreadable or not a plan."""


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PlanFileError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path} is not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise PlanFileError(f"{path} is not a plan (make -s plan FORMAT=json writes one)")
    return document


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `make plan | head`
        sys.stderr.close()
        sys.exit(EXIT_OK)
