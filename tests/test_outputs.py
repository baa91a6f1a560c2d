"""Output files: safe paths, atomic writes, resumable paged files, file checks, safe unzip."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import DownloadError, ServiceError, UserError
from runner.execute.outputs import (
    AtomicFile,
    Checkpoint,
    RecordWriter,
    extract_zip,
    file_matches,
    hash_file,
    partial_path,
    resolve_output,
    resumable,
    write_atomic,
)

REPO = Path(__file__).resolve().parent.parent
STEP = "0123abcd"


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------------------ paths


@pytest.mark.parametrize("bad", [
    "/etc/passwd", "../x.zip", "a/../../x.zip", "a/b/../../../x", "..\\x.zip", "C:/x.zip",
    "c:x.zip", "\\\\server\\share\\x", "", ".", "a/\x00b", "./..",
])
def test_paths_that_leave_the_folder_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UserError, match="output path"):
        resolve_output(tmp_path, bad)


@pytest.mark.parametrize("good, expected", [
    ("users.jsonl", "users.jsonl"),
    ("reports/2026/sites/part-1.zip", "reports/2026/sites/part-1.zip"),
    ("./a//b.csv", "a/b.csv"),
    ("win\\style\\x.csv", "win/style/x.csv"),
])
def test_relative_paths_stay_inside(tmp_path: Path, good: str, expected: str) -> None:
    assert resolve_output(tmp_path, good) == tmp_path.resolve() / expected


def test_a_symlink_leading_outside_is_refused_and_one_inside_is_followed(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "escape").symlink_to(elsewhere)
    (out / "real").mkdir()
    (out / "alias").symlink_to(out / "real")
    with pytest.raises(UserError, match="symbolic link"):
        resolve_output(out, "escape/x.zip")
    assert resolve_output(out, "alias/x.zip") == out.resolve() / "alias" / "x.zip"


def test_an_existing_folder_is_not_a_file_name(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    with pytest.raises(UserError, match="existing folder"):
        resolve_output(tmp_path, "reports")


def test_partial_names_are_hidden_and_belong_to_their_step(tmp_path: Path) -> None:
    assert partial_path(tmp_path / "a.zip", STEP).name == f".a.zip.partial-{STEP}"
    with pytest.raises(ValueError):
        partial_path(tmp_path / "a.zip", "../evil")


# ---------------------------------------------------------------------- atomic files


def test_an_atomic_file_appears_whole_with_its_hash(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "report.zip"
    with AtomicFile(final, STEP) as out:
        out.write(b"abc")
        assert not final.exists()  # nothing under the final name while writing
        out.write(b"def")
    assert final.read_bytes() == b"abcdef"
    assert out.info is not None
    assert (out.info.size, out.info.sha256) == (6, hashlib.sha256(b"abcdef").hexdigest())
    assert out.info.mtime_ns == final.stat().st_mtime_ns
    assert tree(tmp_path) == {"sub", "sub/report.zip"}


def test_an_exception_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    final = tmp_path / "report.zip"
    final.write_bytes(b"last run's report")
    with pytest.raises(RuntimeError, match="connection dropped"), AtomicFile(final, STEP) as out:
        out.write(b"half a rep")
        raise RuntimeError("connection dropped")
    assert final.read_bytes() == b"last run's report"
    assert tree(tmp_path) == {"report.zip"}


def test_a_failed_verification_publishes_nothing(tmp_path: Path) -> None:
    def verify(partial: Path) -> None:
        assert partial.name.startswith(".report.zip.partial-")
        raise DownloadError("truncated")

    final = tmp_path / "report.zip"
    with pytest.raises(DownloadError), AtomicFile(final, STEP, verify=verify) as out:
        out.write(b"PK...")
    assert tree(tmp_path) == set()


def test_write_atomic_replaces_the_file(tmp_path: Path) -> None:
    final = tmp_path / "run-report.json"
    write_atomic(final, b"1")
    info = write_atomic(final, b"22")
    assert final.read_bytes() == b"22" and info.size == 2
    assert tree(tmp_path) == {"run-report.json"}


# ----------------------------------------------------------------------- file checks


def test_file_matches_checks_size_first_then_trusts_mtime_or_hashes(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    info = write_atomic(path, b"hello")
    assert file_matches(path, info.size, info.sha256, info.mtime_ns)
    assert file_matches(path, info.size, info.sha256)
    assert not file_matches(path, 4, info.sha256)
    assert not file_matches(path, None, None)
    assert not file_matches(tmp_path / "missing", 5, info.sha256)
    path.write_bytes(b"HELLO")  # same size, new content, new mtime: hashed, and differs
    os.utime(path, ns=(1, 1))
    assert not file_matches(path, info.size, info.sha256, info.mtime_ns)
    link = tmp_path / "link.zip"
    link.symlink_to(path)
    assert not file_matches(link, 5, hash_file(path)[1])


# ---------------------------------------------------------------------- paged records

PAGES = [[{"id": i, "name": f"n{i}", "tags": ["a", "b"], "ok": i % 2 == 0, "extra": {"k": i}}
          for i in range(p * 3, p * 3 + 3)] for p in range(4)]
COLUMNS = ("id", "name", "tags", "ok", "missing")
ALL = [r for page in PAGES for r in page]


def read_records(path: Path, fmt: str) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:  # keep a \r inside a cell
        text = handle.read()
    if fmt == "jsonl":
        return [json.loads(line) for line in text.split("\n") if line]
    if fmt == "json":
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def expected(fmt: str) -> list[dict]:
    if fmt != "csv":
        return ALL
    return [{"id": str(r["id"]), "name": r["name"], "tags": "a; b",
             "ok": "true" if r["ok"] else "false", "missing": ""} for r in ALL]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_pages_stream_into_a_valid_file(tmp_path: Path, fmt: str) -> None:
    final = tmp_path / f"out.{fmt}"
    writer = RecordWriter.open(final, STEP, fmt, COLUMNS)
    sizes = [writer.write_page(page) for page in PAGES]
    assert [c.records for c in sizes] == [3, 6, 9, 12]
    assert not final.exists()
    info = writer.finish()
    assert read_records(final, fmt) == expected(fmt)
    assert info.sha256 == hash_file(final)[1]
    assert tree(tmp_path) == {final.name}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_no_records_still_make_a_valid_file(tmp_path: Path, fmt: str) -> None:
    final = tmp_path / f"out.{fmt}"
    writer = RecordWriter.open(final, STEP, fmt, COLUMNS)
    writer.write_page([])
    writer.finish()
    assert read_records(final, fmt) == []
    if fmt == "csv":
        assert final.read_text().splitlines() == [",".join(COLUMNS)]


def test_unicode_line_breaks_are_escaped_so_each_record_stays_on_one_line(
        tmp_path: Path) -> None:
    final = tmp_path / "out.jsonl"
    writer = RecordWriter.open(final, STEP)
    record = {"name": "a\x85b\u2028c\u2029d é"}
    writer.write_page([record, record])
    writer.finish()
    text = final.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 and "é" in text
    assert [json.loads(line) for line in text.splitlines()] == [record, record]


def test_csv_needs_columns_and_formats_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="columns"):
        RecordWriter.open(tmp_path / "x.csv", STEP, "csv")
    with pytest.raises(ValueError, match="format"):
        RecordWriter.open(tmp_path / "x.xml", STEP, "xml")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("committed_pages", [0, 1, 3])
def test_a_resume_after_an_uncommitted_page_writes_each_record_once(
        tmp_path: Path, fmt: str, committed_pages: int) -> None:
    final = tmp_path / f"out.{fmt}"
    writer = RecordWriter.open(final, STEP, fmt, COLUMNS)
    checkpoint = None
    for page in PAGES[:committed_pages]:
        checkpoint = writer.write_page(page)  # ... and committed to the state store
    writer.write_page(PAGES[committed_pages])  # written, but the crash beat the commit
    writer.close()
    assert resumable(final, STEP, checkpoint.bytes if checkpoint else 0) == bool(checkpoint)
    writer = RecordWriter.open(final, STEP, fmt, COLUMNS, resume=checkpoint)
    for page in PAGES[committed_pages:]:  # the next run asks again from the committed token
        writer.write_page(page)
    writer.finish()
    assert read_records(final, fmt) == expected(fmt)


def test_a_lost_partial_file_cannot_be_resumed(tmp_path: Path) -> None:
    final = tmp_path / "out.jsonl"
    writer = RecordWriter.open(final, STEP)
    checkpoint = writer.write_page(PAGES[0])
    writer.discard()
    assert not resumable(final, STEP, checkpoint.bytes)
    with pytest.raises(FileNotFoundError):
        RecordWriter.open(final, STEP, resume=checkpoint)


CRASHER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from runner.execute.outputs import Checkpoint, RecordWriter, resumable
    from runner.execute.state import StateStore, StepStatus
    from tests.test_state import FakeStep
    from tests.test_outputs import COLUMNS, PAGES
    fmt, kill_at, kill_before_commit = {fmt!r}, int(sys.argv[1]), {before!r}
    store = StateStore.open({state!r})
    run = store.begin_run("p.yml", "fp")
    step = FakeStep("q1", format=fmt)
    store.register_steps(run, [step])
    final = Path({final!r})
    state = store.step("q1")
    if state.status is StepStatus.PAGING and resumable(final, "q1", state.bytes):
        writer = RecordWriter.open(final, "q1", fmt, COLUMNS,
                                   resume=Checkpoint(state.records, state.bytes))
        page = int(state.page_token)
    else:  # nothing committed yet (or the partial file is gone): start over
        if state.status is StepStatus.PAGING:
            store.requeue("q1", "partial file lost")
        store.start_paging("q1")
        writer = RecordWriter.open(final, "q1", fmt, COLUMNS)
        page = 0
    while page < len(PAGES):
        checkpoint = writer.write_page(PAGES[page])
        if page == kill_at and kill_before_commit:
            os.kill(os.getpid(), signal.SIGKILL)
        page += 1
        store.page("q1", page, checkpoint.records, checkpoint.bytes)
        if page - 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    info = writer.finish()
    store.succeeded("q1", bytes=info.size, sha256=info.sha256, records=writer.records)
""")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("kill_at, before", [(0, True), (1, False), (2, True), (3, False)])
def test_sigkill_mid_pagination_then_resume_yields_every_record_once(
        tmp_path: Path, fmt: str, kill_at: int, before: bool) -> None:
    final = tmp_path / "out" / f"users.{fmt}"
    script = CRASHER.format(repo=str(REPO), fmt=fmt, before=before,
                            state=str(tmp_path / "state"), final=str(final))
    first = subprocess.run([sys.executable, "-c", script, str(kill_at)], capture_output=True,
                           text=True, timeout=60)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert not final.exists()
    second = subprocess.run([sys.executable, "-c", script, "-1"], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert read_records(final, fmt) == expected(fmt)
    assert tree(final.parent) == {final.name}


# ------------------------------------------------------------------------ zip archives


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


LIMITS = {"max_member_bytes": 1 << 20, "max_total_bytes": 4 << 20}


def test_a_good_archive_is_extracted(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "export.zip", {
        "Overview.xlsx": b"overview", "sites/Site A.xlsx": b"a" * 5000, "sites/": b""})
    dest = tmp_path / "out" / "export"
    written = extract_zip(archive, dest, **LIMITS)
    assert sorted(p.relative_to(dest).as_posix() for p in written) == [
        "Overview.xlsx", "sites/Site A.xlsx"]
    assert (dest / "sites" / "Site A.xlsx").read_bytes() == b"a" * 5000
    assert tree(dest) == {"Overview.xlsx", "sites", "sites/Site A.xlsx"}  # no staging left


@pytest.mark.parametrize("evil", [
    "../evil.txt", "a/../../evil.txt", "/abs/evil.txt", "C:/evil.txt", "..\\evil.txt",
    "sites/..\\..\\evil.txt",
])
def test_zip_slip_members_are_refused_and_nothing_is_written(tmp_path: Path, evil: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = make_zip(tmp_path / "export.zip", {"good.xlsx": b"ok", evil: b"pwned"})
    before = tree(tmp_path)
    with pytest.raises(ServiceError, match="unsafe member name"):
        extract_zip(archive, work / "dest", **LIMITS)
    assert tree(tmp_path) == before


def test_symlink_members_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "export.zip", {"a.xlsx": b"ok"}, {"link": "/etc/passwd"})
    with pytest.raises(ServiceError, match="symbolic link"):
        extract_zip(archive, tmp_path / "dest", **LIMITS)
    assert not (tmp_path / "dest").exists()


def test_a_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.xlsx": bytes(8 << 20)})
    assert archive.stat().st_size < 100_000
    with pytest.raises(ServiceError, match="over the limit"):
        extract_zip(archive, tmp_path / "dest", **LIMITS)
    assert not (tmp_path / "dest").exists()


def test_too_much_in_all_is_refused(tmp_path: Path) -> None:
    members = {f"part{i}.xlsx": bytes(900_000) for i in range(6)}
    archive = make_zip(tmp_path / "many.zip", members)
    with pytest.raises(ServiceError, match="over the limit"):
        extract_zip(archive, tmp_path / "dest", **LIMITS)
    with pytest.raises(ServiceError, match="more than 3"):
        extract_zip(archive, tmp_path / "dest", **LIMITS, max_members=3)


def test_a_member_lying_about_its_size_is_stopped(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", {"zeros.xlsx": bytes(3 << 20)})
    data = bytearray(archive.read_bytes())
    # Declare 1000 bytes in the central directory (uncompressed size at offset 24).
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)
    archive.write_bytes(bytes(data))
    with pytest.raises((ServiceError, DownloadError)):
        extract_zip(archive, tmp_path / "dest", **LIMITS)
    assert tree(tmp_path / "dest") == set()


def test_a_corrupt_archive_is_a_download_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DownloadError, match="not a readable .zip"):
        extract_zip(bad, tmp_path / "dest", **LIMITS)


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.xlsx", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("a.xlsx", b"2")
    with pytest.raises(ServiceError, match="twice"):
        extract_zip(path, tmp_path / "dest", **LIMITS)


def test_extraction_does_not_follow_a_symlink_out_of_the_destination(tmp_path: Path) -> None:
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "sites").symlink_to(elsewhere)
    archive = make_zip(tmp_path / "export.zip", {"sites/a.xlsx": b"x"})
    with pytest.raises(UserError, match="symbolic link"):
        extract_zip(archive, dest, **LIMITS)
    assert tree(elsewhere) == set()
    assert tree(dest) == {"sites"}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["jsonl", "json", "csv"]),
       pages=st.lists(st.lists(st.fixed_dictionaries({
           "id": st.integers(), "name": st.text(max_size=8), "tags": st.lists(
               st.text(alphabet="abc;", max_size=3), max_size=2)}), max_size=4), max_size=5),
       crashes=st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=3))
def test_any_crash_sequence_writes_each_record_once(tmp_path_factory, fmt, pages,
                                                    crashes) -> None:
    """Crash after page k, with or without its commit, any number of times: the file that
    comes out holds exactly the records of every page, in order."""
    final = tmp_path_factory.mktemp("prop") / f"out.{fmt}"
    columns = ("id", "name", "tags")
    committed: tuple[int, Checkpoint | None] = (0, None)  # (next page, checkpoint)
    for crash_after, commit_it in [*crashes, (None, True)]:
        page, checkpoint = committed
        if checkpoint is not None and resumable(final, STEP, checkpoint.bytes):
            writer = RecordWriter.open(final, STEP, fmt, columns, resume=checkpoint)
        else:
            page, writer = 0, RecordWriter.open(final, STEP, fmt, columns)
        while page < len(pages):
            reached = writer.write_page(pages[page])
            page += 1
            if crash_after is not None and page - 1 >= crash_after:
                if commit_it:
                    committed = (page, reached)
                writer.close()
                break
            committed = (page, reached)
        else:
            if crash_after is None:
                writer.finish()
            else:
                writer.close()
    records = [r for p in pages for r in p]
    got = read_records(final, fmt)
    if fmt == "csv":
        records = [{"id": str(r["id"]), "name": r["name"], "tags": "; ".join(r["tags"])}
                   for r in records]
    assert got == records
