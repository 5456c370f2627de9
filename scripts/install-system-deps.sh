#!/usr/bin/env bash
# Installs the Debian packages the real-server tests need, only when missing.
# Listed in one place so `make test` on a fresh machine and CI install the same set.
set -euo pipefail

# redis-server/redis-tools and postgresql-15 (with pgbench): the real-server tests of the
# data layer's generated configuration; openssl makes their throwaway TLS certificates.
# prometheus (promtool) and prometheus-alertmanager (amtool) check the alert rules and routing;
# barman-cli-cloud, prometheus-pushgateway, awscli and curl run the backup and restore-check scripts for
# real; shellcheck lints those scripts; awscli also runs the failover guard (failover/guard.sh) for real.
packages=(
  redis-server redis-tools postgresql-15 postgresql-client-15 openssl
  prometheus prometheus-alertmanager prometheus-pushgateway barman-cli-cloud awscli curl shellcheck
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >&2
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
