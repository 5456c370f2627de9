"""Run `__main__.py` for a named stack under the Pulumi SDK's mock runtime and collect what it registers.

The inputs recorded are exactly what the engine would receive (the protobuf Struct the SDK
sends, as a dict): camelCase keys, numbers as floats, secrets wrapped in Pulumi's secret
signature and unknowns as the unknown sentinel. That is the shape policies and the plan see.

Each resource also carries its outputs as the engine holds them during a preview: what the
provider echoes of its inputs and, with `first_preview=True` (a stack being created), unknown ids
and every output-only property of the resource's SDK class unknown. The children a provider
registers for a remote component (`kubernetes:yaml/v2:ConfigFile` and `ConfigGroup`) are expanded
from their manifests as the Kubernetes provider would; a manifest that is not available offline is
listed in `StackRun.unexpanded`, never silently skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import runpy
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from failover import stack_lease
from failover.lease import PRIMARY, Lease
from failover.stack_lease import LeaseView
from settings.load import NAMESPACE as SETTINGS_NAMESPACE
from settings.load import SECRET_KEYS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Public documents the tests read (fetched in CI by scripts/fetch-reference.sh); remote manifests
# (a ConfigFile's URL) are looked up by file name under manifests/.
REFERENCE_DIR = PROJECT_ROOT.parent / "shared" / "reference"
MANIFEST_DIR_ENV = "SOPHIA_MANIFEST_DIR"
REMOTE_COMPONENTS = ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup")
RENDERED_COMPONENTS = ("kubernetes:helm.sh/v4:Chart", "kubernetes:kustomize/v2:Directory")
# Pulumi's wire signatures (sdk/go/common/resource/sig): not credentials.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # noqa: S105
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_PLACEHOLDER = "placeholder-secret-value"  # noqa: S105 - stands in for `secure:` values

# The SDK's runtime state is process-global: one program at a time.
_RUN_LOCK = threading.Lock()


class StackFileError(ValueError):
    """The stack's config file is missing or unreadable."""


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the engine would see its registration."""

    type: str
    name: str
    urn: str
    parent: str | None
    provider: str | None
    """Provider reference `<provider urn>::<id>`, or None for the default provider."""
    inputs: Mapping[str, Any]
    protect: bool
    custom: bool
    """True for provider-managed resources, False for components."""
    delete_before_replace: bool = False
    delete_before_replace_defined: bool = False
    retain_on_delete: bool = False
    depends_on: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> URNs of the resources whose outputs flow into it."""
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()
    custom_timeouts: tuple[str, str, str] = ("", "", "")
    """create, update, delete timeouts as Go durations ('' when unset)."""
    transforms: int = 0
    """How many `transforms` the resource registers (callbacks the engine runs on it and its children)."""
    outputs: Mapping[str, Any] | None = None
    """The resource's state as the engine holds it during the preview (None: as its inputs)."""

    @property
    def state(self) -> Mapping[str, Any]:
        """What stack policies see: the outputs (the inputs when no outputs were recorded)."""
        return self.outputs if self.outputs is not None else self.inputs


@dataclass(frozen=True)
class StackRun:
    """Everything one run of the program registered, in registration order."""

    project: str
    stack: str
    resources: tuple[RegisteredResource, ...]
    outputs: Mapping[str, Any]
    """Stack outputs, engine-shaped (secrets wrapped)."""
    logs: tuple[str, ...] = field(default=())
    unexpanded: tuple[tuple[str, str], ...] = field(default=())
    """(URN, why) of remote components whose children could not be expanded offline."""

    def by_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RegisteredResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def waits_for(self, resource: RegisteredResource, target: RegisteredResource) -> bool:
        """Whether the engine creates `resource` only after `target`: a path of explicit
        dependencies (`depends_on`), input dependencies (`property_dependencies`) and parents. A
        child registers only once its parent has, and a component registers only once its own
        dependencies exist, so a component's `depends_on` holds back everything under it."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        pending = [resource.urn]
        while pending:
            urn = pending.pop()
            node = by_urn.get(urn)
            if node is None or urn in seen:
                continue
            seen.add(urn)
            edges = [*node.depends_on, *(u for urns in node.property_dependencies.values() for u in urns)]
            if node.parent is not None:
                edges.append(node.parent)
            if target.urn in edges:
                return True
            pending.extend(edges)
        return False


CANNED_INVOKES: dict[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/deployer",
        "userId": "AIDEXAMPLE",
        "id": "123456789012",
    },
    "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
}


# What only the organization knows, and so no stack file holds (a placeholder there could be
# deployed): the operators set these with `pulumi config set --path`. Offline runs (tests, `make
# plan`) merge these documentation values in, as they assume secrets are set.
SITE_FACTS: dict[str, dict[str, Any]] = {
    "prod": {
        "sophia:lambdaAccess": {"sshAllowedCidrs": ["203.0.113.0/24"]},
        # The dr stack's drNatPublicIps, set after its first `pulumi up` (docs/dr.md, bring-up).
        "sophia:dataLayer": {
            "postgres": {
                "drReplication": {"allowedCidrs": ["198.51.100.10/32", "198.51.100.11/32", "198.51.100.12/32"]}
            }
        },
    },
    "dev": {"sophia:lambdaAccess": {"sshAllowedCidrs": ["203.0.113.0/24"]}},
    "dr": {
        "sophia:dr": {
            "eks": {
                "publicAccessCidrs": ["203.0.113.0/24"],
                "deployRoleArn": "arn:aws:iam::123456789012:role/sophia-dr-deploy",
                "operatorArns": ["arn:aws:iam::123456789012:role/sophia-operators"],
            }
        }
    },
}


def _with_site_facts(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with its environment's `SITE_FACTS` merged into the keys it has (by environment, so
    a copy of a stack file under another name gets them too)."""
    facts = SITE_FACTS.get(str(raw.get(f"{SETTINGS_NAMESPACE}:environment")), {})
    return {key: _merge(value, facts.get(key)) for key, value in raw.items()}


def _merge(base: Any, extra: Any) -> Any:
    """`extra` over `base`, key by key for mappings; the stack file's own values win."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(extra)
        for key, value in base.items():
            merged[key] = _merge(value, extra[key]) if key in extra else value
        return merged
    return base


def primary_holds_lease(table: str, region: str) -> LeaseView:
    """Offline plans read no AWS: the lease as it is in steady state, the primary's, renewed."""
    return LeaseView(table, region, table_exists=True, lease=Lease(PRIMARY, 1, 0.0))


# What a StackReference to the prod stack reads; tests/test_stack_wiring.py checks prod exports it.
PRIMARY_STACK_OUTPUTS: dict[str, Any] = {
    "backupReplicaBucket": "sophia-prod-backups-replica",
    "backupReplicaRegion": "us-east-1",
    "postgresReplicationHost": "pg-replication.sophia.ai",
    "postgresReplicationServerCa": "-----BEGIN CERTIFICATE-----\nMIIB (server CA)\n-----END CERTIFICATE-----\n",
    "postgresReplicationCert": "-----BEGIN CERTIFICATE-----\nMIIB (streaming_replica)\n-----END CERTIFICATE-----\n",
    "postgresReplicationKey": "-----BEGIN PRIVATE KEY-----\nplaceholder\n-----END PRIVATE KEY-----\n",
    "postgresReplicationAllowedCidrs": ["198.51.100.10/32", "198.51.100.11/32", "198.51.100.12/32"],
    "postgresFailoverLeaseTable": "sophia-postgres-lease",
    "postgresArchiveServerName": "postgres",
}
# Outputs prod marks secret; the StackReference hands them over as secrets.
PRIMARY_STACK_SECRET_OUTPUTS = ("postgresReplicationKey",)


LOAD_BALANCER_ADDRESS = "192.0.2.80"  # what a created LoadBalancer Service gets (documentation range)


class EchoMocks(mocks.Mocks):
    """Resources get a deterministic id and echo their inputs as outputs."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return f"{args.name}-id", {
                **args.inputs,
                "outputs": dict(PRIMARY_STACK_OUTPUTS),
                "secretOutputNames": list(PRIMARY_STACK_SECRET_OUTPUTS),
            }
        outputs = dict(args.inputs)
        # The Kubernetes provider returns a LoadBalancer Service once it has an address.
        balancer = (
            args.typ == "kubernetes:core/v1:Service" and (outputs.get("spec") or {}).get("type") == "LoadBalancer"
        )
        if balancer and not settings.is_dry_run():
            outputs["status"] = {"loadBalancer": {"ingress": [{"ip": LOAD_BALANCER_ADDRESS}]}}
        # A created EKS managed node group reports the Auto Scaling group behind it.
        if args.typ == "aws:eks/nodeGroup:NodeGroup" and not settings.is_dry_run():
            outputs["resources"] = [{"autoscalingGroups": [{"name": f"eks-{args.name}"}]}]
        return f"{args.name}-id", outputs

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        # The few invokes the program makes; AWS's documentation account id.
        return dict(CANNED_INVOKES.get(args.token, {})), []


class FirstPreviewMocks(EchoMocks):
    """A first `pulumi preview` of a stack: nothing exists yet, so every id is unknown (the provider
    echoes the inputs; what it would compute stays unknown)."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        id_, state = super().new_resource(args)
        if args.typ == "pulumi:pulumi:StackReference":
            return id_, state  # a read of an existing stack
        return "", state


@cache
def output_only_properties(type_token: str) -> frozenset[str]:
    """Properties the resource's SDK class declares as outputs but not as inputs (e.g. `arn`), by the
    class the SDK registers for the type token; empty for types without a class (dynamic resources)."""
    pkg, module, _ = type_token.split(":", 2) if type_token.count(":") >= 2 else ("", "", "")
    for registered in rpc._RESOURCE_MODULES.get(f"{pkg}:{module}", []):  # the SDK registry of classes
        info = getattr(registered, "mod_info", {})
        class_name = info.get("classes", {}).get(type_token)
        if class_name is None:
            continue
        namespace = importlib.import_module(info["fqn"])
        resource_class = getattr(namespace, class_name)
        args_class = getattr(namespace, f"{class_name}Args", None)
        return frozenset(_getters(resource_class) - _getters(args_class)) - {"id", "urn"}
    return frozenset()


def _getters(cls: type | None) -> set[str]:
    if cls is None:
        return set()
    return {
        name
        for _, member in inspect.getmembers(cls)
        if isinstance(member, property) and (name := getattr(member.fget, "_pulumi_name", None))
    }


def manifest_path(file: str, project_dir: Path) -> Path | None:
    """Where a ConfigFile's document is on this machine: a local path, or a URL's file name under the
    manifest directory (`$SOPHIA_MANIFEST_DIR`, else the reference documents' manifests/)."""
    url = urlparse(file)
    if url.scheme in ("http", "https"):
        directory = Path(os.environ.get(MANIFEST_DIR_ENV) or REFERENCE_DIR / "manifests")
        candidate = directory / Path(url.path).name
    else:
        candidate = project_dir / file
    return candidate if candidate.is_file() else None


def kubernetes_type(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes object (`v1` is the `core` group)."""
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def _engine_shaped(value: Any) -> dict[str, Any]:
    """A YAML object as the engine receives it: through a protobuf Struct (numbers become floats)."""
    shaped: dict[str, Any] = json_format.MessageToDict(json_format.ParseDict(value, struct_pb2.Struct()))
    return shaped


class RecordingMonitor(mocks.MockMonitor):
    """A MockMonitor that also keeps each registration request's options and engine-shaped inputs."""

    def __init__(
        self, mock_impl: mocks.Mocks, *, first_preview: bool = False, project_dir: Path = PROJECT_ROOT
    ) -> None:
        super().__init__(mock_impl)
        self.registrations: list[RegisteredResource] = []
        self.stack_outputs: dict[str, Any] = {}
        self.unexpanded: list[tuple[str, str]] = []
        self._stack_urn: str | None = None
        self._first_preview = first_preview
        self._project_dir = project_dir

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine builds them (the SDK's mock keeps only the last parent type and
        prefixes the root stack's type): every ancestor's type except the root stack's."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([settings.get_stack(), settings.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            self._stack_urn = response.urn
            return response
        outputs: dict[str, Any] = json_format.MessageToDict(response.object)
        if self._first_preview and request.custom:
            outputs.update(dict.fromkeys(output_only_properties(request.type) - set(outputs), UNKNOWN))
        self.registrations.append(
            RegisteredResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                provider=request.provider or None,
                inputs=json_format.MessageToDict(request.object),
                protect=bool(request.protect),
                custom=bool(request.custom),
                delete_before_replace=bool(request.deleteBeforeReplace),
                delete_before_replace_defined=bool(request.deleteBeforeReplaceDefined),
                retain_on_delete=bool(request.retainOnDelete),
                depends_on=tuple(request.dependencies),
                property_dependencies={key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()},
                ignore_changes=tuple(request.ignoreChanges),
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                custom_timeouts=(
                    request.customTimeouts.create,
                    request.customTimeouts.update,
                    request.customTimeouts.delete,
                ),
                outputs=outputs,
                transforms=len(request.transforms),
            )
        )
        if request.type in REMOTE_COMPONENTS:
            self._expand(request, response.urn)
        elif request.type in RENDERED_COMPONENTS:
            self.unexpanded.append((response.urn, f"{request.type} is rendered by the provider (helm, kustomize)"))
        return response

    def _documents(self, request: Any, inputs: Mapping[str, Any]) -> list[Any] | None:
        if request.type == "kubernetes:yaml/v2:ConfigFile":
            files = [inputs.get("file")]
        else:
            files = list(inputs.get("files") or [])
        documents: list[Any] = list(inputs.get("objs") or [])
        if isinstance(inputs.get("yaml"), str):
            documents += list(yaml.safe_load_all(inputs["yaml"]))
        for file in files:
            path = manifest_path(str(file), self._project_dir) if isinstance(file, str) else None
            if path is None:
                return None
            documents += list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        return documents

    def _expand(self, request: Any, urn: str) -> None:
        """Register the objects the Kubernetes provider's Construct would, as children of the component
        (pulumi-kubernetes provider/pkg/provider/yaml/v2: named `<prefix>-<namespace>/<name>`)."""
        inputs = json_format.MessageToDict(request.object)
        documents = self._documents(request, inputs)
        if documents is None:
            self.unexpanded.append(
                (urn, f"the manifest {inputs.get('file') or inputs.get('files')} is not available offline")
            )
            return
        prefix = inputs.get("resourcePrefix") or request.name
        provider = request.providers.get("kubernetes") or request.provider or None
        objects: list[Any] = []
        for document in documents:
            if isinstance(document, dict) and str(document.get("kind", "")).endswith("List"):
                objects += document.get("items") or []
            elif isinstance(document, dict) and document:
                objects.append(document)
        for item in objects:
            metadata = item.get("metadata") or {}
            name = f"{metadata.get('namespace')}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
            type_ = kubernetes_type(str(item["apiVersion"]), str(item["kind"]))
            child_inputs = _engine_shaped(item)
            outputs = dict(child_inputs)
            if self._first_preview:
                outputs.update(dict.fromkeys(output_only_properties(type_) - set(outputs), UNKNOWN))
            self.registrations.append(
                RegisteredResource(
                    type=type_,
                    name=f"{prefix}-{name}",
                    urn=self.make_urn(urn, type_, f"{prefix}-{name}"),
                    parent=urn,
                    provider=provider,
                    inputs=child_inputs,
                    protect=False,
                    custom=True,
                    outputs=outputs,
                )
            )

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.urn == self._stack_urn:
            self.stack_outputs = json_format.MessageToDict(request.outputs)
        return empty_pb2.Empty()


def project_name(project_dir: Path = PROJECT_ROOT) -> str:
    document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    return str(document["name"])


def read_stack_file(
    stack: str,
    project_dir: Path = PROJECT_ROOT,
    *,
    assume_secrets_set: bool = True,
    assume_site_facts: bool = True,
) -> tuple[dict[str, str], list[str]]:
    """The engine's view of `Pulumi.<stack>.yaml`: key -> string (JSON for structured values), and secret keys.

    `secure:` values become a placeholder. With `assume_secrets_set`, secrets the program
    declares but the file lacks are filled the same way, as if the user had run
    `pulumi config set --secret` (ciphertext can only be made by the Pulumi CLI). With
    `assume_site_facts`, `SITE_FACTS` fill what the organization sets itself.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise StackFileError(f"cannot read {path.name}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}") from None
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{path.name}: 'config' must be a mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    if assume_site_facts and project_dir == PROJECT_ROOT:
        raw = _with_site_facts(raw)
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = _json(value)
    if assume_secrets_set:
        for key in SECRET_KEYS:
            full = f"{SETTINGS_NAMESPACE}:{key}"
            if full not in config:
                config[full] = SECRET_PLACEHOLDER
                secret_keys.append(full)
    return config, secret_keys


def _json(value: Any) -> str:
    # Scalars (numbers, booleans) reach a program as their YAML text, structured values as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _natural(text: str) -> list[Any]:
    """`pool-10` after `pool-9`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _run_program(project_dir: Path) -> Coroutine[Any, Any, None]:
    runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")
    return _settle_outputs()


async def _settle_outputs() -> None:
    """Wait for every output the program made, all at once, before the SDK's own wait.

    The SDK's `wait_for_rpcs` waits with `asyncio.wait(..., FIRST_COMPLETED)` over every pending
    output and puts the rest back, once per completion: quadratic in the outputs of a large stack
    (most of a 1,000-resource plan's time). Waiting for all of them together is linear; an output
    that failed stays in the SDK's set, so its own wait still raises the program's error.
    """
    while True:
        with settings.SETTINGS.lock:
            pending = [output for output in settings.SETTINGS.outputs if not output.done()]
        if not pending:
            return
        await asyncio.wait(pending)


def run_program(
    program: Callable[[], object],
    *,
    stack: str = "prod",
    project: str = "sophia",
    first_preview: bool = False,
    project_dir: Path = PROJECT_ROOT,
    mock_impl: mocks.Mocks | None = None,
) -> StackRun:
    """Run `program` (a function that registers resources with the SDK) under the mocks, as the
    program would register them, and collect the registrations: resources written from the SDK's
    own classes, shaped exactly as the engine receives them."""
    return _collect(
        stack,
        project,
        {},
        [],
        program,
        preview=True,
        mock_impl=mock_impl,
        first_preview=first_preview,
        project_dir=project_dir,
    )


def run_stack(
    stack: str,
    *,
    project_dir: Path = PROJECT_ROOT,
    config_overrides: Mapping[str, str | None] | None = None,
    assume_secrets_set: bool = True,
    assume_site_facts: bool = True,
    preview: bool = True,
    mock_impl: mocks.Mocks | None = None,
    first_preview: bool = False,
    lease_reader: Callable[[str, str], LeaseView] = primary_holds_lease,
) -> StackRun:
    """Run the program for `stack` with its config file and return every registered resource.

    `config_overrides` replaces keys (a value of None deletes the key). Exceptions the program
    raises (e.g. `pulumi.RunError` for bad settings) propagate. `first_preview` plays the preview
    of a stack that does not exist yet: unknown ids, output-only properties unknown. `lease_reader`
    stands in for the DynamoDB read of the lease on the PostgreSQL primary role.
    """
    config, secret_keys = read_stack_file(
        stack, project_dir, assume_secrets_set=assume_secrets_set, assume_site_facts=assume_site_facts
    )
    for key, value in (config_overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return _collect(
        stack,
        project_name(project_dir),
        config,
        secret_keys,
        lambda: _run_program(project_dir),
        preview=preview,
        mock_impl=mock_impl,
        first_preview=first_preview,
        project_dir=project_dir,
        lease_reader=lease_reader,
    )


def _returning_none(program: Callable[[], object]) -> Callable[[], Coroutine[Any, Any, None] | None]:
    """`program` for `run_in_stack`, which awaits what it returns: a test program's resources are
    dropped, the stack program's coroutine (`_settle_outputs`) is kept."""

    def run() -> Coroutine[Any, Any, None] | None:
        result = program()
        return result if inspect.iscoroutine(result) else None

    return run


def _collect(
    stack: str,
    project: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    program: Callable[[], object],
    *,
    preview: bool,
    mock_impl: mocks.Mocks | None,
    first_preview: bool,
    project_dir: Path,
    lease_reader: Callable[[str, str], LeaseView] = primary_holds_lease,
) -> StackRun:
    default_mocks = FirstPreviewMocks() if first_preview else EchoMocks()
    monitor = RecordingMonitor(mock_impl or default_mocks, first_preview=first_preview, project_dir=project_dir)
    collector = _LogCollector()
    logger = logging.getLogger(f"sophia.harness.{stack}")
    logger.propagate = False
    logger.handlers = [collector]
    logger.setLevel(logging.DEBUG)

    with _RUN_LOCK, _chdir(project_dir):
        settings.ROOT.set(None)
        settings.configure(
            mocks.MockSettings(  # type: ignore[no-untyped-call]
                monitor=monitor,
                monitor_features=set(
                    monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures  # type: ignore[no-untyped-call]
                ),
                engine=mocks.MockEngine(logger),
                project=project,
                stack=stack,
                dry_run=preview,
                organization="organization",
                root_directory=str(project_dir),
                callbacks=None,
            )
        )
        runtime_config.set_all_config(dict(config), secret_keys)
        previous_env = os.environ.pop("PULUMI_CONFIG", None)
        previous_reader, stack_lease.READER = stack_lease.READER, lease_reader
        try:
            _sync_await(run_in_stack(_returning_none(program)))
        finally:
            stack_lease.READER = previous_reader
            if previous_env is not None:
                os.environ["PULUMI_CONFIG"] = previous_env
            runtime_config.set_all_config({}, [])
            settings.ROOT.set(None)
            # A failed program leaves its first unhandled exception in the RPC manager and its
            # failed output tasks queued; the next program in this process would re-raise them.
            settings._get_rpc_manager().clear()
            with settings.SETTINGS.lock:
                settings.SETTINGS.outputs.clear()
    return StackRun(
        project=project,
        stack=stack,
        # Registration order depends on when outputs resolve: sort for stable plans and diffs.
        resources=tuple(sorted(monitor.registrations, key=lambda r: _natural(r.urn))),
        outputs=monitor.stack_outputs,
        logs=tuple(collector.lines),
        unexpanded=tuple(monitor.unexpanded),
    )
