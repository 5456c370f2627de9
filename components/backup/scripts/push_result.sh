#!/bin/sh
# Report step of every restore-check job: push the check's metrics to the Pushgateway, then
# fail the Job when the check failed, so `kubectl get jobs` agrees with the alert.
# POST (not PUT) replaces only the metrics sent: a failed run keeps the last success time.
# The Pushgateway takes pushes only with the restore checks' user and password (basic auth).
set -eu
: "${RESULT_FILE:?metrics written by the check}"
: "${PUSHGATEWAY_URL:?e.g. http://pushgateway.monitoring.svc:9091}"
: "${STORE:?store label, e.g. postgres}"
: "${PUSH_USER:?the Pushgateway user of the restore checks}"
: "${PUSH_PASSWORD:?its password}"

if [ ! -s "$RESULT_FILE" ]; then
  echo "push-result[$STORE]: the check wrote no result; reporting a failure" >&2
  printf '# TYPE sophia_restore_verification_success gauge\nsophia_restore_verification_success 0\n' >"$RESULT_FILE"
fi
# The credentials reach curl on its standard input, never on its command line.
printf 'user = "%s:%s"\n' "$PUSH_USER" "$PUSH_PASSWORD" |
  curl --config - --fail --silent --show-error --max-time 30 --retry 5 --retry-all-errors \
    --data-binary "@$RESULT_FILE" "$PUSHGATEWAY_URL/metrics/job/restore-verification/store/$STORE"
grep -qx 'sophia_restore_verification_success 1' "$RESULT_FILE"
