"""Where the API key and URL come from, resolved at call time (never pickled into state)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from providers.lambda_cloud.client import DEFAULT_BASE_URL, ApiKey, LambdaCloudClient
from providers.lambda_cloud.timing import scaled, time_scale
from providers.lambda_cloud.watcher import POLL_INTERVAL_S, InstanceWatcher, watcher_for

CONFIG_API_KEY = "sophia:lambdaApiKey"
CONFIG_API_URL = "sophia:lambdaApiUrl"
ENV_API_KEY = "LAMBDA_API_KEY"
ENV_API_URL = "LAMBDA_API_URL"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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

    def watcher(self, client: LambdaCloudClient) -> InstanceWatcher:
        """The process's one coalescing listing of this endpoint and key."""
        return watcher_for(
            (self.base_url, self.fingerprint, time_scale()), client.list_instances, scaled(POLL_INTERVAL_S)
        )


def resolve_endpoint(config_key: str | None, config_url: str | None) -> Endpoint:
    """Pulumi config first (`sophia:lambdaApiKey` secret, `sophia:lambdaApiUrl`), then the environment."""
    key = config_key or os.environ.get(ENV_API_KEY)
    if not key:
        raise LambdaConfigError(
            f"no Lambda Cloud API key: set {CONFIG_API_KEY} (pulumi config set --secret) or {ENV_API_KEY}"
        )
    url = config_url or os.environ.get(ENV_API_URL) or DEFAULT_BASE_URL
    check_api_url(url)
    return Endpoint(base_url=url.rstrip("/"), api_key=ApiKey(key))


def check_api_url(url: str) -> None:
    """https anywhere; plain http only to a loopback host (the emulator), judged on the parsed URL.

    A prefix test would pass `http://127.0.0.1.example.com/` or `http://localhost@example.com/`.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    loopback = host in LOOPBACK_HOSTS and parts is not None and not parts.username and not parts.password
    if parts is None or not host or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise LambdaConfigError(f"{CONFIG_API_URL} must be an https:// URL (plain http only on loopback), got {url!r}")
