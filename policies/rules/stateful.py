"""Pulumi rule: in prod and dr everything that holds data is `protect`ed."""

from __future__ import annotations

from pulumi_policy import Severity

from policies.common import Category, Ctx, Rule
from policies.model.subject import Subject

STATEFUL_TYPES = (
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:ebs/volume:Volume",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
    "aws:kms/key:Key",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
    "pulumi-python:dynamic/lambda:Filesystem",
)

PROTECTED = Rule(
    "pulumi-stateful-resource-protected",
    "In prod and dr every resource that holds data must be protected (protect=True).",
    Severity.HIGH,
    "Pass ResourceOptions(protect=True); unprotect deliberately with `pulumi state unprotect` when retiring it.",
    Category.SECURITY,
)


def _protected(subject: Subject, ctx: Ctx) -> None:
    if ctx.strict and not (subject.opts is not None and subject.opts.protect):
        ctx.violation("holds data but is not protected.")


POLICIES = [PROTECTED.resource(STATEFUL_TYPES, _protected)]
