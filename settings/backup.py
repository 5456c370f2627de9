"""Where backups go and how their restores are checked (`sophia:backups`, `sophia:monitoring.restoreVerification`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict, field_validator, model_validator

from settings.base import AWS_REGIONS, Ratio, RetentionDays, SettingsModel, check_bucket, check_cron
from settings.errors import RuleError


class BackupSettings(SettingsModel):
    """Where the primary region's stores send backups (WAL, base backups, snapshots)."""

    s3_bucket: str
    """S3 bucket (replicated to the DR region by the dr stack)."""
    s3_region: str
    """AWS region of the bucket."""
    retention_days: RetentionDays = 30
    """How long backups are kept."""
    replica_bucket: str | None = None
    """Bucket in `replicaRegion` that S3 replication copies every backup to (required in prod)."""
    replica_region: str | None = None
    """AWS region of the replica bucket: the DR region, never the same as `s3Region`."""
    snapshot_schedule: str = "0 2 * * *"
    """Cron schedule (UTC) of the nightly Redis and Qdrant snapshots (Postgres archives continuously)."""

    @field_validator("snapshot_schedule")
    @classmethod
    def _snapshot_cron(cls, value: str) -> str:
        """Five-field cron (UTC)."""
        return check_cron(value)

    @field_validator("s3_bucket", "replica_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        """A valid S3 bucket name."""
        return None if value is None else check_bucket(value)

    @field_validator("s3_region", "replica_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        """A known AWS region."""
        if value is not None and value not in AWS_REGIONS:
            raise ValueError(f"unknown AWS region {value!r} (e.g. 'us-east-1')")
        return value

    @model_validator(mode="after")
    def _replica(self) -> BackupSettings:
        """replicaBucket and replicaRegion come together; the replica is in another region and another bucket."""
        if (self.replica_bucket is None) != (self.replica_region is None):
            missing = "replicaRegion" if self.replica_region is None else "replicaBucket"
            raise RuleError([(missing, "is required when the other replica setting is set")])
        if self.replica_region is not None and self.replica_region == self.s3_region:
            raise RuleError([("replicaRegion", f"must differ from s3Region ({self.s3_region}): cross-region copy")])
        if self.replica_bucket is not None and self.replica_bucket == self.s3_bucket:
            raise RuleError([("replicaBucket", "must differ from s3Bucket (bucket names are global)")])
        return self


class RestoreVerificationSettings(SettingsModel):
    """The scheduled restore test each store gets."""

    schedule: str = "30 4 * * *"
    """Cron schedule (UTC) of the restore jobs; after the nightly backups."""
    stale_after_hours: Annotated[int, Strict(), Field(ge=1, le=720)] = 30
    """An alert fires when no restore has succeeded for this long."""
    count_tolerance: Ratio = 0.05
    """Restored rows/points/keys may differ from the source's figures by this share (writes since the backup)."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        """Five-field cron (UTC)."""
        return check_cron(value)
