"""`python -m tools.plan --stack prod [--format text|json|markdown] [--compare OLD.json]`: what a
stack would create, what it costs and which policies it breaks, offline.

Exit codes: 0 clean; 1 a mandatory policy is violated or the stack is over its budget; 2 bad input
(bad stack or policy config; a --compare file that is unreadable, not a plan, or a plan of another
stack unless --compare-other-stack; --compare with a format other than markdown), with one line on
stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pulumi
from jsonschema import Draft202012Validator

from policies.catalog import HOURS_PER_MONTH
from policies.costing import CostReport
from policies.pack import PACK_NAME, PACK_VERSION
from settings import SettingsError
from tools.harness import RegisteredResource, StackFileError, StackRun, run_stack
from tools.plan_cost import autoscaling_outlook, stack_cost
from tools.plan_report import compare, render_markdown
from tools.policy_eval import POLICY_CONFIG_DIR, Evaluation, PolicyConfigError, evaluate, load_policy_config
from tools.redact import redact
from tools.service_cost import FleetCost, fleet_cost

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
        cost_document: dict[str, object] = {
            "monthlyUsd": _cents(cost.monthly_usd),
            "hourlyUsd": float(cost.hourly_usd.quantize(Decimal("0.0001"))),
            "byGroup": {group: _cents(amount) for group, amount in cost.by_group().items()},
            "unpriced": [
                {"urn": u.urn, "name": u.name, "type": u.resource_type, "reason": u.reason} for u in cost.unpriced
            ],
            "unknown": [
                {"urn": u.urn, "name": u.name, "type": u.resource_type, "reason": u.reason} for u in cost.unknown
            ],
            "items": [
                {"urn": i.urn, "name": i.name, "group": i.group, "monthlyUsd": _cents(i.monthly_usd)}
                for i in cost.items
            ],
        }
        fleet = fleet_cost(run, cost)
        if fleet is not None:
            # Each service's share of its pools (tools/service_cost.py): the pools' cost, split by kind.
            cost_document["byServiceKind"] = {k: _cents(v) for k, v in fleet.by_kind().items()}
            cost_document["byService"] = {k: _cents(v) for k, v in fleet.by_service().items()}
        document["cost"] = cost_document
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
    pools = autoscaling_outlook(run)
    if pools:
        document["autoscaling"] = [
            {
                "pool": p.pool,
                "instanceType": p.instance_type,
                "floorMonthlyUsd": float(p.floor_usd),
                "expectedBurstMonthlyUsd": float(p.expected_burst_usd),
                "offHoursSavingMonthlyUsd": float(p.off_hours_saving_usd),
            }
            for p in pools
        ]
    return document


def _cents(amount: Decimal) -> float:
    """Rounded as the text view prints it (Decimal's half-even), so the JSON and the text agree."""
    return float(amount.quantize(Decimal("0.01")))


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


def render_fleet_cost(fleet: FleetCost, out: TextIO) -> None:
    out.write("\nService fleet per month by kind (each service's share of its pools):\n")
    kinds = fleet.by_kind()
    width = max((len(k) for k in kinds), default=4)
    for kind, amount in kinds.items():
        out.write(f"  {kind:<{width}}  ${amount:>12,.2f}\n")


def render_autoscaling(document: dict[str, Any], out: TextIO) -> None:
    pools = document.get("autoscaling") or []
    if not pools:
        return
    out.write(
        "\nAutoscaled pools, per month (floor: in the total above; burst: expected, not in it; "
        "policies/costing/autoscaling.py says how):\n"
    )
    width = max(len(p["pool"]) for p in pools)
    out.write(f"  {'pool':<{width}}  {'floor':>12}  {'expected burst':>14}  {'off-hours saving':>16}\n")
    for p in pools:
        out.write(
            f"  {p['pool']:<{width}}  ${p['floorMonthlyUsd']:>11,.2f}  ${p['expectedBurstMonthlyUsd']:>13,.2f}"
            f"  ${p['offHoursSavingMonthlyUsd']:>15,.2f}\n"
        )


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
    parser.add_argument("--compare", type=Path, help="a JSON plan of the base branch to compare with (markdown)")
    parser.add_argument(
        "--compare-other-stack", action="store_true", help="allow --compare with a plan of another stack"
    )
    parser.add_argument("--policy-config", type=Path, help="policy pack config (default policies/config/<stack>.json)")
    args = parser.parse_args(argv)
    config_path = args.policy_config or POLICY_CONFIG_DIR / f"{args.stack}.json"
    if args.compare and args.format != "markdown":
        err.write(f"error: --compare (COMPARE=) applies to --format markdown only, not {args.format}\n")
        return EXIT_BAD_INPUT
    try:
        old = _read_plan(args.compare, None if args.compare_other_stack else args.stack) if args.compare else None
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
        render_autoscaling(document, out)
        fleet = fleet_cost(run, cost)
        if fleet is not None and fleet.services:
            render_fleet_cost(fleet, out)
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


def _read_plan(path: Path, stack: str | None) -> dict[str, Any]:
    """A plan written by `--format json`, checked before anything reads it; of `stack` if given."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise PlanFileError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise PlanFileError(f"{path} is not JSON ({error.msg} at line {error.lineno})") from None
    problem = next(iter(sorted(_PLAN_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))), None)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "the document"
        message = problem.message if len(problem.message) <= 120 else problem.message[:117] + "..."
        raise PlanFileError(f"{path} is not a plan (make -s plan FORMAT=json writes one): {where}: {message}")
    if stack is not None and document["stack"] != stack:
        raise PlanFileError(
            f"{path} is a plan of stack {document['stack']!r}, not {stack!r} (--compare-other-stack to compare anyway)"
        )
    assert isinstance(document, dict)
    return document


# What `plan_document` writes and `compare` and `render_markdown` read.
_NUMBER = {"type": "number"}
_PLAN_VALIDATOR = Draft202012Validator(
    {
        "type": "object",
        "required": ["stack", "resources"],
        "properties": {
            "stack": {"type": "string"},
            "resources": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["urn", "name", "type"],
                    "properties": {
                        "urn": {"type": "string"},
                        "name": {"type": "string"},
                        "type": {"type": "string"},
                        "parent": {"type": ["string", "null"]},
                        "protect": {"type": "boolean"},
                        "inputs": {"type": ["object", "null"]},
                    },
                },
            },
            "budgetUsd": _NUMBER,
            "cost": {
                "type": "object",
                "properties": {
                    "monthlyUsd": _NUMBER,
                    "hourlyUsd": _NUMBER,
                    "byGroup": {"type": "object", "additionalProperties": _NUMBER},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["urn", "monthlyUsd"],
                            "properties": {"urn": {"type": "string"}, "monthlyUsd": _NUMBER},
                        },
                    },
                },
            },
            "policies": {
                "type": "object",
                "properties": {"violations": {"type": "array", "items": {"type": "object"}}},
            },
        },
    }
)

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `make plan | head`
        sys.stderr.close()
        sys.exit(EXIT_OK)
