"""The one error a bad stack configuration raises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One broken rule: the full config key (e.g. `sophia:gpuPools[0].max`) and what is allowed."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class SettingsError(ValueError):
    """Raised before any resource is registered; `str()` is one line naming every broken key."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("SettingsError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("invalid stack config: " + "; ".join(str(p) for p in problems))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.problems)


class RuleError(ValueError):
    """Raised inside a validator for a rule over several fields; each problem names its key
    relative to the object validated (e.g. `min`), so the loader can prefix the path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems))
