"""`python -m tools.drift_issue --stack prod --drifted|--clean [--details FILE]`: where drift is reported.

A drifted stack opens the issue "Drift detected: <stack>" (label `drift`), or comments on it if it
is already open, with the refresh's output and a link to the run; a clean check closes it. Needs
`GITHUB_TOKEN`, `GITHUB_REPOSITORY` and (on GitHub) `GITHUB_API_URL`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.github_api import GitHub, GitHubError

LABEL = "drift"
# The refresh output can be long; the issue keeps its end, where the summary is.
DETAILS_CHARS = 50_000


def title(stack: str) -> str:
    return f"Drift detected: {stack}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drift_issue", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", required=True)
    state = parser.add_mutually_exclusive_group(required=True)
    state.add_argument("--drifted", action="store_true")
    state.add_argument("--clean", action="store_true")
    parser.add_argument("--details", type=Path, help="the refresh's output")
    args = parser.parse_args(argv)
    run = "/".join(os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY")) + (
        f"/actions/runs/{os.environ['GITHUB_RUN_ID']}" if os.environ.get("GITHUB_RUN_ID") else ""
    )
    try:
        github = GitHub.from_env()
        if args.clean:
            closed = github.close_issue(title(args.stack), LABEL, f"No drift in `{args.stack}` any more ({run}).")
            print(f"{args.stack}: clean" + (f", closed #{closed}" if closed else ""))
            return 0
        details = args.details.read_text(errors="replace")[-DETAILS_CHARS:] if args.details else ""
        body = (
            f"`pulumi refresh --preview-only --expect-no-changes` found drift in `{args.stack}` ({run}).\n\n"
            "Reconcile with `pulumi up` (to put the cloud back as the code says) or change the code, "
            f"then the next drift check closes this issue.\n\n```\n{details}\n```\n"
        )
        action, number = github.report_issue(title(args.stack), LABEL, body)
    except (GitHubError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.stack}: drift, {action} #{number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
