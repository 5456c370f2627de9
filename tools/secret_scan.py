"""Find secret-looking inputs that are not Pulumi secrets.

Policies cannot do this: the engine hands them plaintext. The harness still sees the
inputs as the program sent them, with Pulumi's secret wrapper intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tools.harness import UNKNOWN, StackRun
from tools.redact import is_secret

SECRET_KEY = re.compile(
    r"(^|[_-])(password|passwd|secret|token|auth[_-]?token|api[_-]?key|private[_-]?key|kubeconfig|credentials?)$",
    re.IGNORECASE,
)
# Names that match the pattern but hold no secret value.
NOT_SECRETS = frozenset({"ssh_key_names", "public_key", "secretName", "tokenName", "existingSecret"})


def _camel_to_words(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key)


def plaintext_secrets(run: StackRun) -> Iterator[tuple[str, str]]:
    """(resource name, input path) for each secret-looking input that is not wrapped as a secret."""
    for resource in run.resources:
        yield from ((resource.name, path) for path in _walk(dict(resource.inputs), ""))


def _walk(value: Any, path: str) -> Iterator[str]:
    if is_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            # Credentials are scalars; an object under such a key (a Kubernetes `secret:` volume) is walked.
            if key not in NOT_SECRETS and SECRET_KEY.search(_camel_to_words(str(key))) and _is_credential(item):
                yield child
                continue
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _is_credential(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value not in ("", UNKNOWN)
