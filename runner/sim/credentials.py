"""The simulator's app registration certificate: key, self-signed certificate, .pfx and PEM files.

A user of ``sim serve`` gets a fresh key each time; embedded simulators (tests, benchmarks,
``simulator: true``) share one key per process, because RSA key generation is the slow part
of starting a simulator and tests start many.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

_CACHE_LOCK = threading.Lock()
_CACHED: dict[str, tuple[rsa.RSAPrivateKey, x509.Certificate]] = {}


@dataclass(frozen=True)
class Credentials:
    """Where the registered certificate was written, and what a playbook needs to use it."""

    pfx_path: Path
    pfx_password: str = field(repr=False)
    cert_pem_path: Path
    key_pem_path: Path
    thumbprint: str  # SHA-1 of the DER certificate, upper-case hex
    certificate: x509.Certificate = field(repr=False)


def keypair(fresh: bool, purpose: str = "app") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A key and its self-signed certificate; cached per process unless ``fresh``.

    ``purpose`` is ``app`` (the registered client certificate) or ``tls`` (the server's
    HTTPS certificate for 127.0.0.1, ::1 and localhost, which is its own CA).
    """
    if fresh:
        return _generate(purpose)
    with _CACHE_LOCK:
        if purpose not in _CACHED:
            _CACHED[purpose] = _generate(purpose)
        return _CACHED[purpose]


def _generate(purpose: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    common = "localhost" if purpose == "tls" else "insights-runner simulator"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    if purpose == "tls":
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    return key, builder.sign(key, hashes.SHA256())


def write_tls(directory: Path, fresh: bool) -> tuple[Path, Path]:
    """``server.crt`` (also the CA bundle a client trusts) and ``server.key``."""
    key, cert = keypair(fresh, "tls")
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def thumbprint(cert: x509.Certificate) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def write(directory: Path | None,
          fresh: bool) -> tuple[Credentials, tempfile.TemporaryDirectory | None]:
    """Write ``simulator.pfx`` (password-protected), ``simulator.crt`` and ``simulator.key``.

    Returns the credentials and, when no directory was given, the temporary directory that
    holds them (the caller removes it when the simulator stops).
    """
    holder = None
    if directory is None:
        holder = tempfile.TemporaryDirectory(prefix="insights-sim-")
        directory = Path(holder.name)
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = keypair(fresh)
    password = secrets.token_urlsafe(12)
    pfx = pkcs12.serialize_key_and_certificates(
        b"insights-runner simulator", key, cert, None,
        serialization.BestAvailableEncryption(password.encode()),
    )
    paths = directory / "simulator.pfx", directory / "simulator.crt", directory / "simulator.key"
    _write_private(paths[0], pfx)
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths[2], key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    creds = Credentials(paths[0], password, paths[1], paths[2], thumbprint(cert), cert)
    return creds, holder


def _write_private(path: Path, data: bytes) -> None:
    # Key material: readable by its owner only, even for a moment.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
