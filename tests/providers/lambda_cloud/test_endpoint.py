"""Where the key and URL come from, and which URLs are refused (judged on the parsed URL)."""

from __future__ import annotations

import pytest

from providers.lambda_cloud.client import DEFAULT_BASE_URL
from providers.lambda_cloud.endpoint import LambdaConfigError, resolve_endpoint


@pytest.mark.parametrize(
    "url",
    [
        "https://cloud.lambda.ai/api/v1",
        "http://127.0.0.1:8080/api/v1",
        "http://localhost:9/api/v1",
        "http://[::1]:9/api/v1",
    ],
)
def test_https_anywhere_and_http_on_loopback_only(url: str) -> None:
    assert resolve_endpoint("k", url).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.example.com/api/v1",  # passes a prefix test, is not loopback
        "http://localhost@example.com/api/v1",  # loopback in the user info only
        "http://localhost.example.com/api/v1",
        "http://cloud.lambda.ai/api/v1",
        "ftp://127.0.0.1/api/v1",
        "https:///api/v1",
        "not a url",
    ],
)
def test_other_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(LambdaConfigError, match="sophia:lambdaApiUrl must be an https:// URL"):
        resolve_endpoint("k", url)


def test_config_comes_before_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_API_KEY", "from-env")
    monkeypatch.setenv("LAMBDA_API_URL", "https://env.example.com/api/v1")
    endpoint = resolve_endpoint("from-config", None)
    assert endpoint.api_key.header() == "Bearer from-config"
    assert endpoint.base_url == "https://env.example.com/api/v1"
    monkeypatch.delenv("LAMBDA_API_URL")
    assert resolve_endpoint(None, None).api_key.header() == "Bearer from-env"
    assert resolve_endpoint(None, None).base_url == DEFAULT_BASE_URL


def test_no_key_anywhere_says_where_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_API_KEY", raising=False)
    with pytest.raises(
        LambdaConfigError, match=r"set sophia:lambdaApiKey .pulumi config set --secret. or LAMBDA_API_KEY"
    ):
        resolve_endpoint(None, None)
