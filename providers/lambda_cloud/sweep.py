"""The burst sweep: a record whose deletion terminates every instance the node-group service launched.

Burst instances are not Pulumi resources (cluster-autoscaler starts and stops them through the
node-group service), so neither turning the autoscaler off nor `pulumi destroy` would touch them: they
would run and bill with nothing left to stop them. The sweep is the Pulumi resource that stands for
them. Creating or updating it does nothing; deleting it terminates every instance tagged
`<owner_tag>=<owner>` (the service's owner tag, its stack's account prefix) and returns once two
listings in a row show none of them billing, the later one sent at least two minutes after the sweep
began: a launch the service sent just before it stopped may still land that late. Pulumi deletes dependents
first: the service's Deployment depends on the sweep, so the service is gone (its pod terminated)
before the sweep runs and cannot launch behind it; the sweep depends on the pools' rulesets and SSH
keys, which are deleted after it, when no burst instance holds them any more.

It is never replaced (a replacement would delete the old sweep, terminating the burst of a running
stack): a change of its inputs is an in-place update.
"""

from __future__ import annotations

import time
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers.lambda_cloud.base import LambdaProvider, report
from providers.lambda_cloud.launcher import GONE_STATUSES, terminate_quietly
from providers.lambda_cloud.timing import scaled
from providers.lambda_cloud.watcher import Listing

KEYS = ("owner_tag", "owner")
# Terminating takes seconds to a minute or two; the sweep gives up (and says which are left) after this.
SWEEP_TIMEOUT_S = 15 * 60.0
# A launch sent by the service just before its pod stopped can land this long after (four times the
# client's request timeout): the sweep keeps looking until then.
LATE_LAUNCH_S = 120.0


def owned(listing: Listing, owner_tag: str, owner: str) -> list[dict[str, Any]]:
    """Instances of the listing that carry the owner tag and still bill (not terminating or gone)."""
    return [
        dict(i) for i in listing.with_tag(owner_tag, owner) if i.get("status") not in (*GONE_STATUSES, "terminated")
    ]


class BurstSweepProvider(LambdaProvider):
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(key, "must be a non-empty string")
            for key in KEYS
            if not isinstance(news.get(key), str) or not news[key]
        ]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = any(olds.get(k) != news.get(k) for k in KEYS)
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"burst-sweep-{props['owner']}", {k: props[k] for k in KEYS})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {k: props.get(k) for k in KEYS})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({k: news[k] for k in KEYS})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        owner_tag, owner = str(props["owner_tag"]), str(props["owner"])
        client = self.client()
        watcher = self.endpoint().watcher(client)
        started = time.monotonic()
        deadline = started + scaled(SWEEP_TIMEOUT_S)
        listing = watcher.fresh(started)
        quiet = 0  # consecutive listings without a billing instance of ours
        while quiet < 2 or listing.sent_at < started + scaled(LATE_LAUNCH_S):
            billing = owned(listing, owner_tag, owner)
            if not billing:
                quiet += 1
            else:
                quiet = 0
                if time.monotonic() > deadline:
                    names = ", ".join(f"{i['id']} ({i.get('status')})" for i in billing)
                    raise RuntimeError(f"burst instances of {owner} still billing after the sweep: {names}")
                for instance in billing:
                    report(f"burst sweep: terminating {instance.get('name')} ({instance['id']})")
                    terminate_quietly(client, str(instance["id"]))
            listing = watcher.after(listing)
        report(f"burst sweep: no instance tagged {owner_tag}={owner} is left")
