"""Credentials in each form users hold them, and a clear error for each way they go wrong."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import jwt
import pytest
from client_certs import certificate, rsa_key, write_pem, write_pfx
from cryptography.hazmat.primitives import serialization

from runner.client.auth import client_assertion
from runner.client.credentials import load_certificate, load_pem, load_pfx, load_pfx_base64
from runner.errors import CredentialError

PASSWORD = "pa55-w0rd-never-printed"  # noqa: S105 - a test certificate's password


@pytest.fixture(scope="module")
def good():
    key = rsa_key(0)
    return key, certificate(key)


def _x5t(cert) -> str:
    der = cert.public_bytes(serialization.Encoding.DER)
    return (
        base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest())
        .rstrip(b"=")
        .decode()
    )


def test_pfx_with_password(tmp_path, good):
    key, cert = good
    cred = load_pfx(write_pfx(tmp_path / "app.pfx", key, cert, PASSWORD), PASSWORD)
    assert cred.x5t == _x5t(cert)
    assert (
        cred.thumbprint_hex
        == hashlib.sha1(cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False)
        .hexdigest()
        .upper()
    )
    assert PASSWORD not in repr(cred)
    assert "PRIVATE" not in repr(cred) and "PRIVATE" not in str(cred.private_key_pem)


def test_p12_detected_by_content_not_extension(tmp_path, good):
    key, cert = good
    path = write_pfx(tmp_path / "app.p12", key, cert, PASSWORD)
    assert load_certificate(path, password=PASSWORD).x5t == _x5t(cert)


def test_pem_in_one_file_and_in_two(tmp_path, good):
    key, cert = good
    both = write_pem(tmp_path / "both.pem", None, key, cert)
    assert load_certificate(both).x5t == _x5t(cert)
    crt = write_pem(tmp_path / "app.crt", tmp_path / "app.key", key, cert, password=PASSWORD)
    assert load_pem(crt, tmp_path / "app.key", password=PASSWORD).x5t == _x5t(cert)
    assert load_certificate(crt, key_path=tmp_path / "app.key", password=PASSWORD).x5t == _x5t(cert)


def test_base64_pfx_from_an_environment_value(tmp_path, good):
    key, cert = good
    data = write_pfx(tmp_path / "ci.pfx", key, cert, PASSWORD).read_bytes()
    wrapped = base64.encodebytes(data).decode()  # CI secrets are often line-wrapped
    assert load_pfx_base64(wrapped, PASSWORD).x5t == _x5t(cert)
    assert load_certificate(pfx_base64=wrapped, password=PASSWORD).x5t == _x5t(cert)


@pytest.mark.parametrize("wrong", ["not-the-password", None])
def test_wrong_or_missing_password(tmp_path, good, wrong):
    key, cert = good
    path = write_pfx(tmp_path / "app.pfx", key, cert, PASSWORD)
    with pytest.raises(CredentialError) as info:
        load_pfx(path, wrong)
    message = str(info.value)
    assert "password" in message and str(path) in message
    assert PASSWORD not in message and (wrong or PASSWORD) not in message.replace(str(path), "")


def test_wrong_password_for_an_encrypted_pem_key(tmp_path, good):
    key, cert = good
    crt = write_pem(tmp_path / "app.crt", tmp_path / "app.key", key, cert, password=PASSWORD)
    with pytest.raises(CredentialError, match="wrong password"):
        load_pem(crt, tmp_path / "app.key", password="nope")  # noqa: S106
    with pytest.raises(CredentialError, match="encrypted; give its password"):
        load_pem(crt, tmp_path / "app.key")


@pytest.mark.parametrize("content", [b"hello, I am a text file\n", b"\x00" * 64, b"PK\x03\x04junk"])
def test_not_a_certificate(tmp_path, content):
    path = tmp_path / "notes.pfx"
    path.write_bytes(content)
    with pytest.raises(CredentialError, match="not a certificate"):
        load_certificate(path, password=PASSWORD)


def test_missing_file_and_bad_base64(tmp_path):
    with pytest.raises(CredentialError, match="not found"):
        load_certificate(tmp_path / "absent.pfx")
    with pytest.raises(CredentialError, match="not base64"):
        load_pfx_base64("%%% not base64 %%%")
    with pytest.raises(CredentialError, match="not a certificate"):
        load_pfx_base64(base64.b64encode(b"just some bytes").decode())


def test_expired_certificate(tmp_path):
    key = rsa_key(0)
    old = certificate(key, days_valid=30, start_days_ago=60)
    with pytest.raises(CredentialError, match="expired on"):
        load_pfx(write_pfx(tmp_path / "old.pfx", key, old, PASSWORD), PASSWORD)


def test_not_yet_valid_certificate(tmp_path):
    key = rsa_key(0)
    cert = certificate(key)
    path = write_pfx(tmp_path / "app.pfx", key, cert, PASSWORD)
    long_ago = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(CredentialError, match="not valid before"):
        load_pfx(path, PASSWORD, clock=lambda: long_ago)


def test_key_that_does_not_match_the_certificate(tmp_path):
    cert = certificate(rsa_key(0))
    crt = write_pem(tmp_path / "app.crt", tmp_path / "other.key", rsa_key(1), cert)
    with pytest.raises(CredentialError, match="does not match"):
        load_pem(crt, tmp_path / "other.key")


def test_pem_without_a_key(tmp_path, good):
    key, cert = good
    crt = tmp_path / "only.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CredentialError, match="no private key"):
        load_certificate(crt)


def test_client_assertion_claims_and_header(tmp_path, good):
    key, cert = good
    cred = load_pfx(write_pfx(tmp_path / "app.pfx", key, cert, PASSWORD), PASSWORD)
    audience = "https://identity.example/connect/token"
    first = client_assertion(cred, "client-1", audience, now=1_700_000_000)
    second = client_assertion(cred, "client-1", audience, now=1_700_000_000)
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "RS256" and header["x5t"] == _x5t(cert)
    assert header["kid"] == cred.thumbprint_hex
    claims = jwt.decode(
        first,
        key.public_key(),
        algorithms=["RS256"],
        audience=audience,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    other = jwt.decode(second, options={"verify_signature": False})
    assert other["jti"] != claims["jti"]
