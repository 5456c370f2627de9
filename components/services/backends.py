"""A service's backends: one Deployment per pool it runs on and per release track (pure).

The `stable` track runs `image`; the `next` track, when the service has `next`, runs `next.image`
on the same pools. Each backend has its own Deployment, ScaledObject and PodDisruptionBudget; the
gateway weighs the backends by the release weight and, across pools, by GPU capability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from components.services.capability import WEIGHT_TOTAL, capability, split
from settings.services import ServiceSettings

Track = Literal["stable", "next"]


@dataclass(frozen=True)
class Backend:
    """One Deployment of a service."""

    service: ServiceSettings
    pool: str
    track: Track
    image: str
    name: str
    """Name of the Deployment, its ScaledObject and PodDisruptionBudget: `<service>-<pool>[-next]`."""
    service_name: str
    """The Kubernetes Service the gateway sends this backend's share to."""
    weight: int
    """Its share of the service's traffic, per mille of `WEIGHT_TOTAL`."""
    min_replicas: int
    """Replicas while the service is up (0: scaled from zero on demand)."""
    max_replicas: int

    @property
    def labels(self) -> dict[str, str]:
        """What the Deployment's pods carry (and its selector matches)."""
        return pod_labels(self.service, self.pool, self.track)


SERVICE_LABEL = "sophia.ai/service"
KIND_LABEL = "sophia.ai/service-kind"
TRACK_LABEL = "sophia.ai/track"
BACKEND_POOL_LABEL = "sophia.ai/service-pool"


def pod_labels(service: ServiceSettings, pool: str, track: Track) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service.name,
        "app.kubernetes.io/part-of": "sophia",
        "app.kubernetes.io/managed-by": "pulumi",
        SERVICE_LABEL: service.name,
        KIND_LABEL: service.kind.value,
        BACKEND_POOL_LABEL: pool,
        TRACK_LABEL: track,
    }


def backends(service: ServiceSettings, instance_types: Mapping[str, str], *, standby: bool = False) -> list[Backend]:
    """Every backend of `service`; `instance_types` maps each pool to its instance type. `standby`
    (the DR region) keeps `dr.standbyReplicas` per backend instead of `replicas.min`."""
    floor = service.dr.standby_replicas if standby else service.replicas.min
    release = service.next
    tracks: list[tuple[Track, str, int]] = [("stable", service.image, 100 - (release.weight if release else 0))]
    if release is not None:
        tracks.append(("next", release.image, release.weight))
    multiple = len(service.pool) * len(tracks) > 1
    uses_gpus = service.resources.gpus > 0
    shares = [capability(instance_types[pool], uses_gpus) for pool in service.pool]
    result: list[Backend] = []
    for track, image, percent in tracks:
        weights = split(WEIGHT_TOTAL * percent // 100, shares)
        for pool, weight in zip(service.pool, weights, strict=True):
            name = f"{service.name}-{pool}" + ("-next" if track == "next" else "")
            low, high = floor, service.replicas.max
            if track == "next":
                # The next release runs in proportion to its weight; at weight 0 it stays warm on one replica.
                low = max(1, math.ceil(floor * percent / 100)) if floor else 0
                high = max(1, math.ceil(high * percent / 100))
            result.append(
                Backend(
                    service=service,
                    pool=pool,
                    track=track,
                    image=image,
                    name=name,
                    service_name=name if multiple else service.name,
                    weight=weight,
                    min_replicas=min(low, high),
                    max_replicas=high,
                )
            )
    return result
