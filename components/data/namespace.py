"""`DataNamespace`: the primary cluster's provider and the data stores' namespace, closed by default."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from settings.data import KubernetesSettings

DATA_TIER_LABEL = "sophia.ai/tier"
# cert-manager v1.21.1 (2026-07-29), the newest release: issues and renews the stores' certificates.
CERT_MANAGER_CHART = "cert-manager"
CERT_MANAGER_VERSION = "v1.21.1"
CERT_MANAGER_REPO = "https://charts.jetstack.io"
CERT_MANAGER_NAMESPACE = "cert-manager"


@dataclass(frozen=True)
class DataNamespaceArgs:
    """Inputs of `DataNamespace`."""

    kubernetes: KubernetesSettings
    """Cluster version, namespaces and storage class (`sophia:kubernetes`)."""
    kubeconfig: pulumi.Input[str]
    """Secret kubeconfig of the primary cluster (`sophia:kubeconfig`)."""
    protect: bool
    """Protect the namespace (deleting it deletes every store in it): true in prod."""
    backup_credentials: tuple[pulumi.Input[str], pulumi.Input[str]] | None
    """(access key id, secret access key) of the S3 backup writer, as Pulumi secrets; None where
    pods reach S3 through their node's IAM role (the DR region)."""
    install_cert_manager: bool = True
    """Install cert-manager (`sophia:operators.certManager`); otherwise the cluster's own issues."""


class DataNamespace(pulumi.ComponentResource):
    """An explicit Kubernetes provider, the data namespace, and a NetworkPolicy that denies all
    traffic in and out of it; each store then opens only the ports it needs."""

    provider: k8s.Provider
    namespace: str
    backup_secret_name = "backup-s3"  # noqa: S105 - a Secret's name, not its value
    """Secret with ACCESS_KEY_ID and ACCESS_SECRET_KEY that every store's backups use."""

    def __init__(self, name: str, args: DataNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:DataNamespace", name, None, opts)
        settings = args.kubernetes
        self.namespace = settings.data_namespace
        self.provider = k8s.Provider(
            f"{name}-k8s",
            k8s.ProviderArgs(kubeconfig=args.kubeconfig, enable_server_side_apply=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=settings.data_namespace,
                labels={
                    DATA_TIER_LABEL: "data",
                    # Pod Security Admission: the stores run under the restricted profile.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": f"v{settings.version}",
                },
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=args.protect)),
        )
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="default-deny", namespace=settings.data_namespace),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.namespace_resource])),
        )
        self.backup_secret: k8s.core.v1.Secret | None = None
        if args.backup_credentials is not None:
            self.backup_secret = k8s.core.v1.Secret(
                f"{name}-backup-s3",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=self.backup_secret_name, namespace=settings.data_namespace),
                string_data={
                    "ACCESS_KEY_ID": pulumi.Output.secret(args.backup_credentials[0]),
                    "ACCESS_SECRET_KEY": pulumi.Output.secret(args.backup_credentials[1]),
                },
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.namespace_resource])),
            )
        self.ready: list[pulumi.Resource] = [self.namespace_resource]
        """What the stores wait for: the namespace, cert-manager if installed here, and the backup
        Secret where there is one."""
        if self.backup_secret is not None:
            self.ready.append(self.backup_secret)
        if args.install_cert_manager:
            self.ready.append(self._cert_manager(name, child, args.protect))
        self.register_outputs({"namespace": self.namespace})

    @staticmethod
    def _cert_manager(name: str, child: pulumi.ResourceOptions, protect: bool) -> pulumi.Resource:
        """cert-manager from its pinned chart, CRDs included and kept when the release goes
        (`crds.keep`: Helm leaves them, so no Certificate is deleted with the release)."""
        namespace = k8s.core.v1.Namespace(
            f"{name}-cert-manager-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CERT_MANAGER_NAMESPACE),
            opts=child,
        )
        return k8s.helm.v3.Release(
            f"{name}-cert-manager",
            k8s.helm.v3.ReleaseArgs(
                name="cert-manager",
                chart=CERT_MANAGER_CHART,
                version=CERT_MANAGER_VERSION,
                namespace=CERT_MANAGER_NAMESPACE,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CERT_MANAGER_REPO),
                values={"crds": {"enabled": True, "keep": True}},
                atomic=True,
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[namespace], protect=protect, retain_on_delete=True)
            ),
        )
