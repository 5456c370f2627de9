"""cloud-init user data that joins an instance to the cluster as a labelled, tainted k3s agent (pure).

Shared by the Pulumi program (the floor instances) and the node-group service (burst instances), so
both kinds of node look alike to the scheduler. Burst instances also register the provider ID the
service reports for them and carry their launch key as a label.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

POOL_LABEL = "sophia.ai/pool"


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_join(
    pool: str,
    server_url: str,
    k3s_version: str,
    token: str,
    *,
    labels: Mapping[str, str] | None = None,
    provider_id: str | None = None,
) -> str:
    """A `#cloud-config` document; it holds the join token, so treat it as a secret.

    `labels` are the node's (`autoscaler.config.pool_labels`, and a burst node's launch key); the pool
    label is always among them. The taint keeps general workloads off GPU nodes; pods for a pool
    tolerate `sophia.ai/pool=<pool>`.
    """
    node_labels = {**(labels or {}), POOL_LABEL: pool}
    flags = [
        "agent",
        *(f"--node-label {shlex.quote(f'{k}={v}')}" for k, v in sorted(node_labels.items())),
        f"--node-taint {shlex.quote(f'{POOL_LABEL}={pool}:NoSchedule')}",
    ]
    if provider_id is not None:
        flags.append(f"--kubelet-arg {shlex.quote(f'provider-id={provider_id}')}")
    environment = " ".join(
        [
            f"INSTALL_K3S_VERSION={shlex.quote(k3s_version)}",
            f"K3S_URL={shlex.quote(server_url)}",
            f"K3S_TOKEN={shlex.quote(token)}",
        ]
    )
    args = " ".join(flags)
    return (
        "#cloud-config\n"
        "runcmd:\n"
        f"  - [sh, -c, {_yaml_quote(f'curl -sfL https://get.k3s.io | {environment} sh -s - {args}')}]\n"
    )
