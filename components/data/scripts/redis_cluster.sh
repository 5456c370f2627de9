#!/usr/bin/env bash
# Brings the Redis Cluster to MASTERS masters with REPLICAS_PER_MASTER replicas each; the
# `<name>-create` Job runs it after every change of size (and on first deployment). Idempotent.
#
# REDIS_HOSTS lists every running pod by ordinal, the pods beyond MASTERS x (1 + REPLICAS_PER_MASTER)
# included: those are drained and removed here, and only then may the StatefulSet shrink.
#   - no cluster yet: `redis-cli --cluster create`;
#   - a pod that is not in the cluster (new, or replaced with an empty volume) joins it: as the
#     replica of a master short of replicas, else as an empty master; the replaced node's old
#     identity is forgotten;
#   - pods to remove: a master among them hands its role to its replica among the kept pods
#     (CLUSTER FAILOVER); slots still on removed or surplus masters move to the kept masters
#     (rebalance with weight 0); only then is a node deleted (del-node refuses one holding slots);
#   - empty masters get slots (rebalance --cluster-use-empty-masters), surplus empty masters become
#     replicas, replicas move to masters short of them; the run ends when `--cluster check` passes.
set -Eeuo pipefail

: "${MASTERS:?masters wanted}"
: "${REPLICAS_PER_MASTER:?replicas wanted per master}"
PORT="${PORT:-6379}"
# Connection options, e.g. "--tls --cacert /tls/ca.crt --user admin"; the password in REDISCLI_AUTH.
read -r -a CLI <<<"${REDIS_CLI_OPTIONS:-}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"
if [ -z "${REDIS_HOSTS:-}" ]; then
  # In the Job: the pods the StatefulSet runs now (a previous step wrote their count).
  : "${REDIS_HOST_PATTERN:?e.g. redis-%d.redis-headless.sophia-data.svc}"
  : "${REDIS_POD_COUNT_FILE:?file with the number of pods}"
  REDIS_HOSTS=""
  for ((i = 0; i < $(cat "$REDIS_POD_COUNT_FILE"); i++)); do
    # shellcheck disable=SC2059 # the pattern is the format
    REDIS_HOSTS+="$(printf "$REDIS_HOST_PATTERN" "$i") "
  done
fi
read -r -a HOSTS <<<"$REDIS_HOSTS"
WANT=$((MASTERS * (1 + REPLICAS_PER_MASTER)))
((${#HOSTS[@]} >= WANT)) || { echo "redis-cluster: $WANT pods wanted, ${#HOSTS[@]} running" >&2; exit 1; }
KEEP=("${HOSTS[@]:0:WANT}")
DROP=("${HOSTS[@]:WANT}")
deadline=$((SECONDS + TIMEOUT_SECONDS))

log() { echo "redis-cluster: $*" >&2; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
cli() { local host=$1; shift; redis-cli "${CLI[@]}" -h "$host" -p "$PORT" "$@"; }
manage() { redis-cli "${CLI[@]}" --cluster "$@"; }
field() { cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"; }
in_time() { ((SECONDS < deadline)) || { log "not done within ${TIMEOUT_SECONDS}s"; exit 1; }; }

# `cluster nodes` of the seed, healthy nodes only: "<id> <host> <role> <master id> <slot ranges>".
SEED=""
view() {
  cli "$SEED" cluster nodes | tr -d '\r' | awk '$3 !~ /fail|noaddr|handshake/ {
    host = $2; sub(/^[^,]*,/, "", host); sub(/,.*/, "", host)
    if (host == "") { host = $2; sub(/:.*/, "", host) }
    role = ($3 ~ /master/) ? "master" : "replica"
    slots = 0
    for (i = 9; i <= NF; i++) if ($i !~ /^\[/) { n = split($i, r, "-"); slots += (n == 2) ? r[2] - r[1] + 1 : 1 }
    print $1, host, role, $4, slots }'
}
id_of() { cli "$1" cluster myid | tr -d '\r'; }
has_role() { [ "$(cli "$1" role | sed -n 1p | tr -d '\r')" = "$2" ]; }
# "<replicas> <master id>" for every master (slot-less ones too), fewest replicas first. Gossip
# may show a node that has just become a replica as a master for a moment: each master named
# here has confirmed its role itself.
replica_counts() {
  local count id host
  while read -r count id host; do
    has_role "$host" master && echo "$count $id"
  done < <(view | awk '$3 == "master" { m[$1] = $2; n[$1] += 0 } $3 == "replica" { n[$4]++ }
    END { for (x in n) if (x in m) print n[x], x, m[x] }' | sort -n)
}
# Every node agrees on the roles: as many masters with slots and replicas as the seed sees.
settled() {
  local want_masters=$1 want_replicas=$2 host
  for host in "${KEEP[@]}"; do
    [ "$(SEED=$host view | awk '$3 == "master" && $5 > 0' | wc -l)" = "$want_masters" ] || return 1
    [ "$(SEED=$host view | awk '$3 == "replica"' | wc -l)" = "$want_replicas" ] || return 1
  done
}
wait_for() { until "$@"; do in_time; sleep 1; done; }
answers() { [ "$(cli "$1" ping 2>/dev/null | tr -d '\r')" = PONG ]; }
check_ok() { manage check "$SEED:$PORT" >/dev/null 2>&1; }
# Every node of the cluster knows node `$1` (past the handshake), and the cluster checks out.
joined() {
  local host
  for host in $(view | awk '{ print $2 }'); do
    cli "$host" cluster nodes | awk -v id="$1" '$1 == id && $3 !~ /handshake|noaddr/ { f = 1 } END { exit !f }' ||
      return 1
  done
  check_ok
}
contains() { local wanted=$1; shift; local x; for x in "$@"; do [ "$x" = "$wanted" ] && return 0; done; return 1; }

for host in "${HOSTS[@]}"; do wait_for answers "$host"; done

# -- create --------------------------------------------------------------------------------------
for host in "${KEEP[@]}"; do
  if (($(field "$host" cluster_known_nodes) > 1)); then SEED=$host; break; fi
done
if [ -z "$SEED" ]; then
  addresses=()
  for host in "${KEEP[@]}"; do addresses+=("$host:$PORT"); done
  log "creating the cluster: $MASTERS masters, $REPLICAS_PER_MASTER replicas each"
  manage create "${addresses[@]}" --cluster-replicas "$REPLICAS_PER_MASTER" --cluster-yes
  SEED=${KEEP[0]}
  wait_for check_ok
  wait_for settled "$MASTERS" $((WANT - MASTERS))
  log "cluster created"
  exit 0
fi

# -- join pods that are not in the cluster (new ones, or replaced with an empty volume) ----------
for host in "${KEEP[@]}"; do
  (($(field "$host" cluster_known_nodes) == 1)) || continue
  keys=$(cli "$host" dbsize | tr -d '\r')
  [ "$keys" = 0 ] || { log "$host is outside the cluster but holds $keys keys: not touching it"; exit 1; }
  new_id=$(id_of "$host")
  # A replaced pod's former identity (same name, another id): forget it on every node.
  view_all=$(cli "$SEED" cluster nodes | tr -d '\r')
  while read -r old_id; do
    [ -n "$old_id" ] || continue
    log "forgetting $old_id, the former $host"
    while read -r other; do cli "$other" cluster forget "$old_id" >/dev/null || true; done < <(view | awk '{ print $2 }')
  done < <(awk -v h="$host" -v id="$new_id" '{ n = $2; sub(/^[^,]*,/, "", n); sub(/,.*/, "", n) } n == h && $1 != id { print $1 }' <<<"$view_all")
  # The master with the fewest replicas (an empty new master first), if it is short of them.
  shortest=$(replica_counts | sed -n 1p)
  if [ -n "$shortest" ] && ((${shortest% *} < REPLICAS_PER_MASTER)); then
    log "$host joins as a replica of ${shortest#* }"
    manage add-node "$host:$PORT" "$SEED:$PORT" --cluster-slave --cluster-master-id "${shortest#* }"
    wait_for has_role "$host" slave
  else
    log "$host joins as an empty master"
    manage add-node "$host:$PORT" "$SEED:$PORT"
  fi
  wait_for joined "$new_id"
done

# -- pods to remove: their masters hand over to a kept replica where they have one ---------------
for host in "${DROP[@]}"; do
  line=$(view | awk -v h="$host" '$2 == h')
  [ -n "$line" ] || continue
  read -r id _ role _ slots <<<"$line"
  if [ "$role" != master ] || ((slots == 0)); then continue; fi
  for kept in "${KEEP[@]}"; do
    if view | awk -v h="$kept" -v m="$id" '$2 == h && $3 == "replica" && $4 == m { found = 1 } END { exit !found }'; then
      log "$kept takes over from $host (CLUSTER FAILOVER)"
      cli "$kept" cluster failover >/dev/null
      wait_for has_role "$kept" master
      wait_for check_ok
      break
    fi
  done
done

# -- slots: only on MASTERS kept masters (those holding most slots first) -----------------------
kept_masters=()
drain=()
while read -r slots id host; do
  if contains "$host" "${KEEP[@]}" && ((${#kept_masters[@]} < MASTERS)); then
    kept_masters+=("$id")
  elif ((slots > 0)); then
    drain+=("$id")
  fi
done < <(view | awk '$3 == "master" { print $5, $1, $2 }' | sort -rn)
# Too few masters among the kept pods: a kept replica becomes an empty master.
while ((${#kept_masters[@]} < MASTERS)); do
  spare=""
  while read -r id host; do
    contains "$host" "${KEEP[@]}" && { spare="$id $host"; break; }
  done < <(view | awk '$3 == "replica" { print $1, $2 }')
  [ -n "$spare" ] || { log "no kept pod can become a master"; exit 1; }
  log "${spare#* } becomes an empty master"
  manage del-node "$SEED:$PORT" "${spare% *}"
  cli "${spare#* }" cluster reset hard >/dev/null
  manage add-node "${spare#* }:$PORT" "$SEED:$PORT"
  wait_for joined "$(id_of "${spare#* }")"
  kept_masters+=("$(id_of "${spare#* }")")
done
empty=0
for id in "${kept_masters[@]}"; do
  view | awk -v m="$id" '$1 == m && $5 == 0 { found = 1 } END { exit !found }' && empty=$((empty + 1))
done
if ((${#drain[@]} > 0)) || ((empty > 0)); then
  weights=()
  for id in "${drain[@]}"; do weights+=("$id=0"); done
  # Masters that are to end empty get weight 0; every other master, empty ones included, takes a share.
  while read -r id host; do
    contains "$id" "${kept_masters[@]}" || contains "$id" "${drain[@]}" || weights+=("$id=0")
  done < <(view | awk '$3 == "master" { print $1, $2 }')
  log "moving slots: ${#drain[@]} masters to empty, onto ${#kept_masters[@]} masters"
  options=(--cluster-use-empty-masters --cluster-yes)
  ((${#weights[@]} == 0)) || options+=(--cluster-weight "${weights[@]}")
  manage rebalance "$SEED:$PORT" "${options[@]}" >/dev/null
  wait_for check_ok
fi

# -- remove the dropped pods' nodes: replicas first, then the (now empty) masters ------------------
for role in replica master; do
  for host in "${DROP[@]}"; do
    line=$(view | awk -v h="$host" -v r="$role" '$2 == h && $3 == r')
    [ -n "$line" ] || continue
    read -r id _ _ _ slots <<<"$line"
    ((slots == 0)) || { log "$host still holds $slots slots"; exit 1; }
    log "removing $host ($role $id)"
    manage del-node "$SEED:$PORT" "$id" >/dev/null
  done
done

# -- replicas: surplus empty masters follow a master, then every master gets its share -------------
while read -r id host; do
  contains "$host" "${KEEP[@]}" || continue
  target=$(view | awk '$3 == "master" && $5 > 0 { n[$1] += 0 } $3 == "replica" { n[$4]++ }
    END { for (m in n) print n[m], m }' | sort -n | sed -n 1p)
  log "$host (empty master) becomes a replica of ${target#* }"
  cli "$host" cluster replicate "${target#* }" >/dev/null
  wait_for has_role "$host" slave
done < <(view | awk '$3 == "master" && $5 == 0 { print $1, $2 }')
while :; do
  counts=$(replica_counts)
  short=$(head -n 1 <<<"$counts")
  long=$(tail -n 1 <<<"$counts")
  ((${short% *} < REPLICAS_PER_MASTER && ${long% *} > REPLICAS_PER_MASTER)) || break
  mover=$(view | awk -v m="${long#* }" '$3 == "replica" && $4 == m { print $2; exit }')
  log "$mover moves to ${short#* }, which is short of replicas"
  cli "$mover" cluster replicate "${short#* }" >/dev/null
  wait_for check_ok
done

wait_for check_ok
# The Job ends when every kept node sees the wanted shape (dropped pods may still be running).
wait_for settled "$MASTERS" $((WANT - MASTERS))
log "$(view | awk '$3 == "master"' | wc -l) masters, $(view | awk '$3 == "replica"' | wc -l) replicas; all slots covered"
