#!/usr/bin/env bash
# Nightly Redis snapshot, step 1 of the `redis-snapshot` CronJob (the aws-cli step uploads).
# One RDB per master, fetched over the replication protocol (`redis-cli --rdb`), and a manifest
# line "<node id>|<keys>" per master: the source's published figures for the restore check.
set -euo pipefail

: "${REDIS_SEED:?host:port of any cluster node}"
: "${SNAPSHOT_DIR:?where to write the RDB files and the manifest}"
# Connection options, e.g. "--tls --cacert /tls/ca.crt"; the password comes from REDISCLI_AUTH.
read -r -a CLI <<<"${REDIS_CLI_OPTIONS:-}"

mkdir -p "$SNAPSHOT_DIR"
manifest="$SNAPSHOT_DIR/manifest"
: >"$manifest"
# `cluster nodes`: <id> <ip:port@bus[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slots>...
# Masters that are not failing and serve slots: a node that has just become a replica can still
# show as a slot-less master in the seed's view for a moment, holding a copy of its master's keys.
redis-cli "${CLI[@]}" -h "${REDIS_SEED%:*}" -p "${REDIS_SEED##*:}" cluster nodes |
  awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { print $1, $2 }' >"$SNAPSHOT_DIR/masters"
[ -s "$SNAPSHOT_DIR/masters" ] || { echo "redis-snapshot: no healthy master found" >&2; exit 1; }
while read -r id address; do
  port=${address#*:}
  port=${port%%@*}
  host=${address%%:*}
  # Announced hostnames (cluster-announce-hostname) follow the comma; TLS names match them.
  case "$address" in *,?*) host=${address##*,} ;; esac
  keys=$(redis-cli "${CLI[@]}" -h "$host" -p "$port" dbsize)
  redis-cli "${CLI[@]}" -h "$host" -p "$port" --rdb "$SNAPSHOT_DIR/$id.rdb" >/dev/null
  echo "$id|$keys" >>"$manifest"
  echo "redis-snapshot: $id ($host:$port) $keys keys" >&2
done <"$SNAPSHOT_DIR/masters"
rm "$SNAPSHOT_DIR/masters"
