#!/usr/bin/env bash
# Fetches the public reference documents the tests read from ../shared/reference (the Lambda
# Cloud OpenAPI document, the CRDs, and the remote manifests the program applies, which the harness
# expands as the Kubernetes provider would) into DEST, and refuses any whose sha256 differs from the
# copy the tests were written against. GitHub Actions runs this; locally shared/ is already there.
set -euo pipefail

DEST="${1:-../shared/reference}"
CNPG="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/v1.30.0/config/crd/bases"
PROM="https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.93.0/example/prometheus-operator-crd"
# The operator manifest components/data/postgres_cluster.py applies (CNPG_MANIFEST).
CNPG_RELEASE="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-1.30/releases/cnpg-1.30.0.yaml"

# path | sha256 | source URL
files=(
  "lambda-cloud-api-openapi-1.10.0.json|6163162cf92eb680111eba98f153701b76ab0711ab832d58fa6de2e9e1dda3ea|https://docs.lambda.ai/api/cloud/spec.json"
  "crds/postgresql.cnpg.io_clusters.yaml|ae47f4a00f6e998faef57e480f9a3960cd48ea16a79270861fc7442601507472|$CNPG/postgresql.cnpg.io_clusters.yaml"
  "crds/postgresql.cnpg.io_poolers.yaml|9e0dad05355f72dceb154a12b43ebe8a410d470133ad228bf711c1fdee221124|$CNPG/postgresql.cnpg.io_poolers.yaml"
  "crds/postgresql.cnpg.io_scheduledbackups.yaml|1dffb969a92ed6b09abe59d9c848ff97c6646c7824e75f8e0b8379df8473a145|$CNPG/postgresql.cnpg.io_scheduledbackups.yaml"
  "crds/monitoring.coreos.com_alertmanagerconfigs.yaml|fed47c462483a47a4d1912bf8a7a3767618644cfdee86dc73d7624c55d6a8b9d|$PROM/monitoring.coreos.com_alertmanagerconfigs.yaml"
  "crds/monitoring.coreos.com_podmonitors.yaml|45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d|$PROM/monitoring.coreos.com_podmonitors.yaml"
  "crds/monitoring.coreos.com_prometheusrules.yaml|78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d|$PROM/monitoring.coreos.com_prometheusrules.yaml"
  "crds/monitoring.coreos.com_servicemonitors.yaml|a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32|$PROM/monitoring.coreos.com_servicemonitors.yaml"
  "manifests/cnpg-1.30.0.yaml|f8bede43fe4ee0d478c2355b204a36876b2ae4faac60f2a9452280b293da3b88|$CNPG_RELEASE"
)

mkdir -p "$DEST/crds" "$DEST/manifests"
for entry in "${files[@]}"; do
  IFS='|' read -r path sum url <<<"$entry"
  target="$DEST/$path"
  if [ ! -f "$target" ]; then
    curl --fail --silent --show-error --location --retry 3 --output "$target" "$url"
  fi
  echo "$sum  $target" | sha256sum --check --quiet || {
    echo "fetch-reference: $target differs from the reviewed copy (sha256 $sum)" >&2
    exit 1
  }
done
echo "fetch-reference: ${#files[@]} documents in $DEST" >&2
