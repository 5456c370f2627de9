#!/bin/sh
# Restore step of the DR region's `<cluster>-dr-restore` CronJob. A previous step turned the
# primary's latest snapshot manifest into PLAN_FILE lines "<collection>|<peer>|<presigned URL>|<points>".
# Peers have the same names in both regions (qdrant-0-1.qdrant-0-headless.sophia-data.svc), so each
# primary peer's snapshot is recovered on its DR namesake, which then holds the same local shards.
set -eu
: "${PLAN_FILE:?lines collection|peer|url|points}"
: "${QDRANT_API_KEY:?read-write API key of the DR cluster}"
: "${QDRANT_CA:?CA certificate of the DR peers}"

[ -s "$PLAN_FILE" ] || { echo "qdrant-dr-restore: no snapshot manifest" >&2; exit 1; }
failed=0
while IFS='|' read -r collection peer url points; do
  if curl --fail --silent --show-error --max-time 7200 --cacert "$QDRANT_CA" \
    -H "api-key: $QDRANT_API_KEY" -H "Content-Type: application/json" \
    -X PUT "https://$peer:6333/collections/$collection/snapshots/recover?wait=true" \
    -d "{\"location\": \"$url\", \"priority\": \"snapshot\"}" >/dev/null; then
    echo "qdrant-dr-restore: $peer/$collection recovered ($points points at snapshot time)" >&2
  else
    echo "qdrant-dr-restore: $peer/$collection FAILED" >&2
    failed=1
  fi
done <"$PLAN_FILE"
exit "$failed"
