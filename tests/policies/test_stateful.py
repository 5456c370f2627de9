"""The protect rule: in prod and dr (from the pack config) everything that holds data is protected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from providers.lambda_cloud.resources import LambdaFilesystem, LambdaFilesystemArgs
from tests.policies.helpers import aws, k8s, messages, program

POLICY = "pulumi-stateful-resource-protected"
STORES: dict[str, Callable[[pulumi.ResourceOptions], Any]] = {
    "bucket": lambda opts: aws.s3.Bucket("s", opts=opts),
    "rds": lambda opts: aws.rds.Instance("s", engine="postgres", instance_class="db.r6g.large", opts=opts),
    "pvc": lambda opts: k8s.core.v1.PersistentVolumeClaim(
        "s", metadata={"name": "data"}, spec={"access_modes": ["ReadWriteOnce"]}, opts=opts
    ),
    "lambda-filesystem": lambda opts: LambdaFilesystem(
        "s", LambdaFilesystemArgs(name="models", region="us-west-1"), opts
    ),
}


@pytest.mark.parametrize("store", STORES)
def test_stateful_resources_protected_in_prod_and_dr(store: str) -> None:
    protected = program(lambda: STORES[store](pulumi.ResourceOptions(protect=True)))
    bare = program(lambda: STORES[store](pulumi.ResourceOptions()))
    assert messages(POLICY, protected) == []
    assert messages(POLICY, bare, environment="prod") == ["holds data but is not protected."]
    assert messages(POLICY, bare, environment="dr") == ["holds data but is not protected."]
    assert messages(POLICY, bare, environment="dev") == []


def test_stateless_resources_need_no_protect() -> None:
    assert messages(POLICY, program(lambda: aws.ec2.Vpc("v", cidr_block="10.0.0.0/16"))) == []
