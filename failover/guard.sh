#!/bin/sh
# The primary's guard: renews the primary's lease on the PostgreSQL primary role (failover/lease.py)
# and fences the primary's database whenever it may not take writes:
# - the lease is held by DR (DR was promoted): fenced until a failback gives the lease back;
# - the lease could not be renewed for SELF_FENCE_SECONDS (cut off from the lease store): fenced
#   before DR may take over, which it does only after LEASE_SECONDS + a margin.
# It unfences after a successful renewal. Runs as a Deployment beside the primary's database, with
# the pinned aws-cli image; FENCE_COMMAND and UNFENCE_COMMAND replace the CloudNativePG fencing
# annotation (the tests fence a real postgres with them).
# CLUSTER_ROLE=replica while the primary's cluster is being rebuilt as a replica of DR (failback): a
# replica cannot take writes and must keep replaying, so the guard renews what it holds but never
# fences.
set -eu

: "${LEASE_TABLE:?the lease table}"
: "${AWS_REGION:?the region of the lease table}"
# The timings come from failover/promoter.py (the Deployment sets them), never from defaults here.
: "${RENEW_SECONDS:?seconds between renewals}"
: "${SELF_FENCE_SECONDS:?seconds without a renewal before the guard fences its database}"
: "${CLUSTER_ROLE:?primary, or replica while the cluster is rebuilt from DR}"
case "$CLUSTER_ROLE" in primary | replica) ;; *) echo "guard: CLUSTER_ROLE must be primary or replica" >&2; exit 2 ;; esac
STATE_DIR="${STATE_DIR:-/tmp/guard}"
HOLDER=primary
KEY='{"id": {"S": "postgres"}}'

log() { echo "guard: $*" >&2; }

dynamo() {
  # One attempt of at most 4 s: the loop is the retry, and a call must not outlast the self-fence
  # deadline (the CLI's default retries take 26 s against an unreachable endpoint).
  # AWS_ENDPOINT_URL points the CLI at a local DynamoDB in tests; unset in the cluster.
  AWS_MAX_ATTEMPTS=1 aws dynamodb "$@" --region "$AWS_REGION" \
    ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} --cli-connect-timeout 2 --cli-read-timeout 2
}

cluster_patch() {
  api=https://kubernetes.default.svc
  sa=/var/run/secrets/kubernetes.io/serviceaccount
  curl --fail --silent --show-error --max-time 5 --cacert "$sa/ca.crt" \
    -H "Authorization: Bearer $(cat "$sa/token")" -H "Content-Type: application/merge-patch+json" \
    -X PATCH -d "$1" "$api/apis/postgresql.cnpg.io/v1/namespaces/$CNPG_NAMESPACE/clusters/$CNPG_CLUSTER" >/dev/null
}

# fence and unfence record their state only once the action succeeded; fence runs on every step
# that needs it, so a failed action is retried. (errexit does not apply inside `if step`.)
fence() {
  if [ "$CLUSTER_ROLE" = replica ]; then
    if [ ! -f "$STATE_DIR/replica" ]; then log "not fencing ($1): the cluster is a replica of DR"; fi
    touch "$STATE_DIR/replica"
    return 0
  fi
  if [ -n "${FENCE_COMMAND:-}" ]; then sh -c "$FENCE_COMMAND"; else
    cluster_patch '{"metadata": {"annotations": {"cnpg.io/fencedInstances": "[\"*\"]"}}}'
  fi || { log "could not fence ($1); retrying"; return 1; }
  if [ "$(cat "$STATE_DIR/fenced" 2>/dev/null)" != "$1" ]; then log "fenced: $1"; fi
  echo "$1" >"$STATE_DIR/fenced"
}

unfence() {
  if [ -n "${UNFENCE_COMMAND:-}" ]; then sh -c "$UNFENCE_COMMAND"; else
    cluster_patch '{"metadata": {"annotations": {"cnpg.io/fencedInstances": null}}}'
  fi || { log "could not unfence; retrying"; return 1; }
  if [ -f "$STATE_DIR/fenced" ]; then log "unfenced: the lease is ours again"; fi
  rm -f "$STATE_DIR/fenced"
  touch "$STATE_DIR/started"
}

now() { date +%s; }

overdue() {
  last=$(cat "$STATE_DIR/renewed" 2>/dev/null || echo 0)
  [ $(($(now) - last)) -ge "$SELF_FENCE_SECONDS" ]
}

step() {
  # The deadline is checked before any call, so a slow store cannot delay the fence.
  if overdue; then fence "the lease was not renewed for ${SELF_FENCE_SECONDS}s or more ($(head -c 200 "$STATE_DIR/error" 2>/dev/null))"; fi
  t=$(now)
  if lease=$(dynamo get-item --consistent-read --table-name "$LEASE_TABLE" --key "$KEY" \
    --query '[Item.holder.S, Item.epoch.N]' --output text 2>"$STATE_DIR/error"); then
    holder=$(echo "$lease" | cut -f1)
    epoch=$(echo "$lease" | cut -f2)
    if [ "$holder" = None ]; then
      # The first run: the lease starts with the primary (epoch 1), unless someone wrote it meanwhile.
      dynamo put-item --table-name "$LEASE_TABLE" --condition-expression "attribute_not_exists(id)" --item \
        "{\"id\": {\"S\": \"postgres\"}, \"holder\": {\"S\": \"$HOLDER\"}, \"epoch\": {\"N\": \"1\"}, \"renewed_at\": {\"N\": \"$t\"}}" \
        2>"$STATE_DIR/error" || true
      return
    fi
    if [ "$holder" != "$HOLDER" ]; then
      fence "the lease is held by $holder (epoch $epoch): DR was promoted"
      return
    fi
    if dynamo update-item --table-name "$LEASE_TABLE" --key "$KEY" \
      --update-expression "SET renewed_at = :now" --condition-expression "holder = :h AND epoch = :e" \
      --expression-attribute-values "{\":now\": {\"N\": \"$t\"}, \":h\": {\"S\": \"$HOLDER\"}, \":e\": {\"N\": \"$epoch\"}}" \
      2>"$STATE_DIR/error"; then
      echo "$t" >"$STATE_DIR/renewed"
      if [ -f "$STATE_DIR/fenced" ] || [ ! -f "$STATE_DIR/started" ]; then unfence || return 1; fi
      return
    fi
  fi
  if overdue; then fence "the lease was not renewed for ${SELF_FENCE_SECONDS}s or more ($(head -c 200 "$STATE_DIR/error"))"; fi
  return 1
}

mkdir -p "$STATE_DIR"
# Start fenced-unless-renewed: the clock of the last renewal starts now.
[ -f "$STATE_DIR/renewed" ] || now >"$STATE_DIR/renewed"
if [ "${ONCE:-}" = 1 ]; then
  step || true
  exit 0
fi
while true; do
  # After a failed renewal, try again in 1 s: the deadline is near, and each try is short.
  if step; then sleep "$RENEW_SECONDS"; else sleep 1; fi
done
