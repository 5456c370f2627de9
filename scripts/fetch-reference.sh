#!/usr/bin/env bash
# Fetches the public reference documents the tests read from ../shared/reference (the Lambda
# Cloud OpenAPI document, every CRD (CloudNativePG, its Barman Cloud plugin, Prometheus Operator,
# cert-manager, KEDA, Gateway API, Envoy Gateway) and the remote manifests the program applies, which
# the harness expands as the Kubernetes provider would) into DEST, and refuses any whose sha256 differs from the
# copy the tests were written against. GitHub Actions runs this; locally shared/ is already there.
set -euo pipefail

DEST="${1:-../shared/reference}"
CNPG="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/v1.30.0/config/crd/bases"
PROM="https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.93.0/example/prometheus-operator-crd"
BARMAN="https://raw.githubusercontent.com/cloudnative-pg/plugin-barman-cloud/v0.14.0/config/crd/bases"
CERT_MANAGER="https://raw.githubusercontent.com/cert-manager/cert-manager/v1.21.1/deploy/crds"
KEDA="https://raw.githubusercontent.com/kedacore/keda/v2.20.2/config/crd/bases"
GATEWAY_API="https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.6.1/config/crd/standard"
ENVOY_GATEWAY="https://raw.githubusercontent.com/envoyproxy/gateway/v1.9.0/charts/gateway-helm/charts/crds/crds/generated"
# The operator manifest components/data/postgres_cluster.py applies (CNPG_MANIFEST).
CNPG_RELEASE="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-1.30/releases/cnpg-1.30.0.yaml"

# path | sha256 | source URL: every file the tests read (tests/k8s_schemas.py loads every CRD).
files=(
  "lambda-cloud-api-openapi-1.10.0.json|6163162cf92eb680111eba98f153701b76ab0711ab832d58fa6de2e9e1dda3ea|https://docs.lambda.ai/api/cloud/spec.json"
  "crds/postgresql.cnpg.io_clusters.yaml|ae47f4a00f6e998faef57e480f9a3960cd48ea16a79270861fc7442601507472|$CNPG/postgresql.cnpg.io_clusters.yaml"
  "crds/postgresql.cnpg.io_poolers.yaml|9e0dad05355f72dceb154a12b43ebe8a410d470133ad228bf711c1fdee221124|$CNPG/postgresql.cnpg.io_poolers.yaml"
  "crds/postgresql.cnpg.io_scheduledbackups.yaml|1dffb969a92ed6b09abe59d9c848ff97c6646c7824e75f8e0b8379df8473a145|$CNPG/postgresql.cnpg.io_scheduledbackups.yaml"
  "crds/barmancloud.cnpg.io_objectstores.yaml|7c98720494253421339acd03aa77487869326ea20d4768a0c3aef8ff076daaef|$BARMAN/barmancloud.cnpg.io_objectstores.yaml"
  "crds/monitoring.coreos.com_alertmanagerconfigs.yaml|fed47c462483a47a4d1912bf8a7a3767618644cfdee86dc73d7624c55d6a8b9d|$PROM/monitoring.coreos.com_alertmanagerconfigs.yaml"
  "crds/monitoring.coreos.com_podmonitors.yaml|45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d|$PROM/monitoring.coreos.com_podmonitors.yaml"
  "crds/monitoring.coreos.com_prometheusrules.yaml|78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d|$PROM/monitoring.coreos.com_prometheusrules.yaml"
  "crds/monitoring.coreos.com_servicemonitors.yaml|a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32|$PROM/monitoring.coreos.com_servicemonitors.yaml"
  "crds/cert-manager.io_certificates.yaml|7ad91029c00ec959d54215b19d3b1a9b7e0247eaa60f987151c2b70d8661f8af|$CERT_MANAGER/cert-manager.io_certificates.yaml"
  "crds/cert-manager.io_clusterissuers.yaml|30008001b78aafb8e110af61359561104b5fafc3a4dc6ac0013245d0ee3fe4ca|$CERT_MANAGER/cert-manager.io_clusterissuers.yaml"
  "crds/cert-manager.io_issuers.yaml|05e37efb02777e0362d24269fa103c2fc11419f9c85e31854ef873e5d9e5c5cc|$CERT_MANAGER/cert-manager.io_issuers.yaml"
  "crds/keda.sh_scaledjobs.yaml|8805cd6c5b05161fb1541726e2c32c8e2990f435649fa74cbc616600b84b583a|$KEDA/keda.sh_scaledjobs.yaml"
  "crds/keda.sh_scaledobjects.yaml|af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80|$KEDA/keda.sh_scaledobjects.yaml"
  "crds/keda.sh_triggerauthentications.yaml|275307b4cb19ca8f0f506a879282aa4c67587ac16ec757f494d6585c5c185d65|$KEDA/keda.sh_triggerauthentications.yaml"
  "crds/gateway.networking.k8s.io_backendtlspolicies.yaml|0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419|$GATEWAY_API/gateway.networking.k8s.io_backendtlspolicies.yaml"
  "crds/gateway.networking.k8s.io_gatewayclasses.yaml|53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5|$GATEWAY_API/gateway.networking.k8s.io_gatewayclasses.yaml"
  "crds/gateway.networking.k8s.io_gateways.yaml|25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a|$GATEWAY_API/gateway.networking.k8s.io_gateways.yaml"
  "crds/gateway.networking.k8s.io_grpcroutes.yaml|53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc|$GATEWAY_API/gateway.networking.k8s.io_grpcroutes.yaml"
  "crds/gateway.networking.k8s.io_httproutes.yaml|a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852|$GATEWAY_API/gateway.networking.k8s.io_httproutes.yaml"
  "crds/gateway.networking.k8s.io_referencegrants.yaml|8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3|$GATEWAY_API/gateway.networking.k8s.io_referencegrants.yaml"
  "crds/gateway.envoyproxy.io_backendtrafficpolicies.yaml|cd75a4c222df5487aa9ca8957b48bcc3255eb25de02ed9153faf620bc160f786|$ENVOY_GATEWAY/gateway.envoyproxy.io_backendtrafficpolicies.yaml"
  "crds/gateway.envoyproxy.io_clienttrafficpolicies.yaml|2c7eaa1ce30de626e9c362b8d9002281c2f435f970020fa81902ad7f30b38d5b|$ENVOY_GATEWAY/gateway.envoyproxy.io_clienttrafficpolicies.yaml"
  "crds/gateway.envoyproxy.io_envoyproxies.yaml|3e9ea2f348445e3798b02daf02bf024b0d944227cf5ef8a18da7f675a1afd223|$ENVOY_GATEWAY/gateway.envoyproxy.io_envoyproxies.yaml"
  "crds/gateway.envoyproxy.io_securitypolicies.yaml|6412914ec5b7c48f58b85f60a80767ba15a50c8d374480cf5f2d872e4a764466|$ENVOY_GATEWAY/gateway.envoyproxy.io_securitypolicies.yaml"
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
