"""cloud-init user data that joins an instance to the cluster as a labelled, tainted agent (pure helper)."""

from __future__ import annotations

from typing import cast

import pulumi

from autoscaler.config import pool_labels
from autoscaler.join import POOL_LABEL, render_join

__all__ = ["POOL_LABEL", "node_join_user_data"]


def node_join_user_data(
    pool: str, instance_type: str, server_url: str, k3s_version: str, token: pulumi.Output[str]
) -> pulumi.Output[str]:
    """A `#cloud-config` document; stays a Pulumi secret because the join token is in it.

    The taint keeps general workloads off GPU nodes; pods for a pool tolerate `sophia.ai/pool=<pool>`.
    The text is the one the node-group service renders for burst instances (the same labels:
    pool, instance type, GPU), less their launch-key label and provider ID (`autoscaler/join.py`).
    """
    labels = pool_labels(pool, instance_type)
    rendered: pulumi.Output[str] = token.apply(
        lambda secret: render_join(pool, server_url, k3s_version, secret, labels=labels)
    )
    # The token is already a secret and apply keeps that; say so explicitly all the same.
    return cast("pulumi.Output[str]", pulumi.Output.secret(rendered))
