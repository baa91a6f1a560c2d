"""What the environment says about connections, read as ``requests`` (trust_env) read it.

* the CA bundle: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else ``SSL_CERT_FILE``
  (a file, or a folder of hashed certificates), else certifi's bundle when installed (what
  requests trusted), else the system's store;
* the proxy for a URL: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (lower case wins),
  unless ``NO_PROXY`` names the host (a suffix, ``*``, or an address range for an IP).

Each is asked once per host by the pool, never per request.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def tls_context(verify: bool) -> ssl.SSLContext:
    """The context every HTTPS connection of a client uses."""
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    bundle = ca_bundle()
    if bundle is None:
        return ssl.create_default_context()
    if bundle.is_dir():
        return ssl.create_default_context(capath=str(bundle))
    return ssl.create_default_context(cafile=str(bundle))


def ca_bundle() -> Path | None:
    for name in CA_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return Path(value).expanduser()
    spec = importlib.util.find_spec("certifi")  # its file, without importing it (8 ms)
    if spec is not None and spec.origin:
        pem = Path(spec.origin).with_name("cacert.pem")
        if pem.is_file():
            return pem
    return None


def proxy_for(url: str) -> str | None:
    """The proxy URL to reach ``url`` through, or ``None`` to go straight."""
    parts = urlsplit(url)
    if bypass(parts.hostname or "", parts.port):
        return None
    for name in (parts.scheme, "all"):
        value = _variable(f"{name}_proxy")
        if value:
            return value if "://" in value else f"http://{value}"
    return None


def bypass(host: str, port: int | None) -> bool:
    entries = [e.strip() for e in _variable("no_proxy").replace(" ", ",").split(",")]
    host = host.lower().strip("[]")
    for entry in filter(None, (e.lower() for e in entries)):
        if entry == "*":
            return True
        if "/" in entry:  # an address range: for an IP host only
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _variable(name: str) -> str:
    return (os.environ.get(name) or os.environ.get(name.upper()) or "").strip()
