"""Certificates made on the spot for the client tests: good, expired, mismatched, protected."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key(index: int = 0) -> rsa.RSAPrivateKey:
    """A few cached 2048-bit keys: generating them is the slow part."""
    while len(_KEYS) <= index:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[index]


def certificate(
    key: rsa.RSAPrivateKey,
    *,
    days_valid: int = 365,
    start_days_ago: int = 1,
    name: str = "runner-test",
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=start_days_ago))
        .not_valid_after(now - dt.timedelta(days=start_days_ago) + dt.timedelta(days=days_valid))
        .sign(key, hashes.SHA256())
    )


def write_pfx(path: Path, key, cert, password: str | None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"test", key, cert, None, encryption))
    return path


def write_pem(cert_path: Path, key_path: Path | None, key, cert, password: str | None = None):
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    if key_path is None:
        cert_path.write_bytes(cert_pem + key_pem)
    else:
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
    return cert_path
