#!/bin/sh
# Scaling steps of the Redis cluster Job, through the Kubernetes API (the pod's service account
# may read the StatefulSet and change its scale, nothing else).
#   MODE=grow:   before the cluster step: run at least WANT pods, wait until they are ready, and
#                write how many pods run to COUNT_FILE (the cluster step drains those beyond WANT).
#   MODE=shrink: after the cluster step has drained and removed them: scale down to WANT.
set -eu
: "${MODE:?grow or shrink}"
: "${NAMESPACE:?namespace}"
: "${STATEFULSET:?StatefulSet name}"
: "${WANT:?pods wanted}"
COUNT_FILE="${COUNT_FILE:-/work/pods}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-1800}"
account=/var/run/secrets/kubernetes.io/serviceaccount
url="https://kubernetes.default.svc/apis/apps/v1/namespaces/$NAMESPACE/statefulsets/$STATEFULSET"

api() {
  curl --fail --silent --show-error --max-time 30 --cacert "$account/ca.crt" \
    -H "Authorization: Bearer $(cat "$account/token")" "$@"
}
# The first `"<key>": <number>` in a JSON document (the scale and status documents have one each).
number() { tr -d ' \n' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
scale_to() {
  api -X PATCH -H "Content-Type: application/merge-patch+json" -d "{\"spec\":{\"replicas\":$1}}" "$url/scale" >/dev/null
  echo "redis-scale: $STATEFULSET scaled to $1 pods" >&2
}

spec=$(api "$url/scale" | number replicas)
case "$MODE" in
  grow)
    if [ "$spec" -lt "$WANT" ]; then scale_to "$WANT"; spec=$WANT; fi
    deadline=$(($(date +%s) + TIMEOUT_SECONDS))
    until [ "$(api "$url" | number readyReplicas)" = "$spec" ]; do
      [ "$(date +%s)" -lt "$deadline" ] || { echo "redis-scale: $spec pods not ready in time" >&2; exit 1; }
      sleep 5
    done
    echo "$spec" >"$COUNT_FILE"
    ;;
  shrink)
    if [ "$spec" -gt "$WANT" ]; then scale_to "$WANT"; fi
    ;;
  *) echo "redis-scale: MODE must be grow or shrink" >&2; exit 1 ;;
esac
