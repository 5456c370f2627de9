#!/bin/sh
# The tls-reload sidecar of every Redis pod. cert-manager renews the certificate in its Secret and
# the kubelet updates the mounted files, but redis-server reads TLS files only at start-up and on
# CONFIG SET. When the mounted files change, they are copied to a directory of their own in
# LIVE_DIR (an emptyDir the redis container mounts too) and switched to with one CONFIG SET:
# a new path each time, so the server always loads them. Connections already open keep going;
# new ones (clients, replicas, the cluster bus) get the new certificate. No restart.
set -eu
: "${TLS_DIR:?the mounted Secret with tls.crt, tls.key and ca.crt}"
: "${LIVE_DIR:?a directory the redis container reads too}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
PORT="${PORT:-6379}"
INTERVAL_SECONDS="${INTERVAL_SECONDS:-30}"
# e.g. "--user admin"; the password comes from REDISCLI_AUTH.
CLI_OPTIONS="${REDIS_CLI_OPTIONS:-}"

log() { echo "redis-tls-reload: $*" >&2; }
fingerprint() { cat "$TLS_DIR/tls.crt" "$TLS_DIR/tls.key" "$TLS_DIR/ca.crt" | sha256sum | cut -c 1-16; }

applied=""
while :; do
  current=$(fingerprint 2>/dev/null || echo unreadable)
  if [ "$current" != unreadable ] && [ "$current" != "$applied" ]; then
    live="$LIVE_DIR/$current"
    mkdir -p "$live"
    for file in tls.crt tls.key ca.crt; do cp -L "$TLS_DIR/$file" "$live/$file.new" && mv "$live/$file.new" "$live/$file"; done
    # shellcheck disable=SC2086 # CLI_OPTIONS is a list of options
    if answer=$(redis-cli --tls --cacert "$live/ca.crt" $CLI_OPTIONS -h "$REDIS_HOST" -p "$PORT" \
      config set tls-cert-file "$live/tls.crt" tls-key-file "$live/tls.key" tls-ca-cert-file "$live/ca.crt" 2>&1) &&
      [ "$answer" = OK ]; then
      for old in "$LIVE_DIR"/*; do [ "$old" = "$live" ] || rm -rf "$old"; done
      log "certificate $current is live"
      applied=$current
    else
      log "redis did not take certificate $current yet: $answer"
    fi
  fi
  sleep "$INTERVAL_SECONDS"
done
