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
    """File holding the ACL users and `masterauth`, mounted from a Secret so no password is in the ConfigMap."""
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
            "tls-auth-clients optional",  # clients prove themselves with their user's password; mTLS if offered
            "tls-replication yes",
            "tls-cluster yes",
        ]
    return "\n".join(lines) + "\n"


# What each ACL user may run. `default` is the applications' user: clients that send only the
# password (AUTH <password>) keep working, and can no longer run admin or dangerous commands
# (CONFIG, FLUSHALL, KEYS, DEBUG, SHUTDOWN, CLUSTER changes, replication, MONITOR, ...).
APP_PERMISSIONS = "~* &* +@all -@admin -@dangerous"
# redis_exporter's documented ACL (oliver006/redis_exporter README, v1.88.0) less `+arcount`,
# which only Redis 8.8+ knows.
EXPORTER_PERMISSIONS = (
    "-@all +@connection +memory -readonly +strlen +config|get +xinfo +pfcount -quit +zcard +type +xlen "
    "-readwrite -command +client -wait +scard +llen +hlen +get +eval +slowlog +cluster|info +cluster|slots "
    "+cluster|nodes -hello -echo +info +latency +scan -reset -auth -asking"
)
# The snapshot job: find the masters, count their keys, and fetch each one's RDB over the
# replication protocol (`redis-cli --rdb` sends REPLCONF and SYNC).
BACKUP_PERMISSIONS = "-@all +@connection +cluster|nodes +cluster|info +dbsize +replconf +sync +psync"
# Replicas authenticate to their master as this user (masteruser / masterauth).
REPLICATION_PERMISSIONS = "-@all +psync +replconf +ping"


@dataclass(frozen=True)
class RedisUsers:
    """The ACL users' passwords (from Pulumi secrets in a pod, literals in tests)."""

    app: str
    """`default`: the applications."""
    admin: str
    """`admin`: cluster management (the cluster Job) and TLS reloads."""
    exporter: str
    """`exporter`: redis_exporter and the readiness probe."""
    backup: str
    """`backup`: the snapshot job."""
    replication: str
    """`replication`: replicas to their master."""


def render_auth_conf(users: RedisUsers) -> str:
    """The Secret-mounted include: every ACL user, and how a replica authenticates to its master.
    The passwords are `pulumi-random` ones without special characters, so none needs quoting."""
    return (
        f"user default on >{users.app} {APP_PERMISSIONS}\n"
        f"user admin on >{users.admin} ~* &* +@all\n"
        f"user exporter on >{users.exporter} {EXPORTER_PERMISSIONS}\n"
        f"user backup on >{users.backup} {BACKUP_PERMISSIONS}\n"
        f"user replication on >{users.replication} {REPLICATION_PERMISSIONS}\n"
        "masteruser replication\n"
        f"masterauth {users.replication}\n"
    )
