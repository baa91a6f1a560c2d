"""Certificates as users hold them: a .pfx/.p12 with its password, PEM files, or a base64 .pfx.

Everything ends up as one ``Credential``: the RSA private key (as PEM inside a ``Secret``),
the certificate, and its SHA-1 thumbprint (the ``x5t`` of a client assertion).  Every way a
certificate can be unusable gets its own ``CredentialError`` message, naming the file and
what is wrong with it but never the password or the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from runner.errors import CredentialError
from runner.secret import Secret

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Credential:
    """A usable certificate: the signing key (masked), the certificate and its thumbprints."""

    private_key_pem: Secret
    certificate: x509.Certificate
    source: str  # where it came from, for messages ("cert.pfx", "$PFX_BASE64")

    @property
    def thumbprint_hex(self) -> str:
        """SHA-1 of the DER certificate, upper-case hex (as Windows and AOS show it)."""
        return hashlib.sha1(self._der(), usedforsecurity=False).hexdigest().upper()

    @property
    def x5t(self) -> str:
        """The same SHA-1 thumbprint, base64url without padding (RFC 7515 ``x5t``)."""
        digest = hashlib.sha1(self._der(), usedforsecurity=False).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def signing_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(_as_bytes(self.private_key_pem.reveal()), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def _der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def __repr__(self) -> str:
        return f"Credential(subject={self.subject!r}, x5t={self.x5t!r}, source={self.source!r})"


# ------------------------------------------------------------------------------ loaders


def load_certificate(
    path: str | Path | None = None,
    *,
    password: Secret | str | None = None,
    key_path: str | Path | None = None,
    pfx_base64: Secret | str | None = None,
    clock: Clock = _utcnow,
) -> Credential:
    """Load whichever form the user gave: a file (.pfx/.p12 or PEM) or a base64 .pfx value."""
    if pfx_base64 is not None and path is not None:
        raise CredentialError("certificate: give either a path or pfx_base64, not both")
    if pfx_base64 is not None:
        return load_pfx_base64(pfx_base64, password, clock=clock)
    if path is None:
        raise CredentialError("certificate: no certificate given (path or pfx_base64)")
    data = _read(path)
    if _looks_like_pem(data) or key_path is not None:
        return load_pem(path, key_path, password=password, clock=clock)
    return _from_pfx(data, password, str(path), clock)


def load_pfx(
    path: str | Path, password: Secret | str | None = None, *, clock: Clock = _utcnow
) -> Credential:
    return _from_pfx(_read(path), password, str(path), clock)


def load_pfx_base64(
    value: Secret | str,
    password: Secret | str | None = None,
    *,
    source: str = "pfx_base64",
    clock: Clock = _utcnow,
) -> Credential:
    """A .pfx carried base64-encoded in an environment variable, as CI systems keep secrets."""
    text = _as_bytes(value.reveal() if isinstance(value, Secret) else value)
    try:
        data = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError(
            f"{source}: the value is not base64 (expected a base64 .pfx)"
        ) from None
    if not data:
        raise CredentialError(f"{source}: the value is empty")
    return _from_pfx(data, password, source, clock)


def load_pem(
    cert_path: str | Path,
    key_path: str | Path | None = None,
    *,
    password: Secret | str | None = None,
    clock: Clock = _utcnow,
) -> Credential:
    """A PEM certificate plus its key, in one file or two (the key may be encrypted)."""
    cert_data = _read(cert_path)
    key_data = _read(key_path) if key_path is not None else cert_data
    key_source = str(key_path if key_path is not None else cert_path)
    try:
        certificate = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        raise CredentialError(f"{cert_path}: not a PEM certificate") from None
    if b"PRIVATE KEY-----" not in key_data:
        raise CredentialError(f"{key_source}: no private key found (give the key file too)")
    try:
        key = serialization.load_pem_private_key(key_data, _password_bytes(password))
    except TypeError:
        # cryptography says TypeError both for "encrypted but no password" and the reverse.
        if password:
            key = serialization.load_pem_private_key(key_data, None)
        else:
            raise CredentialError(
                f"{key_source}: the private key is encrypted; give its password"
            ) from None
    except ValueError:
        raise CredentialError(
            f"{key_source}: wrong password for the private key, or not a key"
        ) from None
    return _checked(key, certificate, str(cert_path), clock)


# ----------------------------------------------------------------------------- internals


def _from_pfx(data: bytes, password: Secret | str | None, source: str, clock: Clock) -> Credential:
    try:
        key, certificate, _chain = pkcs12.load_key_and_certificates(data, _password_bytes(password))
    except ValueError:
        # cryptography reports a wrong password and a non-PKCS#12 file the same way; the DER
        # header tells them apart.
        if not _looks_like_pfx(data):
            raise CredentialError(
                f"{source}: not a certificate (.pfx/.p12 or PEM expected)"
            ) from None
        if password:
            raise CredentialError(f"{source}: wrong certificate password") from None
        raise CredentialError(
            f"{source}: the .pfx is password-protected; give its password"
        ) from None
    if certificate is None:
        raise CredentialError(f"{source}: the .pfx holds no certificate")
    if key is None:
        raise CredentialError(f"{source}: the .pfx holds no private key")
    return _checked(key, certificate, source, clock)


def _checked(key: object, certificate: x509.Certificate, source: str, clock: Clock) -> Credential:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(f"{source}: the private key is not RSA (RS256 needs an RSA key)")
    if key.public_key().public_numbers() != _public_numbers(certificate):
        raise CredentialError(f"{source}: the private key does not match the certificate")
    now = clock()
    if certificate.not_valid_after_utc <= now:
        raise CredentialError(
            f"{source}: the certificate expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if certificate.not_valid_before_utc > now:
        raise CredentialError(
            f"{source}: the certificate is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Credential(Secret(pem), certificate, source)


def _public_numbers(certificate: x509.Certificate) -> object:
    public = certificate.public_key()
    return public.public_numbers() if isinstance(public, rsa.RSAPublicKey) else None


def _looks_like_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data[:4096]


def _looks_like_pfx(data: bytes) -> bool:
    """DER ``PFX ::= SEQUENCE { version INTEGER 3, ... }`` whose length matches the data."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return False
        length, offset = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    return offset + length == len(data) and data[offset : offset + 3] == b"\x02\x01\x03"


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CredentialError(f"{path}: certificate file not found") from None
    except IsADirectoryError:
        raise CredentialError(f"{path}: is a directory, not a certificate file") from None
    except OSError as exc:
        raise CredentialError(
            f"{path}: cannot read the certificate file ({exc.strerror})"
        ) from None


def _password_bytes(password: Secret | str | None) -> bytes | None:
    if password is None:
        return None
    value = password.reveal() if isinstance(password, Secret) else password
    return _as_bytes(value) or None


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value
