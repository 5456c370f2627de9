"""One resource as the rules see it, its normalized models computed once, and the stack as an index.

The analyzer deserializes a resource's properties once per request and builds one `Subject`; every
rule then reads the same models (workload, exposure, IAM, ingress), each computed on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pulumi_policy import PolicyProviderResource, PolicyResourceOptions

from policies.model.exposure import Exposure, NetworkPolicyView, exposure_of, namespace_of, network_policy_of
from policies.model.iam import EMPTY_IAM, IAM_TYPES, LAMBDA_PERMISSION, RESOURCE_POLICY_TYPES, IamView, iam_of
from policies.model.lambda_cloud import LAUNCH_TYPES, Launch, launches_of
from policies.model.network import INGRESS_TYPES, Ingress, ingress_of
from policies.model.values import Unknown, dig, mapping, read, read_key, text
from policies.model.workloads import PodSpec, kubernetes_kind, pod_spec

COMPONENT_PREFIXES = ("pulumi:pulumi:Stack", "sophia:")


@dataclass(eq=False)
class Subject:
    """A resource: its type, identity, properties (an unknown-checking proxy), options and provider."""

    resource_type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    opts: PolicyResourceOptions | None = None
    provider: PolicyProviderResource | None = None
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_component(self) -> bool:
        """Components carry no provider (the engine sends one for every custom resource)."""
        if self.resource_type.startswith("pulumi:providers:"):
            return False
        return self.provider is None or self.resource_type.startswith(COMPONENT_PREFIXES)

    @property
    def provider_props(self) -> Mapping[str, Any]:
        return self.provider.props if self.provider is not None else {}

    @cached_property
    def kind(self) -> str | None:
        """The Kubernetes kind (`Deployment`, also for `DeploymentPatch`), or None."""
        found = kubernetes_kind(self.resource_type)
        return found[0] if found else None

    @cached_property
    def workload(self) -> PodSpec | Unknown | None:
        return pod_spec(self.resource_type, self.props) if self.kind else None

    @cached_property
    def exposure(self) -> Exposure | None:
        return exposure_of(self.kind, self.props, self.provider_props) if self.kind else None

    @cached_property
    def network_policy(self) -> NetworkPolicyView | None:
        return network_policy_of(self.props, self.provider_props) if self.kind == "NetworkPolicy" else None

    @cached_property
    def namespace(self) -> str | Unknown:
        return namespace_of(self.props, self.provider_props)

    @cached_property
    def metadata_name(self) -> str | Unknown | None:
        return read(lambda: text(dig(self.props, "metadata", "name")))

    @cached_property
    def labels(self) -> Mapping[str, Any] | Unknown:
        return read(lambda: mapping(dig(self.props, "metadata", "labels")))

    @cached_property
    def iam(self) -> IamView:
        if self.resource_type in IAM_TYPES or self.resource_type in RESOURCE_POLICY_TYPES:
            return iam_of(self.resource_type, self.props)
        return EMPTY_IAM

    @property
    def is_lambda_permission(self) -> bool:
        return self.resource_type == LAMBDA_PERMISSION

    @cached_property
    def ingress(self) -> tuple[Ingress | Unknown, ...]:
        return ingress_of(self.resource_type, self.props) if self.resource_type in INGRESS_TYPES else ()

    @cached_property
    def launches(self) -> tuple[Launch | Unknown, ...]:
        return launches_of(self.resource_type, self.props) if self.resource_type in LAUNCH_TYPES else ()

    def get(self, key: str) -> Any:
        """A top-level property; raises UnknownValueError when the engine does not know it yet."""
        return self.props.get(key)


class StackView:
    """Every resource of the stack, indexed by URN and type, with the joins stack rules need."""

    def __init__(self, subjects: Sequence[Subject]) -> None:
        self.subjects = subjects
        self.by_urn = {s.urn: s for s in subjects}
        self._by_type: dict[str, list[Subject]] = {}
        for subject in subjects:
            self._by_type.setdefault(subject.resource_type, []).append(subject)
        self._references: dict[tuple[frozenset[str], str], dict[str, list[Subject]]] = {}

    def of_type(self, *types: str) -> list[Subject]:
        return [s for t in types for s in self._by_type.get(t, ())]

    def where(self, predicate: Callable[[Subject], bool]) -> list[Subject]:
        return [s for s in self.subjects if predicate(s)]

    @cached_property
    def custom(self) -> list[Subject]:
        return [s for s in self.subjects if not s.is_component]

    def referencing(self, target: Subject, types: Iterable[str], key: str, names: Iterable[str] = ()) -> list[Subject]:
        """Resources of `types` whose `key` input comes from `target` (a property dependency) or names
        it literally (one of `names`, e.g. a bucket's name)."""
        wanted = frozenset(types)
        index = self._references.get((wanted, key))
        if index is None:
            index = {}
            for subject in self.of_type(*wanted):
                for urn in subject.property_dependencies.get(key, ()):
                    index.setdefault(urn, []).append(subject)
                literal = read_key(subject.props, key)
                if isinstance(literal, str) and not subject.property_dependencies.get(key):
                    index.setdefault(f"name:{literal}", []).append(subject)
            self._references[(wanted, key)] = index
        found = list(index.get(target.urn, ()))
        for name in names:
            found += [s for s in index.get(f"name:{name}", ()) if s not in found]
        return found
