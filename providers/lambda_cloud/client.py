"""HTTP client for the Lambda Cloud API v1 (`../shared/reference/lambda-cloud-api-openapi-1.10.0.json`).

Every call is paced process-wide (about 1 request/s; launches 1 per 12 s), has a timeout,
and is retried with jittered exponential backoff when the error is transient (429, 5xx,
`global/internal-error`, `provider/*`). A launch is never blindly repeated: if its outcome
is unknown (no answer, or a 5xx after it was sent) `LaunchOutcomeUnknownError` is raised so the
caller can look for the instance before trying again.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from providers.lambda_cloud.errors import (
    Disposition,
    LambdaApiError,
    LambdaTransportError,
    LaunchOutcomeUnknownError,
)
from providers.lambda_cloud.timing import pacers_for, scaled

DEFAULT_BASE_URL = "https://cloud.lambda.ai/api/v1"
REQUEST_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 8
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0

CREATE_ATTEMPTS = 3
log = logging.getLogger("sophia.lambda_cloud")
_ID_SEGMENT = re.compile(r"/[0-9a-f]{32}(?=/|$)")
_SESSIONS: dict[str, requests.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def session_for(base_url: str) -> requests.Session:
    """One HTTP session (and connection pool) per endpoint and process, shared by every client."""
    with _SESSIONS_LOCK:
        if base_url not in _SESSIONS:
            session = requests.Session()
            # The provider host runs four RPCs at once; the fleet and watchers add a few more.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=16)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _SESSIONS[base_url] = session
        return _SESSIONS[base_url]


class ApiKey:
    """Holds the key so that no repr, log line or traceback can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("the Lambda Cloud API key is empty")
        self._value = value

    def header(self) -> str:
        return f"Bearer {self._value}"

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("ApiKey must not be pickled")


def _retryable(error: BaseException) -> bool:
    return isinstance(error, LambdaApiError) and error.disposition is Disposition.RETRY


def _rate_limited(error: BaseException) -> bool:
    # The only launch failure known not to have launched anything, hence safe to repeat.
    return isinstance(error, LambdaApiError) and error.status == 429


class _Backoff:
    """Full-jitter exponential backoff, at least as long as any Retry-After the API sent."""

    def __init__(self, jitter: Callable[[float, float], float]) -> None:
        self._jitter = jitter

    def __call__(self, state: RetryCallState) -> float:
        ceiling = min(scaled(BACKOFF_MAX_S), scaled(BACKOFF_INITIAL_S) * 2 ** (state.attempt_number - 1))
        delay = self._jitter(0.0, ceiling)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LambdaApiError) and error.retry_after is not None:
            delay = max(delay, scaled(error.retry_after))
        return delay


class LambdaCloudClient:
    """One API endpoint and key. Cheap to create: pacing is shared per endpoint in the process."""

    def __init__(
        self,
        api_key: ApiKey,
        base_url: str = DEFAULT_BASE_URL,
        *,
        session: requests.Session | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        jitter: Callable[[float, float], float] | None = None,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self._session = session or session_for(self.base_url)
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = _Backoff(jitter or random.uniform)
        self.pacers = pacers_for(self.base_url)
        self.calls: dict[str, int] = {}
        """Requests sent per `METHOD path`, for benchmarks and tests."""
        self.rate_limited = 0
        """429 answers received."""
        self._counts_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LambdaCloudClient(base_url={self.base_url!r})"

    # -- transport -----------------------------------------------------------------------

    def _send_once(self, method: str, path: str, body: Mapping[str, Any] | None, *, launch: bool) -> Any:
        if launch:
            self.pacers.launch.wait(self.pacers.general)
        else:
            self.pacers.general.wait()
        label = f"{method} {_ID_SEGMENT.sub('/{id}', path.split('?', maxsplit=1)[0])}"
        with self._counts_lock:
            self.calls[label] = self.calls.get(label, 0) + 1
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=body,
                headers={"Authorization": self._key.header(), "Accept": "application/json"},
                timeout=scaled(self._timeout_s),
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            # Name the error type only: requests' messages can be long and carry pool internals.
            raise LambdaTransportError(f"{type(error).__name__} on {label}") from None
        if response.status_code == 429:
            with self._counts_lock:
                self.rate_limited += 1
        if response.ok:
            try:
                return response.json()["data"]
            except (ValueError, KeyError, TypeError):
                raise LambdaApiError(
                    "client/bad-response",
                    f"{label} answered {response.status_code} without a data payload",
                    status=response.status_code,
                ) from None
        raise _error_from(response, label)

    def _retrying(self, retry_on: Callable[[BaseException], bool]) -> Retrying:
        return Retrying(
            retry=retry_if_exception(retry_on),
            wait=self._backoff,
            stop=stop_after_attempt(self._max_attempts),
            reraise=True,
            before_sleep=lambda state: log.info(
                "retrying after %s", state.outcome.exception() if state.outcome else "error"
            ),
        )

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._retrying(_retryable)(self._send_once, method, path, body, launch=False)

    def _create(self, path: str, body: Mapping[str, Any], find: Callable[[], dict[str, Any] | None]) -> Any:
        """POST a create that the API does not make idempotent, without ever making two.

        429 is repeated (nothing was created). After an answer that may follow a create (a
        timeout, a 5xx) the object is looked for by name first, and adopted if it is there.
        """
        last: LambdaApiError | None = None
        for _ in range(CREATE_ATTEMPTS):
            try:
                return self._retrying(_rate_limited)(self._send_once, "POST", path, body, launch=False)
            except LambdaApiError as error:
                if error.disposition is not Disposition.RETRY:
                    raise
                last = error
            existing = find()
            if existing is not None:
                log.info("adopting %s %s created by a request whose answer was lost", path, existing.get("id"))
                return existing
        assert last is not None
        raise last

    # -- instances -----------------------------------------------------------------------

    def list_instances(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/instances")
        return result

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/instances/{instance_id}")
        return result

    def rename_instance(self, instance_id: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/instances/{instance_id}", {"name": name})
        return result

    def restart_instances(self, instance_ids: list[str]) -> list[dict[str, Any]]:
        result = self._request("POST", "/instance-operations/restart", {"instance_ids": instance_ids})
        restarted: list[dict[str, Any]] = result["restarted_instances"]
        return restarted

    def terminate_instances(self, instance_ids: list[str]) -> list[dict[str, Any]]:
        result = self._request("POST", "/instance-operations/terminate", {"instance_ids": instance_ids})
        terminated: list[dict[str, Any]] = result["terminated_instances"]
        return terminated

    def launch_instance(self, request: Mapping[str, Any]) -> str:
        """Launch one instance and return its id.

        429 is retried (the launch was refused, not taken). Anything after which the launch
        may have been taken raises `LaunchOutcomeUnknownError`; capacity and request errors raise
        `LambdaApiError` as they are.
        """
        try:
            data = self._retrying(_rate_limited)(
                self._send_once, "POST", "/instance-operations/launch", request, launch=True
            )
        except LambdaApiError as error:
            if error.status != 429 and error.disposition is Disposition.RETRY:
                raise LaunchOutcomeUnknownError(error) from None
            raise
        ids: list[str] = data["instance_ids"]
        if len(ids) != 1:
            raise LambdaApiError("client/bad-response", f"launch returned {len(ids)} instance ids, expected 1")
        return ids[0]

    # -- catalog -------------------------------------------------------------------------

    def instance_types(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/instance-types")
        return result

    def regions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/regions")
        return result

    # -- account resources ---------------------------------------------------------------

    def list_ssh_keys(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/ssh-keys")
        return result

    def add_ssh_key(self, name: str, public_key: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((k for k in self.list_ssh_keys() if k["name"] == name), None)

        result: dict[str, Any] = self._create("/ssh-keys", {"name": name, "public_key": public_key}, find)
        return result

    def delete_ssh_key(self, key_id: str) -> None:
        self._request("DELETE", f"/ssh-keys/{key_id}")

    def list_firewall_rulesets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/firewall-rulesets")
        return result

    def get_firewall_ruleset(self, ruleset_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/firewall-rulesets/{ruleset_id}")
        return result

    def create_firewall_ruleset(self, name: str, region: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            rulesets = self.list_firewall_rulesets()
            return next((r for r in rulesets if r["name"] == name and r["region"]["name"] == region), None)

        body = {"name": name, "region": region, "rules": rules}
        result: dict[str, Any] = self._create("/firewall-rulesets", body, find)
        return result

    def update_firewall_ruleset(self, ruleset_id: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PATCH", f"/firewall-rulesets/{ruleset_id}", {"name": name, "rules": rules}
        )
        return result

    def delete_firewall_ruleset(self, ruleset_id: str) -> None:
        self._request("DELETE", f"/firewall-rulesets/{ruleset_id}")

    def list_filesystems(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/file-systems")
        return result

    def create_filesystem(self, name: str, region: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            filesystems = self.list_filesystems()
            return next((f for f in filesystems if f["name"] == name and f["region"]["name"] == region), None)

        result: dict[str, Any] = self._create("/filesystems", {"name": name, "region": region}, find)
        return result

    def delete_filesystem(self, filesystem_id: str) -> None:
        self._request("DELETE", f"/filesystems/{filesystem_id}")


def _error_from(response: requests.Response, label: str) -> LambdaApiError:
    retry_after: float | None = None
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    try:
        error = response.json()["error"]
        return LambdaApiError(
            str(error["code"]),
            str(error.get("message", "")),
            status=response.status_code,
            suggestion=error.get("suggestion"),
            retry_after=retry_after,
        )
    except (ValueError, KeyError, TypeError):
        # 429s in particular may come from a proxy with an HTML body.
        snippet = json.dumps(response.text[:80])
        return LambdaApiError(
            f"http/{response.status_code}",
            f"{label} answered a non-JSON body {snippet}",
            status=response.status_code,
            retry_after=retry_after,
        )
