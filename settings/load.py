"""Turn the engine's config map (`sophia:<key>` -> string) into `StackSettings`, or one `SettingsError`."""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from settings.errors import Problem, RuleError, SettingsError
from settings.model import StackSettings

NAMESPACE = "sophia"

# Keys that are not settings: secrets the program reads with `require_secret`, and the
# Lambda endpoint and key the dynamic provider reads at call time (`ResourceProvider.configure`).
SECRET_KEYS: Mapping[str, str] = {
    "lambdaApiKey": "Lambda Cloud API key (pulumi config set --secret sophia:lambdaApiKey ...)",
    "clusterJoinToken": "cluster join token (pulumi config set --secret sophia:clusterJoinToken ...)",
    "kubeconfig": "kubeconfig of the primary cluster (pulumi config set --secret sophia:kubeconfig < kubeconfig)",
    "backupAccessKeyId": "access key id of the backup writer (pulumi config set --secret sophia:backupAccessKeyId ...)",
    "backupSecretAccessKey": (
        "secret key of the backup writer (pulumi config set --secret sophia:backupSecretAccessKey ...)"
    ),
    "alertPagerdutyRoutingKey": (
        "PagerDuty Events v2 routing key for critical alerts "
        "(pulumi config set --secret sophia:alertPagerdutyRoutingKey ...)"
    ),
    "alertSlackWebhookUrl": (
        "Slack incoming-webhook URL for warnings and the daily digest "
        "(pulumi config set --secret sophia:alertSlackWebhookUrl ...)"
    ),
    "awsAlarmPagerdutyUrl": (
        "PagerDuty 'Amazon CloudWatch' integration URL for the AWS alarms (backup replication, DR restore "
        "checks): https://events.pagerduty.com/integration/<key>/enqueue "
        "(pulumi config set --secret sophia:awsAlarmPagerdutyUrl ...)"
    ),
}
PROVIDER_KEYS: Mapping[str, str] = {
    "lambdaApiUrl": "Lambda Cloud API base URL, read by the dynamic providers (default the public API)",
}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def parse_settings(config: Mapping[str, str]) -> StackSettings:
    """Validate every `sophia:` key of `config`; other namespaces (aws:, kubernetes:) pass through."""
    document: dict[str, Any] = {}
    problems: list[Problem] = []
    for full_key, raw in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in SECRET_KEYS or key in PROVIDER_KEYS:
            continue
        try:
            document[key] = _decode(raw)
        except ValueError as error:
            problems.append(Problem(full_key, str(error)))
    if problems:
        raise SettingsError(problems)
    try:
        return StackSettings.model_validate(document)
    except ValidationError as error:
        raise SettingsError(_problems(error)) from None


def _decode(raw: Any) -> Any:
    # Structured values (lists, maps) reach the program as JSON text; scalars as plain strings.
    if isinstance(raw, str) and raw.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"is not valid structured config ({error.msg})") from None
    return raw


def config_key(loc: tuple[int | str, ...]) -> str:
    """`("gpuPools", 0, "max")` -> `sophia:gpuPools[0].max`."""
    text = NAMESPACE + ":"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            # A key with odd characters (a typo can hold anything) is quoted so the message stays one line.
            text += f"[{json.dumps(part)}]"
        else:
            text += part if i == 0 else f".{part}"
    return text


def _problems(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, RuleError):
            # A rule may name a nested key as a dotted path (`backups.replicaBucket`, `gpuPools.0.min`).
            problems.extend(Problem(config_key((*loc, *_path(key))), msg) for key, msg in cause.problems)
        elif item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc[:-1]))
            problems.append(Problem(config_key(loc), f"unknown key; allowed here: {allowed}"))
        elif item["type"] == "missing":
            problems.append(Problem(config_key(loc), "is required"))
        else:
            problems.append(Problem(config_key(loc), _message(item["type"], str(item["msg"]), item.get("input"))))
    return problems


def _path(key: str) -> tuple[int | str, ...]:
    """A rule's dotted key as a location: list indexes as integers."""
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


def _message(kind: str, text: str, value: Any) -> str:
    if kind == "value_error":
        return text.removeprefix("Value error, ")
    text = re.sub(r"^(Input|Tuple|List|String) should", "must", text).replace("a valid tuple", "a list")
    return f"{text}; got {_short(value)}"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The camelCase keys the model at `loc` accepts, for 'unknown key' messages."""
    model: Any = StackSettings
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(f for name, f in model.model_fields.items() if (f.alias or name) == part)
        model = _model_in(field.annotation)
    return sorted((f.alias or name) for name, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if arg is not Ellipsis and arg is not types.NoneType:
            try:
                return _model_in(arg)
            except TypeError:
                continue
    raise TypeError(f"no model in {annotation!r}")
