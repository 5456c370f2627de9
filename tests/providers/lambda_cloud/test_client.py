"""The HTTP client against the emulator: pacing, retries by code, errors, and the key kept out of sight."""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.errors import Disposition, LambdaApiError, LaunchOutcomeUnknownError
from providers.lambda_cloud.timing import GENERAL_INTERVAL_S, LAUNCH_INTERVAL_S
from tests.providers.lambda_cloud.conftest import SSH_KEY
from tests.providers.lambda_cloud.emulator import LambdaEmulator


def launch_body(name: str) -> dict[str, object]:
    return {"region_name": "us-west-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": [SSH_KEY], "name": name}


# Exact-pacing checks run at 1 API second = 200 ms: compressed further, a thread scheduled late
# on a busy machine (two cores, many threads) lands inside the previous slot, an artifact of
# compressing time that a 1 s slot never sees. The emulator tolerates half a slot of jitter.
PACING_SCALE = 0.2


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LambdaCloudClient, LambdaEmulator, float]]:
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", str(PACING_SCALE))
    with LambdaEmulator(time_scale=PACING_SCALE) as emulator:
        emulator.add_ssh_key(SSH_KEY)
        yield LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url), emulator, PACING_SCALE
        assert emulator.violations == []


def test_requests_from_many_threads_are_paced_without_429(
    paced: tuple[LambdaCloudClient, LambdaEmulator, float],
) -> None:
    client, emulator, scale = paced
    started = time.monotonic()
    threads = [threading.Thread(target=client.list_instances) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert emulator.calls["GET /instances"] == 24
    assert emulator.rate_limited == 0
    assert elapsed >= 23 * GENERAL_INTERVAL_S * scale


def test_launches_are_paced_at_one_per_twelve_seconds(
    paced: tuple[LambdaCloudClient, LambdaEmulator, float],
) -> None:
    client, emulator, scale = paced
    started = time.monotonic()
    threads = [threading.Thread(target=client.launch_instance, args=(launch_body(f"n{i}"),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emulator.launches_accepted == 4
    assert emulator.rate_limited == 0
    assert time.monotonic() - started >= 3 * LAUNCH_INTERVAL_S * scale


def test_an_unpaced_client_is_rate_limited_by_the_emulator(emulator: LambdaEmulator) -> None:
    """The emulator really enforces the limits, so the zero-429 results above mean something."""

    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def burst() -> None:
        response = requests.get(
            f"{emulator.base_url}/regions", headers={"Authorization": f"Bearer {emulator.api_key}"}, timeout=5
        )
        with lock:
            results.append((response.status_code, response.headers["Content-Type"]))

    threads = [threading.Thread(target=burst) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limited = [content_type for status, content_type in results if status == 429]
    assert len(limited) >= 2
    assert "text/html" in limited  # some 429s are not JSON


def test_429_with_html_body_is_retried(scale: float) -> None:
    # Limits ten times stricter than the client paces for: it meets 429s and must ride them out.
    with LambdaEmulator(time_scale=scale, general_interval_s=10.0) as emulator:
        client = LambdaCloudClient(ApiKey(emulator.api_key), emulator.base_url)
        for _ in range(4):
            assert len(client.regions()) == 16
        assert client.rate_limited > 0
        assert emulator.rate_limited == client.rate_limited
        assert emulator.violations == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/instances", 500),
        ("GET", "/instances", 502),
        ("GET", "/instances", 503),
        ("PATCH", "/firewall-rulesets/{id}", 409),  # the document's own internal error
    ],
)
def test_transient_errors_are_retried(
    client: LambdaCloudClient, emulator: LambdaEmulator, method: str, path: str, status: int
) -> None:
    ruleset = client.create_firewall_ruleset("r", "us-west-1", [])
    emulator.faults.errors.append((method, path, status, "global/internal-error", 2))
    if method == "GET":
        assert client.list_instances() == []
    else:
        assert client.update_firewall_ruleset(ruleset["id"], "r2", [])["name"] == "r2"
    assert emulator.answers[(f"{method} {path}", status, "global/internal-error")] == 2
    assert emulator.answers[(f"{method} {path}", 200, "")] == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/instances", 400, "global/invalid-parameters"),
        ("GET", "/instances", 403, "global/forbidden"),
        ("POST", "/instance-operations/launch", 400, "global/quota-exceeded"),
        ("POST", "/instance-operations/launch", 400, "instance-operations/launch/file-system-in-wrong-region"),
        ("POST", "/instance-operations/launch", 403, "global/invalid-address"),
    ],
)
def test_fail_fast_codes(
    client: LambdaCloudClient, emulator: LambdaEmulator, method: str, path: str, *, status: int, code: str
) -> None:
    emulator.faults.errors.append((method, path, status, code, 1))
    call = client.list_instances if method == "GET" else lambda: client.launch_instance(launch_body("n"))
    with pytest.raises(LambdaApiError) as caught:
        call()
    assert caught.value.code == code
    assert caught.value.disposition is Disposition.FAIL
    assert emulator.answers[(f"{method} {path}", status, code)] == 1
    assert (
        sum(
            n for (label, answered, _), n in emulator.answers.items() if label == f"{method} {path}" and answered != 429
        )
        == 1
    )


def test_error_carries_code_message_and_suggestion(client: LambdaCloudClient, emulator: LambdaEmulator) -> None:
    emulator.capacity[("us-west-1", "gpu_1x_a10")] = 0
    with pytest.raises(LambdaApiError) as caught:
        client.launch_instance(launch_body("n"))
    error = caught.value
    assert (error.status, error.code) == (400, "instance-operations/launch/insufficient-capacity")
    assert error.message == "Not enough capacity to fulfill launch request."
    assert error.suggestion
    assert "try again later" in error.suggestion
    assert error.disposition is Disposition.FAILOVER


def test_launch_5xx_is_an_unknown_outcome_not_a_retry(client: LambdaCloudClient, emulator: LambdaEmulator) -> None:
    emulator.faults.lost_answers.append(("POST", "/instance-operations/launch", 500, "global/internal-error"))
    with pytest.raises(LaunchOutcomeUnknownError):
        client.launch_instance(launch_body("n"))
    assert emulator.answers[("POST /instance-operations/launch", 500, "global/internal-error")] == 1
    assert emulator.launches_accepted == 1


@pytest.mark.parametrize(
    ("path", "create"),
    [
        ("/firewall-rulesets", lambda c: c.create_firewall_ruleset("sophia-r", "us-west-1", [])),
        ("/ssh-keys", lambda c: c.add_ssh_key("sophia-k", "ssh-ed25519 AAAAC3Nza ops")),
        ("/filesystems", lambda c: c.create_filesystem("sophia-fs", "us-west-1")),
    ],
)
@pytest.mark.parametrize("lost", [None, 500])
def test_a_create_whose_answer_is_lost_is_found_by_name_not_repeated(
    client: LambdaCloudClient, emulator: LambdaEmulator, path: str, create: Any, lost: int | None
) -> None:
    stores = {
        "/firewall-rulesets": emulator.rulesets,
        "/ssh-keys": emulator.ssh_keys,
        "/filesystems": emulator.filesystems,
    }
    before = set(stores[path])
    emulator.faults.lost_answers.append(("POST", path, lost, "global/internal-error"))
    created = create(client)
    assert set(stores[path]) - before == {created["id"]}  # exactly one new, and it is the one adopted
    assert (
        sum(n for (label, status, _), n in emulator.answers.items() if label == f"POST {path}" and status != 429) == 1
    )


def test_launch_dropped_connection_is_an_unknown_outcome(client: LambdaCloudClient, emulator: LambdaEmulator) -> None:
    emulator.faults.lost_answers.append(("POST", "/instance-operations/launch", None, ""))
    with pytest.raises(LaunchOutcomeUnknownError) as caught:
        client.launch_instance(launch_body("n"))
    assert caught.value.cause.code == "transport/no-response"


def test_unreachable_api_is_retried_then_reported() -> None:
    client = LambdaCloudClient(ApiKey("k" * 20), "http://127.0.0.1:9/api/v1", max_attempts=2)
    with pytest.raises(LambdaApiError) as caught:
        client.list_instances()
    assert caught.value.code == "transport/no-response"
    assert client.calls["GET /instances"] == 2


def test_key_never_shows(emulator: LambdaEmulator, caplog: pytest.LogCaptureFixture) -> None:
    key = ApiKey(emulator.api_key)
    client = LambdaCloudClient(key, emulator.base_url)
    caplog.set_level(logging.DEBUG)
    emulator.faults.errors.append(("GET", "/instances", 500, "global/internal-error", 1))
    client.list_instances()
    bad = LambdaCloudClient(ApiKey(emulator.api_key + "x"), emulator.base_url)
    with pytest.raises(LambdaApiError) as caught:
        bad.list_instances()
    texts = [repr(key), str(key), repr(client), str(caught.value), repr(caught.value), caplog.text]
    assert all(emulator.api_key not in text for text in texts)
    with pytest.raises(TypeError):
        pickle.dumps(key)
