#!/bin/sh
# Upload step of the snapshot jobs (amazon/aws-cli image): copies SOURCE_DIR to
# DESTINATION/<UTC stamp>/ and only then points DESTINATION/latest at it, so a restore check
# never reads a half-uploaded snapshot.
set -eu
# S3_ENDPOINT_URL: an S3-compatible endpoint instead of AWS (the real-server tests' S3 server).
s3() { aws ${S3_ENDPOINT_URL:+--endpoint-url "$S3_ENDPOINT_URL"} s3 "$@"; }
: "${SOURCE_DIR:?directory the snapshot step wrote}"
: "${DESTINATION:?s3://bucket/prefix of this store}"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
s3 cp --recursive --only-show-errors "$SOURCE_DIR" "$DESTINATION/$stamp/"
echo "$stamp" | s3 cp --only-show-errors - "$DESTINATION/latest"
echo "upload-snapshot: $DESTINATION/$stamp" >&2
