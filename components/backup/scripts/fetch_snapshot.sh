#!/bin/sh
# Fetch step of the Redis restore check (amazon/aws-cli image): downloads the snapshot that
# DESTINATION/latest points at into TARGET_DIR.
set -eu
: "${DESTINATION:?s3://bucket/prefix of this store}"
: "${TARGET_DIR:?where to put the snapshot}"

stamp=$(aws s3 cp --only-show-errors "$DESTINATION/latest" -)
aws s3 cp --recursive --only-show-errors "$DESTINATION/$stamp/" "$TARGET_DIR/"
echo "fetch-snapshot: $DESTINATION/$stamp" >&2
