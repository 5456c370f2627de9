"""PostgreSQL replication settings (pure helper): used by `PostgresCluster` and proven on real servers.

`replication_parameters` goes into the CloudNativePG Cluster's `spec.postgresql.parameters`;
`CNPG_MANAGED` lists what the operator sets itself (and refuses from users), so the real-server
test can run the same configuration without the operator.
"""

from __future__ import annotations

from collections.abc import Mapping

LAG_TARGET_S = 5
"""The plan's replication lag target, in seconds."""

# Set by CloudNativePG on every instance; listed so tests reproduce the operator's setup.
CNPG_MANAGED: Mapping[str, str] = {
    "wal_level": "logical",
    "hot_standby": "on",
    "max_wal_senders": "10",
    "max_replication_slots": "32",
    "wal_log_hints": "on",
}


def replication_parameters() -> dict[str, str]:
    """Streaming settings that keep replicas within the lag target under write load."""
    return {
        # A standby cancels a conflicting query rather than fall further behind than the target.
        "max_standby_streaming_delay": f"{LAG_TARGET_S}s",
        "max_standby_archive_delay": f"{LAG_TARGET_S}s",
        # Feedback stops the primary vacuuming rows standby queries still read (fewer conflicts).
        "hot_standby_feedback": "on",
        # Standbys report replay position every second, so lag is measured, not guessed.
        "wal_receiver_status_interval": "1s",
        # Notice a dead peer within seconds rather than minutes.
        "wal_sender_timeout": "10s",
        "wal_receiver_timeout": "10s",
        # Less WAL on the wire and fewer forced checkpoints under bulk writes.
        "wal_compression": "on",
        "max_wal_size": "4GB",
        "min_wal_size": "1GB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        # Keep WAL for a standby that briefly falls behind, so it does not need a new base backup.
        "wal_keep_size": "2GB",
        "ssl_min_protocol_version": "TLSv1.2",
    }


def synchronous_replication(read_replicas: int) -> dict[str, object] | None:
    """CloudNativePG `spec.postgresql.synchronous`: a commit waits for any one standby (quorum);
    None (no synchronous replication) when there is no standby.

    "preferred" keeps the primary writable if every standby is down: availability over
    strict durability, which the lag target (not zero data loss) asks for. The Cluster CRD's CEL
    rule `self > 0` on `number` refuses 0, so a single instance leaves the section out.
    """
    if read_replicas == 0:
        return None
    return {"method": "any", "number": 1, "dataDurability": "preferred"}


def standby_names(synchronous: Mapping[str, object] | None) -> str:
    """The `synchronous_standby_names` CloudNativePG renders from `synchronous_replication`."""
    if synchronous is None:
        return ""
    return f"{str(synchronous['method']).upper()} {synchronous['number']} (*)"
