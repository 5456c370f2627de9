"""Kubernetes building blocks every domain shares: security contexts, resources, volumes (pure helpers)."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi_kubernetes as k8s

# The aws CLI for jobs and the failover guard: scripts, not images of our own.
AWS_CLI_IMAGE = "amazon/aws-cli:2.17.0"


def pod_security(user: int) -> k8s.core.v1.PodSecurityContextArgs:
    """The restricted Pod Security profile: non-root, a fixed UID/GID, RuntimeDefault seccomp."""
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def resources(cpu: str, memory: str, cpu_limit: str | None = None) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": cpu, "memory": memory},
        limits={"cpu": cpu_limit or cpu, "memory": memory},
    )


def spread_across_nodes(match: Mapping[str, str]) -> k8s.core.v1.AffinityArgs:
    """Prefer one pod per node; preferred, not required, so a short node count still schedules."""
    return k8s.core.v1.AffinityArgs(
        pod_anti_affinity=k8s.core.v1.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.core.v1.WeightedPodAffinityTermArgs(
                    weight=100,
                    pod_affinity_term=k8s.core.v1.PodAffinityTermArgs(
                        topology_key="kubernetes.io/hostname",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match)),
                    ),
                )
            ]
        )
    )


def namespace_selector(name: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": name})
    )


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Name resolution through the cluster DNS, which every pod needs under default-deny egress."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[namespace_selector("kube-system")],
        ports=[
            k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53),
            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=53),
        ],
    )


# The EKS Pod Identity agent: pods fetch their role's credentials from it (hostNetwork, link-local;
# EKS User Guide, "Comparing EKS Pod Identity and IRSA"). Under default-deny egress they must be let through.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80


def pod_identity_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Lets a pod that uses EKS Pod Identity reach the agent for its credentials."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                ip_block=k8s.networking.v1.IPBlockArgs(cidr=POD_IDENTITY_AGENT_CIDR)
            )
        ],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=POD_IDENTITY_AGENT_PORT)],
    )


# StatefulSet volumes outlive the StatefulSet and a scale-down: data is deleted only by hand.
RETAIN_VOLUMES = k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
    when_deleted="Retain", when_scaled="Retain"
)


def volume_claim(
    name: str, pod_labels: Mapping[str, str], storage_class: str, size_gib: int
) -> k8s.core.v1.PersistentVolumeClaimArgs:
    """A StatefulSet volume claim template: one ReadWriteOnce volume per pod."""
    return k8s.core.v1.PersistentVolumeClaimArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=dict(pod_labels)),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=storage_class,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": f"{size_gib}Gi"}),
        ),
    )


def one_unavailable(match: Mapping[str, str]) -> k8s.policy.v1.PodDisruptionBudgetSpecArgs:
    """Voluntary disruptions (drains, upgrades) take down at most one pod of a store at a time."""
    return k8s.policy.v1.PodDisruptionBudgetSpecArgs(
        max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match))
    )


def secret_env(env: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgs:
    """An environment variable read from a Secret, never a literal."""
    return k8s.core.v1.EnvVarArgs(
        name=env,
        value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
    )
