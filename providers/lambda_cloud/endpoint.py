"""Where the API key and URL come from, resolved at call time (never pickled into state)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from providers.lambda_cloud.client import DEFAULT_BASE_URL, ApiKey, LambdaCloudClient

CONFIG_API_KEY = "sophia:lambdaApiKey"
CONFIG_API_URL = "sophia:lambdaApiUrl"
ENV_API_KEY = "LAMBDA_API_KEY"
ENV_API_URL = "LAMBDA_API_URL"


class LambdaConfigError(ValueError):
    """No usable key or URL."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: ApiKey

    @property
    def fingerprint(self) -> str:
        """Tells keys apart for sharing per-key state; a hash, so the key itself is not kept as a dict key."""
        return hashlib.sha256(self.api_key.header().encode()).hexdigest()[:16]

    def client(self) -> LambdaCloudClient:
        return LambdaCloudClient(self.api_key, self.base_url)


def resolve_endpoint(config_key: str | None, config_url: str | None) -> Endpoint:
    """Pulumi config first (`sophia:lambdaApiKey` secret, `sophia:lambdaApiUrl`), then the environment."""
    key = config_key or os.environ.get(ENV_API_KEY)
    if not key:
        raise LambdaConfigError(
            f"no Lambda Cloud API key: set {CONFIG_API_KEY} (pulumi config set --secret) or {ENV_API_KEY}"
        )
    url = config_url or os.environ.get(ENV_API_URL) or DEFAULT_BASE_URL
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise LambdaConfigError(f"{CONFIG_API_URL} must be an https:// URL (plain http only on loopback), got {url!r}")
    return Endpoint(base_url=url.rstrip("/"), api_key=ApiKey(key))
