#!/bin/sh
# The `<store>-tls-rollout` CronJob: restarts a StatefulSet's pods one at a time (its rolling
# update) when cert-manager has renewed the certificate in their Secret, for servers that read
# some TLS files only at start-up (Qdrant: gRPC and the p2p port; HTTPS reloads by itself).
# The StatefulSet's pod template carries the fingerprint of the certificate its pods started with;
# a different fingerprint in the Secret is written there, which rolls the pods. Through the
# Kubernetes API with the pod's service account (read that Secret, read and patch that StatefulSet).
set -eu
: "${NAMESPACE:?namespace}"
: "${STATEFULSET:?StatefulSet to roll}"
: "${CERTIFICATE_NAME:?the certificate Secret its pods mount}"
account=/var/run/secrets/kubernetes.io/serviceaccount
server="https://kubernetes.default.svc"
annotation="sophia.ai/tls-sha256"

api() {
  curl --fail --silent --show-error --max-time 30 --cacert "$account/ca.crt" \
    -H "Authorization: Bearer $(cat "$account/token")" "$@"
}

certificate=$(api "$server/api/v1/namespaces/$NAMESPACE/secrets/$CERTIFICATE_NAME" | tr -d ' \n' |
  sed -n 's/.*"tls\.crt":"\([^"]*\)".*/\1/p')
[ -n "$certificate" ] || { echo "tls-rollout: no tls.crt in Secret $CERTIFICATE_NAME" >&2; exit 1; }
fingerprint=$(printf '%s' "$certificate" | sha256sum | cut -c 1-16)
url="$server/apis/apps/v1/namespaces/$NAMESPACE/statefulsets/$STATEFULSET"
running=$(api "$url" | tr -d ' \n' | sed -n "s|.*\"$annotation\":\"\([0-9a-f]*\)\".*|\1|p")
if [ "$running" = "$fingerprint" ]; then
  echo "tls-rollout: $STATEFULSET runs certificate $fingerprint" >&2
  exit 0
fi
patch="{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"$annotation\":\"$fingerprint\"}}}}}"
api -X PATCH -H "Content-Type: application/strategic-merge-patch+json" -d "$patch" "$url" >/dev/null
echo "tls-rollout: $STATEFULSET rolls onto certificate $fingerprint (was ${running:-unknown})" >&2
