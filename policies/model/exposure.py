"""How Kubernetes objects reach a workload from outside the cluster, and what network policies admit.

A Service is reachable from outside through `type: LoadBalancer` (unless internal, and then only
from its source ranges), `type: NodePort` (the port on every node) or `externalIPs`; an Ingress
routes outside traffic to its backend Services. A Service's namespace is its own, else the
provider's default namespace, else `default`. A NetworkPolicy admits "everyone" through an ingress
rule without `from`, and the internet through an `ipBlock` whose range is public.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.model.cidr import CidrSet
from policies.model.values import Unknown, dig, items, mapping, number, read, text

SERVICE_KIND = "Service"
INGRESS_KIND = "Ingress"
NETWORK_POLICY_KIND = "NetworkPolicy"
INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": ("true", "0.0.0.0/0"),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": ("internal",),
}
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def namespace_of(props: Mapping[str, Any], provider_props: Mapping[str, Any] | None = None) -> str | Unknown:
    """The object's namespace as the provider applies it (its own, the provider's default, `default`)."""
    own = read(lambda: text(dig(props, "metadata", "namespace")))
    if own is not None:
        return own
    default = read(lambda: text(mapping(provider_props).get("namespace")))
    return default if default is not None else "default"


@dataclass(frozen=True)
class Exposure:
    """A Service (or an Ingress's routes) as reachable from outside the cluster."""

    kind: str
    namespace: str | Unknown
    openings: tuple[str, ...] | Unknown
    """Why it is reachable from the internet, e.g. 'NodePort', 'LoadBalancer open to 0.0.0.0/0'."""
    ports: tuple[int, ...] | Unknown
    """Service ports, target ports and node ports (numbers only)."""
    selector: Mapping[str, Any] | Unknown
    backends: tuple[str, ...] | Unknown = ()
    """An Ingress's backend Service names."""


def _service(props: Mapping[str, Any], namespace: str | Unknown) -> Exposure:
    spec = read(lambda: mapping(props.get("spec")))
    if isinstance(spec, Unknown):
        return Exposure(SERVICE_KIND, namespace, spec, spec, spec)

    def openings() -> tuple[str, ...]:
        found: list[str] = []
        kind = text(spec.get("type")) or "ClusterIP"
        if kind == "NodePort":
            found.append("NodePort (the port on every node)")
        if kind == "LoadBalancer":
            annotations = mapping(dig(props, "metadata", "annotations"))
            internal = any(
                str(annotations.get(key, "")).lower() in values for key, values in INTERNAL_ANNOTATIONS.items()
            )
            ranges = [*items(spec.get("loadBalancerSourceRanges"))]
            if not ranges and annotations.get(SOURCE_RANGES_ANNOTATION):
                ranges = [r for r in str(annotations[SOURCE_RANGES_ANNOTATION]).split(",") if r.strip()]
            sources = CidrSet.of(ranges)
            if not internal and (not sources or sources.is_public() or sources.invalid):
                found.append(f"LoadBalancer open to {sources.describe() if sources else 'every address'}")
        external = [str(ip) for ip in items(spec.get("externalIPs"))]
        if external:
            found.append(f"externalIPs {', '.join(external)}")
        return tuple(found)

    def ports() -> tuple[int, ...]:
        found: list[int] = []
        for port in items(spec.get("ports")):
            for key in ("port", "targetPort", "nodePort"):
                value = number(mapping(port).get(key))
                if value is not None:
                    found.append(int(value))
        return tuple(found)

    return Exposure(SERVICE_KIND, namespace, read(openings), read(ports), read(lambda: mapping(spec.get("selector"))))


def _ingress(props: Mapping[str, Any], namespace: str | Unknown) -> Exposure:
    def backends() -> tuple[str, ...]:
        spec = mapping(props.get("spec"))
        names = [dig(spec, "defaultBackend", "service", "name"), dig(spec, "backend", "serviceName")]
        for rule in items(spec.get("rules")):
            for path in items(dig(rule, "http", "paths")):
                names += [dig(path, "backend", "service", "name"), dig(path, "backend", "serviceName")]
        return tuple(sorted({str(n) for n in names if n}))

    found = read(backends)
    return Exposure(INGRESS_KIND, namespace, ("Ingress (routes outside traffic)",), (), {}, found)


def exposure_of(kind: str, props: Mapping[str, Any], provider_props: Mapping[str, Any] | None) -> Exposure | None:
    if kind == SERVICE_KIND:
        return _service(props, namespace_of(props, provider_props))
    if kind == INGRESS_KIND:
        return _ingress(props, namespace_of(props, provider_props))
    return None


@dataclass(frozen=True)
class NetworkPolicyView:
    namespace: str | Unknown
    selects_all_pods: bool | Unknown
    denies_ingress: bool | Unknown
    """Ingress is among its policy types and it has no ingress rule: every pod it selects is closed."""
    admits: tuple[str, ...] | Unknown
    """Ingress rules that admit everyone or the internet, described."""


def _policy_types(spec: Mapping[str, Any]) -> set[str]:
    declared = items(spec.get("policyTypes"))
    if declared:
        return {str(t) for t in declared}
    # Omitted: Ingress always, Egress when the policy has egress rules (NetworkPolicySpec docs).
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def network_policy_of(props: Mapping[str, Any], provider_props: Mapping[str, Any] | None) -> NetworkPolicyView:
    spec = read(lambda: mapping(props.get("spec")))
    namespace = namespace_of(props, provider_props)
    if isinstance(spec, Unknown):
        return NetworkPolicyView(namespace, spec, spec, spec)

    def selects_all() -> bool:
        selector = mapping(spec.get("podSelector"))
        return not selector.get("matchLabels") and not selector.get("matchExpressions")

    def denies() -> bool:
        return "Ingress" in _policy_types(spec) and not items(spec.get("ingress"))

    def admits() -> tuple[str, ...]:
        found: list[str] = []
        for index, rule in enumerate(items(spec.get("ingress"))):
            peers = items(mapping(rule).get("from"))
            if not peers:
                found.append(f"ingress rule {index} admits every source")
            for peer in peers:
                block = mapping(mapping(peer).get("ipBlock"))
                if block:
                    sources = CidrSet.of([block.get("cidr")]).minus(CidrSet.of(items(block.get("except"))))
                    if sources.is_public():
                        found.append(f"ingress rule {index} admits {sources.describe()}")
        return tuple(found)

    return NetworkPolicyView(namespace, read(selects_all), read(denies), read(admits))
