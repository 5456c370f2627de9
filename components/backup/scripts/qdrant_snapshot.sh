#!/bin/sh
# Nightly Qdrant snapshot, step 1 of the `<cluster>-snapshot` CronJob (an aws-cli step uploads
# the manifest). Every peer snapshots every collection; Qdrant itself writes the snapshot to S3
# (snapshots_storage: s3). The manifest line "<collection>|<peer>|<snapshot>|<points>" records the
# points the peer held locally at that moment: the source's published figures for the restore check.
set -eu

: "${QDRANT_PEERS:?space-separated peer host names}"
: "${QDRANT_API_KEY:?read-write API key}"
: "${QDRANT_CA:?CA certificate of the peers}"
: "${MANIFEST_FILE:?where to write the manifest}"

api() {
  curl --fail --silent --show-error --max-time 3600 --cacert "$QDRANT_CA" \
    -H "api-key: $QDRANT_API_KEY" -H "Content-Type: application/json" "$@"
}

first=${QDRANT_PEERS%% *}
collections=$(api "https://$first:6333/collections" | grep -o '"name":"[^"]*"' | cut -d'"' -f4)
: >"$MANIFEST_FILE"
for peer in $QDRANT_PEERS; do
  for collection in $collections; do
    # Only local shards report points_count in the cluster view.
    points=$(api "https://$peer:6333/collections/$collection/cluster" |
      grep -o '"points_count":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
    snapshot=$(api -X POST "https://$peer:6333/collections/$collection/snapshots?wait=true" |
      grep -o '"name":"[^"]*"' | head -n 1 | cut -d'"' -f4)
    [ -n "$snapshot" ] || { echo "qdrant-snapshot: $peer/$collection returned no snapshot" >&2; exit 1; }
    echo "$collection|$peer|$snapshot|$points" >>"$MANIFEST_FILE"
    echo "qdrant-snapshot: $peer/$collection -> $snapshot ($points points)" >&2
  done
done
