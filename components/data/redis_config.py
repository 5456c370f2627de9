"""redis.conf for a Redis Cluster node (pure helper): used by `RedisCluster` and proven on real servers."""

from __future__ import annotations

from dataclasses import dataclass

# A node is failed after this long without answering; its replica is then elected.
DEFAULT_NODE_TIMEOUT_MS = 5000
CLIENT_PORT = 6379
BUS_PORT = 16379


@dataclass(frozen=True)
class RedisTls:
    """Certificate paths inside the container (or on the test host)."""

    cert_file: str
    key_file: str
    ca_file: str


@dataclass(frozen=True)
class RedisNodeConfig:
    data_dir: str
    """Where AOF, RDB snapshots and nodes.conf live (the persistent volume)."""
    auth_include: str
    """File holding `requirepass` and `masterauth`, mounted from a Secret so no password is in the ConfigMap."""
    tls: RedisTls | None
    port: int = CLIENT_PORT
    bus_port: int = BUS_PORT
    bind: str = "0.0.0.0"  # noqa: S104 - inside the pod; NetworkPolicy decides who reaches it
    node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS
    maxmemory_mb: int = 0
    """0 leaves memory unbounded (test servers); the component sets it below the container limit."""


def render_redis_conf(config: RedisNodeConfig) -> str:
    lines = [
        f"bind {config.bind}",
        "protected-mode no",  # access is controlled by requirepass, TLS and NetworkPolicy
        f"dir {config.data_dir}",
        # Cluster mode, with an explicit bus port so NetworkPolicy and Services can name it.
        "cluster-enabled yes",
        f"cluster-port {config.bus_port}",
        "cluster-config-file nodes.conf",
        f"cluster-node-timeout {config.node_timeout_ms}",
        # A cache keeps serving the slots it has while another shard fails over.
        "cluster-require-full-coverage no",
        # Persistence: AOF for durability of acknowledged writes, RDB snapshots for backups.
        "appendonly yes",
        "appendfsync everysec",
        "aof-use-rdb-preamble yes",
        "save 900 1 300 100 60 10000",
        "dbfilename dump.rdb",
        f"include {config.auth_include}",
    ]
    if config.maxmemory_mb:
        lines += [f"maxmemory {config.maxmemory_mb}mb", "maxmemory-policy allkeys-lru"]
    if config.tls is None:
        lines.append(f"port {config.port}")
    else:
        lines += [
            "port 0",  # no plaintext listener
            f"tls-port {config.port}",
            f"tls-cert-file {config.tls.cert_file}",
            f"tls-key-file {config.tls.key_file}",
            f"tls-ca-cert-file {config.tls.ca_file}",
            "tls-auth-clients optional",  # clients prove themselves with the password; mTLS if they offer it
            "tls-replication yes",
            "tls-cluster yes",
        ]
    return "\n".join(lines) + "\n"


def render_auth_conf(password: str) -> str:
    """The Secret-mounted include: the same password for clients and for replicas to their master."""
    return f"requirepass {password}\nmasterauth {password}\n"
