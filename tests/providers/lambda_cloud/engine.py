"""A small deployment engine that drives the real provider host the way the Pulumi engine does.

It takes the dynamic resources the program registers (run under the SDK's mock runtime, with the
stack's config) and plays preview, up, refresh and destroy against a `ProviderHost`, following
pkg/resource/deploy in pulumi/pulumi:
- preview: Check (olds = old inputs, news with unknowns for outputs of resources not created or
  changed yet) and Diff (olds = old outputs) for each resource; no Create or Update (the dynamic
  host does not support preview, so the engine echoes inputs);
- up: each resource once its dependencies are done, `parallel` steps at once (the CLI's default is
  4 x CPUs; the host serves 4); Check, then Create, or Diff then Update or replace (delete first
  when the provider asks, replacing dependents whose Diff with the replaced resource's outputs
  unknown asks for it); deletes of what the program no longer registers last, dependents first;
- refresh: Read of every resource, dropping what is gone;
- destroy: antichains of resources nothing else depends on, each antichain in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import mocks

from providers.lambda_cloud import resources
from tests.providers.lambda_cloud.host import ProviderHost
from tools.harness import SECRET_SIG_KEY, EchoMocks, StackRun, run_stack

DYNAMIC_PREFIX = "pulumi-python:dynamic"
PLACEHOLDER = "\u27e6output "  # ⟦output <resource name>#<key>⟧


@dataclass(frozen=True)
class Desired:
    """One dynamic resource as the program registered it."""

    urn: str
    name: str
    type: str
    inputs: Mapping[str, Any]
    """Engine-shaped inputs; outputs of other resources appear as placeholders."""
    dependencies: frozenset[str]
    property_dependencies: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass
class Recorded:
    """One resource in the engine's snapshot."""

    urn: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: frozenset[str]
    property_dependencies: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _provider_outputs() -> dict[str, frozenset[str]]:
    """Type token -> the outputs each Lambda resource class declares (`name: pulumi.Output[...]`).

    The fleet is left out: no resource takes its outputs, the program's exports do."""
    classes = [resources.LambdaInstance, resources.LambdaSshKey, resources.LambdaFirewallRuleset]
    classes += [resources.LambdaFilesystem]
    return {
        f"{DYNAMIC_PREFIX}/lambda:{cls.__name__.removeprefix('Lambda')}": frozenset(
            name for name, hint in cls.__annotations__.items() if "Output" in str(hint)
        )
        for cls in classes
    }


def unknown() -> Any:
    """An unknown value, as the engine hands it to Check and Diff in a preview."""
    return Unknown()  # type: ignore[no-untyped-call]


class PlaceholderMocks(EchoMocks):
    """Echo inputs as outputs, as the engine does; an output only the provider fills in becomes a
    placeholder that the engine resolves from its snapshot when it plays the step."""

    outputs = _provider_outputs()

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        for key in self.outputs.get(args.typ, frozenset()):
            if outputs.get(key) is None:
                outputs[key] = f"{PLACEHOLDER}{args.name}#{key}\u27e7"
        return resource_id, outputs


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG_KEY in value:
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def desired_resources(
    stack: str, config_overrides: Mapping[str, str | None] | None = None
) -> tuple[list[Desired], StackRun]:
    """The program's dynamic resources for `stack`, in registration order, with their dependencies."""
    run = run_stack(stack, config_overrides=config_overrides, preview=False, mock_impl=PlaceholderMocks())
    dynamic = [r for r in run.resources if r.type.startswith(DYNAMIC_PREFIX)]
    urns = {r.urn for r in dynamic}
    by_name = {r.name: r.urn for r in dynamic}
    desired = []
    for resource in dynamic:
        prop_deps = {k: frozenset(u for u in v if u in urns) for k, v in resource.property_dependencies.items()}
        deps = frozenset(u for u in resource.depends_on if u in urns) | frozenset().union(*prop_deps.values())
        inputs = _with_urns(_unwrap_secrets(dict(resource.inputs)), by_name)
        desired.append(Desired(resource.urn, resource.name, resource.type, inputs, deps, prop_deps))
    return _dependencies_first(desired), run


def _dependencies_first(desired: list[Desired]) -> list[Desired]:
    """The order the program registers them in: a resource after the ones whose outputs it takes."""
    ordered: list[Desired] = []
    placed: set[str] = set()
    remaining = list(desired)
    while remaining:
        ready = [d for d in remaining if d.dependencies <= placed]
        if not ready:
            raise ValueError("dependency cycle among " + ", ".join(d.name for d in remaining))
        ordered += ready
        placed |= {d.urn for d in ready}
        remaining = [d for d in remaining if d.urn not in placed]
    return ordered


def _with_urns(value: Any, by_name: Mapping[str, str]) -> Any:
    """Placeholders name the resource; the engine knows it by URN."""
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        name, key = value[len(PLACEHOLDER) : -1].split("#")
        return (by_name[name], key)
    if isinstance(value, dict):
        return {k: _with_urns(v, by_name) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_urns(v, by_name) for v in value]
    return value


class DeploymentError(Exception):
    """Steps failed; the snapshot holds what did succeed."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures = dict(failures)
        super().__init__("; ".join(f"{urn.rsplit('::', 1)[-1]}: {error}" for urn, error in failures.items()))


class Engine:
    def __init__(self, host: ProviderHost, *, parallel: int = 16) -> None:
        self.host = host
        self.parallel = parallel
        self.state: dict[str, Recorded] = {}
        self._lock = threading.Lock()
        self.steps: list[tuple[str, str]] = []
        """(operation, URN) in the order steps finished."""

    # -- inputs -----------------------------------------------------------------------------

    def _resolve(self, value: Any, *, changing: frozenset[str] = frozenset()) -> Any:
        """Placeholders become the outputs in the snapshot; unknown if not created or `changing`."""
        if isinstance(value, tuple):
            urn, key = value
            recorded = self.state.get(urn)
            if recorded is None or urn in changing:
                return unknown()
            return recorded.outputs.get(key)
        if isinstance(value, dict):
            return {k: self._resolve(v, changing=changing) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, changing=changing) for v in value]
        return value

    # -- preview ----------------------------------------------------------------------------

    def preview(self, desired: list[Desired]) -> dict[str, str]:
        """What `pulumi preview` would do: URN -> create, update, replace, same or delete."""
        plan: dict[str, str] = {}
        changing: set[str] = set()
        for resource in desired:  # registration order respects dependencies
            news = self._resolve(resource.inputs, changing=frozenset(changing))
            recorded = self.state.get(resource.urn)
            checked = self._check(resource, recorded, news)
            if recorded is None:
                plan[resource.urn] = "create"
                changing.add(resource.urn)
                continue
            diff = self.host.diff(recorded.id, resource.urn, recorded.outputs, checked, recorded.inputs)
            plan[resource.urn] = "replace" if diff.replaces else ("update" if diff.changes else "same")
            if diff.changes:
                changing.add(resource.urn)
        for urn in self.state:
            if urn not in plan:
                plan[urn] = "delete"
        return plan

    def _check(self, resource: Desired, recorded: Recorded | None, news: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.host.check(resource.urn, recorded.inputs if recorded else {}, news)
        if answer.failures:
            raise CheckFailedError(f"{resource.name}: " + "; ".join(f"{p}: {r}" for p, r in answer.failures))
        return answer.inputs

    # -- up ---------------------------------------------------------------------------------

    def up(self, desired: list[Desired]) -> dict[str, str]:
        """Deploy `desired`; returns URN -> the operation done. Raises `DeploymentError` on failures."""
        done: dict[str, str] = {}
        failures: dict[str, BaseException] = {}
        by_urn = {d.urn: d for d in desired}
        pending = {d.urn: set(d.dependencies) for d in desired}
        deferred_deletes: list[Recorded] = []
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            running: dict[Future[str], str] = {}
            while pending or running:
                blocked = {u for u, deps in pending.items() if deps & failures.keys()}
                for urn in blocked:
                    failures[urn] = SkippedError("skipped: a dependency failed")
                    del pending[urn]
                ready = [u for u, deps in pending.items() if not deps - done.keys()]
                for urn in ready:
                    del pending[urn]
                    running[pool.submit(self._step, by_urn[urn], deferred_deletes)] = urn
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    urn = running.pop(future)
                    try:
                        done[urn] = future.result()
                    except Exception as error:  # noqa: BLE001 - the engine reports each failed step
                        failures[urn] = error
        gone = [r for urn, r in self.state.items() if urn not in by_urn] + deferred_deletes
        if not failures:
            self._delete_in_order(gone, done)
        if failures:
            raise DeploymentError(failures)
        return done

    def _step(self, resource: Desired, deferred_deletes: list[Recorded]) -> str:
        news = self._resolve(resource.inputs)
        recorded = self.state.get(resource.urn)
        checked = self._check(resource, recorded, news)
        if recorded is None:
            self._create(resource, checked)
            return "create"
        diff = self.host.diff(recorded.id, resource.urn, recorded.outputs, checked, recorded.inputs)
        if diff.replaces:
            if diff.delete_before_replace:
                self._replace_dependents(resource.urn)
                self.host.delete(recorded.id, resource.urn, recorded.outputs, recorded.inputs)
                self._record_step("delete", resource.urn)
                with self._lock:
                    self.state.pop(resource.urn, None)
            else:
                with self._lock:
                    deferred_deletes.append(replace(recorded, urn=recorded.urn + "#old"))
            self._create(resource, checked)
            return "replace"
        if diff.changes:
            outputs = self.host.update(recorded.id, resource.urn, recorded.outputs, checked, recorded.inputs)
            with self._lock:
                self.state[resource.urn] = self._recorded(resource, recorded.id, checked, outputs)
            self._record_step("update", resource.urn)
            return "update"
        with self._lock:
            # A same step records the new inputs and keeps the old outputs.
            self.state[resource.urn] = replace(
                recorded,
                inputs=checked,
                dependencies=resource.dependencies,
                property_dependencies=resource.property_dependencies,
            )
        return "same"

    def _create(self, resource: Desired, checked: dict[str, Any]) -> None:
        resource_id, outputs = self.host.create(resource.urn, checked)
        with self._lock:
            self.state[resource.urn] = self._recorded(resource, resource_id, checked, outputs)
        self._record_step("create", resource.urn)

    @staticmethod
    def _recorded(resource: Desired, resource_id: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> Recorded:
        return Recorded(
            resource.urn, resource_id, inputs, outputs, resource.dependencies, resource.property_dependencies
        )

    def _replace_dependents(self, replaced: str) -> None:
        """Before a delete-first replacement, delete the dependents that cannot outlive it
        (the engine asks each one's Diff with the replaced resource's outputs unknown)."""
        for urn, dependent in list(self.state.items()):
            if replaced not in dependent.dependencies:
                continue
            # The properties fed by the replaced resource's outputs go unknown (calculateDependentReplacements).
            fed = {k for k, urns in dependent.property_dependencies.items() if replaced in urns}
            news = {k: (unknown() if k in fed else v) for k, v in dependent.inputs.items()}
            diff = self.host.diff(dependent.id, urn, dependent.outputs, news, dependent.inputs)
            if diff.replaces:
                self._replace_dependents(urn)
                self.host.delete(dependent.id, urn, dependent.outputs, dependent.inputs)
                self._record_step("delete", urn)
                with self._lock:
                    self.state.pop(urn, None)

    def _record_step(self, operation: str, urn: str) -> None:
        with self._lock:
            self.steps.append((operation, urn))

    # -- refresh and destroy ----------------------------------------------------------------

    def refresh(self) -> dict[str, str]:
        """Read every resource: URN -> same, changed or gone."""
        result: dict[str, str] = {}

        def read(recorded: Recorded) -> tuple[str, str]:
            resource_id, outputs, inputs = self.host.read(recorded.id, recorded.urn, recorded.outputs, recorded.inputs)
            with self._lock:
                if not resource_id:
                    self.state.pop(recorded.urn, None)
                    return recorded.urn, "gone"
                changed = outputs != recorded.outputs
                self.state[recorded.urn] = replace(recorded, outputs=outputs, inputs=inputs or recorded.inputs)
            return recorded.urn, "changed" if changed else "same"

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            for urn, outcome in pool.map(read, list(self.state.values())):
                result[urn] = outcome
        return result

    def destroy(self) -> None:
        self._delete_in_order(list(self.state.values()), {})

    def _delete_in_order(self, doomed: Iterable[Recorded], done: dict[str, str]) -> None:
        """Dependents first; every resource of an antichain at once (ScheduleDeletes)."""
        remaining = {r.urn: r for r in doomed}
        failures: dict[str, BaseException] = {}
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while remaining:
                antichain = [
                    r for r in remaining.values() if not any(r.urn in o.dependencies for o in remaining.values())
                ]
                futures = {pool.submit(self._delete, r): r.urn for r in antichain}
                for future, urn in futures.items():
                    try:
                        future.result()
                        done[urn] = "delete"
                    except Exception as error:  # noqa: BLE001 - collected, then raised together
                        failures[urn] = error
                for r in antichain:
                    remaining.pop(r.urn)
                if failures:
                    raise DeploymentError(failures)

    def _delete(self, recorded: Recorded) -> None:
        urn = recorded.urn.removesuffix("#old")
        self.host.delete(recorded.id, urn, recorded.outputs, recorded.inputs)
        with self._lock:
            if self.state.get(recorded.urn) is recorded:
                del self.state[recorded.urn]
        self._record_step("delete", urn)


class CheckFailedError(Exception):
    """The provider's Check refused the inputs: the engine stops before any Create."""


class SkippedError(Exception):
    """A step not run because a step it depends on failed."""
