"""A Lambda Cloud API v1 emulator: a real HTTP server on 127.0.0.1 with state, boot delays,
the documented rate limits and injectable faults.

Every answer, injected faults included, is checked against the OpenAPI document: its status must
be documented for the endpoint and its body must match that status's schema (which fixes the error
`code`), and every request body must match the request schema. The only exceptions are the
field-reported answers in `FIELD_REPORTED` (DESIGN.md). Each route also declares the errors its
handler can answer (`_ROUTES`), and tests/providers/lambda_cloud/test_emulator.py checks that
table against the document. Violations are recorded in `violations` for tests to assert on.
Times are in API seconds and multiplied by `time_scale`, like the client's.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from policies.catalog import load_lambda_catalog
from tests.providers.lambda_cloud import openapi

JsonBody = Any
Reply = tuple[int, JsonBody]

# Boot times from field reports: single-GPU 3-5 min, 8-GPU up to ~25 min.
DEFAULT_BOOT_S = {1: 240.0, 8: 1200.0}
TERMINATE_S = 20.0
# Observed: terminating an instance that is already terminating answered an error code
# the documentation does not list. Emulated as such (and exempt from schema checks).
UNDOCUMENTED_TERMINATE_CODE = "global/unknown-error"
# The document lists no 429 and no 5xx; field reports (DESIGN.md) say the API answers them. A 429
# may come from a proxy with an HTML body, so the client branches on the status alone; a 5xx
# carries the documented `global/internal-error`.
RATE_LIMITED_CODE = "global/rate-limited"
FIELD_REPORTED: dict[str, frozenset[tuple[int, str]]] = {
    "*": frozenset(
        {
            (429, RATE_LIMITED_CODE),
            (500, "global/internal-error"),
            (502, "global/internal-error"),
            (503, "global/internal-error"),
        }
    ),
    "POST /instance-operations/terminate": frozenset({(400, UNDOCUMENTED_TERMINATE_CODE)}),
}
# Every route may answer these before its handler runs.
COMMON_ERRORS = frozenset({(401, "global/invalid-api-key")})


class TokenBucket:
    """The API's rate limit as a token bucket: `1 / interval` per second, a burst of `burst`."""

    def __init__(self, interval: float, burst: float) -> None:
        self.interval = interval
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 if a token was taken, else seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) / self.interval)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) * self.interval


@dataclass
class Instance:
    id: str
    name: str
    type_name: str
    region: str
    ssh_key_names: list[str]
    file_system_names: list[str]
    tags: list[dict[str, str]]
    firewall_ruleset_ids: list[str]
    hostname: str
    launched_at: float
    boot_s: float
    fate: str
    ip: str
    private_ip: str
    terminating_at: float | None = None
    user_data: str | None = None
    """What the launch request carried (the API never shows it again; tests read it here)."""


@dataclass
class Faults:
    """Faults to inject; each counter is consumed as requests arrive."""

    errors: list[tuple[str, str, int, str, int]] = field(default_factory=list)
    """(method, path template, HTTP status, code, times): answer with an error before doing anything."""
    lost_answers: list[tuple[str, str, int | None, str]] = field(default_factory=list)
    """(method, path template, HTTP status or None, code): do the request, then answer that error
    instead of the result, or (None) drop the connection without an answer. Consumed in order."""
    fates: list[str] = field(default_factory=list)
    """Fates of the next launched instances after boot: 'unhealthy' or 'preempted'."""
    html_429: bool = True
    """Answer every other 429 with an HTML body, as a proxy would."""


class LambdaEmulator:
    def __init__(
        self,
        *,
        api_key: str = "emulator-api-key-0123456789",
        time_scale: float = 1.0,
        boot_s: dict[int, float] | None = None,
        general_interval_s: float = 1.0,
        launch_interval_s: float = 12.0,
        burst: float = 1.5,
        validate: bool = True,
    ) -> None:
        if validate:
            openapi.spec()  # a missing OpenAPI document fails here, not as dropped connections later
        self.api_key = api_key
        self.time_scale = time_scale
        self.boot_s = boot_s or DEFAULT_BOOT_S
        self.validate = validate
        self.general_bucket = TokenBucket(general_interval_s * time_scale, burst)
        self.launch_bucket = TokenBucket(launch_interval_s * time_scale, burst)
        self.faults = Faults()
        self.capacity: dict[tuple[str, str], int | None] = {}
        """(region, instance type) -> launches left there; absent means unlimited."""
        self.catalog = load_lambda_catalog()
        self.instances: dict[str, Instance] = {}
        self.ssh_keys: dict[str, dict[str, Any]] = {}
        self.rulesets: dict[str, dict[str, Any]] = {}
        self.filesystems: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        """Requests received per `METHOD /path template`, rate-limited ones included."""
        self.answers: Counter[tuple[str, int, str]] = Counter()
        """Answers per (`METHOD /path template`, status, error code or "" for success)."""
        self.rate_limited = 0
        self.launches_accepted = 0
        self.violations: list[str] = []
        self._lock = threading.RLock()
        self._ips = itertools.count(10)
        self._429s = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LambdaEmulator:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LambdaEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/v1"

    # -- what tests look at ---------------------------------------------------------------

    def status_of(self, instance: Instance) -> str | None:
        """Current status, or None once a terminated instance has left the listing."""
        now = time.monotonic()
        if instance.terminating_at is not None:
            if now >= instance.terminating_at + TERMINATE_S * self.time_scale:
                return None
            return "terminating"
        if now < instance.launched_at + instance.boot_s:
            return "booting"
        return instance.fate

    def live(self) -> list[Instance]:
        """Instances that bill: everything not terminating or gone."""
        with self._lock:
            return [i for i in self.instances.values() if self.status_of(i) not in (None, "terminating")]

    def add_ssh_key(self, name: str) -> dict[str, Any]:
        with self._lock:
            key = {"id": uuid.uuid4().hex, "name": name, "public_key": f"ssh-ed25519 AAAA{name}"}
            self.ssh_keys[key["id"]] = key
            return key

    # -- request handling -----------------------------------------------------------------

    def handle(self, method: str, path: str, body: JsonBody, auth: str | None) -> tuple[int, JsonBody, str]:
        """Returns (status, body, action) where action is 'reply', 'html' or 'drop'."""
        route = _route(method, path)
        if route is None:
            return 404, {"error": {"code": "global/not-found", "message": f"no route {method} {path}"}}, "reply"
        template, handler, params, declared = route
        label = f"{method} {template}"
        self.calls[label] += 1
        status, payload, action = self._answer(method, template, handler, params, body=body, auth=auth)
        code = payload.get("error", {}).get("code", "") if isinstance(payload, dict) else RATE_LIMITED_CODE
        with self._lock:
            self.answers[(label, status, code)] += 1
        if action == "drop":
            return status, payload, action
        if self.validate:
            self._check_answer(method, template, (status, code), payload, declared)
        return status, payload, action

    def _answer(
        self, method: str, template: str, handler: Handler, params: dict[str, str], *, body: JsonBody, auth: str | None
    ) -> tuple[int, JsonBody, str]:
        if auth != f"Bearer {self.api_key}":
            return 401, _error("global/invalid-api-key", "API key was invalid, expired, or deleted."), "reply"
        wait = self.general_bucket.take()
        if wait == 0.0 and template == "/instance-operations/launch":
            wait = self.launch_bucket.take()
        if wait > 0.0:
            with self._lock:
                self.rate_limited += 1
                html = self.faults.html_429 and next(self._429s) % 2 == 1
            if html:
                return 429, "<html><body><h1>429 Too Many Requests</h1></body></html>", "html"
            return 429, _error(RATE_LIMITED_CODE, "Too many requests"), "reply"
        if self.validate and body is not None:
            self.violations.extend(openapi.request_errors(method, template, body))
        with self._lock:
            for i, (f_method, f_path, status, code, times) in enumerate(self.faults.errors):
                if f_method == method and f_path == template and times > 0:
                    self.faults.errors[i] = (f_method, f_path, status, code, times - 1)
                    return status, _error(code, "injected fault"), "reply"
            status, payload = handler(self, body, **params)
            lost = next((f for f in self.faults.lost_answers if f[:2] == (method, template)), None)
            if lost is not None and status == 200:
                self.faults.lost_answers.remove(lost)
                if lost[2] is None:
                    return status, payload, "drop"
                return lost[2], _error(lost[3], "injected fault after the request was done"), "reply"
        return status, payload, "reply"

    def _check_answer(
        self,
        method: str,
        template: str,
        answer: tuple[int, str],
        payload: JsonBody,
        declared: frozenset[tuple[int, str]],
    ) -> None:
        label = f"{method} {template}"
        status, _code = answer
        reported = FIELD_REPORTED["*"] | FIELD_REPORTED.get(label, frozenset())
        known = declared | COMMON_ERRORS | reported
        # Injected faults land here too: a test may only inject what the API can answer.
        if status >= 400 and answer not in known and not openapi.documents_error(method, template, *answer):
            self.violations.append(
                f"{label}: answered {answer}, which neither the handler declares nor the document lists"
            )
        if answer in reported:
            return
        self.violations.extend(openapi.response_errors(method, template, status, payload))

    # -- instances ------------------------------------------------------------------------

    def _instance_json(self, instance: Instance) -> dict[str, Any]:
        status = self.status_of(instance) or "terminated"
        spec = self.catalog.instance_type(instance.type_name)
        running = status in ("active", "unhealthy")
        availability: dict[str, Any] = {"available": running}
        if not running:
            availability = {"available": False, "reason_code": "vm-has-not-launched"}
        return {
            "id": instance.id,
            "name": instance.name,
            "ip": instance.ip,
            "private_ip": instance.private_ip,
            "status": status,
            "ssh_key_names": instance.ssh_key_names,
            "file_system_names": instance.file_system_names,
            "region": {"name": instance.region, "description": self.catalog.regions[instance.region]},
            "instance_type": _type_json(spec),
            "hostname": instance.hostname,
            "actions": {
                "migrate": {"available": False, "reason_code": "vm-is-too-old"},
                "rebuild": availability,
                "restart": availability,
                "cold_reboot": availability,
                "terminate": {"available": status not in ("terminating", "terminated")},
            },
            "tags": instance.tags,
            "firewall_rulesets": [{"id": r} for r in instance.firewall_ruleset_ids],
        }

    def _visible(self) -> list[Instance]:
        return [i for i in self.instances.values() if self.status_of(i) is not None]

    def _find(self, instance_id: str) -> Instance | None:
        instance = self.instances.get(instance_id)
        return instance if instance is not None and self.status_of(instance) is not None else None

    def list_instances(self, _body: JsonBody) -> Reply:
        return 200, {"data": [self._instance_json(i) for i in self._visible()]}

    def get_instance(self, _body: JsonBody, id: str) -> Reply:
        instance = self._find(id)
        if instance is None:
            return 404, _error("global/object-does-not-exist", "Instance not found")
        return 200, {"data": self._instance_json(instance)}

    def rename_instance(self, body: JsonBody, id: str) -> Reply:
        instance = self._find(id)
        if instance is None:
            return 404, _error("global/object-does-not-exist", "Instance not found")
        instance.name = str(body.get("name", instance.name))
        return 200, {"data": self._instance_json(instance)}

    def launch(self, body: JsonBody) -> Reply:
        if not isinstance(body, dict) or openapi.request_errors("POST", "/instance-operations/launch", body):
            return 400, _error("global/invalid-parameters", "Invalid request body")
        region, type_name = body["region_name"], body["instance_type_name"]
        if region not in self.catalog.regions or type_name not in self.catalog.instance_types:
            return 404, _error("global/object-does-not-exist", "Unknown region or instance type")
        if len(body["ssh_key_names"]) != 1:
            return 400, _error("global/invalid-parameters", "Exactly one SSH key must be specified")
        known_keys = {k["name"] for k in self.ssh_keys.values()}
        if body["ssh_key_names"][0] not in known_keys:
            return 404, _error("global/object-does-not-exist", "SSH key not found")
        for fs_name in body.get("file_system_names", []):
            fs = next((f for f in self.filesystems.values() if f["name"] == fs_name), None)
            if fs is None:
                return 404, _error("global/object-does-not-exist", "Filesystem not found")
            if fs["region"]["name"] != region:
                return 400, _error("instance-operations/launch/file-system-in-wrong-region", "Wrong region")
        rulesets = [r["id"] for r in body.get("firewall_rulesets", [])]
        if any(r not in self.rulesets for r in rulesets):
            return 404, _error("global/object-does-not-exist", "Firewall ruleset not found")
        left = self.capacity.get((region, type_name))
        if left is not None and left <= 0:
            return 400, _error(
                "instance-operations/launch/insufficient-capacity",
                "Not enough capacity to fulfill launch request.",
                "Choose an instance type with more availability, or try again later.",
            )
        if left is not None:
            self.capacity[(region, type_name)] = left - 1
        gpus = self.catalog.instance_type(type_name).gpus
        octet = next(self._ips)
        instance = Instance(
            id=uuid.uuid4().hex,
            name=body.get("name", ""),
            type_name=type_name,
            region=region,
            ssh_key_names=list(body["ssh_key_names"]),
            file_system_names=list(body.get("file_system_names", [])),
            tags=[dict(t) for t in body.get("tags", [])],
            firewall_ruleset_ids=rulesets,
            hostname=body.get("hostname") or f"ip-10-0-{octet // 250}-{octet % 250}",
            launched_at=time.monotonic(),
            boot_s=self.boot_s.get(gpus, max(self.boot_s.values())) * self.time_scale,
            fate=self.faults.fates.pop(0) if self.faults.fates else "active",
            ip=f"198.51.100.{octet % 250}",
            private_ip=f"10.0.{octet // 250}.{octet % 250}",
            user_data=body.get("user_data"),
        )
        self.instances[instance.id] = instance
        self.launches_accepted += 1
        return 200, {"data": {"instance_ids": [instance.id]}}

    def terminate(self, body: JsonBody) -> Reply:
        ids = body.get("instance_ids", []) if isinstance(body, dict) else []
        found = [self._find(i) for i in ids]
        if not ids or any(i is None for i in found):
            return 404, _error("global/object-does-not-exist", "Instance not found")
        instances = [i for i in found if i is not None]
        if any(self.status_of(i) == "terminating" for i in instances):
            return 400, _error(UNDOCUMENTED_TERMINATE_CODE, "An unknown error occurred")
        now = time.monotonic()
        for instance in instances:
            instance.terminating_at = now
        return 200, {"data": {"terminated_instances": [self._instance_json(i) for i in instances]}}

    def restart(self, body: JsonBody) -> Reply:
        ids = body.get("instance_ids", []) if isinstance(body, dict) else []
        found = [self._find(i) for i in ids]
        if not ids or any(i is None for i in found):
            return 404, _error("global/object-does-not-exist", "Instance not found")
        return 200, {"data": {"restarted_instances": [self._instance_json(i) for i in found if i is not None]}}

    # -- catalog --------------------------------------------------------------------------

    def instance_types(self, _body: JsonBody) -> Reply:
        data = {}
        for name, spec in self.catalog.instance_types.items():
            regions = [
                {"name": r, "description": d}
                for r, d in self.catalog.regions.items()
                if self.capacity.get((r, name)) is None or (self.capacity.get((r, name)) or 0) > 0
            ]
            data[name] = {"instance_type": _type_json(spec), "regions_with_capacity_available": regions}
        return 200, {"data": data}

    def regions(self, _body: JsonBody) -> Reply:
        return 200, {"data": [{"name": r, "description": d} for r, d in self.catalog.regions.items()]}

    # -- account resources ----------------------------------------------------------------

    def list_ssh_keys(self, _body: JsonBody) -> Reply:
        return 200, {"data": list(self.ssh_keys.values())}

    def create_ssh_key(self, body: JsonBody) -> Reply:
        if any(k["name"] == body.get("name") for k in self.ssh_keys.values()):
            return 400, _error("global/invalid-parameters", "SSH key name already in use")
        key = {"id": uuid.uuid4().hex, "name": body["name"], "public_key": body["public_key"]}
        self.ssh_keys[key["id"]] = key
        return 200, {"data": key}

    def delete_ssh_key(self, _body: JsonBody, id: str) -> Reply:
        if self.ssh_keys.pop(id, None) is None:
            return 404, _error("global/not-found", "SSH key not found")
        return 200, {"data": {}}

    def _ruleset_json(self, ruleset: dict[str, Any]) -> dict[str, Any]:
        in_use = [i.id for i in self._visible() if ruleset["id"] in i.firewall_ruleset_ids]
        return {**ruleset, "instance_ids": in_use}

    def list_rulesets(self, _body: JsonBody) -> Reply:
        return 200, {"data": [self._ruleset_json(r) for r in self.rulesets.values()]}

    def get_ruleset(self, _body: JsonBody, id: str) -> Reply:
        if id not in self.rulesets:
            return 404, _error("global/object-does-not-exist", "Firewall ruleset not found")
        return 200, {"data": self._ruleset_json(self.rulesets[id])}

    def create_ruleset(self, body: JsonBody) -> Reply:
        if body["region"] not in self.catalog.regions:
            return 400, _error("global/invalid-parameters", "Unknown region")
        ruleset = {
            "id": uuid.uuid4().hex,
            "name": body["name"],
            "region": {"name": body["region"], "description": self.catalog.regions[body["region"]]},
            "rules": body["rules"],
            "created": "2026-11-24T00:00:00Z",
        }
        self.rulesets[ruleset["id"]] = ruleset
        return 200, {"data": self._ruleset_json(ruleset)}

    def patch_ruleset(self, body: JsonBody, id: str) -> Reply:
        if id not in self.rulesets:
            return 404, _error("global/object-does-not-exist", "Firewall ruleset not found")
        self.rulesets[id].update({k: body[k] for k in ("name", "rules") if k in body})
        return 200, {"data": self._ruleset_json(self.rulesets[id])}

    def delete_ruleset(self, _body: JsonBody, id: str) -> Reply:
        if id not in self.rulesets:
            return 404, _error("global/object-does-not-exist", "Firewall ruleset not found")
        if self._ruleset_json(self.rulesets[id])["instance_ids"]:
            return 400, _error("firewall-rulesets/firewall-ruleset-in-use", "Ruleset is in use")
        del self.rulesets[id]
        return 200, {"data": {}}

    def list_filesystems(self, _body: JsonBody) -> Reply:
        return 200, {"data": list(self.filesystems.values())}

    def create_filesystem(self, body: JsonBody) -> Reply:
        if body["region"] not in self.catalog.regions:
            return 400, _error("global/invalid-parameters", "Unknown region")
        fs = {
            "id": uuid.uuid4().hex,
            "name": body["name"],
            "mount_point": f"/lambda/nfs/{body['name']}",
            "created": "2026-11-24T00:00:00Z",
            "created_by": {"id": "u" * 32, "email": "infra@example.com", "status": "active"},
            "is_in_use": False,
            "region": {"name": body["region"], "description": self.catalog.regions[body["region"]]},
            "bytes_used": 0,
        }
        self.filesystems[fs["id"]] = fs
        return 200, {"data": fs}

    def delete_filesystem(self, _body: JsonBody, id: str) -> Reply:
        fs = self.filesystems.get(id)
        if fs is None:
            return 404, _error("global/object-does-not-exist", "Filesystem not found")
        if any(fs["name"] in i.file_system_names for i in self.live()):
            return 400, _error("filesystems/filesystem-in-use", "Filesystem is in use")
        del self.filesystems[id]
        return 200, {"data": {"deleted_ids": [id]}}


def _error(code: str, message: str, suggestion: str = "Check the request and try again.") -> dict[str, Any]:
    # Several error schemas require `suggestion`; the API sends one with most errors.
    return {"error": {"code": code, "message": message, "suggestion": suggestion}}


def _type_json(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": f"{spec.gpus}x {spec.gpu_description}",
        "gpu_description": spec.gpu_description,
        "price_cents_per_hour": spec.price_cents_per_hour,
        "specs": {
            "vcpus": spec.vcpus,
            "memory_gib": spec.memory_gib,
            "storage_gib": 512 * spec.gpus,
            "gpus": spec.gpus,
        },
    }


Handler = Callable[..., Reply]
_NOT_FOUND = (404, "global/object-does-not-exist")
_INVALID = (400, "global/invalid-parameters")
# Method, path, handler, and the errors the handler can answer (checked against the document).
_ROUTES: list[tuple[str, str, Handler, frozenset[tuple[int, str]]]] = [
    ("GET", "/instances", LambdaEmulator.list_instances, frozenset()),
    ("GET", "/instances/{id}", LambdaEmulator.get_instance, frozenset({_NOT_FOUND})),
    ("POST", "/instances/{id}", LambdaEmulator.rename_instance, frozenset({_NOT_FOUND})),
    (
        "POST",
        "/instance-operations/launch",
        LambdaEmulator.launch,
        frozenset(
            {
                _INVALID,
                _NOT_FOUND,
                (400, "global/object-does-not-exist"),
                (400, "instance-operations/launch/file-system-in-wrong-region"),
                (400, "instance-operations/launch/insufficient-capacity"),
            }
        ),
    ),
    ("POST", "/instance-operations/terminate", LambdaEmulator.terminate, frozenset({_NOT_FOUND})),
    ("POST", "/instance-operations/restart", LambdaEmulator.restart, frozenset({_NOT_FOUND})),
    ("GET", "/instance-types", LambdaEmulator.instance_types, frozenset()),
    ("GET", "/regions", LambdaEmulator.regions, frozenset()),
    ("GET", "/ssh-keys", LambdaEmulator.list_ssh_keys, frozenset()),
    ("POST", "/ssh-keys", LambdaEmulator.create_ssh_key, frozenset({_INVALID})),
    ("DELETE", "/ssh-keys/{id}", LambdaEmulator.delete_ssh_key, frozenset({(404, "global/not-found")})),
    ("GET", "/firewall-rulesets", LambdaEmulator.list_rulesets, frozenset()),
    ("POST", "/firewall-rulesets", LambdaEmulator.create_ruleset, frozenset({_INVALID})),
    ("GET", "/firewall-rulesets/{id}", LambdaEmulator.get_ruleset, frozenset({_NOT_FOUND})),
    ("PATCH", "/firewall-rulesets/{id}", LambdaEmulator.patch_ruleset, frozenset({_NOT_FOUND})),
    (
        "DELETE",
        "/firewall-rulesets/{id}",
        LambdaEmulator.delete_ruleset,
        frozenset({_NOT_FOUND, (400, "firewall-rulesets/firewall-ruleset-in-use")}),
    ),
    ("GET", "/file-systems", LambdaEmulator.list_filesystems, frozenset()),
    ("POST", "/filesystems", LambdaEmulator.create_filesystem, frozenset({_INVALID})),
    (
        "DELETE",
        "/filesystems/{id}",
        LambdaEmulator.delete_filesystem,
        frozenset({_NOT_FOUND, (400, "filesystems/filesystem-in-use")}),
    ),
]
_COMPILED = [
    (method, template, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"), handler, errors)
    for method, template, handler, errors in _ROUTES
]


def _route(method: str, path: str) -> tuple[str, Handler, dict[str, str], frozenset[tuple[int, str]]] | None:
    if not path.startswith(openapi.API_PREFIX):
        return None
    rest = path[len(openapi.API_PREFIX) :].split("?", 1)[0]
    for r_method, template, pattern, handler, errors in _COMPILED:
        match = pattern.match(rest)
        if r_method == method and match:
            return template, handler, match.groupdict(), errors
    return None


def declared_errors() -> dict[tuple[str, str], frozenset[tuple[int, str]]]:
    """(method, path template) -> the errors its handler can answer."""
    return {(method, template): errors for method, template, _, errors in _ROUTES}


def _handler_for(emulator: LambdaEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read counters, not access logs."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = None
            status, payload, action = emulator.handle(self.command, self.path, body, self.headers.get("Authorization"))
            if action == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if action == "html":
                data, content_type = str(payload).encode(), "text/html"
            else:
                data, content_type = json.dumps(payload).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server's names

    return Handler
