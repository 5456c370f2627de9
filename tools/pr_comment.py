"""`python -m tools.pr_comment --pr N --body plans/comment.md`: post the plan comment, or update it in place.

The comment is the bot's one that starts with the plan marker; every push updates it rather than
adding another. Needs `GITHUB_TOKEN`, `GITHUB_REPOSITORY` and (on GitHub) `GITHUB_API_URL`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.github_api import GitHub, GitHubError
from tools.plan_report import COMMENT_MARKER


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pr_comment", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pr", type=int, required=True, help="pull request number")
    parser.add_argument("--body", type=Path, required=True, help="the comment, markdown")
    args = parser.parse_args(argv)
    try:
        action, comment_id = GitHub.from_env().upsert_comment(args.pr, COMMENT_MARKER, args.body.read_text())
    except (GitHubError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{action} comment {comment_id} on #{args.pr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
