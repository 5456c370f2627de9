#!/bin/sh
# Fetch step of the Qdrant restore check (amazon/aws-cli image): reads the latest manifest the
# snapshot job uploaded and turns each line into "<collection>|<peer>|<presigned URL>|<points>",
# so the scratch Qdrant can download the snapshot without S3 credentials.
# Qdrant's S3 snapshot storage keeps a snapshot at <prefix>/<collection>/<snapshot name>.
set -eu
: "${MANIFESTS:?s3://bucket/qdrant/<cluster>/manifests}"
: "${SNAPSHOT_PREFIX:?s3://bucket/qdrant/<cluster>}"
: "${PLAN_FILE:?where to write the plan}"

stamp=$(aws s3 cp --only-show-errors "$MANIFESTS/latest" -)
manifest=$(aws s3 cp --only-show-errors "$MANIFESTS/$stamp/manifest" -)
: >"$PLAN_FILE"
echo "$manifest" | while IFS='|' read -r collection peer snapshot points; do
  [ -n "$collection" ] || continue
  url=$(aws s3 presign "$SNAPSHOT_PREFIX/$collection/$snapshot" --expires-in 21600)
  echo "$collection|$peer|$url|$points" >>"$PLAN_FILE"
done
echo "qdrant-plan: snapshot set $stamp, $(wc -l <"$PLAN_FILE") snapshots" >&2
