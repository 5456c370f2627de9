"""What a set of source ranges admits: the union of its networks, minus the addresses no one on the
internet can use, measured against a breadth that counts as "the internet".

`0.0.0.0/0` is only one way to open a port to everyone: `0.0.0.0/1` plus `128.0.0.0/1`, a list of
/8s, an IPv4-mapped IPv6 range or `0.0.0.0/1` alone admit the internet just as well. A set is
*public* when the globally routable addresses it admits exceed a /16's worth (IPv4) or a /32's
(IPv6): operators' networks (a /24, a few /32s) stay allowed, any wide opening does not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not reachable from the internet (RFC 6890 special-purpose registries: private, shared, loopback,
# link-local, documentation, benchmarking, multicast, reserved).
_NOT_GLOBAL_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    )
)
_NOT_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in ("::/127", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8")
)
_MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
IPV4_INTERNET = ipaddress.IPv4Network("0.0.0.0/0")
IPV6_INTERNET = ipaddress.IPv6Network("::/0")
# A set admitting more globally routable addresses than these counts as open to the internet.
PUBLIC_V4_PREFIX = 16
PUBLIC_V6_PREFIX = 32


def _parse(value: str) -> Network | None:
    try:
        network: Network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED_V4):
        # ::ffff:a.b.c.d/n is the IPv4 range a.b.c.d/(n-96).
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _minus(networks: Iterable[Network], holes: Iterable[Network]) -> list[Network]:
    remaining = list(networks)
    for hole in holes:
        next_round: list[Network] = []
        for network in remaining:
            if network.version != hole.version or not network.overlaps(hole):
                next_round.append(network)
            elif network.subnet_of(hole):  # type: ignore[arg-type]
                continue
            else:
                next_round.extend(network.address_exclude(hole))  # type: ignore[arg-type]
        remaining = next_round
    return remaining


@dataclass(frozen=True)
class CidrSet:
    """Source ranges, as given and as the union they admit."""

    given: tuple[str, ...]
    networks: tuple[Network, ...] = field(default=())
    invalid: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, values: Iterable[object]) -> CidrSet:
        given = tuple(str(v) for v in values if v not in (None, ""))
        parsed = [(v, _parse(v)) for v in given]
        v4 = ipaddress.collapse_addresses(n for _, n in parsed if isinstance(n, ipaddress.IPv4Network))
        v6 = ipaddress.collapse_addresses(n for _, n in parsed if isinstance(n, ipaddress.IPv6Network))
        return cls(given, (*v4, *v6), tuple(v for v, n in parsed if n is None))

    def __bool__(self) -> bool:
        return bool(self.given)

    def minus(self, other: CidrSet) -> CidrSet:
        """The addresses of this set that `other` does not hold (a NetworkPolicy's `except`)."""
        if not other.networks:
            return self
        left = _minus(self.networks, other.networks)
        given = (*self.given, "except", *other.given)
        return CidrSet(given, tuple(left), self.invalid)

    def public_addresses(self, version: int) -> int:
        """How many globally routable addresses of the IP version the set admits."""
        holes = _NOT_GLOBAL_V4 if version == 4 else _NOT_GLOBAL_V6
        ours = [n for n in self.networks if n.version == version]
        return sum(n.num_addresses for n in _minus(ours, holes))

    def covers_internet(self) -> bool:
        """Every IPv4 or every IPv6 address, however the ranges are split."""
        return any(n in (IPV4_INTERNET, IPV6_INTERNET) for n in self.networks)

    def is_public(self, v4_prefix: int = PUBLIC_V4_PREFIX, v6_prefix: int = PUBLIC_V6_PREFIX) -> bool:
        """Admits more of the internet than a /`v4_prefix` (IPv4) or a /`v6_prefix` (IPv6)."""
        v4_limit: int = 2 ** (32 - v4_prefix)
        v6_limit: int = 2 ** (128 - v6_prefix)
        return self.public_addresses(4) > v4_limit or self.public_addresses(6) > v6_limit

    def describe(self) -> str:
        sources = ", ".join(self.given)
        if self.covers_internet():
            return f"{sources} (the whole internet)"
        if self.is_public():
            return f"{sources} ({self.public_addresses(4) + self.public_addresses(6):,} internet addresses)"
        return sources
