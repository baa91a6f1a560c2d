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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import crashpoint
from runner.errors import DownloadError

from .response import Response, StreamResponse
from .streamcheck import StreamCheck
from .transport import Transport, check_status

log = logging.getLogger("runner.client.download")

CHUNK_SIZE = 4 << 20  # bytes per read and write (1.19x the rate of 1 MiB; 2 and 8 slower)
MAX_RESUMES = 8
_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)$", re.IGNORECASE)
_STREAM_ERRORS = (OSError, http.client.HTTPException, zlib.error)  # a stream that broke


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
    into_folder = dest.is_dir()  # the server's hint names the file
    folder = dest if into_folder else dest.parent
    folder.mkdir(parents=True, exist_ok=True)
    temp = Path(partial) if partial is not None else folder / f".{uuid.uuid4().hex}.part"
    finished = False
    check = StreamCheck()
    try:
        hint, size, digest, resumes = _fetch_verified(
            transport, url, temp, params, operation, chunk_size, max_resumes, require_zip,
            check,
        )
        if into_folder:  # a name from the server: one safe base name, checked once more
            target = folder / (hint or safe_name(fallback_name) or "export.zip")
            _inside(target, folder)
        else:  # the caller's own path (the runner's is checked by outputs.resolve_output);
            target = dest  # os.replace puts the file there, never through a link there
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
    """``hasher`` (a ``StreamCheck``) takes every byte of the file, from byte 0.

    The body is read in ``chunk_size`` pieces into a ring of buffers, each written with one
    unbuffered write and handed to the check (which works on it in its own thread), and
    the disk is asked to write the file back as it grows (``_WriteBack``)."""
    written, resumes, hint, total = 0, 0, None, None
    spliced = False  # the file holds bytes from before this call's latest fresh start
    hasher.reset()
    ring = _Ring(chunk_size, hasher.AHEAD + 2)  # the reads land here: no chunk allocated
    # Unbuffered: each chunk goes to the file in one write, straight from its buffer.
    with open(temp, "a+b", buffering=0) as handle:
        handle.seek(0)  # (appends still go to the end)
        fetched = os.fstat(handle.fileno()).st_size
        ring.fit(fetched)
        while fetched and (count := handle.readinto(ring.free())):  # bytes an earlier
            hasher.update(ring.take(count))  # run fetched: hash them and go on from there
            written += count
        writeback = _WriteBack(handle.fileno(), written)
        if written:
            log.info("%s: going on from %d bytes fetched by an earlier run", operation, written)
        while True:
            if total is not None and written == total:
                break  # an earlier answer gave the size, and every byte is here
            spliced = spliced or written > 0
            # identity: the bytes as they are on the server, so a Range counts those bytes
            # and the body can be read straight into the buffers (``_body``)
            headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
            if written:
                headers["Range"] = f"bytes={written}-"
            response = transport.request(
                "GET",
                url,
                params=params,
                headers=headers,
                stream=True,
                operation=operation,
                check=_check_download,
            )
            assert isinstance(response, StreamResponse)  # stream=True
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
                handle.truncate(0)
                hasher.reset()
                written, spliced = 0, False
                writeback = _WriteBack(handle.fileno(), 0)
                resumes += 1
                if resumes > max_resumes:
                    raise DownloadError(f"{operation}: the server kept refusing the range",
                                        operation=operation)
                continue
            with response:
                start, total = _where(response, written, total, operation)
                if start == 0 and written:
                    log.info("%s: the server ignored the range; starting again", operation)
                    handle.truncate(0)
                    hasher.reset()
                    written, spliced = 0, False
                    writeback = _WriteBack(handle.fileno(), 0)
                if hint is None:
                    hint = content_disposition_name(response.headers.get("Content-Disposition"))
                try:
                    for chunk in _body(response, ring):
                        _write(handle, chunk)
                        hasher.update(chunk)
                        written += len(chunk)
                        writeback.wrote(written)
                        crashpoint.hit("download-chunk")
                except _StreamBroken as broken:
                    reason = broken.reason
                else:
                    if total is None or written == total:
                        if total is not None:
                            response.release()  # every byte read: the connection is kept
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
    return hint, written, hasher.hexdigest(), resumes, spliced


def _check_download(response: Response) -> None:
    """As ``check_status``, but a 416 comes back to ``_fetch``: it may mean "you have it all"."""
    if response.status_code != 416:
        check_status(response)


def _unsatisfied_length(response: StreamResponse) -> int | None:
    """The whole size a 416 names in ``Content-Range: bytes */N``."""
    match = _UNSATISFIED.match(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


class _StreamBroken(Exception):
    """The body stopped before its end (a drop, a reset, a time-out): go on with Range."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Ring:
    """``count`` buffers of ``size`` bytes, handed out in turn: a chunk ``take``n from one
    stays whole while the ``count - 1`` after it are taken (``StreamCheck`` may still be on
    it).  Only ``take`` moves the turn on: a read that brought nothing (the end, a drop)
    leaves its buffer to the next read, so the distance between two chunks in one buffer
    is always ``count`` hand-offs, however often a stream broke between them.

    A buffer is made when its turn first comes, no larger than ``fit`` allows: a small
    file (most exports) gets small buffers instead of ``count`` zeroed MiBs."""

    SMALLEST = 64 * 1024

    def __init__(self, size: int, count: int) -> None:
        self._most = self._size = size
        self._count = count
        self._buffers: list[memoryview] = []
        self._turn = 0  # the buffer the next read goes into

    def __len__(self) -> int:
        return self._size

    def fit(self, expected: int | None) -> None:
        """Buffers made from now on need hold no more than ``expected`` bytes."""
        if expected is not None:
            self._size = max(self.SMALLEST, min(self._most, expected))

    def free(self) -> memoryview:
        """The buffer the next read fills (the same one until a chunk is taken from it)."""
        if self._turn == len(self._buffers):
            self._buffers.append(memoryview(bytearray(self._size)))
        return self._buffers[self._turn]

    def take(self, count: int) -> memoryview:
        """The ``count`` bytes just read into ``free()``, as a chunk; the turn moves on."""
        chunk = self._buffers[self._turn][:count]
        self._turn = (self._turn + 1) % self._count
        return chunk


def _body(response: StreamResponse, ring: _Ring) -> Iterator[memoryview]:
    """The body as it arrives, each piece read into the ring's next buffer; the stream's
    errors become ``_StreamBroken``.

    An identity-encoded body is read with ``readinto`` straight from ``http.client``'s
    response: the socket fills the buffer, with no chunk allocated or copied on the way.
    A piece is whatever arrived before a drop, so no byte that came is lost.  A compressed
    body (a server that ignored our ``identity``) is decoded as it streams."""
    fp = response.raw
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        yield from _decoded(response, len(ring))
        return
    ring.fit(_content_length(response))
    while True:
        try:
            count = fp.readinto(ring.free())
        except (OSError, http.client.HTTPException) as exc:
            raise _StreamBroken(type(exc).__name__) from exc
        if not count:
            return
        yield ring.take(count)


def _content_length(response: StreamResponse) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _decoded(response: StreamResponse, size: int) -> Iterator[memoryview]:
    """The body decoded as its Content-Encoding says, in pieces of about ``size``."""
    pieces = response.decoded(size)
    while True:
        try:
            chunk = next(pieces, None)
        except _STREAM_ERRORS as exc:
            raise _StreamBroken(type(exc).__name__) from exc
        if chunk is None:
            return
        yield memoryview(chunk)


def _write(handle: Any, data: memoryview) -> None:
    """All of ``data`` to an unbuffered file."""
    while data:
        data = data[handle.write(data):]


class _WriteBack:
    """Starts the disk writing a file's bytes while the rest still streams, so the fsync at
    the end waits for the last window only, not the whole file (``POSIX_FADV_DONTNEED``
    writes a range's dirty pages back and drops the ones already written, which also
    keeps a large download from filling the page cache)."""

    WINDOW = 16 << 20

    def __init__(self, fd: int, written: int) -> None:
        self._fd = fd
        self._done = written - written % self.WINDOW  # bytes handed to the disk so far
        self._advise = getattr(os, "posix_fadvise", None)

    def wrote(self, written: int) -> None:
        if written - self._done < self.WINDOW or self._advise is None:
            return
        end = written - written % self.WINDOW
        start = max(0, self._done - self.WINDOW)  # the window before: written back by now
        try:
            self._advise(self._fd, start, end - start, os.POSIX_FADV_DONTNEED)
        except OSError:  # only advice: a file system that refuses it is written all the same
            self._advise = None
        self._done = end


def _where(response: StreamResponse, written: int, total: int | None, operation: str):
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
