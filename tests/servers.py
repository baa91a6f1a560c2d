"""Real servers for the tests, started by the tests: a throwaway PostgreSQL cluster,
Azurite (Azure Blob Storage) / moto (S3), and the simulator as its own process
(``SimProcess``: `insights-runner sim serve` with a request log), each on a free 127.0.0.1
port with its files in a temporary folder.  ``make test`` installs the binaries first
(.ci/ensure-postgres, .ci/ensure-azurite, moto from the test extra); a missing one is a
failure, never a skip."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AZURITE = REPO / ".ci" / "node" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (published by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    port: int
    socket_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on the cluster; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: run .ci/ensure-postgres "
                           "(make test does)")
    return Path(found[-1]).parent


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the package's ``postgres`` user."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    binaries = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="insights-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, sockets = root / "data", root / "sock"
    process = None
    try:
        subprocess.run(_as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8", "--no-sync", "-N"]),
                       check=True, capture_output=True, text=True)
        subprocess.run(_as_postgres(["mkdir", str(sockets)]), check=True)
        port = free_port()
        # fsync off: the tests' cluster is thrown away; durability is PostgreSQL's own job.
        process = subprocess.Popen(_as_postgres([
            str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
            "-c", "full_page_writes=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(port, process, "postgres")
        server = Postgres(port, sockets)
        _wait_ready(server)
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: Postgres, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --------------------------------------------------------------------- object storage


@dataclass
class Bucket:
    """A container/bucket on a running emulator: the URL prefix and the env to reach it."""

    url: str  # az://container/prefix or s3://bucket/prefix
    env: dict[str, str]

    def fs(self):
        """An fsspec filesystem on the emulator, for the test to look with."""
        if self.url.startswith("az://"):
            from adlfs import AzureBlobFileSystem

            return AzureBlobFileSystem(
                connection_string=self.env["AZURE_STORAGE_CONNECTION_STRING"])
        from s3fs import S3FileSystem

        return S3FileSystem(key=self.env["AWS_ACCESS_KEY_ID"],
                            secret=self.env["AWS_SECRET_ACCESS_KEY"],
                            client_kwargs={"endpoint_url": self.env["AWS_ENDPOINT_URL"],
                                           "region_name": "us-east-1"})


@contextlib.contextmanager
def azurite_server() -> Iterator[dict[str, str]]:
    if not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run .ci/ensure-azurite (make test does)")
    root = Path(tempfile.mkdtemp(prefix="insights-azurite-"))
    port = free_port()
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
         str(root), "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, process, "azurite")
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                      f"AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
        yield {"AZURE_STORAGE_CONNECTION_STRING": connection}
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.stop()


def new_bucket(kind: str, env: dict[str, str]) -> Bucket:
    """A fresh, empty container (az) or bucket (s3) on the emulator ``env`` reaches."""
    name = f"t{uuid.uuid4().hex[:12]}"
    if kind == "az":
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(
            env["AZURE_STORAGE_CONNECTION_STRING"]).create_container(name)
    else:
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=name)
    return Bucket(f"{kind}://{name}/reports", dict(env))


# ------------------------------------------------------------------ the simulator, alone


class SimProcess:
    """`insights-runner sim serve` in its own process (one tenant), its log in a file."""

    def __init__(self, folder: Path, seed: int, job_seconds: str) -> None:
        folder.mkdir(parents=True)
        self.log_path = folder / "requests.jsonl"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner", "sim", "serve", "--port", "0", "--seed", str(seed),
             "--job-seconds", job_seconds, "--out", str(folder / "certs"),
             "--log", str(self.log_path)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        found: dict[str, str] = {}
        assert self.process.stdout is not None
        for line in self.process.stdout:  # what it prints for a playbook to connect
            key, _, value = line.strip().partition(":")
            found[key] = value.strip()
            if line.startswith("Press Ctrl-C"):
                break
        self.base_url, self.identity_url = found["Web API URL"], found["Identity URL"]
        self.client_id, self.pfx = found["Client ID"], found["Certificate"]
        self.password = found[".pfx password"]

    def connection(self, password_var: str) -> dict[str, Any]:
        """An inventory tenant's connection to it, the password from ``password_var``."""
        return {"base_url": self.base_url, "identity_url": self.identity_url,
                "client_id": self.client_id,
                "certificate": {"path": self.pfx,
                                "password": "{{ env('" + password_var + "') }}"}}

    def entries(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def submits(self) -> list[dict[str, Any]]:
        """Export submissions it accepted."""
        from runner import catalog

        exports = {op.name for op in catalog.modules() if op.is_export}
        return [e for e in self.entries() if e["kind"] == "request"
                and e["operation"] in exports and e["method"] == "POST" and e["status"] == 200]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def most_at_once(entries: list[dict[str, Any]]) -> int:
    """The most export jobs in progress at one moment, from a log's job starts and ends
    (an end at the same instant as a start frees its slot first)."""
    events = sorted((e["time"], 0 if e["event"] == "end" else 1) for e in entries
                    if e["kind"] == "job")
    running = peak = 0
    for _, start in events:
        running += 1 if start else -1
        peak = max(peak, running)
    return peak
