"""The client's own HTTP layer (runner/client/session.py) against real servers on 127.0.0.1:
TLS trusted from the environment's CA bundle, proxies from HTTP(S)_PROXY / NO_PROXY, kept
connections, and whether a failed request can have reached the service."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from client_support import FAST_RETRY, Sleeps, closed_port, make_client, wait_terminal

from runner import catalog
from runner.client.api import InsightsClient
from runner.client.connection import settings_for_simulator
from runner.client.retry import RetryPolicy
from runner.errors import UnreachableError
from runner.sim import Faults

ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "HTTP_PROXY",
               "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
               "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def tls_client(sim, **settings) -> InsightsClient:
    base = replace(settings_for_simulator(sim), **settings)
    return InsightsClient(base, retry=RetryPolicy(max_attempts=1), sleep=Sleeps())


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_https_is_verified_against_the_environments_ca_bundle(make_sim, monkeypatch, variable):
    sim = make_sim(tls=True)
    monkeypatch.setenv(variable, str(sim.ca_bundle))
    with tls_client(sim) as client:
        assert client.session.verify is True
        assert len(list(client.iter_records("user_summary", {"page_size": 5}))) > 0


def test_a_ca_bundle_that_is_not_there_is_a_tls_failure(make_sim, monkeypatch, tmp_path):
    sim = make_sim(tls=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with tls_client(sim) as client, pytest.raises(UnreachableError, match="TLS failed") as info:
        client.auth.token()
    assert "missing.pem" in str(info.value) and info.value.exit_code == 3


def test_an_untrusted_certificate_fails_unless_verification_is_off(make_sim):
    sim = make_sim(tls=True)  # self-signed, and no bundle names it
    with tls_client(sim) as client, pytest.raises(UnreachableError, match="TLS failed") as info:
        client.auth.token()
    assert info.value.exit_code == 3 and "certificate" in str(info.value)
    with tls_client(sim, verify_tls=False) as client:
        assert client.auth.token().lifetime > 0


def test_a_refused_connection_never_left_and_a_submit_is_tried_again(sim):
    client = make_client(sim, base_url=f"http://127.0.0.1:{closed_port()}/insights",
                         retry=RetryPolicy(max_attempts=3, base_delay=0.001))
    client.auth.token()  # the identity service is up; the API is not
    with pytest.raises(UnreachableError, match="cannot connect") as info:
        client.submit("link_export", {"link_type": "anyone"})
    assert info.value.request_sent is False
    assert len(client.transport.sleep) == 2  # nothing reached it: retrying cannot duplicate


def test_a_connection_dropped_after_sending_may_have_reached_the_service(make_sim):
    sim = make_sim()
    client = make_client(sim, retry=RetryPolicy(max_attempts=3, base_delay=0.001))
    client.auth.token()
    sim.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(UnreachableError) as info:
        client.submit("link_export", {"link_type": "anyone"})
    assert info.value.request_sent is True
    assert len(client.transport.sleep) == 0  # it may have made a job: never sent twice
    assert sim.log.count("link_export") == 1  # it did arrive: the service saw it


def test_connections_are_kept_across_calls_and_downloads(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="runner.client.session")
    with make_client(sim) as client:
        urls = [s["siteUrl"] for s in client.iter_records("site_overview", {"page_size": 5})][:2]
        job = client.submit("site_permission_export", {"site_urls": urls})
        assert wait_terminal(client, "site_permission_export", job) == catalog.STATUS_SUCCEEDED
        done = client.download("site_permission_export", job, tmp_path)
        list(client.iter_records("user_summary", {"page_size": 5}))
        assert done.bytes > 0
    opened = [r for r in caplog.records if r.getMessage().startswith("new connection")]
    assert len(opened) == 1, [r.getMessage() for r in opened]  # identity and API: one host


def test_an_idle_kept_connection_is_closed_by_the_simulator_quietly_and_opened_again(
        make_sim, monkeypatch, caplog):
    from runner.sim import keepalive

    monkeypatch.setattr(keepalive.KeepAliveHandler, "timeout", 0.3)  # 60 s as served
    sim = make_sim()
    caplog.set_level(logging.DEBUG)
    with make_client(sim) as client:
        first = list(client.iter_records("user_summary", {"page_size": 100}))
        time.sleep(1.0)  # the simulator closes the kept connection meanwhile
        again = list(client.iter_records("user_summary", {"page_size": 100}))
    assert first == again and first
    opened = [r for r in caplog.records if r.getMessage().startswith("new connection")]
    assert len(opened) == 2, [r.getMessage() for r in opened]  # the closed one not reused
    assert not [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]


# ------------------------------------------------------------------------ the proxy


class _Proxy(socketserver.ThreadingTCPServer):
    """A forwarding proxy: CONNECT tunnels, and absolute-URL requests passed on as they
    are (the simulator takes an absolute request target).  It records each connection's
    first request line and its Proxy-Authorization."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data:
                return
            head += data
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        auth = next((line.split(":", 1)[1].strip() for line in lines[1:]
                     if line.lower().startswith("proxy-authorization:")), None)
        self.server.seen.append((f"{method} {target}", auth))  # type: ignore[attr-defined]
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            head = head.split(b"\r\n\r\n", 1)[1]
        else:
            hostport = target.split("://", 1)[1].split("/", 1)[0]
            host, port = hostport.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
        if head:
            upstream.sendall(head)
        _pipe(client, upstream)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    back = threading.Thread(target=copy, args=(other, one), daemon=True)
    back.start()
    copy(one, other)
    back.join(timeout=10)
    other.close()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_goes_through_http_proxy_with_its_credentials(sim, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://someone:p%40ss@"))
    with make_client(sim, retry=FAST_RETRY) as client:
        assert list(client.iter_records("user_summary", {"page_size": 5}))
    lines = [line for line, _ in proxy.seen]
    assert lines and all(line.split(" ")[1].startswith(sim.root_url) for line in lines)
    assert {auth for _, auth in proxy.seen} == {"Basic c29tZW9uZTpwQHNz"}  # someone:p@ss


def test_no_proxy_goes_straight(sim, proxy, monkeypatch):
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
    with make_client(sim) as client:
        assert list(client.iter_records("user_summary", {"page_size": 5}))
    assert proxy.seen == []


def test_https_is_tunnelled_through_https_proxy(make_sim, proxy, monkeypatch):
    sim = make_sim(tls=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_bundle))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with tls_client(sim) as client:
        assert list(client.iter_records("user_summary", {"page_size": 5}))
    port = sim.root_url.rsplit(":", 1)[1]
    assert [line for line, _ in proxy.seen] == [f"CONNECT 127.0.0.1:{port}"]  # one, kept
