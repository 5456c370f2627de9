"""Plays a GitHub Actions job's `run:` steps here, as the runner would: bash -eo pipefail, the step's
`env:` with its expressions resolved, `if:` conditions, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`.

`uses:` steps are not played (they need GitHub); a test sets up what they would leave behind (a
checkout, a Python). Expressions support what our workflows use: contexts (`github`, `vars`,
`matrix`, `steps`, `secrets`), string literals, `==`, `!=`, `&&`, `||`, `!`, `always()`,
`success()`, `failure()`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|[A-Za-z_][A-Za-z0-9_.\-\[\]']*\(\)|[A-Za-z_][A-Za-z0-9_.\-]*)")


@dataclass
class Played:
    name: str
    ran: bool
    status: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class Job:
    """One job of a workflow file, and the contexts its expressions read."""

    workflow: Path
    job: str
    contexts: dict[str, Any] = field(default_factory=dict)
    played: list[Played] = field(default_factory=list)

    @property
    def steps(self) -> list[dict[str, Any]]:
        document = yaml.safe_load(self.workflow.read_text())
        steps: list[dict[str, Any]] = document["jobs"][self.job]["steps"]
        return steps

    def play(self, workdir: Path, env: Mapping[str, str], only: set[str] | None = None) -> list[Played]:
        """Run every `run:` step (or those named in `only`) in `workdir`; returns what each did."""
        self.contexts.setdefault("steps", {})
        failed = any(p.status for p in self.played if p.ran)
        results = []
        for step in self.steps:
            name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            if "uses" in step or (only is not None and name not in only):
                continue
            condition = step.get("if", "success()")
            if not self.evaluate(str(condition), failed=failed):
                results.append(Played(name, ran=False))
                continue
            outputs = workdir / f".github-output-{len(self.played)}"
            outputs.write_text("")
            step_env = {**env, **{k: str(self.substitute(str(v), failed)) for k, v in (step.get("env") or {}).items()}}
            step_env["GITHUB_OUTPUT"] = str(outputs)
            result = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
                cwd=workdir,
                env=step_env,
                capture_output=True,
                text=True,
                check=False,
                timeout=1800,
            )
            played = Played(name, True, result.returncode, result.stdout, result.stderr)
            results.append(played)
            self.played.append(played)
            failed = failed or result.returncode != 0
            if "id" in step:
                pairs = (line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
                self.contexts["steps"][step["id"]] = {"outputs": dict(pairs)}
        return results

    # -- expressions ------------------------------------------------------------------------

    def substitute(self, text: str, failed: bool = False) -> Any:
        return _EXPRESSION.sub(lambda m: _text(self.evaluate(m.group(1), failed=failed)), text)

    def evaluate(self, expression: str, *, failed: bool = False) -> Any:
        expression = _EXPRESSION.sub(lambda m: m.group(1), expression.strip())
        tokens = [t for t in _TOKEN.findall(expression) if t]
        if "".join(tokens).replace(" ", "") != expression.replace(" ", "").replace("\n", ""):
            raise ValueError(f"expression not understood: {expression!r}")
        python = []
        for token in tokens:
            if token == "&&":
                python.append(" and ")
            elif token == "||":
                python.append(" or ")
            elif token == "!":
                python.append(" not ")
            elif token in ("==", "!=", "(", ")"):
                python.append(f" {token} ")
            elif token.startswith("'"):
                python.append(repr(token.strip("'")))
            elif token == "always()":
                python.append("True")
            elif token == "success()":
                python.append(repr(not failed))
            elif token == "failure()":
                python.append(repr(failed))
            else:
                python.append(repr(self._lookup(token)))
        return eval("".join(python), {"__builtins__": {}})

    def _lookup(self, path: str) -> Any:
        value: Any = self.contexts
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def runner_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment a runner gives every step: PATH, HOME, the step summary file."""
    summary = tmp / "step-summary.md"
    summary.touch()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "GITHUB_STEP_SUMMARY": str(summary),
        "CI": "true",
        **extra,
    }
