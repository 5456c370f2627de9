#!/bin/sh
# Fetch step of the Qdrant restore check (amazon/aws-cli image): reads the latest manifest the
# snapshot job uploaded and turns each line into "<collection>|<peer>|<presigned URL>|<points>",
# so the scratch Qdrant can download the snapshot without S3 credentials.
# Qdrant keeps an S3 snapshot at <snapshots_path without its leading />/<collection>/<snapshot name>
# (lib/collection/src/operations/snapshot_storage_ops.rs); SNAPSHOT_PREFIX is that path in the bucket.
set -eu
# S3_ENDPOINT_URL: an S3-compatible endpoint instead of AWS (the real-server tests' S3 server).
s3() { aws ${S3_ENDPOINT_URL:+--endpoint-url "$S3_ENDPOINT_URL"} s3 "$@"; }
: "${MANIFESTS:?s3://bucket/qdrant/<cluster>/manifests}"
: "${SNAPSHOT_PREFIX:?s3://bucket/qdrant/<cluster>}"
: "${PLAN_FILE:?where to write the plan}"

stamp=$(s3 cp --only-show-errors "$MANIFESTS/latest" -)
manifest=$(s3 cp --only-show-errors "$MANIFESTS/$stamp/manifest" -)
: >"$PLAN_FILE"
echo "$manifest" | while IFS='|' read -r collection peer snapshot points; do
  [ -n "$collection" ] || continue
  url=$(s3 presign "$SNAPSHOT_PREFIX/$collection/$snapshot" --expires-in 21600)
  echo "$collection|$peer|$url|$points" >>"$PLAN_FILE"
done
echo "qdrant-plan: snapshot set $stamp, $(wc -l <"$PLAN_FILE") snapshots" >&2
