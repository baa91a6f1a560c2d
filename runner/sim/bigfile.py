"""A synthetic export file of any size, streamed: how the simulator serves a 1 GB download
without building it in memory (``SimConfig.export_bytes``).

The file is a valid .zip holding one stored member whose bytes repeat one 1 MiB block, so
its CRC-32 is computed once per size by running over the block, and every byte range of the
file can be produced on demand (``Range: bytes=N-`` resumes work as for a built export).
Memory stays at one block whatever the size.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from collections.abc import Iterator

BLOCK = 1 << 20
MEMBER = "export-data.bin"
_STAMP = (0, 0x5A21)  # DOS time and date: 2025-01-01 00:00
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
# Most a stored member may hold without ZIP64 records.
MAX_BYTES = 0xFFFF_FFFF - 200


@functools.cache
def _block() -> bytes:
    """1 MiB of incompressible-looking bytes (a hash chain), the same in every process."""
    out, digest = bytearray(), b"insights-sim-export"
    while len(out) < BLOCK:
        digest = hashlib.sha512(digest).digest()
        out += digest
    return bytes(out[:BLOCK])


@functools.cache
def _crc(size: int) -> int:
    block, crc = _block(), 0
    whole, rest = divmod(size, BLOCK)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(block[:rest], crc)


class BigExport:
    """The bytes of a ``total``-byte .zip, produced lazily from any offset."""

    def __init__(self, total: int) -> None:
        name = MEMBER.encode()
        overhead = _LOCAL.size + _CENTRAL.size + _END.size + 2 * len(name)
        if not overhead < total <= MAX_BYTES:
            raise ValueError(f"a synthetic export holds {overhead + 1} to {MAX_BYTES} bytes")
        self.total = total
        size = total - overhead
        crc = _crc(size)
        self._head = _LOCAL.pack(0x04034B50, 20, 0, 0, *_STAMP, crc, size, size, len(name), 0) \
            + name
        self._size = size
        central = _CENTRAL.pack(0x02014B50, 20, 20, 0, 0, *_STAMP, crc, size, size, len(name),
                                0, 0, 0, 0, 0, 0) + name
        offset = len(self._head) + size
        self._tail = central + _END.pack(0x06054B50, 0, 0, 1, 1, len(central), offset, 0)

    def iter_from(self, start: int) -> Iterator[bytes]:
        """The file's bytes from offset ``start`` to the end, in pieces of at most 1 MiB."""
        head, size = len(self._head), self._size
        if start < head:
            yield self._head[start:]
            start = head
        block = _block()
        position = start - head  # within the member's data
        while position < size:
            offset = position % BLOCK
            piece = min(BLOCK - offset, size - position)
            yield block[offset:offset + piece] if offset or piece < BLOCK else block
            position += piece
        tail_start = max(0, start - head - size)
        if tail_start < len(self._tail):
            yield self._tail[tail_start:]
