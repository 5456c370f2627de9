"""cloud-init user data that joins an instance to the cluster as a labelled, tainted agent (pure helper)."""

from __future__ import annotations

import shlex
from typing import cast

import pulumi

POOL_LABEL = "sophia.ai/pool"


def node_join_user_data(pool: str, server_url: str, k3s_version: str, token: pulumi.Output[str]) -> pulumi.Output[str]:
    """A `#cloud-config` document; stays a Pulumi secret because the join token is in it.

    The taint keeps general workloads off GPU nodes; pods for a pool tolerate `sophia.ai/pool=<pool>`.
    """

    def render(secret: str) -> str:
        args = " ".join(
            [
                "agent",
                f"--node-label {shlex.quote(f'{POOL_LABEL}={pool}')}",
                f"--node-taint {shlex.quote(f'{POOL_LABEL}={pool}:NoSchedule')}",
            ]
        )
        environment = " ".join(
            [
                f"INSTALL_K3S_VERSION={shlex.quote(k3s_version)}",
                f"K3S_URL={shlex.quote(server_url)}",
                f"K3S_TOKEN={shlex.quote(secret)}",
            ]
        )
        return (
            "#cloud-config\n"
            "runcmd:\n"
            f"  - [sh, -c, {_yaml_quote(f'curl -sfL https://get.k3s.io | {environment} sh -s - {args}')}]\n"
        )

    rendered: pulumi.Output[str] = token.apply(render)
    # The token is already a secret and apply keeps that; say so explicitly all the same.
    return cast("pulumi.Output[str]", pulumi.Output.secret(rendered))


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
