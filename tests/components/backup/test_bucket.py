"""BackupBucket as the stacks render it."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from tools.harness import run_stack
from tools.redact import is_secret


def test_prod_buckets_are_protected_encrypted_and_replicated_with_rtc() -> None:
    run = run_stack("prod")
    buckets = {r.inputs["bucket"]: r for r in run.by_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {"sophia-prod-backups", "sophia-prod-backups-replica"}
    assert all(b.protect for b in buckets.values())
    bucket_keys = [k for k in run.by_type("aws:kms/key:Key") if "-alarms-" not in k.name]
    assert len(bucket_keys) == 2
    assert all(k.protect and k.inputs["enableKeyRotation"] for k in bucket_keys)
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


def test_replication_failures_and_lateness_raise_alarms_in_both_regions() -> None:
    run = run_stack("prod")
    providers = {p.urn: p.inputs["region"] for p in run.by_type("pulumi:providers:aws")}
    alarms = run.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    by_metric: dict[str, set[str]] = {}
    for alarm in alarms:
        inputs = alarm.inputs
        assert inputs["namespace"] == "AWS/S3"
        assert inputs["dimensions"] == {
            "SourceBucket": "sophia-prod-backups",
            "DestinationBucket": "sophia-prod-backups-replica",
            "RuleId": "to-dr-region",
        }
        assert inputs["treatMissingData"] == "ignore"  # the S3 User Guide's advice for these metrics
        assert alarm.provider is not None
        by_metric.setdefault(inputs["metricName"], set()).add(providers[alarm.provider.rsplit("::", 1)[0]])
        # Each alarm notifies the topic of its own region.
        (topic_urn,) = alarm.property_dependencies["alarmActions"]
        topic = next(r for r in run.resources if r.urn == topic_urn)
        assert topic.provider == alarm.provider
    assert by_metric == {
        "OperationsFailedReplication": {"us-west-1", "us-east-1"},
        "ReplicationLatency": {"us-west-1", "us-east-1"},
    }
    late = next(a for a in alarms if a.inputs["metricName"] == "ReplicationLatency")
    assert (late.inputs["statistic"], late.inputs["threshold"]) == ("Maximum", 900.0)
    failed = next(a for a in alarms if a.inputs["metricName"] == "OperationsFailedReplication")
    assert (failed.inputs["statistic"], failed.inputs["threshold"]) == ("Sum", 0.0)


def test_alarm_topics_page_through_pagerduty_with_a_secret_url_and_admit_cloudwatch() -> None:
    run = run_stack("prod")
    subscriptions = run.by_type("aws:sns/topicSubscription:TopicSubscription")
    assert len(subscriptions) == 2
    for subscription in subscriptions:
        assert subscription.inputs["protocol"] == "https"
        assert is_secret(subscription.inputs["endpoint"])
    for topic in run.by_type("aws:sns/topic:Topic"):
        assert "kmsMasterKeyId" in topic.property_dependencies
    keys = [k for k in run.by_type("aws:kms/key:Key") if "alarms" in k.name]
    for key in keys:
        (publisher,) = [s for s in json.loads(key.inputs["policy"])["Statement"] if s["Sid"] == "CloudWatchPublishes"]
        assert publisher["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


def test_the_alarm_url_is_a_required_secret_where_there_are_alarms() -> None:
    with pytest.raises(pulumi.RunError, match=re.escape("sophia:awsAlarmPagerdutyUrl: is required: the PagerDuty")):
        run_stack("prod", assume_secrets_set=False)
