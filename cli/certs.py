"""A self-signed server certificate made at start, for `serve` and `demo` without `--cert`."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Generated", "fingerprint", "generate"]


@dataclass(frozen=True)
class Generated:
    """A certificate and its key, as PEM files in a directory the caller removes."""

    certificate: pathlib.Path
    key: pathlib.Path
    fingerprint: str
    """SHA-256 of the DER certificate, as browsers show it (AB:CD:...)."""


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, colon-separated upper-case hex."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def generate(directory: pathlib.Path, names: Iterable[str], days: int = 30) -> Generated:
    """Write `cert.pem` and `key.pem` (mode 0600) into `directory`: an ECDSA P-256 certificate
    valid for `days`, for `localhost`, 127.0.0.1, ::1 and `names` (host names or IPs)."""
    try:
        from cryptography import x509  # noqa: PLC0415 (an optional extra, loaded when needed)
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415
    except ImportError:
        raise SystemExit(
            "generating a certificate needs the cryptography package: pip install 'sansio-wss[cli]', "
            "or give --cert and --key"
        ) from None
    wanted = ["localhost", "127.0.0.1", "::1", *names]
    alt_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in wanted if n and n not in ("0.0.0.0", "::")):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sansio-wss test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return Generated(cert_path, key_path, fingerprint(certificate.public_bytes(serialization.Encoding.DER)))
