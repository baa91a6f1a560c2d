"""Checking a download while it streams: its sha256 and its .zip members' CRC-32s.

``StreamCheck`` takes each chunk as it is written to disk (``update``): it hashes it
(sha256) and walks the .zip's local headers, checking each member's CRC-32 (and size) as
its bytes go by, so the file is never read back.  Memory is one header at most.

It runs on a thread of its own, on the 4 MiB chunks the download reads straight into a
ring of buffers (no copy): sha256 and CRC-32 let go of the GIL on a chunk that size, so
they run beside the next read and write with one hand-off per chunk.  (On 16 KiB pieces,
or with a copy into 1 MiB chunks, a thread cost more than it saved: see BENCHMARKS.md.)
The CRC-32 is zlib-ng's, several times zlib's on a CPU with carry-less multiply.

When the last byte is in, ``verify_zip`` reads only the central directory and checks that
every member it lists was seen, at its offset, whole and with the CRC both headers give.
What the walker cannot follow (a member whose size is only in a trailing data descriptor,
encryption, a compression other than stored or deflate) is checked the old way instead:
the file is read back and every member tested.  Either way a corrupt .zip is refused.
"""

from __future__ import annotations

import hashlib
import queue
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from runner.errors import DownloadError

try:  # zlib-ng's CRC-32 (folding with PCLMULQDQ/VPCLMULQDQ) is several times zlib's
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - a platform without its wheel
    from zlib import crc32

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header, without name and extra
_LOCAL_SIG = 0x04034B50
_ZIP64_EXTRA = 0x0001
_INFLATE_CAP = 4 << 20  # most bytes one inflate step may produce (memory stays flat)


@dataclass(frozen=True)
class Member:
    offset: int  # of its local header in the file
    name: bytes
    crc: int  # the CRC-32 its local header announces
    size: int  # uncompressed
    compressed: int
    actual_crc: int  # the CRC-32 of the bytes that came


class ZipWalker:
    """Follows a .zip's local headers through a stream of chunks (one thread's work)."""

    def __init__(self) -> None:
        self.members: list[Member] = []
        self.unfollowable: str | None = None  # why the walk stopped short, if it did
        self.done = False  # past the last member (the central directory began)
        self._pos = 0  # offset in the file of the next byte to look at
        self._buffer = bytearray()  # a local header being gathered
        self._header_at = 0  # its offset
        self._left = 0  # compressed bytes of the current member still to come
        self._member: tuple[int, bytes, int, int, int] | None = None
        self._crc = 0
        self._size = 0
        self._inflate: zlib._Decompress | None = None
        self._broken = False  # the current member's deflate stream is not valid

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view and not (self.done or self.unfollowable):
            view = self._header(view) if self._member is None else self._data(view)

    def _take(self, view: memoryview, count: int) -> memoryview:
        """Move up to ``count`` bytes of ``view`` into the header buffer; the rest."""
        if not self._buffer:
            self._header_at = self._pos
        part = view[:max(0, count)]
        self._buffer += part
        self._pos += len(part)
        return view[len(part):]

    def _header(self, view: memoryview) -> memoryview:
        view = self._take(view, 4 - len(self._buffer))
        if len(self._buffer) < 4:
            return view
        if int.from_bytes(self._buffer[:4], "little") != _LOCAL_SIG:
            self.done = True  # the central directory (or the end) follows the members
            return view[:0]
        view = self._take(view, _LOCAL.size - len(self._buffer))
        if len(self._buffer) < _LOCAL.size:
            return view
        fields = _LOCAL.unpack_from(self._buffer)
        need = _LOCAL.size + fields[9] + fields[10]
        view = self._take(view, need - len(self._buffer))
        if len(self._buffer) == need:
            self._start_member(bytes(self._buffer))
            self._buffer.clear()
        return view

    def _start_member(self, header: bytes) -> None:
        (_, _, flags, method, _, _, crc, compressed, size, name_len, extra_len) = \
            _LOCAL.unpack_from(header)
        name = header[_LOCAL.size:_LOCAL.size + name_len]
        if 0xFFFFFFFF in (compressed, size):
            size, compressed = _zip64_sizes(header[_LOCAL.size + name_len:], size, compressed)
        if flags & 0x1:
            self.unfollowable = f"{name!r} is encrypted"
        elif flags & 0x8:
            self.unfollowable = f"{name!r} gives its sizes after its data"
        elif method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self.unfollowable = f"{name!r} uses compression method {method}"
        if self.unfollowable:
            return
        self._member = (self._header_at, name, crc, size, compressed)
        self._left, self._crc, self._size, self._broken = compressed, 0, 0, False
        self._inflate = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        if compressed == 0:
            self._end_member()

    def _data(self, view: memoryview) -> memoryview:
        part, view = view[:self._left], view[self._left:]
        self._left -= len(part)
        self._pos += len(part)
        if self._inflate is None:
            self._crc = crc32(part, self._crc)
            self._size += len(part)
        elif not self._broken:
            try:
                self._inflate_part(part)
            except zlib.error:
                self._broken = True  # not deflate data: the member is corrupt
        if self._left == 0:
            self._end_member()
        return view

    def _inflate_part(self, part: memoryview) -> None:
        assert self._inflate is not None
        out = self._inflate.decompress(part, _INFLATE_CAP)
        while True:
            self._crc = crc32(out, self._crc)
            self._size += len(out)
            tail = self._inflate.unconsumed_tail
            if not tail:
                break
            out = self._inflate.decompress(tail, _INFLATE_CAP)
        if self._left == 0:
            rest = self._inflate.flush()
            self._crc = crc32(rest, self._crc)
            self._size += len(rest)

    def _end_member(self) -> None:
        assert self._member is not None
        offset, name, crc, size, compressed = self._member
        # A member whose bytes do not make the size its header gives is broken too.
        whole = self._size == size and not self._broken
        self.members.append(Member(offset, name, crc, size if whole else -1, compressed,
                                   self._crc))
        self._member = None
        self._inflate = None


def _zip64_sizes(extra: bytes, size: int, compressed: int) -> tuple[int, int]:
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == _ZIP64_EXTRA:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            if size == 0xFFFFFFFF:
                size = next(values, size)
            if compressed == 0xFFFFFFFF:
                compressed = next(values, compressed)
            break
        at += 4 + length
    return size, compressed


# ------------------------------------------------------------------ the check


class StreamCheck:
    """sha256 and .zip CRCs of a file, computed from its chunks as they are written.

    ``update`` hands a chunk to a checking thread and returns at once, so the hashing runs
    on the other core while the next chunk is read and written; ``hexdigest`` and
    ``verify_zip`` wait for the chunks handed over so far.  A caller that reuses its
    buffers must leave a chunk's bytes alone until ``AHEAD + 1`` more ``update`` calls have
    returned: a ring of ``AHEAD + 2`` buffers, each chunk read into the next, does that.
    (At most ``AHEAD`` chunks wait in the queue and one is being checked, so when
    ``update`` of chunk N returns, chunk N - AHEAD - 1 and every one before it are done.)
    ``reset`` starts again from byte 0 (a resume that had to throw the bytes away);
    ``close`` ends the thread.
    """

    AHEAD = 2

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(self.AHEAD)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.reset()

    def reset(self) -> None:
        self.wait()
        self._hash = hashlib.sha256()
        self._walker = ZipWalker()

    def update(self, chunk: bytes | memoryview) -> None:
        if self._error is not None:
            self.wait()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stream-check",
                                            daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                if self._error is None:
                    self._hash.update(chunk)  # (hashlib and zlib let go of the GIL)
                    self._walker.feed(chunk)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()

    def wait(self) -> None:
        """Until every chunk handed over is checked; what the check raised, raised here."""
        self._queue.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def hexdigest(self) -> str:
        self.wait()
        return self._hash.hexdigest()

    def close(self) -> None:
        """End the checking thread (after the chunks it already has)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def verify_zip(self, path: Path, operation: str) -> None:
        """``path`` (the whole file that streamed) is a .zip whose every member is whole;
        ``DownloadError`` if not."""
        self.wait()
        problem = self._streamed_problem(path, operation)
        if problem == _READ_BACK:
            verify_zip_file(path, operation)
        elif problem is not None:
            raise DownloadError(f"{operation}: the downloaded .zip is corrupt ({problem})",
                                operation=operation)

    def _streamed_problem(self, path: Path, operation: str) -> str | None:
        if not zipfile.is_zipfile(path):
            raise DownloadError(f"{operation}: the downloaded file is not a whole .zip",
                                operation=operation)
        walker = self._walker
        if walker.unfollowable is not None:
            return _READ_BACK
        seen = {member.offset: member for member in walker.members}
        try:
            with zipfile.ZipFile(path) as archive:  # reads the central directory only
                listed = archive.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            return str(exc)
        for info in listed:
            member = seen.get(info.header_offset)
            if member is None or member.name != _raw_name(info):
                return _READ_BACK  # laid out in a way the walk did not follow
            if member.size < 0 or member.size != info.file_size \
                    or member.actual_crc != member.crc or member.crc != info.CRC:
                return f"{info.filename!r} fails its CRC"
        return None


_READ_BACK = "read back"


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The member's name as its headers hold it."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def verify_zip_file(path: Path, operation: str) -> None:
    """Read ``path`` back and test every member's CRC (``zipfile.testzip``)."""
    if not zipfile.is_zipfile(path):
        raise DownloadError(
            f"{operation}: the downloaded file is not a whole .zip", operation=operation
        )
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DownloadError(
            f"{operation}: the downloaded .zip is corrupt ({exc})", operation=operation
        ) from exc
    if broken is not None:
        raise DownloadError(
            f"{operation}: the downloaded .zip is corrupt ({broken!r} fails its CRC)",
            operation=operation,
        )
