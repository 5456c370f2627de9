"""Real tools the tests run (promtool, amtool, ...): found on PATH, or the test fails loudly."""

from __future__ import annotations

import shutil

import pytest


def require_tool(binary: str) -> str:
    """The tool's path; fails (never skips) when missing, since `make test` installs it."""
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: `make test` installs it (scripts/install-system-deps.sh)")
    return path
