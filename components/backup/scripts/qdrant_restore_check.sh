#!/bin/sh
# Restore test of the Qdrant snapshots, the check step of the `<cluster>-restore-check` CronJob.
# A previous step turned the latest manifest into PLAN_FILE lines
# "<collection>|<peer>|<presigned snapshot URL>|<points>"; a scratch Qdrant runs beside this step
# on 127.0.0.1. Each peer's snapshot is recovered into the scratch instance, its exact point count
# compared with what the peer published, and the scratch collection dropped again.
set -eu
# shellcheck source=restore_result.sh
. "$(dirname "$0")/restore_result.sh"

: "${PLAN_FILE:?lines collection|peer|url|points}"
: "${RESULT_FILE:?where to write the metrics}"
SCRATCH_URL="${SCRATCH_URL:-http://127.0.0.1:6333}"
COUNT_TOLERANCE="${COUNT_TOLERANCE:-0.05}"
STORE="${STORE:-qdrant}"
started=$(date +%s)

log() { echo "restore-check[$STORE]: $*" >&2; }
scratch() { curl --fail --silent --show-error --max-time 3600 -H "Content-Type: application/json" "$@"; }

deadline=$(($(date +%s) + 300))
until scratch "$SCRATCH_URL/readyz" >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$deadline" ] || { log "scratch Qdrant not ready"; break; }
  sleep 1
done

failed=0
restored=0
index=0
if [ ! -s "$PLAN_FILE" ]; then
  log "no snapshot manifest"
  failed=1
else
  while IFS='|' read -r collection peer url expected; do
    index=$((index + 1))
    target="check-$index"
    if ! scratch -X PUT "$SCRATCH_URL/collections/$target/snapshots/recover?wait=true" \
      -d "{\"location\": \"$url\"}" >/dev/null; then
      log "$peer/$collection: snapshot could not be recovered"
      failed=1
      continue
    fi
    actual=$(scratch -X POST "$SCRATCH_URL/collections/$target/points/count" -d '{"exact": true}' |
      sed -n 's/.*"count":\([0-9]*\).*/\1/p')
    restored=$((restored + ${actual:-0}))
    if ! within_tolerance "$expected" "${actual:-0}"; then
      log "$peer/$collection: restored ${actual:-0} points, the peer published $expected"
      failed=1
    fi
    scratch -X DELETE "$SCRATCH_URL/collections/$target" >/dev/null || true
  done <"$PLAN_FILE"
fi

write_restore_result $((1 - failed)) "$restored" "$started"
