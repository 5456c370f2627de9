"""Delete the Node objects of burst instances that no longer exist.

k3s's cloud provider says every node exists (`InstanceExists` is always true in pkg/cloudprovider),
so nothing else ever removes the Node of a terminated instance. Left behind, it is NotReady for ever,
and cluster-autoscaler counts it: unready nodes that belong to no group still count in its cluster
total (clusterstate.go), and once more than 3 nodes and 45% of them are unready it stops scaling
altogether (`IsClusterHealthy`, `--ok-total-unready-count`, `--max-total-unready-percentage`).

Which Nodes: only those registered with the provider ID the service gives its instances,
`lambda://<launch key>` (Pulumi's floor nodes register with k3s's own, `k3s://<name>`, and any other
provider ID is not ours), and only when no instance in the account carries that launch key any more
in two listings, the first sent after the Nodes were read and the second a poll interval later: an
instance exists before its node registers, so a node whose key is in neither listing belongs to an
instance that is gone, and one listing that missed an instance is not enough to delete its node. The
delete names the Node's uid, so a node registered again under the same name is never the one removed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from autoscaler.config import PROVIDER_ID_PREFIX
from autoscaler.kube import KubeApi
from providers.lambda_cloud.launcher import LAUNCH_KEY_LENGTH, carrying
from providers.lambda_cloud.timing import scaled
from providers.lambda_cloud.watcher import InstanceWatcher

log = logging.getLogger("sophia.autoscaler")
OUR_PROVIDER_ID = re.compile(re.escape(PROVIDER_ID_PREFIX) + f"([0-9a-f]{{{LAUNCH_KEY_LENGTH}}})")
# Besides every confirmed termination, the Nodes are looked at this often (and at start): a node left
# by an instance that went while the service was down, or whose delete failed, goes within this.
REAP_INTERVAL_S = 300.0


def launch_key_of(node: Mapping[str, Any]) -> str | None:
    """The launch key in the Node's provider ID when it is one of ours, else None."""
    match = OUR_PROVIDER_ID.fullmatch(str((node.get("spec") or {}).get("providerID") or ""))
    return match.group(1) if match else None


class NodeReaper:
    def __init__(self, kube: KubeApi, watcher: InstanceWatcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.watcher = watcher
        self.clock = clock
        self.deleted: list[str] = []
        """Provider IDs of the Nodes deleted, oldest first."""
        self._due = threading.Event()
        self._due.set()  # at start: nodes left while the service was down

    def request(self) -> None:
        """Look soon: a termination was just confirmed."""
        self._due.set()

    def reap(self) -> list[str]:
        """One pass; returns the provider IDs of the Nodes deleted."""
        ours = [(node, key) for node in self.kube.list_nodes() if (key := launch_key_of(node)) is not None]
        if not ours:
            return []
        first = self.watcher.fresh(self.clock())
        absent = [(node, key) for node, key in ours if not carrying(first, key)]
        if not absent:
            return []
        second = self.watcher.after(first)
        deleted = []
        for node, key in absent:
            if carrying(second, key):
                continue
            metadata = node.get("metadata") or {}
            name, uid = str(metadata.get("name")), str(metadata.get("uid"))
            if self.kube.delete_node(name, uid):
                log.info("deleted Node %s (%s%s): its instance is gone", name, PROVIDER_ID_PREFIX, key)
                deleted.append(f"{PROVIDER_ID_PREFIX}{key}")
        self.deleted += deleted
        return deleted

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._due.wait(timeout=scaled(REAP_INTERVAL_S))
            self._due.clear()
            if stop.is_set():
                return
            try:
                self.reap()
            except Exception:  # the reaper must outlive any one failure: it tries again shortly
                log.exception("deleting the Nodes of gone instances failed")
                stop.wait(self.watcher.poll_interval)
                self._due.set()

    def wake(self) -> None:
        self._due.set()
