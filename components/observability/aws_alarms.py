"""`AlarmTopic`: where one region's CloudWatch alarms go. An SNS topic (in the alarms' region: an
alarm can only notify a topic of its own region) with a PagerDuty subscription (the "Amazon
CloudWatch" integration's URL, a Pulumi secret; PagerDuty confirms the subscription itself).

The topic is encrypted with its own key: CloudWatch cannot publish to a topic under the AWS
managed SNS key, whose policy no customer can extend, so the key admits CloudWatch (this
account's alarms only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.kms import account_administers


@dataclass(frozen=True)
class AlarmTopicArgs:
    """Inputs of `AlarmTopic`."""

    account: str
    provider: aws.Provider
    """The alarms' region."""
    pagerduty_url: pulumi.Input[str]
    """`sophia:awsAlarmPagerdutyUrl`, a secret."""
    tags: Mapping[str, str]


def alarm_key_policy(account: str) -> str:
    """The account administers the key; CloudWatch may encrypt notifications for this account's alarms."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers(account),
                {
                    "Sid": "CloudWatchPublishes",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        }
    )


class AlarmTopic(pulumi.ComponentResource):
    """`topic_arn`: what alarms of this region notify (alarm and OK)."""

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:observability:AlarmTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        tags = dict(args.tags)
        key = aws.kms.Key(
            f"{name}-key",
            description="Encrypts CloudWatch alarm notifications",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=alarm_key_policy(args.account),
            tags=tags,
            # Keys are protected like every other (the policy pack's stateful rule); this one only
            # ever sees notifications, but a deleted key silences every alarm of the region.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True)),
        )
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.arn, tags=tags, opts=child)
        aws.sns.TopicSubscription(
            f"{name}-pagerduty",
            topic=topic.arn,
            protocol="https",
            endpoint=pulumi.Output.secret(args.pagerduty_url),
            endpoint_auto_confirms=True,
            opts=child,
        )
        self.topic_arn: pulumi.Output[str] = topic.arn
        self.register_outputs({"topic": topic.arn})
