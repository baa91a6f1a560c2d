"""Outputs in object storage: ``output_dir: az://container/prefix`` (Azure Blob Storage)
or ``s3://bucket/prefix``, through fsspec (adlfs, s3fs).

A Step's file is made and verified in a local staging folder exactly as for a local
``output_dir`` (``runner.execute.outputs``), then uploaded whole to
``<output_dir>/<output>``: Azure commits a block blob and S3 completes a multipart upload
only when every byte is there, so a blob is either whole or absent.  Its size is checked
after the upload (an S3 object also carries the sha256 as metadata), and its etag is
committed to the state with the sha256; a re-run reuses the Step only when the blob's
size and etag are still those (a blob replaced or deleted is made again).

Credentials come from the usual places and nowhere else: for Azure,
``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_NAME`` with
``AZURE_STORAGE_ACCOUNT_KEY`` / ``AZURE_STORAGE_SAS_TOKEN`` / the Azure identity chain
(managed identity, workload identity federation, ``az login``); for S3 the AWS chain
(environment, profile, instance or web identity role; ``AWS_ENDPOINT_URL`` for another
S3 service).  They are never logged (the SDKs' HTTP loggers are held at WARNING) and never
reach the state, which records URLs, sizes, hashes and etags only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunnerError, UserError

SCHEMES = ("az", "s3")
_URL = re.compile(r"^(az|s3)://([^/]+)(?:/(.*))?$")
_PACKAGE = {"az": ("adlfs", "azure"), "s3": ("s3fs", "s3")}
# Loggers that would print request headers (signatures, SAS tokens) at DEBUG.
_LOG = logging.getLogger(__name__)
_QUIET = ("azure", "azure.core.pipeline.policies.http_logging_policy", "botocore",
          "aiobotocore", "s3fs", "adlfs", "fsspec", "urllib3.connectionpool")


def is_remote(output_dir: object) -> bool:
    return isinstance(output_dir, str) and output_dir.startswith(tuple(f"{s}://" for s in
                                                                       SCHEMES))


def split(url: str) -> tuple[str, str, str]:
    """``(scheme, container or bucket, prefix)`` of an ``az://`` or ``s3://`` URL."""
    match = _URL.match(url)
    if match is None:
        raise UserError(f"output_dir {url!r}: give az://CONTAINER/PREFIX or s3://BUCKET/PREFIX")
    scheme, bucket, prefix = match.group(1), match.group(2), (match.group(3) or "").strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise UserError(f"output_dir {url!r}: the prefix may not hold empty, '.' or '..' parts")
    return scheme, bucket, prefix


def normalise(url: str) -> str:
    scheme, bucket, prefix = split(url)
    return f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else "")


def filesystem(url: str) -> Any:
    """An fsspec filesystem for ``url``'s service, with credentials from the environment."""
    scheme, _, _ = split(url)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    module, extra = _PACKAGE[scheme]
    try:
        if scheme == "az":
            from adlfs import AzureBlobFileSystem

            return AzureBlobFileSystem()
        from s3fs import S3FileSystem

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return S3FileSystem(client_kwargs={"endpoint_url": endpoint} if endpoint else {})
    except ImportError:
        raise UserError(f"output_dir {url!r} needs {module}: pip install "
                        f"'insights-runner[{extra}]'") from None
    except ValueError as exc:  # adlfs: no account or connection string
        raise UserError(f"output_dir {url!r}: no credentials for the storage account "
                        f"({exc}); set AZURE_STORAGE_CONNECTION_STRING or "
                        "AZURE_STORAGE_ACCOUNT_NAME") from None


class UploadError(RunnerError):
    """Object storage failed or answered wrongly: tried again while the task's retries last."""

    transient = True


@dataclass(frozen=True)
class Blob:
    size: int
    etag: str | None


class RemoteOutputs:
    """The object-storage side of an output folder: uploads and re-run checks."""

    def __init__(self, url: str, staging: Path, fs: Any = None) -> None:
        self.url = normalise(url)
        self.scheme, self.bucket, self.prefix = split(self.url)
        self.staging = Path(staging)
        self._fs = fs

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = filesystem(self.url)
        return self._fs

    def check(self) -> None:
        """Before anything is submitted: credentials found and the container there."""
        fs = self.fs
        try:
            there = fs.exists(self.bucket)
        except Exception as exc:  # noqa: BLE001 - the SDKs raise their own types
            raise UserError(f"output_dir {self.url}: cannot reach the "
                            f"{'container' if self.scheme == 'az' else 'bucket'} "
                            f"{self.bucket}: {_first_line(exc)}") from None
        if not there:
            raise UserError(f"output_dir {self.url}: the "
                            f"{'container' if self.scheme == 'az' else 'bucket'} "
                            f"{self.bucket} does not exist, or these credentials cannot "
                            "see it")

    def key(self, relative: str) -> str:
        """``bucket/prefix/relative`` (``relative`` is already checked safe and POSIX)."""
        parts = [self.bucket, *([self.prefix] if self.prefix else []), relative.strip("/")]
        return "/".join(parts)

    def blob(self, relative: str) -> Blob | None:
        """The blob's size and etag, or None when there is none."""
        key = self.key(relative)
        try:
            self.fs.invalidate_cache(key)
            info = self.fs.info(key)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - the SDKs raise their own types
            raise _error(self.url, "read", relative, exc) from None
        if info.get("type") == "directory":
            return None
        return Blob(int(info.get("size") or 0), _etag(info))

    def matches(self, relative: str, size: int | None, etag: str | None) -> bool:
        """The re-run check: the blob is there with the size and etag committed."""
        if size is None or etag is None:
            return False
        found = self.blob(relative)
        return found is not None and found.size == size and found.etag == etag

    def upload(self, local: Path, relative: str, sha256: str | None = None) -> str:
        """Upload ``local`` whole to ``relative``; its etag once the size is checked."""
        size = self._put(Path(local), relative, sha256)
        found = self.blob(relative)
        if found is None or found.size != size or found.etag is None:
            raise UploadError(f"{self.url}/{relative}: the uploaded blob is "
                              f"{'missing' if found is None else f'{found.size} bytes'}, "
                              f"not the {size} bytes sent")
        return found.etag

    def upload_shared(self, local: Path, relative: str) -> None:
        """Upload a blob every runner of the plan writes (the combined run report: the
        last one wins).  Another runner's whole upload may land between this PUT and the
        check, so a blob of another size there is theirs, not a short one of ours (both
        services commit a blob whole or not at all); only a missing blob is an error."""
        size = self._put(Path(local), relative, None)
        found = self.blob(relative)
        if found is None:
            raise UploadError(f"{self.url}/{relative}: the uploaded blob is missing")
        if found.size != size:
            _LOG.debug("%s/%s: replaced by another runner's upload since ours (%d bytes, "
                       "not %d)", self.url, relative, found.size, size)

    def _put(self, local: Path, relative: str, sha256: str | None) -> int:
        """PUT ``local`` to ``relative``; the size sent."""
        size = local.stat().st_size
        sha256 = sha256 or _sha256(local)
        # S3 keeps the sha256 as user metadata (adlfs sets a blob's metadata itself).
        extra: dict[str, Any] = {} if self.scheme == "az" else {"Metadata": {"sha256": sha256}}
        try:
            self.fs.put_file(str(local), self.key(relative), **extra)
        except Exception as exc:  # noqa: BLE001 - the SDKs raise their own types
            raise _error(self.url, "upload", relative, exc) from None
        return size

    def upload_files(self, paths: list[Path]) -> None:
        """Upload files made inside the staging folder (extracted, converted, reports)."""
        for path in paths:
            relative = Path(path).resolve().relative_to(self.staging.resolve()).as_posix()
            self.upload(Path(path), relative)


def publish_reports(remote: RemoteOutputs, report: Path) -> None:
    """Upload ``run-report.json`` and the ``run-report.html`` written beside it, each whole,
    next to the files they describe."""
    from runner.layout import REPORT_NAME
    from runner.report import html_path

    remote.upload_shared(report, REPORT_NAME)
    page = html_path(report)
    if page.exists():
        remote.upload_shared(page, html_path(Path(REPORT_NAME)).name)


def _etag(info: dict[str, Any]) -> str | None:
    value = info.get("etag") or info.get("ETag") or info.get("Etag")
    return None if value is None else str(value).strip('"')


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    # The SDKs' messages name the resource and the status, never the credential.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _error(url: str, what: str, relative: str, exc: BaseException) -> RunnerError:
    if isinstance(exc, RunnerError):
        return exc
    return UploadError(f"{url}/{relative}: {what} failed: {_first_line(exc)}")


# --------------------------------------------------------------- the staging folder


def staging_root(playbook: str | os.PathLike[str]) -> Path:
    """Where remote outputs are made before upload: ``.insights-runner/outputs/`` beside
    the playbook, mirroring ``scheme/bucket/prefix`` (a per-machine cache)."""
    from runner.execute.state.base import default_state_dir

    return default_state_dir(playbook) / "outputs"


def local_output_dir(plan: Any) -> Path:
    """The folder a plan's files are made in: its output_dir, or its staging folder."""
    if not is_remote(plan.output_dir):
        return Path(plan.output_dir)
    scheme, bucket, prefix = split(plan.output_dir)
    return staging_root(plan.playbook).joinpath(scheme, bucket, *prefix.split("/") if prefix
                                                else ())


def remote_for(plan: Any) -> RemoteOutputs | None:
    if not is_remote(plan.output_dir):
        return None
    return RemoteOutputs(plan.output_dir, local_output_dir(plan))


def url_for_staging(playbook: str | os.PathLike[str], folder: Path) -> str | None:
    """The object-storage URL a staging folder stands for (None: not a staging folder)."""
    try:
        parts = Path(folder).relative_to(staging_root(playbook)).parts
    except ValueError:
        return None
    if len(parts) < 2 or parts[0] not in SCHEMES:
        return None
    return f"{parts[0]}://" + "/".join(parts[1:])
