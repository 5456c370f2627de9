"""Typed Lambda Cloud API errors, classified by the API's `code` (never by `message`)."""

from __future__ import annotations

from enum import Enum


class Disposition(Enum):
    """What a caller should do about an error."""

    RETRY = "retry"
    """Transient: rate limit, server or upstream provider trouble. Safe to repeat."""
    FAILOVER = "failover"
    """No capacity in that region: try the next one."""
    FAIL = "fail"
    """The request is wrong or the account cannot do it: repeating will not help."""


RETRY_CODES = frozenset({"global/internal-error"})
FAILOVER_CODES = frozenset({"instance-operations/launch/insufficient-capacity"})
NOT_FOUND_CODES = frozenset({"global/object-does-not-exist", "global/resource-not-found"})


class LambdaApiError(Exception):
    """An error answer from the API, or no usable answer at all.

    Carries the API's `code`, `message` and `suggestion`; never the API key.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        suggestion: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.suggestion = suggestion
        self.retry_after = retry_after
        text = f"{code}: {message}" + (f" ({suggestion})" if suggestion else "")
        super().__init__(f"Lambda Cloud API {text}" if status is None else f"Lambda Cloud API HTTP {status} {text}")

    @property
    def disposition(self) -> Disposition:
        if self.code in FAILOVER_CODES:
            return Disposition.FAILOVER
        if (
            self.status == 429
            or (self.status is not None and self.status >= 500)
            or self.code in RETRY_CODES
            or self.code.startswith("provider/")
        ):
            return Disposition.RETRY
        return Disposition.FAIL

    @property
    def is_not_found(self) -> bool:
        return self.status == 404 or self.code in NOT_FOUND_CODES


class LambdaTransportError(LambdaApiError):
    """No answer: timeout or dropped connection. For a launch the outcome is unknown."""

    def __init__(self, message: str) -> None:
        super().__init__("transport/no-response", message)

    @property
    def disposition(self) -> Disposition:
        return Disposition.RETRY


class LaunchOutcomeUnknownError(Exception):
    """A launch may or may not have been accepted; the caller must reconcile by listing instances."""

    def __init__(self, cause: LambdaApiError) -> None:
        self.cause = cause
        super().__init__(f"launch outcome unknown after {cause}")
