"""What every settings module shares: the model base, constrained numbers, and the common value checks.

Field names are snake_case in Python and camelCase in `Pulumi.<stack>.yaml` (`sophia:<key>`).
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any

import pulumi_aws
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator
from pydantic.alias_generators import to_camel

from policies.catalog import load_lambda_catalog

# JSON gives ints as ints: strict mode refuses 2.5, "2" and true where a count belongs. Every count and
# size has an upper bound too: a slip such as 1000000000 nodes must fail here, naming its key, rather
# than plan for ever while memory grows.
MAX_POOL_INSTANCES = 100
MAX_POOLS = 16
MAX_STORAGE_GIB = 65536  # the largest EBS volume (64 TiB); no node volume is bigger
Minutes = Annotated[int, Strict(), Field(ge=1, le=1440)]
"""A duration in whole minutes, at most a day."""
StorageGib = Annotated[int, Strict(), Field(ge=1, le=MAX_STORAGE_GIB)]
"""A volume size in GiB."""
RetentionDays = Annotated[int, Strict(), Field(ge=1, le=3650)]
"""How long something is kept, at most ten years."""
# A fraction strictly between 0 and 1 (0.9 = 90 %); strict refuses "0.9" and true.
Ratio = Annotated[float, Strict(), Field(gt=0, lt=1, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Strict(), Field(gt=0, le=86400, allow_inf_nan=False)]
"""Seconds, more than zero and at most a day."""

_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Characters AWS accepts in tag values, which are the strictest of our targets.
_TAG_VALUE = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]{1,128}$")
AWS_REGIONS = frozenset(str(r.value) for r in pulumi_aws.Region)
# Private, shared, loopback, link-local, multicast and reserved space: never a firewall source.
NON_PUBLIC_NETWORKS = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
    )
)


class Environment(StrEnum):
    PROD = "prod"
    DR = "dr"
    DEV = "dev"


class SettingsModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class CostTags(SettingsModel):
    """Tags every billable resource carries."""

    owner: str
    """Team that owns the stack."""
    cost_centre: str
    """Cost centre the spend is booked to."""

    @field_validator("owner", "cost_centre")
    @classmethod
    def _tag_value(cls, value: str) -> str:
        """1-128 characters AWS accepts in tag values."""
        if not _TAG_VALUE.match(value):
            raise ValueError(f"must be 1-128 letters, digits, spaces or _.:/=+-@; got {value!r}")
        return value


def ipv4_network(cidr: str) -> ipaddress.IPv4Network:
    """An IPv4 network written with no host bits, or the one error message every CIDR setting gives."""
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        raise ValueError(f"{cidr!r} is not an IPv4 CIDR with no host bits") from None


def check_dns_name(value: str) -> str:
    if not _DNS_NAME.fullmatch(value):
        raise ValueError(f"must be a lowercase DNS name such as api.sophia.ai, got {value!r}")
    return value


def check_bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value):
        raise ValueError(
            f"must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, dashes), got {value!r}"
        )
    return value


_DYNAMODB_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")


def check_dynamodb_table(value: str) -> str:
    if not _DYNAMODB_TABLE.fullmatch(value):
        raise ValueError(f"must be a DynamoDB table name (3-255 letters, digits, '_', '.', '-'), got {value!r}")
    return value


def check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields):
        raise ValueError(f"must be a five-field cron schedule such as '30 4 * * *', got {value!r}")
    return value


def check_lambda_region(value: Any) -> None:
    regions = load_lambda_catalog().regions
    if value not in regions:
        raise ValueError(f"unknown Lambda region {value!r}; allowed: {', '.join(sorted(regions))}")
