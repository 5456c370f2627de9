"""A PostgreSQL data directory shaped as CloudNativePG 1.30.0 leaves it, for the restore tests.

Every file is written the way the operator's instance manager writes it (read in
cloudnative-pg/cloudnative-pg at tag v1.30.0):

- `custom.conf`: `pkg/postgres/configuration.go` `CreatePostgresqlConfiguration` (global defaults,
  then the Cluster's `postgresql.parameters`, then the mandatory settings, `archive_mode`,
  `synchronous_standby_names`, `cluster_name`), rendered by `CreatePostgresqlConfFile`: one
  `key = 'value'` line per setting, sorted, quoted by `pkg/configfile/configfile.go`
  `escapePostgresConfLiteral`, then the `cnpg.*` keys, then `cnpg.config_sha256` last.
- `override.conf`: `pkg/management/postgres/configuration.go` `configurePostgresOverrideConfFile`
  as on a standby (backups default to `target: prefer-standby`): `restore_command`,
  `primary_conninfo`, `primary_slot_name`, `recovery_target_timeline`.
- `postgresql.conf`: initdb's file with the two include blocks of `configfile.EnsureIncludes`.
- `pg_hba.conf` / `pg_ident.conf`: `hbaTemplateString` / `identTemplateString`.
- `postgresql.auto.conf` made read-only (0400), as the instance manager does on PostgreSQL < 17
  with `enableAlterSystem: false`; `cnpg_initialized-<pod>` and `.check-empty-wal-archive`.

Everything points at `/controller/...`, which does not exist outside the operator's pods.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

LOG_PATH = "/controller/log"
CERTIFICATES = "/controller/certificates/"

GLOBAL_DEFAULTS: Mapping[str, str] = {
    "archive_timeout": "5min",
    "dynamic_shared_memory_type": "posix",
    "full_page_writes": "on",
    "logging_collector": "on",
    "log_destination": "csvlog",
    "log_directory": LOG_PATH,
    "log_filename": "postgres",
    "log_rotation_age": "0",
    "log_rotation_size": "0",
    "log_truncate_on_rotation": "false",
    "max_parallel_workers": "32",
    "max_worker_processes": "32",
    "max_replication_slots": "32",
    "shared_memory_type": "mmap",
    "ssl_max_protocol_version": "TLSv1.3",
    "ssl_min_protocol_version": "TLSv1.3",
    "wal_keep_size": "512MB",
    "wal_level": "logical",
    "wal_log_hints": "on",
    "wal_sender_timeout": "5s",
    "wal_receiver_timeout": "5s",
    "shared_preload_libraries": "",
}
MANDATORY: Mapping[str, str] = {
    "archive_command": f"/controller/manager wal-archive --log-destination {LOG_PATH}/postgres.json %p",
    "hot_standby": "true",
    "listen_addresses": "*",
    "port": "5432",
    "restart_after_crash": "false",
    "ssl": "on",
    "ssl_cert_file": CERTIFICATES + "server.crt",
    "ssl_key_file": CERTIFICATES + "server.key",
    "ssl_ca_file": CERTIFICATES + "client-ca.crt",
    "unix_socket_directories": "/controller/run",
}


def _literal(value: str) -> str:
    """`escapePostgresConfLiteral`."""
    for raw, escaped in (("\\", "\\\\"), ("'", "''"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        value = value.replace(raw, escaped)
    return f"'{value}'"


def render(options: Mapping[str, str]) -> str:
    """`configfile.RenderPostgresConfiguration`: sorted `key = 'value'` lines."""
    return "".join(f"{key} = {_literal(options[key])}\n" for key in sorted(options))


def custom_conf(
    cluster: str, parameters: Mapping[str, str], synchronous: Mapping[str, object] | None, pods: list[str]
) -> str:
    """`custom.conf` of the Cluster `cluster` with `spec.postgresql.parameters` and `.synchronous`."""
    options = {**GLOBAL_DEFAULTS, **parameters, **MANDATORY, "archive_mode": "on", "cluster_name": cluster}
    cnpg: dict[str, str] = {}
    standbys = pods[1:]
    if synchronous and standbys:
        method, number = str(synchronous["method"]), int(str(synchronous["number"]))
        names = ",".join(f'"{name}"' for name in standbys)
        options["synchronous_standby_names"] = f"{method.upper()} {number} ({names})"
        metadata = {"method": method.upper(), "number": number, "standbyNames": standbys}
        cnpg["cnpg.synchronous_standby_names_metadata"] = json.dumps(metadata, separators=(",", ":"))
    postgres_part = render(options)
    digest = hashlib.sha256(postgres_part.encode()).hexdigest()
    return postgres_part + render(cnpg) + render({"cnpg.config_sha256": digest})


def standby_override_conf(cluster: str, pod: str) -> str:
    """`override.conf` on a standby of the Cluster (the instance a default backup runs on)."""
    conninfo = (
        f"host={cluster}-rw user=streaming_replica port=5432 "
        f"sslkey={CERTIFICATES}streaming_replica.key sslcert={CERTIFICATES}streaming_replica.crt "
        f"sslrootcert={CERTIFICATES}server-ca.crt application_name={pod} sslmode=verify-ca dbname=postgres "
        "tcp_user_timeout='5000'"
    )
    return render(
        {
            "restore_command": f"/controller/manager wal-restore --log-destination {LOG_PATH}/postgres.json %f %p",
            "recovery_target_timeline": "latest",
            "primary_conninfo": conninfo,
            "primary_slot_name": "_cnpg_" + pod.replace("-", "_"),
        }
    )


HBA = """
#
# FIXED RULES
#

# Grant local access ('local' user map)
local all cnpg_metrics_exporter peer map=cnpg_metrics_exporter
local all all peer map=local

# Require client certificate authentication for the streaming_replica user
hostssl postgres streaming_replica all cert map=cnpg_streaming_replica
hostssl replication streaming_replica all cert map=cnpg_streaming_replica
hostssl all cnpg_pooler_pgbouncer all cert map=cnpg_pooler_pgbouncer

#
# USER-DEFINED RULES
#



#
# DEFAULT RULES
#
host all all all scram-sha-256
"""

IDENT = """
#
# FIXED RULES
#

# Grant local access ('local' user map)
local {user} postgres

# Grant streaming_replica access ('cnpg_streaming_replica' user map)
cnpg_streaming_replica streaming_replica streaming_replica

# Grant cnpg_pooler_pgbouncer access ('cnpg_pooler_pgbouncer' user map)
cnpg_pooler_pgbouncer cnpg_pooler_pgbouncer cnpg_pooler_pgbouncer

# Grant cnpg_metrics_exporter access via peer authentication on the Unix socket
cnpg_metrics_exporter {user} cnpg_metrics_exporter
"""


def shape(
    data: Path,
    *,
    cluster: str,
    parameters: Mapping[str, str],
    synchronous: Mapping[str, object] | None,
    instances: int,
) -> None:
    """Turn an initdb'ed `data` into what the operator leaves in PGDATA (the caller owns `data`)."""
    pods = [f"{cluster}-{n}" for n in range(1, instances + 1)]
    conf = data / "postgresql.conf"
    text = conf.read_text()
    for included in ("custom.conf", "override.conf"):
        text += f"\n# load CloudNativePG {included} configuration\ninclude '{included}'\n"
    conf.write_text(text)
    (data / "custom.conf").write_text(custom_conf(cluster, parameters, synchronous, pods))
    (data / "override.conf").write_text(standby_override_conf(cluster, pods[-1]))
    (data / "pg_hba.conf").write_text(HBA)
    (data / "pg_ident.conf").write_text(IDENT.format(user="postgres"))
    (data / f"cnpg_initialized-{pods[-1]}").touch(mode=0o600)
    (data / ".check-empty-wal-archive").touch(mode=0o600)
    (data / "postgresql.auto.conf").chmod(0o400)
