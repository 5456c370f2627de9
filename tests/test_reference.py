"""`scripts/fetch-reference.sh` fetches every reference file the tests read, pinned by sha256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.k8s_schemas import CRD_DIR
from tests.providers.lambda_cloud.openapi import SPEC_PATH

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fetch-reference.sh"
REFERENCE = CRD_DIR.parent


def listed() -> dict[str, str]:
    """path -> sha256 of every entry of the script."""
    entries = re.findall(r'^\s+"([^"|]+)\|([0-9a-f]{64})\|[^"]+"$', SCRIPT.read_text(), re.MULTILINE)
    return dict(entries)


def test_every_file_the_tests_read_is_fetched_with_its_checksum() -> None:
    read_by_tests = {str(SPEC_PATH.relative_to(REFERENCE))} | {f"crds/{p.name}" for p in CRD_DIR.glob("*.yaml")}
    entries = listed()
    # The remote manifests the program applies are optional here: the harness expands them when
    # they are fetched (CI) and reports their children as not analyzed when not (this machine).
    optional = {path for path in entries if path.startswith("manifests/")}
    assert set(entries) - optional == read_by_tests
    for path, digest in entries.items():
        if path in optional and not (REFERENCE / path).exists():
            continue
        assert hashlib.sha256((REFERENCE / path).read_bytes()).hexdigest() == digest, path
