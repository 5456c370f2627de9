#!/usr/bin/env bash
# Restore test of the Redis snapshots, the check step of the `redis-restore-check` CronJob
# (a previous step downloaded the latest snapshot directory from S3 into SNAPSHOT_DIR).
# Each master's RDB is loaded into a scratch redis-server on a Unix socket; its key count must be
# within COUNT_TOLERANCE of the count the master published in the manifest at snapshot time.
set -euo pipefail
# shellcheck source=restore_result.sh
. "$(dirname "$0")/restore_result.sh"

: "${SNAPSHOT_DIR:?directory with manifest and <node id>.rdb files}"
: "${RESULT_FILE:?where to write the metrics}"
SCRATCH_DIR="${SCRATCH_DIR:-/scratch}"
COUNT_TOLERANCE="${COUNT_TOLERANCE:-0.05}"
STORE="${STORE:-redis}"
started=$(date +%s)
socket="$SCRATCH_DIR/redis.sock"
pid=""

log() { echo "restore-check[$STORE]: $*" >&2; }
stop_scratch() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap stop_scratch EXIT

check_shard() {
  local id=$1 expected=$2 actual deadline
  [ -s "$SNAPSHOT_DIR/$id.rdb" ] || { log "$id: no RDB file"; return 1; }
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 --dir "$SNAPSHOT_DIR" \
    --dbfilename "$id.rdb" --appendonly no --save "" --cluster-enabled no >"$SCRATCH_DIR/$id.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 600))
  # PING answers LOADING until the RDB is in memory.
  until [ "$(redis-cli -s "$socket" ping 2>/dev/null)" = "PONG" ]; do
    kill -0 "$pid" 2>/dev/null || { log "$id: redis-server exited: $(tail -n 3 "$SCRATCH_DIR/$id.log")"; return 1; }
    ((SECONDS < deadline)) || { log "$id: RDB not loaded within 600s"; return 1; }
    sleep 0.2
  done
  actual=$(redis-cli -s "$socket" dbsize)
  stop_scratch
  echo "$actual" >>"$SCRATCH_DIR/restored"
  if ! within_tolerance "$expected" "$actual"; then
    log "$id: restored $actual keys, the master published $expected (tolerance $COUNT_TOLERANCE)"
    return 1
  fi
}

restored_total() { awk '{ s += $1 } END { print s + 0 }' "$SCRATCH_DIR/restored"; }

mkdir -p "$SCRATCH_DIR"
: >"$SCRATCH_DIR/restored"
failed=0
if [ ! -s "$SNAPSHOT_DIR/manifest" ]; then
  log "no manifest in $SNAPSHOT_DIR"
  failed=1
else
  while IFS='|' read -r id expected; do
    check_shard "$id" "$expected" || failed=1
  done <"$SNAPSHOT_DIR/manifest"
fi
if [ "$failed" = 0 ]; then
  log "restored and verified $(wc -l <"$SNAPSHOT_DIR/manifest") shards"
  write_restore_result 1 "$(restored_total)" "$started"
else
  write_restore_result 0 "$(restored_total)" "$started"
fi
