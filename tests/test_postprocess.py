"""Reports people can read: `extract: true` and `convert: csv` on export tasks, through the CLI
against the simulator, and the safety limits of extraction."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest
from run_support import env_for, report, runner, submits, work_requests, write_playbook

from runner.errors import ServiceError
from runner.execute.postprocess import MARKER, Limits, cell_text, postprocess
from runner.sim import Faults

TMP = Path("/tmp")  # noqa: S108 - the hostile archive names a member /tmp/...
SITES = ["https://contoso.sharepoint.com/sites/site00003",
         "https://contoso.sharepoint.com/sites/site00004"]


def site_task(**keys: object) -> dict:
    return {"name": "Sites", "site_permission_export": {"site_urls": SITES},
            "output": "sites/permissions.zip", **keys}


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def sheet_rows(book_bytes: bytes, title: str | None = None) -> list[list[str]]:
    book = openpyxl.load_workbook(io.BytesIO(book_bytes), data_only=True)
    sheet = book[title] if title else book.worksheets[0]
    return [[cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_extract_and_convert_leave_the_reports_and_csvs_equal_cell_for_cell(
        sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [site_task(extract=True, convert="csv")])

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr + result.stdout
    archive = tmp_path / "reports" / "sites" / "permissions.zip"
    folder = archive.with_suffix("")
    with zipfile.ZipFile(archive) as zipped:
        members = {name: zipped.read(name) for name in zipped.namelist()}
    assert members
    for name, data in members.items():
        assert (folder / name).read_bytes() == data  # extracted as served
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        titles = book.sheetnames
        book.close()
        stem = Path(name).stem
        for title in titles:
            csv_name = f"{stem}.csv" if len(titles) == 1 else f"{stem} - {title}.csv"
            assert csv_rows(folder / csv_name) == sheet_rows(data, title), csv_name
    step = report(playbook)["steps"][0]
    assert sorted(step["files"]) == sorted(
        p.relative_to(tmp_path / "reports").as_posix()
        for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    # the end-of-run table says what was written where
    assert "sites/permissions.zip" in result.stdout and "-> sites/permissions/" in result.stdout


def test_convert_alone_keeps_only_the_csvs_and_a_rerun_does_not_redo_it(sim, tmp_path: Path
                                                                        ) -> None:
    playbook = write_playbook(tmp_path, sim, [site_task(convert="csv")])
    assert runner("run", playbook, env=env_for(sim)).returncode == 0
    folder = tmp_path / "reports" / "sites" / "permissions"
    made = files_under(folder) - {MARKER}
    assert made and all(name.endswith(".csv") for name in made)
    stamps = {name: (folder / name).stat().st_mtime_ns for name in made}
    sim.log.clear()

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert work_requests(sim) == []
    assert {name: (folder / name).stat().st_mtime_ns for name in made} == stamps
    assert sorted(report(playbook)["steps"][0]["files"]) == sorted(
        f"sites/permissions/{name}" for name in made)

    # a deleted CSV is made again from the .zip already there, without a new job
    victim = sorted(made)[0]
    (folder / victim).unlink()
    third = runner("run", playbook, env=env_for(sim))
    assert third.returncode == 0, third.stderr
    assert (folder / victim).is_file()
    assert submits(sim) == []


def test_a_zip_slip_archive_from_the_service_is_refused_and_nothing_lands_outside(
        make_sim, tmp_path: Path) -> None:
    hostile = make_sim(faults=Faults(hostile_names=True))
    work = tmp_path / "work"
    work.mkdir()
    playbook = write_playbook(work, hostile, [site_task(extract=True, retries=0)])
    before_tmp = set(TMP.iterdir())

    result = runner("run", playbook, env=env_for(hostile))

    assert result.returncode == 1, result.stderr + result.stdout
    step = report(playbook)["steps"][0]
    assert step["status"] == "failed"
    assert "unsafe member name" in step["error"] and "nothing was extracted" in step["error"]
    assert "Traceback" not in result.stderr
    left = {f for f in files_under(tmp_path) if "/.insights-runner/" not in f}
    assert left - {"work/playbook.yml"} <= {
        "work/reports/sites/permissions.zip", "work/reports/run-report.json",
        "work/reports/run-report.html"}
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".xlsx")]
    assert {p for p in set(TMP.iterdir()) - before_tmp if p.suffix == ".xlsx"} == set()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_bomb_sized_member_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_zip({"small.xlsx": b"x", "huge.xlsx": b"\0" * 5_000_000}))
    step = SimpleNamespace(extract=True, convert=None)

    with pytest.raises(ServiceError, match="over the limit"):
        postprocess(step, archive, limits=Limits(member_bytes=1_000_000))

    assert files_under(tmp_path) == {"bomb.zip"}


def test_an_unsafe_member_name_is_refused_whole(tmp_path: Path) -> None:
    archive = tmp_path / "slip.zip"
    archive.write_bytes(_zip({"ok.xlsx": b"x", "../../evil.xlsx": b"y"}))

    with pytest.raises(ServiceError, match="unsafe member name"):
        postprocess(SimpleNamespace(extract=True, convert=None), archive)

    assert files_under(tmp_path) == {"slip.zip"}
    assert not (tmp_path.parent.parent / "evil.xlsx").exists()


def test_a_query_with_extract_is_a_playbook_error_at_its_line(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [{"user_summary": {}, "extract": True}])

    result = runner("validate", playbook)

    assert result.returncode == 2
    assert "playbook.yml:" in result.stdout and "extract applies to exports" in result.stdout


def test_postprocessing_changes_the_step_id_only_when_set(sim, tmp_path: Path) -> None:
    plain = write_playbook(tmp_path, sim, [site_task()])
    first = runner("plan", plain, "--json", env=env_for(sim))
    with_extract = write_playbook(tmp_path, sim, [site_task(extract=False)])
    second = runner("plan", with_extract, "--json", env=env_for(sim))
    converted = write_playbook(tmp_path, sim, [site_task(convert="csv")])
    third = runner("plan", converted, "--json", env=env_for(sim))

    import json

    ids = [json.loads(r.stdout)["steps"][0]["id"] for r in (first, second, third)]
    assert ids[0] == ids[1] != ids[2]
    assert "convert" in json.loads(third.stdout)["steps"][0]
    assert "extract" not in json.loads(first.stdout)["steps"][0]
