"""Export files to disk: streamed in chunks, resumed with Range, verified, renamed into place.

A download is written to a hidden temporary file beside its destination, resumed from the
bytes already written when the connection drops (``Range: bytes=N-``; a 206 must say it
starts at N, a 200 means the server ignored the range and we start again), checked to be a
whole .zip (its sha256 and CRCs computed while it streams, ``streamcheck``), and only then
renamed onto its final name, so a reader never sees half a file.

The server's ``Content-Disposition`` file name is a hint: reduced to one safe base name
(never a path) and used only when the caller gave a folder rather than a file name.
"""

from __future__ import annotations

import email.message
import email.utils
import http.client
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from runner import crashpoint
from runner.errors import DownloadError

from .streamcheck import StreamCheck
from .transport import Transport, check_status

log = logging.getLogger("runner.client.download")

CHUNK_SIZE = 256 * 1024
MAX_RESUMES = 8
_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)$", re.IGNORECASE)
_STREAM_ERRORS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    bytes: int
    sha256: str
    suggested_name: str | None  # the sanitized Content-Disposition name, if any
    resumes: int  # how many times the transfer went on after a dropped connection


def download(
    transport: Transport,
    url: str,
    dest: str | Path,
    *,
    params: dict[str, Any] | None = None,
    operation: str = "download",
    fallback_name: str = "export.zip",
    chunk_size: int = CHUNK_SIZE,
    max_resumes: int = MAX_RESUMES,
    require_zip: bool = True,
    partial: str | Path | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``dest``: a file path, or an existing folder (the hint names the file).

    ``partial`` names the temporary file.  The caller makes it unique to one job's file,
    so when a run dies mid-download the next run goes on from the bytes already there
    (with Range) instead of starting again; without it a random name is used and removed.
    """
    dest = Path(dest)
    folder = dest if dest.is_dir() else dest.parent
    folder.mkdir(parents=True, exist_ok=True)
    temp = Path(partial) if partial is not None else folder / f".{uuid.uuid4().hex}.part"
    finished = False
    check = StreamCheck()
    try:
        hint, size, digest, resumes = _fetch_verified(
            transport, url, temp, params, operation, chunk_size, max_resumes, require_zip,
            check,
        )
        target = (
            dest
            if not dest.is_dir()
            else folder / (hint or safe_name(fallback_name) or "export.zip")
        )
        _inside(target, folder)
        _fsync(temp)
        crashpoint.hit("download-fsynced")
        os.replace(temp, target)
        _fsync_dir(folder)
        crashpoint.hit("download-renamed")
        finished = True
    finally:
        check.close()
        if partial is None and not finished:
            temp.unlink(missing_ok=True)
    log.info("%s: %d bytes written to %s (%d resumes)", operation, size, target, resumes)
    return Downloaded(target, size, digest, hint, resumes)


def _fetch_verified(transport, url, temp, params, operation, chunk_size, max_resumes,
                    require_zip, check):
    """Fetch into ``temp`` and check it is a whole .zip.  A file that fails the check after
    going on from bytes already there (an earlier run's, or a resumed transfer) is thrown
    away and fetched once more from its first byte; a fresh whole fetch that fails is an
    error (the Step's retries decide what next), so a bad file is never fetched forever."""
    for attempt in range(2):
        hint, size, digest, resumes, spliced = _fetch(
            transport, url, temp, params, operation, chunk_size, max_resumes, check
        )
        try:
            if require_zip:
                check.verify_zip(temp, operation)
        except DownloadError:
            temp.unlink(missing_ok=True)  # never resume from a corrupt file
            if attempt or not spliced:
                raise
            log.warning(
                "%s: the file put together from bytes fetched earlier fails verification; "
                "fetching it again from the start",
                operation,
            )
            continue
        return hint, size, digest, resumes
    raise AssertionError("unreachable")  # pragma: no cover


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fetch(transport, url, temp, params, operation, chunk_size, max_resumes, hasher):
    """``hasher`` (a ``StreamCheck``) takes every byte of the file, from byte 0."""
    written, resumes, hint, total = 0, 0, None, None
    spliced = False  # the file holds bytes from before this call's latest fresh start
    hasher.reset()
    with open(temp, "a+b") as handle:
        handle.seek(0)  # bytes an earlier run already fetched: hash them and go on from there
        while block := handle.read(chunk_size):
            hasher.update(block)
            written += len(block)
        if written:
            log.info("%s: going on from %d bytes fetched by an earlier run", operation, written)
        while True:
            if total is not None and written == total:
                break  # an earlier answer gave the size, and every byte is here
            spliced = spliced or written > 0
            headers = (
                {"Range": f"bytes={written}-", "Accept": "*/*"} if written else {"Accept": "*/*"}
            )
            response = transport.request(
                "GET",
                url,
                params=params,
                headers=headers,
                stream=True,
                operation=operation,
                check=_check_download,
            )
            if response.status_code == 416:
                with response:
                    whole = _unsatisfied_length(response)
                if whole is not None and written == whole:
                    # An earlier run had every byte and died before the rename: finish it.
                    log.info("%s: the %d bytes already here are the whole file", operation,
                             written)
                    total = whole
                    break
                if not written:
                    check_status(response)
                # The range is past the end: what we have is not a prefix of this file.
                log.info("%s: the %d bytes already here do not fit the file (%s bytes); "
                         "starting again", operation, written, whole)
                handle.seek(0)
                handle.truncate()
                hasher.reset()
                written, spliced = 0, False
                resumes += 1
                if resumes > max_resumes:
                    raise DownloadError(f"{operation}: the server kept refusing the range",
                                        operation=operation)
                continue
            with response:
                start, total = _where(response, written, total, operation)
                if start == 0 and written:
                    log.info("%s: the server ignored the range; starting again", operation)
                    handle.seek(0)
                    handle.truncate()
                    hasher.reset()
                    written, spliced = 0, False
                if hint is None:
                    hint = content_disposition_name(response.headers.get("Content-Disposition"))
                try:
                    for chunk in _chunks(response, chunk_size):
                        handle.write(chunk)
                        hasher.update(chunk)
                        written += len(chunk)
                        crashpoint.hit("download-chunk")
                except _STREAM_ERRORS as exc:
                    reason = type(exc).__name__
                else:
                    if total is None or written == total:
                        handle.flush()
                        crashpoint.hit("download-last-byte")
                        break
                    if written > total:
                        raise DownloadError(
                            f"{operation}: got {written} bytes, more than the {total} announced",
                            operation=operation,
                        )
                    reason = f"short body ({written} of {total} bytes)"
            resumes += 1
            if resumes > max_resumes:
                raise DownloadError(
                    f"{operation}: the connection kept dropping ({resumes - 1} resumes, "
                    f"{written} bytes so far)",
                    operation=operation,
                )
            log.info(
                "%s: transfer interrupted (%s) at %d bytes; resuming", operation, reason, written
            )
            handle.flush()
    return hint, written, hasher.hexdigest(), resumes, spliced


def _check_download(response: requests.Response) -> None:
    """As ``check_status``, but a 416 comes back to ``_fetch``: it may mean "you have it all"."""
    if response.status_code != 416:
        check_status(response)


def _unsatisfied_length(response: requests.Response) -> int | None:
    """The whole size a 416 names in ``Content-Range: bytes */N``."""
    match = _UNSATISFIED.match(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _chunks(response: requests.Response, size: int) -> Iterator[bytes]:
    """The body as it arrives: ``read1`` hands over every byte received before a drop, where
    ``iter_content`` would lose a partly filled chunk (urllib3 1.x falls back to it)."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # pragma: no cover - urllib3 < 2
        yield from response.iter_content(size)
        return
    while chunk := read1(size, decode_content=True):
        yield chunk


def _where(response: requests.Response, written: int, total: int | None, operation: str):
    """Where this answer's body starts in the file, and the file's whole size if known."""
    length = response.headers.get("Content-Length")
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match:
            raise DownloadError(
                f"{operation}: a 206 answer without a usable Content-Range", operation=operation
            )
        start = int(match.group(1))
        if start != written:
            raise DownloadError(
                f"{operation}: asked for bytes from {written}, the server sent from {start}",
                operation=operation,
            )
        whole = match.group(3)
        return start, int(whole) if whole != "*" else total
    if response.status_code != 200:
        raise DownloadError(
            f"{operation}: unexpected status {response.status_code}", operation=operation
        )
    return 0, int(length) if length and length.isdigit() else None


def content_disposition_name(value: str | None) -> str | None:
    """The file name a Content-Disposition suggests (filename* preferred), made safe."""
    if not value:
        return None
    message = email.message.Message()
    message["Content-Disposition"] = value
    try:
        params = message.get_params(header="content-disposition") or []
    except (ValueError, LookupError):
        return None
    plain, encoded = None, None
    for key, param in params:
        if key.lower() != "filename":
            continue
        if isinstance(param, tuple):  # RFC 5987 filename*=UTF-8''...: wins over the ASCII one
            encoded = email.utils.collapse_rfc2231_value(param)
        else:
            plain = email.utils.unquote(param)
    name = encoded or plain
    return safe_name(name) if name else None


def safe_name(name: str) -> str | None:
    """One safe base name from whatever a server suggested: no folders, no tricks."""
    name = name.replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name or name in {".", ".."}:
        return None
    stem, dot, suffix = name.rpartition(".")
    if len(name) > 150:
        name = (stem[:140] + dot + suffix[:9]) if dot else name[:150]
    return name


def _inside(target: Path, folder: Path) -> None:
    if target.resolve().parent != folder.resolve():
        raise DownloadError(f"refusing to write outside {folder}: {target}")
