"""Typed Pulumi resources for Lambda Cloud, each served by a dynamic provider."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.dynamic import Resource

from providers.lambda_cloud.account_providers import FilesystemProvider, FirewallRulesetProvider, SshKeyProvider
from providers.lambda_cloud.fleet import FleetProvider
from providers.lambda_cloud.provider import InstanceProvider
from providers.lambda_cloud.sweep import BurstSweepProvider

# pulumi.dynamic's serialize_provider wraps pickle's pure-Python Pickler methods on every call and
# never unwraps them: each dynamic resource adds a level, until pickling a dict overflows the stack
# (about 1,000 resources in one process). Every resource here puts them back after serializing.
_PICKLER_METHODS = ("_batch_setitems", "save_dict")
_ORIGINAL_PICKLER = {name: getattr(pickle._Pickler, name) for name in _PICKLER_METHODS}


def restore_pickler() -> None:
    for name, method in _ORIGINAL_PICKLER.items():
        setattr(pickle._Pickler, name, method)


class _DynamicResource(Resource, module="lambda", name="_Base"):
    """A dynamic resource that leaves the pickler as it found it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        finally:
            restore_pickler()


def launch_key(urn: str) -> str:
    """The tag value that finds this resource's instance again after a lost answer or a crash."""
    return hashlib.sha256(urn.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class LambdaInstanceArgs:
    """Inputs of `LambdaInstance` (see the Lambda API's launch request)."""

    name: pulumi.Input[str]
    """Instance name, unique in the account, 1-64 characters."""
    instance_type: pulumi.Input[str]
    """Lambda instance type, e.g. `gpu_1x_a100`."""
    region: pulumi.Input[str]
    """Region to launch in first."""
    ssh_key_names: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Exactly one SSH key name (an API constraint)."""
    fallback_regions: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Regions tried in order when `region` has no capacity."""
    file_system_names: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Filesystems to mount; must be in the launch region."""
    image: pulumi.Input[Mapping[str, str]] | None = None
    """`{"id": ...}` or `{"family": ...}`; default is the latest Lambda Stack image."""
    user_data: pulumi.Input[str] | None = None
    """cloud-init user data, at most 1 MB. Pass a secret if it holds tokens."""
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    """Tags; keys match ^[a-z][a-z0-9-:]+$."""
    firewall_ruleset_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Firewall rulesets; a region holding none of them is not used."""


class LambdaInstance(_DynamicResource, module="lambda", name="Instance"):
    """The record of one Lambda Cloud on-demand instance; a `LambdaFleet` launches it (see `fleet.py`).

    `instance_id`, `ip` and the other live outputs are filled by `pulumi refresh`; the fleet's
    `instances` output has them right after `pulumi up`.
    """

    launch_key: pulumi.Output[str]
    """Tags the instance: Read, Update, Delete and the fleet find it by this."""
    instance_id: pulumi.Output[str]
    region: pulumi.Output[str]
    ip: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    hostname: pulumi.Output[str]
    status: pulumi.Output[str]
    price_cents_per_hour: pulumi.Output[int]

    def __init__(self, resource_name: str, args: LambdaInstanceArgs, opts: pulumi.ResourceOptions | None = None):
        parent = opts.parent if opts is not None else None
        # Only the parent's URN value: an Output that depends on a component depends on all of
        # its children, this instance included, which Pulumi rejects as a cycle.
        parent_urn: pulumi.Output[str] | None = None
        if parent is not None:
            parent_urn = cast("pulumi.Output[str]", pulumi.Output.from_input(parent.urn.future()))
        urn = pulumi.create_urn(resource_name, f"pulumi-python:{self._resource_type_name}", parent=parent_urn)
        props: dict[str, Any] = {
            "name": args.name,
            "instance_type": args.instance_type,
            "region": args.region,
            "fallback_regions": args.fallback_regions,
            "ssh_key_names": args.ssh_key_names,
            "file_system_names": args.file_system_names,
            "image": args.image,
            "user_data": args.user_data,
            "tags": args.tags,
            "firewall_ruleset_ids": args.firewall_ruleset_ids,
            "launch_key": urn.apply(launch_key),
            "instance_id": None,
            "ip": None,
            "private_ip": None,
            "hostname": None,
            "status": None,
            "price_cents_per_hour": None,
        }
        super().__init__(InstanceProvider(), resource_name, props, opts)
        self._args = args

    def fleet_member(self, firewall_rulesets: Mapping[str, Sequence[pulumi.Input[str]]], pool: str) -> dict[str, Any]:
        """This instance as a `LambdaFleet` launches it: its inputs, and the rulesets of each region."""
        args = self._args
        return {
            "launch_key": self.launch_key,
            "pool": pool,
            "name": args.name,
            "instance_type": args.instance_type,
            "region": args.region,
            "fallback_regions": args.fallback_regions,
            "ssh_key_names": args.ssh_key_names,
            "file_system_names": args.file_system_names,
            "image": args.image,
            "user_data": args.user_data,
            "tags": args.tags,
            "firewall_rulesets": {region: list(ids) for region, ids in firewall_rulesets.items()},
        }


@dataclass(frozen=True)
class LambdaSshKeyArgs:
    name: pulumi.Input[str]
    """Key name, unique in the account."""
    public_key: pulumi.Input[str]
    """OpenSSH public key."""


class LambdaSshKey(_DynamicResource, module="lambda", name="SshKey"):
    key_id: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, resource_name: str, args: LambdaSshKeyArgs, opts: pulumi.ResourceOptions | None = None):
        props = {"name": args.name, "public_key": args.public_key, "key_id": None}
        super().__init__(SshKeyProvider(), resource_name, props, opts)


@dataclass(frozen=True)
class FirewallRule:
    """One inbound rule; `port_range` is inclusive and omitted for icmp."""

    protocol: str
    source_network: str
    description: str
    port_range: tuple[int, int] | None = None

    def to_api(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "protocol": self.protocol,
            "source_network": self.source_network,
            "description": self.description,
        }
        if self.port_range is not None:
            rule["port_range"] = list(self.port_range)
        return rule


@dataclass(frozen=True)
class LambdaFirewallRulesetArgs:
    name: pulumi.Input[str]
    region: pulumi.Input[str]
    rules: Sequence[FirewallRule]


class LambdaFirewallRuleset(_DynamicResource, module="lambda", name="FirewallRuleset"):
    ruleset_id: pulumi.Output[str]
    region: pulumi.Output[str]

    def __init__(self, resource_name: str, args: LambdaFirewallRulesetArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "name": args.name,
            "region": args.region,
            "rules": [r.to_api() for r in args.rules],
            "ruleset_id": None,
        }
        super().__init__(FirewallRulesetProvider(), resource_name, props, opts)


@dataclass(frozen=True)
class LambdaFilesystemArgs:
    name: pulumi.Input[str]
    region: pulumi.Input[str]


class LambdaFilesystem(_DynamicResource, module="lambda", name="Filesystem"):
    filesystem_id: pulumi.Output[str]
    mount_point: pulumi.Output[str]

    def __init__(self, resource_name: str, args: LambdaFilesystemArgs, opts: pulumi.ResourceOptions | None = None):
        props = {"name": args.name, "region": args.region, "filesystem_id": None, "mount_point": None}
        super().__init__(FilesystemProvider(), resource_name, props, opts)


@dataclass(frozen=True)
class LambdaFleetArgs:
    members: Sequence[Mapping[str, Any]]
    """One launch spec per instance: its `LambdaInstance` inputs plus `firewall_rulesets`
    (region -> ruleset ids) and `pool`; the instance resources must be dependencies of the fleet."""


class LambdaFleet(_DynamicResource, module="lambda", name="Fleet"):
    """Launches the recorded instances that are missing and waits until every one is active."""

    instances: pulumi.Output[dict[str, dict[str, Any]]]
    """Launch key -> the live instance: `instance_id`, `name`, `region`, `status`, `ip`, `pool`, ..."""

    def __init__(self, resource_name: str, args: LambdaFleetArgs, opts: pulumi.ResourceOptions | None = None):
        props = {"members": list(args.members), "members_digest": None, "instances": None}
        super().__init__(FleetProvider(), resource_name, props, opts)


@dataclass(frozen=True)
class LambdaBurstSweepArgs:
    owner_tag: str
    """The tag every instance of the node-group service carries (`sophia-autoscaler`)."""
    owner: str
    """Its value: the stack's account prefix (`sophia-prod`)."""


class LambdaBurstSweep(_DynamicResource, module="lambda", name="BurstSweep"):
    """Deleting it terminates the node-group service's instances (`sweep.py`); make the service depend on it."""

    def __init__(self, resource_name: str, args: LambdaBurstSweepArgs, opts: pulumi.ResourceOptions | None = None):
        props = {"owner_tag": args.owner_tag, "owner": args.owner}
        super().__init__(BurstSweepProvider(), resource_name, props, opts)
