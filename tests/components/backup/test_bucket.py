"""BackupBucket as the stacks render it."""

from __future__ import annotations

import json

from tools.harness import run_stack


def test_prod_buckets_are_protected_encrypted_and_replicated_with_rtc() -> None:
    run = run_stack("prod")
    buckets = {r.inputs["bucket"]: r for r in run.by_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {"sophia-prod-backups", "sophia-prod-backups-replica"}
    assert all(b.protect for b in buckets.values())
    assert all(k.protect and k.inputs["enableKeyRotation"] for k in run.by_type("aws:kms/key:Key"))
    (replication,) = run.by_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = replication.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    destination = rule["destination"]
    assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15.0}}
    assert destination["metrics"]["status"] == "Enabled"
    # The replica lives in the DR region, through its own provider.
    providers = {p.urn: p.inputs["region"] for p in run.by_type("pulumi:providers:aws")}
    replica = buckets["sophia-prod-backups-replica"]
    assert replica.provider is not None
    assert providers[replica.provider.rsplit("::", 1)[0]] == "us-east-1"


def test_lifecycle_expires_snapshots_but_leaves_barman_to_prune_postgres() -> None:
    run = run_stack("prod")
    lifecycle = run.by_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0]
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["expire-qdrant"]["expiration"] == {"days": 30.0}
    assert rules["expire-redis"]["filter"] == {"prefix": "redis/"}
    assert not any(r.get("filter", {}).get("prefix") == "postgres/" for r in rules.values())
    assert rules["noncurrent-versions-and-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7.0}


def test_replication_role_reaches_only_the_two_buckets() -> None:
    run = run_stack("prod")
    (policy,) = run.by_type("aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    resources = {r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert resources == {
        "arn:aws:s3:::sophia-prod-backups",
        "arn:aws:s3:::sophia-prod-backups/*",
        "arn:aws:s3:::sophia-prod-backups-replica/*",
        "*",
    }
    # KMS is the only "*", and only as S3 uses it for these buckets.
    for statement in statements:
        if statement["Resource"] == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert set(actions) <= {"kms:Decrypt", "kms:Encrypt"}
            assert "kms:ViaService" in statement["Condition"]["StringEquals"]


def test_replication_kms_conditions_match_the_bucket_key_encryption_context() -> None:
    """Both buckets use S3 Bucket Keys, so KMS sees `aws:s3:arn` = the bucket ARN, which
    `arn:aws:s3:::<bucket>/*` does not match: the role must name the bucket ARN itself."""
    run = run_stack("prod")
    encryptions = {
        e.inputs["bucket"]: e.inputs["rules"][0]
        for e in run.by_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    }
    assert all(rule["bucketKeyEnabled"] for rule in encryptions.values())
    (policy,) = run.by_type("aws:iam/rolePolicy:RolePolicy")
    contexts = {
        s["Condition"]["StringEquals"]["kms:ViaService"]: s["Condition"]["StringLike"][
            "kms:EncryptionContext:aws:s3:arn"
        ]
        for s in json.loads(policy.inputs["policy"])["Statement"]
        if s["Resource"] == "*"
    }
    assert "arn:aws:s3:::sophia-prod-backups" in contexts["s3.us-west-1.amazonaws.com"]
    assert "arn:aws:s3:::sophia-prod-backups-replica" in contexts["s3.us-east-1.amazonaws.com"]


def test_dev_keeps_one_unprotected_bucket_without_replica() -> None:
    run = run_stack("dev")
    (bucket,) = run.by_type("aws:s3/bucket:Bucket")
    assert not bucket.protect
    assert run.by_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig") == []
    assert bucket.inputs["tags"]["purpose"] == "backup"
