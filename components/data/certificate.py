"""`ServiceCertificate`: a stack-local CA and a server certificate in a kubernetes.io/tls Secret.

The CA (five years) is made by pulumi-tls and lives in Pulumi state and, for cert-manager's CA
Issuer, in the Secret `<secret>-issuer`. The leaf certificate is issued and renewed by cert-manager
inside the cluster (`Certificate` -> the Secret `<secret>`: tls.crt, tls.key, ca.crt), so it
renews without a `pulumi up`; each store picks up the renewed files itself (Redis: its tls-reload
sidecar; PostgreSQL: CloudNativePG reloads on the `cnpg.io/reload` label; Qdrant: HTTPS every
hour, gRPC and p2p by the tls-rollout job's rolling restart). A certificate used outside the
cluster (the DR replica's client certificate, exported to the dr stack) is made by pulumi-tls
instead (`issuer="pulumi"`), renewed by `pulumi up` 30 days before it expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

CA_VALIDITY_HOURS = 5 * 365 * 24
# Leaves issued by pulumi-tls: one year, renewed by `pulumi up` 30 days early.
LEAF_VALIDITY_HOURS = 365 * 24
EARLY_RENEWAL_HOURS = 30 * 24
# Leaves issued by cert-manager: 90 days, renewed in the cluster 30 days before they expire.
CERT_MANAGER_DURATION = "2160h"
CERT_MANAGER_RENEW_BEFORE = "720h"


@dataclass(frozen=True)
class ServiceCertificateArgs:
    namespace: str
    secret_name: str
    dns_names: Sequence[str]
    """Every name clients and peers use, e.g. `*.redis-headless.sophia-data.svc`."""
    common_name: str | None = None
    """Subject CN; defaults to the first DNS name (a client certificate names its user here)."""
    issuer: Literal["cert-manager", "pulumi"] = "cert-manager"
    """Who issues and renews the leaf: cert-manager in the cluster, or pulumi-tls on `pulumi up`."""
    secret_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on the certificate's Secret (e.g. `cnpg.io/reload` so CloudNativePG reloads it)."""


class ServiceCertificate(pulumi.ComponentResource):
    """The CA key lives in Pulumi state (a secret), in the issuer Secret, and nowhere else."""

    secret_name: str
    cert_pem: pulumi.Output[str] | None
    """The leaf certificate, where pulumi-tls issues it."""
    private_key_pem: pulumi.Output[str] | None
    """Its key (a Pulumi secret), where pulumi-tls issues it."""

    def __init__(self, name: str, args: ServiceCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:data:ServiceCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P256"), child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            tls.SelfSignedCertArgs(
                private_key_pem=ca_key.private_key_pem,
                is_ca_certificate=True,
                validity_period_hours=CA_VALIDITY_HOURS,
                allowed_uses=["cert_signing", "crl_signing"],
                subject=tls.SelfSignedCertSubjectArgs(common_name=f"{name} CA", organization="Sophia AI"),
            ),
            child,
        )
        self.secret_name = args.secret_name
        self.ca_cert_pem = ca.cert_pem
        self.cert_pem = None
        self.private_key_pem = None
        if args.issuer == "pulumi":
            self._pulumi_leaf(name, args, ca_key, ca)
        else:
            self._cert_manager_leaf(name, args, ca_key, ca)
        self.register_outputs({"secretName": args.secret_name})

    def _cert_manager_leaf(
        self, name: str, args: ServiceCertificateArgs, ca_key: tls.PrivateKey, ca: tls.SelfSignedCert
    ) -> None:
        issuer_secret = f"{args.secret_name}-issuer"
        ca_secret = k8s.core.v1.Secret(
            f"{name}-issuer-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=issuer_secret, namespace=args.namespace),
            type="kubernetes.io/tls",
            string_data={"tls.crt": ca.cert_pem, "tls.key": ca_key.private_key_pem},
            opts=pulumi.ResourceOptions(parent=self),
        )
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-issuer",
            api_version="cert-manager.io/v1",
            kind="Issuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=issuer_secret, namespace=args.namespace),
            spec={"ca": {"secretName": issuer_secret}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ca_secret]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.secret_name, namespace=args.namespace),
            spec={
                "secretName": args.secret_name,
                **({"secretTemplate": {"labels": dict(args.secret_labels)}} if args.secret_labels else {}),
                "commonName": args.common_name or args.dns_names[0],
                "dnsNames": list(args.dns_names),
                "subject": {"organizations": ["Sophia AI"]},
                "duration": CERT_MANAGER_DURATION,
                "renewBefore": CERT_MANAGER_RENEW_BEFORE,
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
                "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": issuer_secret},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[issuer]),
        )

    def _pulumi_leaf(
        self, name: str, args: ServiceCertificateArgs, ca_key: tls.PrivateKey, ca: tls.SelfSignedCert
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-key", tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P256"), child)
        request = tls.CertRequest(
            f"{name}-csr",
            tls.CertRequestArgs(
                private_key_pem=key.private_key_pem,
                dns_names=list(args.dns_names) or None,
                subject=tls.CertRequestSubjectArgs(
                    common_name=args.common_name or args.dns_names[0], organization="Sophia AI"
                ),
            ),
            child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            tls.LocallySignedCertArgs(
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=LEAF_VALIDITY_HOURS,
                early_renewal_hours=EARLY_RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            ),
            child,
        )
        self.cert_pem = cert.cert_pem
        # pulumi-tls marks the key secret itself; saying so here keeps it secret whatever reads it.
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.secret_name, namespace=args.namespace, labels=dict(args.secret_labels) or None
            ),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": cert.cert_pem,
                "tls.key": key.private_key_pem,  # a Pulumi secret already (pulumi-tls marks it)
                "ca.crt": ca.cert_pem,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
