"""Shared base of the Lambda dynamic providers: credentials read at call time, never pickled."""

from __future__ import annotations

import logging
from typing import Any

import pulumi
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from providers.lambda_cloud.client import LambdaCloudClient
from providers.lambda_cloud.endpoint import CONFIG_API_KEY, CONFIG_API_URL, Endpoint, resolve_endpoint

log = logging.getLogger("sophia.lambda_cloud")


def report(message: str) -> None:
    """Progress for the Pulumi CLI (when an engine is attached) and for Python logging."""
    log.info(message)
    pulumi.log.info(message)


class LambdaProvider(ResourceProvider):
    """Pickled into state with dill: it must hold nothing but its class.

    The Pulumi engine calls `configure` with the stack config after unpickling; the key
    (`sophia:lambdaApiKey`, or env `LAMBDA_API_KEY`) is kept in memory only.
    """

    def __init__(self) -> None:
        self._config_key: str | None = None
        self._config_url: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def configure(self, req: ConfigureRequest) -> None:
        key = req.config.get(CONFIG_API_KEY)
        url = req.config.get(CONFIG_API_URL)
        self._config_key = str(key) if key else None
        self._config_url = str(url) if url else None

    def endpoint(self) -> Endpoint:
        return resolve_endpoint(self._config_key, self._config_url)

    def client(self) -> LambdaCloudClient:
        return self.endpoint().client()
