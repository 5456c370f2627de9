"""`ServiceCertificate`: a stack-local CA and a server certificate, stored as a kubernetes.io/tls Secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

# Five years for the CA, one year for leaf certificates; renewed by `pulumi up` 30 days early.
CA_VALIDITY_HOURS = 5 * 365 * 24
LEAF_VALIDITY_HOURS = 365 * 24
EARLY_RENEWAL_HOURS = 30 * 24


@dataclass(frozen=True)
class ServiceCertificateArgs:
    namespace: str
    secret_name: str
    dns_names: Sequence[str]
    """Every name clients and peers use, e.g. `*.redis-headless.sophia-data.svc`."""
    common_name: str | None = None
    """Subject CN; defaults to the first DNS name (a client certificate names its user here)."""


class ServiceCertificate(pulumi.ComponentResource):
    """Keys live only in Pulumi state (encrypted as secrets) and in the Secret."""

    secret_name: str

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
        self.secret_name = args.secret_name
        self.cert_pem = cert.cert_pem
        # pulumi-tls marks the key secret itself; saying so here keeps it secret whatever reads it.
        self.private_key_pem: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem)
        self.ca_cert_pem = ca.cert_pem
        k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.secret_name, namespace=args.namespace),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": cert.cert_pem,
                "tls.key": key.private_key_pem,  # a Pulumi secret already (pulumi-tls marks it)
                "ca.crt": ca.cert_pem,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"secretName": args.secret_name})
