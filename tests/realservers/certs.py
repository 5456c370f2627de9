"""A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerCerts:
    ca: Path
    cert: Path
    key: Path


def make_certs(
    directory: Path, *, ip_addresses: Sequence[str] = (), dns_names: Sequence[str] = (), name: str = "server"
) -> ServerCerts:
    """A CA (made once per directory, then reused) and a leaf `<name>.crt` signed by it."""
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.cnf"
    names = ["IP:127.0.0.1", "DNS:localhost", *(f"IP:{ip}" for ip in ip_addresses), *(f"DNS:{d}" for d in dns_names)]
    ext.write_text(f"subjectAltName={','.join(names)}\nextendedKeyUsage=serverAuth,clientAuth\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    if not ca.exists():
        _make_ca(ca_key, ca, run)
    _sign(key, csr, cert, ca=ca, ca_key=ca_key, ext=ext, run=run)
    for path in (ca_key, key):
        path.chmod(0o644)  # readable by the postgres user in the Postgres tests
    return ServerCerts(ca=ca, cert=cert, key=key)


def _make_ca(ca_key: Path, ca: Path, run: Callable[..., None]) -> None:
    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sophia-test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )


def _sign(key: Path, csr: Path, cert: Path, *, ca: Path, ca_key: Path, ext: Path, run: Callable[..., None]) -> None:
    run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
