# shellcheck shell=sh
# Sourced by every restore check: writes its result as Prometheus text for push_result.sh.
# A failed run leaves out last_success, so the Pushgateway keeps the previous success time.

# write_restore_result <success 0|1> <restored items> <start epoch seconds>
write_restore_result() {
  now=$(date +%s)
  {
    echo "# TYPE sophia_restore_verification_success gauge"
    echo "sophia_restore_verification_success $1"
    echo "# TYPE sophia_restore_verification_last_run_timestamp_seconds gauge"
    echo "sophia_restore_verification_last_run_timestamp_seconds $now"
    echo "# TYPE sophia_restore_verification_duration_seconds gauge"
    echo "sophia_restore_verification_duration_seconds $((now - $3))"
    echo "# TYPE sophia_restore_verification_restored_items gauge"
    echo "sophia_restore_verification_restored_items $2"
    if [ "$1" = 1 ]; then
      echo "# TYPE sophia_restore_verification_last_success_timestamp_seconds gauge"
      echo "sophia_restore_verification_last_success_timestamp_seconds $now"
    fi
  } >"$RESULT_FILE"
}

# within_tolerance <expected> <actual>: true when they differ by at most COUNT_TOLERANCE x expected.
within_tolerance() {
  awk -v e="$1" -v a="$2" -v t="${COUNT_TOLERANCE:-0.05}" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d <= t * e) }'
}
