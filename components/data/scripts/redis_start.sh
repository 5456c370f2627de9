#!/bin/sh
# Start-up of every Redis Cluster pod (the redis container's command). Before redis-server starts,
# every peer's address in nodes.conf is replaced by what its name resolves to now.
#
# The cluster bus dials only the addresses kept in nodes.conf (cluster-announce-hostname changes
# client redirects, not where nodes connect). When every pod comes back on a new address (a node
# pool drained, the whole cluster restarted) no node could reach any other, and the cluster would
# stay cluster_state:fail. Each nodes.conf line keeps the peer's announced host name
# (`<id> <ip>:<port>@<bus>,<hostname> ...`), so the new address is one DNS lookup away; this
# node's own line takes POD_IP, which it also announces.
set -eu
: "${POD_IP:?the address of this pod}"
: "${ANNOUNCE_HOSTNAME:?the stable DNS name of this pod, e.g. redis-0.redis-headless.sophia-data.svc}"
: "${REDIS_CONF:?path of redis.conf}"
: "${DATA_DIR:?directory holding nodes.conf}"
# How long to wait for peers' names to resolve (they start in parallel; a peer gone for good is
# found by gossip later, once any node that knows its address talks to it).
RESOLVE_SECONDS="${RESOLVE_SECONDS:-60}"

nodes="$DATA_DIR/nodes.conf"

resolve() { getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 { print $1 }'; }

# Rewrite nodes.conf with every address that resolves now; prints how many names are unresolved.
rewrite() {
  unresolved=0
  : >"$nodes.new"
  while IFS= read -r line; do
    set -f
    # shellcheck disable=SC2086 # split the line into its fields
    set -- $line
    set +f
    case "$line" in
      vars\ * | "") echo "$line" >>"$nodes.new"; continue ;;
    esac
    id=$1 address=$2 flags=$3
    name=""
    case "$address" in *,*) name=${address#*,} ;; esac
    name=${name%%,*}
    ip=${address%%:*}
    case ",$flags," in
      *,myself,*) new=$POD_IP ;;
      *)
        new=""
        [ -z "$name" ] || new=$(resolve "$name") || true
        if [ -z "$new" ]; then
          [ -z "$name" ] || unresolved=$((unresolved + 1))
          new=$ip
        fi
        ;;
    esac
    shift 2
    echo "$id $new:${address#*:} $*" >>"$nodes.new"
  done <"$nodes"
  mv "$nodes.new" "$nodes"
  echo "$unresolved"
}

if [ -s "$nodes" ]; then
  deadline=$(($(date +%s) + RESOLVE_SECONDS))
  while :; do
    left=$(rewrite)
    if [ "$left" = 0 ] || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
    sleep 1
  done
  [ "$left" = 0 ] || echo "redis-start: $left peer names did not resolve; gossip will find them" >&2
fi

exec redis-server "$REDIS_CONF" \
  --cluster-announce-ip "$POD_IP" \
  --cluster-announce-hostname "$ANNOUNCE_HOSTNAME" \
  --cluster-preferred-endpoint-type hostname \
  "$@"
