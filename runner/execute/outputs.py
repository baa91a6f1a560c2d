"""Every byte the runner writes into a user's output folder goes through here.

* ``resolve_output`` turns a Step's relative output path into a path that cannot leave the
  output folder (no absolute paths, drive letters, ``..`` or symlinks pointing outside).
* ``AtomicFile`` / ``write_atomic``: a file is written as ``.NAME.partial-<step id>`` beside
  its final name, fsynced, checked, then ``os.replace``d over the final name and the folder
  fsynced.  A reader never sees a half-written file under the final name, and the only file
  ever replaced is the Step's own output.
* ``RecordWriter`` streams a paged query's records as JSON Lines, a JSON array or CSV into
  the partial file and can resume it after a crash: ``checkpoint()`` flushes and fsyncs
  and returns a ``Checkpoint`` (records, bytes) that the caller commits to the state store
  with the next page token (the scheduler does so every few seconds, not every page).  On
  resume the partial file is truncated to the committed size and writing goes on from
  there, so a page fetched again after a crash is never doubled.
* ``file_matches`` is the skip-on-resume check; ``extract_zip`` unpacks an export safely.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import stat
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from runner.errors import DownloadError, ServiceError, UserError

Format = Literal["jsonl", "json", "csv"]
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv")
DEFAULT_FORMAT = "jsonl"
CHUNK = 1 << 20

_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_STEP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:30] or "host"


@dataclass(frozen=True)
class FileInfo:
    """A finished file: what the state store and the run report record."""

    path: Path
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class Checkpoint:
    """Where a paged file stands once a page is durable: commit it with the next token."""

    records: int
    bytes: int


# ------------------------------------------------------------------------------ paths


def resolve_output(output_dir: str | os.PathLike[str], relative: str | os.PathLike[str],
                   *, real_base: str | None = None,
                   real_folders: dict[str, str] | None = None) -> Path:
    """``resolve_output_text`` as a ``Path``."""
    return Path(resolve_output_text(output_dir, relative, real_base=real_base,
                                    real_folders=real_folders))


def resolve_output_text(output_dir: str | os.PathLike[str], relative: str | os.PathLike[str],
                        *, real_base: str | None = None,
                        real_folders: dict[str, str] | None = None) -> str:
    """The absolute path of ``relative`` inside ``output_dir``; ``UserError`` if it would leave.

    Backslashes count as separators (a playbook written on Windows means folders).  Symlinks
    inside the folder are followed only as far as they stay inside it.  ``real_base`` is
    ``os.path.realpath(output_dir)`` when the caller knows it (a resume asks thousands of
    times for the same folder); ``real_folders``, a cache the caller keeps for one run,
    holds the real path of each folder already resolved, so a Step costs an ``lstat`` of
    its own file instead of one per path component.
    """
    text = os.fspath(relative)
    parts = _relative_parts(text)
    if parts is None:
        raise UserError(f"output path {text!r} must be a relative path inside the output "
                        "folder (no leading /, drive letter or '..')")
    # os.path on strings: a resume checks thousands of paths, and pathlib's resolve()
    # costs several times as much for the same lstat calls.
    base = real_base if real_base is not None else os.path.realpath(output_dir)
    candidate = os.path.join(base, *parts)
    real, folder = _real(candidate, real_folders)
    if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
        raise UserError(f"output path {text!r} leads outside the output folder {base} "
                        "through a symbolic link")
    if folder:
        raise UserError(f"output path {text!r} is an existing folder; name a file")
    return candidate  # a str: a resume of 200,000 finished Steps makes no Path of them


def _real(candidate: str, real_folders: dict[str, str] | None) -> tuple[str, bool]:
    """The real path of ``candidate`` and whether it is a folder (one ``lstat`` when its
    folder's real path is in ``real_folders``)."""
    if real_folders is None:
        return os.path.realpath(candidate), os.path.isdir(candidate)
    folder, name = os.path.split(candidate)
    real_folder = real_folders.get(folder)
    if real_folder is None:
        real_folder = real_folders[folder] = os.path.realpath(folder)
    try:
        mode = os.lstat(candidate).st_mode
    except OSError:
        return os.path.join(real_folder, name), False  # not there (yet)
    if stat.S_ISLNK(mode):
        return os.path.realpath(candidate), os.path.isdir(candidate)
    return os.path.join(real_folder, name), stat.S_ISDIR(mode)


def _relative_parts(text: str) -> list[str] | None:
    """The path's components, or None when it is absolute or climbs out."""
    if not text or "\x00" in text:
        return None
    text = text.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return parts


def partial_path(final: Path, step_id: str) -> Path:
    """``.NAME.partial-<step id>`` beside ``final``: hidden, and unique to its Step."""
    if not _STEP_ID.match(step_id):
        raise ValueError(f"a Step id names a file: {step_id!r} will not do")
    return final.with_name(f".{final.name}.partial-{step_id}")


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(partial: Path, final: Path) -> FileInfo:
    """Hash ``partial``, rename it over ``final``, fsync the folder."""
    size, digest = hash_file(partial)
    os.replace(partial, final)
    fsync_dir(final.parent)
    return FileInfo(final, size, digest, final.stat().st_mtime_ns)


# ---------------------------------------------------------------------- atomic files


class AtomicFile:
    """A binary file that appears under its final name only when whole and verified.

    ::

        with AtomicFile(final, step.id, verify=check_zip) as out:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
        info = out.info  # FileInfo(path, size, sha256, mtime_ns)

    ``verify(partial_path)`` runs after the fsync and before the rename; if it raises (or
    the body does) the partial file is removed and the final name is left as it was.
    """

    def __init__(self, final: Path, step_id: str,
                 verify: Callable[[Path], None] | None = None) -> None:
        self.final = Path(final)
        self.partial = partial_path(self.final, step_id)
        self._verify = verify
        self._handle: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self.size = 0
        self.info: FileInfo | None = None

    def __enter__(self) -> AtomicFile:
        _make_parent(self.final)
        self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def write(self, data: bytes) -> int:
        assert self._handle is not None, "AtomicFile is used as a context manager"
        self._handle.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        handle, self._handle = self._handle, None
        assert handle is not None
        try:
            if exc_type is None:
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()
            if exc_type is None:
                if self._verify is not None:
                    self._verify(self.partial)
                os.replace(self.partial, self.final)
                fsync_dir(self.final.parent)
                self.info = FileInfo(self.final, self.size, self._hash.hexdigest(),
                                     self.final.stat().st_mtime_ns)
        except BaseException:
            _remove(self.partial)
            raise
        if exc_type is not None:
            _remove(self.partial)


def write_atomic(final: Path, data: bytes, step_id: str = "write") -> FileInfo:
    """Write ``data`` to ``final`` atomically (the run report, small files), through a
    partial file of this process's own (runners may share the folder)."""
    with AtomicFile(final, own_partial_id(step_id)) as out:
        out.write(data)
    assert out.info is not None
    remove_stale_partials(final, step_id)
    return out.info


def own_partial_id(step_id: str) -> str:
    """A partial file's id for a file several processes may write at once (the run
    report in an output folder that runners share): ``<id>-<host>-<pid>``."""
    return f"{step_id}-{_HOST}-{os.getpid()}"


def remove_stale_partials(final: Path, step_id: str) -> None:
    """Partial files of ``final`` left by processes of this host that died (killed while
    writing it); other hosts' and live processes' are theirs."""
    prefix = f".{final.name}.partial-{step_id}-{_HOST}-"
    with contextlib.suppress(OSError):
        for path in final.parent.iterdir():
            pid = path.name[len(prefix):] if path.name.startswith(prefix) else ""
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                _remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# ----------------------------------------------------------------------- verification


def hash_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def file_matches(path: str | os.PathLike[str], size: int | None, sha256: str | None,
                 mtime_ns: int | None = None) -> bool:
    """Is the file at ``path`` still the one the state recorded?  (Skip-on-resume check.)

    A missing file, a symlink, or another size answers False without reading anything.
    When ``mtime_ns`` is given and equals the file's, the file is trusted without hashing
    (the quick check of make and rsync): re-running a playbook with gigabytes of exports
    then costs one ``stat`` per file.  It misses only an edit that keeps the size AND puts
    the modification time back; pass ``mtime_ns=None`` to always hash.
    """
    if size is None or sha256 is None:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        return False
    if mtime_ns is not None and st.st_mtime_ns == mtime_ns:
        return True
    return hash_file(path) == (size, sha256)


# ---------------------------------------------------------------------- paged records


def resumable(final: Path, step_id: str, committed_bytes: int | None) -> bool:
    """Can a paged query go on from ``committed_bytes``?  (Its partial file holds at least
    that much.)  When False the query starts again from its first page."""
    if not committed_bytes:
        return False
    try:
        return partial_path(final, step_id).stat().st_size >= committed_bytes
    except OSError:
        return False


class RecordWriter:
    """A paged query's output file, written page by page, resumable after a crash.

    ::

        writer = RecordWriter.open(final, step.id, "csv", op.result_fields,
                                   resume=Checkpoint(state.records, state.bytes))
        checkpoint = writer.write_page(records)   # flushed and fsynced
        store.page(step.id, next_token, checkpoint.records, checkpoint.bytes)
        ...
        info = writer.finish()                     # trailer, fsync, rename, folder fsync

    ``resume`` is None for a first attempt, or the checkpoint last committed (check
    ``resumable`` first: ``open`` raises ``FileNotFoundError`` when the partial file is
    shorter than the checkpoint).  ``close()`` without ``finish()`` keeps the partial file
    for the next run.  CSV columns are the catalog's ``result_fields``; fields outside them
    are kept by JSON Lines and JSON only.
    """

    def __init__(self, final: Path, step_id: str, fmt: str, columns: Sequence[str],
                 handle: IO[bytes], records: int) -> None:
        self.final = final
        self.partial = partial_path(final, step_id)
        self.format = fmt
        self.columns = tuple(columns)
        self._handle: IO[bytes] | None = handle
        self.records = records

    @classmethod
    def open(cls, final: Path, step_id: str, fmt: str = DEFAULT_FORMAT,
             columns: Sequence[str] = (), *, resume: Checkpoint | None = None) -> RecordWriter:
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; choose one of {FORMATS}")
        if fmt == "csv" and not columns:
            raise ValueError("a CSV output needs its columns")
        final = Path(final)
        partial = partial_path(final, step_id)
        _make_parent(final)
        if resume is not None and resume.bytes > 0:
            if not resumable(final, step_id, resume.bytes):
                raise FileNotFoundError(f"{partial} is missing or shorter than its checkpoint")
            handle: IO[bytes] = open(partial, "r+b")  # noqa: SIM115 - owned by the writer
            handle.truncate(resume.bytes)  # drop whatever was written after the last commit
            handle.seek(resume.bytes)
            return cls(final, step_id, fmt, columns, handle, resume.records)
        handle = open(partial, "wb")  # noqa: SIM115 - owned by the writer
        writer = cls(final, step_id, fmt, columns, handle, 0)
        writer._write(writer._header())
        return writer

    def write_page(self, records: Iterable[Mapping[str, Any]]) -> Checkpoint:
        """Append one page, make it durable, and say where the file now stands."""
        self.append(records)
        return self.checkpoint()

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records without making them durable yet (see ``checkpoint``)."""
        parts = []
        for record in records:
            parts.append(self._encode(record))
            self.records += 1
        self._write(b"".join(parts))

    def checkpoint(self) -> Checkpoint:
        """Flush and fsync everything appended so far; commit the result with the token
        that follows the last page appended."""
        return self._sync()

    def finish(self) -> FileInfo:
        """Close the format (the JSON array's ``]``) and publish the file atomically."""
        self._write(self._trailer())
        self._sync()
        self.close()
        return _publish(self.partial, self.final)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        """Give up on this file (the query will start over): remove the partial file."""
        self.close()
        _remove(self.partial)

    # -- the formats

    def _header(self) -> bytes:
        if self.format == "json":
            return b"["
        if self.format == "csv":
            return _csv_line(self.columns)
        return b""

    def _trailer(self) -> bytes:
        if self.format == "json":
            return b"\n]\n" if self.records else b"]\n"
        return b""

    def _encode(self, record: Mapping[str, Any]) -> bytes:
        if self.format == "csv":
            return _csv_line([_cell(record.get(name)) for name in self.columns])
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        # Valid JSON either way, but readers that split lines with str.splitlines() (or
        # JavaScript before ES2019) would break a record at these: write them escaped.
        text = text.translate(_LINE_BREAKS)
        if self.format == "json":
            return (b"\n" if self.records == 0 else b",\n") + text.encode("utf-8")
        return text.encode("utf-8") + b"\n"

    # -- I/O

    def _write(self, data: bytes) -> None:
        assert self._handle is not None, "the writer is closed"
        self._handle.write(data)

    def _sync(self) -> Checkpoint:
        assert self._handle is not None, "the writer is closed"
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return Checkpoint(self.records, self._handle.tell())


def _csv_line(cells: Iterable[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    """One CSV cell: lists joined with '; ', objects as JSON, booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "; ".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


# ------------------------------------------------------------------------ zip archives


def extract_zip(zip_path: Path, dest_dir: Path, *, max_member_bytes: int,
                max_total_bytes: int, max_members: int = 10_000) -> list[Path]:
    """Unpack an export's .zip into ``dest_dir``; returns the files written.

    Every member is checked before anything is written: absolute names, drive letters,
    ``..``, symlinks, encrypted or duplicate members, and declared sizes over the limits are
    refused (``ServiceError``: the archive is unsafe, retrying will not help).  While
    streaming, the bytes actually produced are counted too, so an archive that lies about
    its sizes is stopped at the limit.  Members are unpacked into a hidden staging folder
    inside ``dest_dir`` and moved into place only when all are whole, so a refused or
    corrupt archive (``DownloadError``: download it again) leaves nothing behind.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{zip_path.name} is not a readable .zip: {exc}") from exc
    with archive:
        plan = _check_members(archive, zip_path.name, max_member_bytes, max_total_bytes,
                              max_members)
        dest_dir.mkdir(parents=True, exist_ok=True)
        staging = dest_dir / f".extract-partial-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            total = 0
            for info, parts in plan:
                total = _unpack(archive, info, staging.joinpath(*parts), zip_path.name,
                                max_member_bytes, max_total_bytes, total)
            return _move_into_place(staging, dest_dir, plan)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _check_members(archive: zipfile.ZipFile, name: str, max_member: int, max_total: int,
                   max_members: int) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    members = archive.infolist()
    if len(members) > max_members:
        raise ServiceError(f"{name} holds {len(members)} members, more than {max_members}")
    plan, seen, declared = [], set(), 0
    for info in members:
        parts = _relative_parts(info.filename)
        if parts is None:
            raise ServiceError(f"{name}: unsafe member name {info.filename!r} (absolute, "
                               "drive letter or '..'); nothing was extracted")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ServiceError(f"{name}: member {info.filename!r} is a symbolic link; "
                               "nothing was extracted")
        if info.flag_bits & 0x1:
            raise ServiceError(f"{name}: member {info.filename!r} is encrypted")
        if info.is_dir():
            continue
        key = "/".join(parts)
        if key in seen:
            raise ServiceError(f"{name}: member {info.filename!r} appears twice")
        seen.add(key)
        declared += info.file_size
        if info.file_size > max_member or declared > max_total:
            raise ServiceError(f"{name}: member {info.filename!r} declares {info.file_size} "
                               f"bytes, over the limit ({max_member} per member, {max_total} "
                               "in all); nothing was extracted")
        plan.append((info, parts))
    return plan


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str,
            max_member: int, max_total: int, total: int) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with archive.open(info) as source, open(target, "xb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                total += len(chunk)
                if written > min(info.file_size, max_member) or total > max_total:
                    raise ServiceError(f"{name}: member {info.filename!r} inflates beyond its "
                                       "declared size or the limit; nothing was extracted")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
            NotImplementedError) as exc:
        raise DownloadError(f"{name}: member {info.filename!r} is corrupt: {exc}") from exc
    return total


def _move_into_place(staging: Path, dest_dir: Path,
                     plan: list[tuple[zipfile.ZipInfo, list[str]]]) -> list[Path]:
    written, folders = [], set()
    for _info, parts in plan:
        final = resolve_output(dest_dir, "/".join(parts))
        _make_parent(final)
        os.replace(staging.joinpath(*parts), final)
        folders.add(final.parent)
        written.append(final)
    for folder in folders:
        fsync_dir(folder)
    return written
