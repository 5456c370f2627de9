#!/usr/bin/env bash
# Restore test of the Postgres backups, run daily by the `postgres-restore-check` CronJob.
#
# 1. On the source: count the rows of every table and write a marker row in the same
#    transaction (the source's published figures), then close the WAL segment.
# 2. Wait until that segment is in the archive.
# 3. Restore the latest base backup into a scratch data directory with barman-cloud-restore and
#    replay the archived WAL with barman-cloud-wal-restore, as CloudNativePG's own recovery does.
# 4. On the scratch instance: the marker must be there (the backup chain reaches the present)
#    and every table's row count must be within COUNT_TOLERANCE of the source's figure.
# 5. Write the result as Prometheus metrics to RESULT_FILE; the job's report step pushes them.
#
# The scratch instance listens on a Unix socket only and is removed on exit, pass or fail.
set -euo pipefail
# shellcheck source=restore_result.sh
. "$(dirname "$0")/restore_result.sh"

: "${SOURCE_DSN:?libpq connection string of the source primary}"
: "${BARMAN_DESTINATION:?s3://bucket/postgres, the barmanObjectStore destinationPath}"
: "${SERVER_NAME:?the cluster name, which is the barman server name}"
: "${RESULT_FILE:?where to write the metrics}"
SCRATCH_DIR="${SCRATCH_DIR:-/scratch}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
COUNT_TOLERANCE="${COUNT_TOLERANCE:-0.05}"
ARCHIVE_TIMEOUT_SECONDS="${ARCHIVE_TIMEOUT_SECONDS:-900}"
STORE="${STORE:-postgres}"
# Extra barman-cloud options, e.g. --endpoint-url for an S3-compatible store.
read -r -a BARMAN_OPTS <<<"${BARMAN_CLOUD_OPTIONS:-}"

started=$(date +%s)
data="$SCRATCH_DIR/pgdata"
socket="$SCRATCH_DIR/socket"
source_counts="$SCRATCH_DIR/source-counts"
restored_rows=0

log() { echo "restore-check[$STORE]: $*" >&2; }

source_sql() { psql "$SOURCE_DSN" -X -v ON_ERROR_STOP=1 -At "$@"; }
scratch_sql() { psql -X -h "$socket" -p 5432 -U postgres -d "${SCRATCH_DB:-postgres}" -v ON_ERROR_STOP=1 -At "$@"; }

stop_scratch() {
  if [ -f "$data/postmaster.pid" ]; then
    "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$socket" "$SCRATCH_DIR/pg_hba.conf" "$SCRATCH_DIR/pg_ident.conf"
}
trap stop_scratch EXIT

# Every user table as "schema.table|rows", in a stable order.
COUNT_TABLES=$(
  cat <<'SQL'
SELECT format('SELECT %L || ''|'' || count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, tablename)
FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'sophia_ops')
ORDER BY schemaname, tablename
\gexec
SQL
)

publish_source_figures() {
  local nonce=$1
  source_sql -c "CREATE SCHEMA IF NOT EXISTS sophia_ops" \
    -c "CREATE TABLE IF NOT EXISTS sophia_ops.restore_marker (nonce text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())" >/dev/null
  # One transaction: the counts and the marker describe the same snapshot.
  local output
  output=$({
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"
    echo "$COUNT_TABLES"
    echo "INSERT INTO sophia_ops.restore_marker (nonce) VALUES ('$nonce');"
    echo "COMMIT;"
  } | source_sql -f -)
  grep '|' <<<"$output" >"$source_counts" || : >"$source_counts"
  local segment
  segment=$(source_sql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
  # Closing the segment ships the marker now; without the privilege, archive_timeout ships it.
  source_sql -c "SELECT pg_switch_wal()" >/dev/null 2>&1 || log "cannot switch WAL; waiting for archive_timeout"
  local deadline=$((SECONDS + ARCHIVE_TIMEOUT_SECONDS))
  until [[ "$(source_sql -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")" > "$segment" ]] ||
    [[ "$(source_sql -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")" == "$segment" ]]; do
    ((SECONDS < deadline)) || { log "WAL segment $segment not archived within ${ARCHIVE_TIMEOUT_SECONDS}s"; return 1; }
    sleep 1
  done
}

# The scratch instance's settings, given as -c options: they beat every file the backup carries.
# A CloudNativePG data directory includes its operator's custom.conf and override.conf (SSL
# certificates, sockets, the log collector and the WAL archiver all under /controller, the
# standby's primary_conninfo and restore_command), and its postgresql.auto.conf is read-only:
# nothing in it may be edited, and none of /controller exists in this pod.
scratch_settings() {
  local restore="barman-cloud-wal-restore ${BARMAN_CLOUD_OPTIONS:-} $BARMAN_DESTINATION $SERVER_NAME %f %p"
  printf '%s\n' \
    "listen_addresses=" \
    "port=5432" \
    "unix_socket_directories=$socket" \
    "hba_file=$SCRATCH_DIR/pg_hba.conf" \
    "ident_file=$SCRATCH_DIR/pg_ident.conf" \
    "ssl=off" \
    "logging_collector=off" \
    "log_destination=stderr" \
    "archive_mode=off" \
    "archive_command=" \
    "shared_preload_libraries=" \
    "synchronous_standby_names=" \
    "primary_conninfo=" \
    "primary_slot_name=" \
    "recovery_min_apply_delay=0" \
    "restore_command=$restore" \
    "recovery_target_timeline=latest" \
    "recovery_target_action=promote"
}

restore_latest() {
  mkdir -p "$SCRATCH_DIR" "$socket"
  rm -rf "$data"
  # The newest completed base backup (ids are timestamps, so they sort by time).
  local backup_id
  backup_id=$(barman-cloud-backup-list "${BARMAN_OPTS[@]}" --format json "$BARMAN_DESTINATION" "$SERVER_NAME" |
    python3 -c 'import json, sys
done = [b["backup_id"] for b in json.load(sys.stdin)["backups_list"] if b["status"] == "DONE"]
print(max(done) if done else "")')
  [ -n "$backup_id" ] || { log "no completed base backup in $BARMAN_DESTINATION"; return 1; }
  log "restoring base backup $backup_id"
  barman-cloud-restore "${BARMAN_OPTS[@]}" "$BARMAN_DESTINATION" "$SERVER_NAME" "$backup_id" "$data"
  chmod 700 "$data"
  echo "local all all trust" >"$SCRATCH_DIR/pg_hba.conf"
  : >"$SCRATCH_DIR/pg_ident.conf"
  touch "$data/recovery.signal"
  local options=() setting
  while IFS= read -r setting; do options+=(-c "$setting"); done < <(scratch_settings)
  "$PG_BIN/postgres" -D "$data" "${options[@]}" >"$SCRATCH_DIR/postgres.log" 2>&1 &
  local postmaster=$! deadline=$((SECONDS + 3600))
  until [ "$(scratch_sql -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = "f" ]; do
    kill -0 "$postmaster" 2>/dev/null || { log "postgres exited: $(grep -E 'FATAL|PANIC' "$SCRATCH_DIR/postgres.log" | tail -n 3)"; return 1; }
    ((SECONDS < deadline)) || { log "recovery did not finish within an hour"; return 1; }
    sleep 1
  done
}

verify_restored() {
  local nonce=$1
  if [ "$(scratch_sql -c "SELECT count(*) FROM sophia_ops.restore_marker WHERE nonce = '$nonce'")" != "1" ]; then
    log "marker $nonce missing: the restored data stops before the check began"
    return 1
  fi
  local failed=0 table expected actual
  while IFS='|' read -r table expected; do
    [ -n "$table" ] || continue
    actual=$(scratch_sql -c "SELECT count(*) FROM $table")
    restored_rows=$((restored_rows + actual))
    if ! within_tolerance "$expected" "$actual"; then
      log "$table: restored $actual rows, source had $expected (tolerance $COUNT_TOLERANCE)"
      failed=1
    fi
  done <"$source_counts"
  return "$failed"
}

nonce="check-$(date +%s)-$$"
mkdir -p "$SCRATCH_DIR"
# A plain subshell keeps `set -e` in force inside it (a condition or && list would switch it off).
set +e
(
  set -e
  publish_source_figures "$nonce"
  restore_latest
  verify_restored "$nonce"
  echo "$restored_rows" >"$SCRATCH_DIR/restored-rows"
)
status=$?
set -e
restored_rows=$(cat "$SCRATCH_DIR/restored-rows" 2>/dev/null || echo 0)
if [ "$status" = 0 ]; then
  log "restored and verified: $(wc -l <"$source_counts") tables, $restored_rows rows, marker $nonce"
  write_restore_result 1 "$restored_rows" "$started"
else
  log "restore check failed"
  write_restore_result 0 "$restored_rows" "$started"
fi
