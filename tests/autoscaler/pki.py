"""Throwaway certificates for tests, made with the openssl command line."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> None:
    """`<name>.key` and a self-signed `<name>.crt`."""
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.crt"),
    )  # fmt: skip


def issue(folder: Path, name: str, ca: str, subject_alt: str, usage: str) -> None:
    """`<name>.key` and `<name>.crt` signed by the CA `ca`, for `subject_alt` (e.g. `DNS:x` or `IP:127.0.0.1`)."""
    key, csr, ext = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.ext"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    ext.write_text(f"subjectAltName={subject_alt}\nextendedKeyUsage={usage}\n", encoding="utf-8")
    _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(folder / f"{ca}.crt"), "-CAkey", str(folder / f"{ca}.key"),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(folder / f"{name}.crt"),
    )  # fmt: skip
