#!/bin/sh
# Fetch step of the Redis restore check (amazon/aws-cli image): downloads the snapshot that
# DESTINATION/latest points at into TARGET_DIR.
set -eu
# S3_ENDPOINT_URL: an S3-compatible endpoint instead of AWS (the real-server tests' S3 server).
s3() { aws ${S3_ENDPOINT_URL:+--endpoint-url "$S3_ENDPOINT_URL"} s3 "$@"; }
: "${DESTINATION:?s3://bucket/prefix of this store}"
: "${TARGET_DIR:?where to put the snapshot}"

stamp=$(s3 cp --only-show-errors "$DESTINATION/latest" -)
s3 cp --recursive --only-show-errors "$DESTINATION/$stamp/" "$TARGET_DIR/"
echo "fetch-snapshot: $DESTINATION/$stamp" >&2
