#!/bin/sh
# Report step of the DR region's restore checks (amazon/aws-cli image): where there is no
# Pushgateway, the check's result goes to CloudWatch as metrics of NAMESPACE with a Store
# dimension, where the DR alarms watch it. Like push_result.sh, it then fails the Job when the
# check failed, so `kubectl get jobs` agrees with the alarm.
set -eu
: "${RESULT_FILE:?metrics written by the check}"
: "${NAMESPACE:?CloudWatch namespace, e.g. Sophia/RestoreVerification}"
: "${STORE:?store dimension, e.g. postgres}"

value() { sed -n "s/^sophia_restore_verification_$1 //p" "$RESULT_FILE" 2>/dev/null | head -n 1; }

success=$(value success)
if [ "$success" != 1 ]; then
  echo "push-result-cloudwatch[$STORE]: the check failed or wrote no result; reporting a failure" >&2
  success=0
fi
aws cloudwatch put-metric-data --namespace "$NAMESPACE" --metric-name Success --unit Count \
  --dimensions "Store=$STORE" --value "$success"
items=$(value restored_items)
if [ -n "$items" ]; then
  aws cloudwatch put-metric-data --namespace "$NAMESPACE" --metric-name RestoredItems --unit Count \
    --dimensions "Store=$STORE" --value "$items"
fi
[ "$success" = 1 ]
