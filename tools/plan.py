"""`python -m tools.plan --stack prod [--format text|json]`: what a stack would create, offline.

Exit codes: 0 plan printed; 2 bad input (bad config, unreadable stack file), with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

import pulumi

from settings import SettingsError
from tools.harness import RegisteredResource, StackFileError, StackRun, run_stack
from tools.redact import redact

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def plan_document(run: StackRun) -> dict[str, object]:
    """The JSON plan: every resource as the engine sees it, secrets redacted."""
    return {
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
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        run = run_stack(args.stack)
    except (SettingsError, StackFileError, pulumi.RunError) as error:
        err.write(f"error: {error}\n")
        return EXIT_BAD_INPUT
    if args.format == "json":
        json.dump(plan_document(run), out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        render_text(run, out)
    return EXIT_OK


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `make plan | head`
        sys.stderr.close()
        sys.exit(EXIT_OK)
