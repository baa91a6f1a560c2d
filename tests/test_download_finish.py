"""A download whose every byte is already on disk when the runner dies is finished by the
next run, not failed run after run; a partial file that fails verification is fetched again
from its first byte, once; the simulator answers a range past the end with 416."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from run_support import env_for, runner, submits, write_playbook
from sim_support import call, headers
from test_sim_exports import download, wait_done

from runner.crashpoint import ENV as CRASH_AT
from runner.sim import SimConfig, Simulator

SITES = {"site_urls": ["https://contoso.sharepoint.com/sites/site00003"]}


def sites_playbook(directory: Path, sim, retries: int = 3) -> Path:
    return write_playbook(directory, sim, [
        {"name": "Sites", "site_permission_export": SITES, "output": "sites.zip",
         "retries": retries}])


def killed_after_last_byte(playbook: Path, sim) -> Path:
    """Run until the whole file is in its partial file, then die as SIGKILL would."""
    env = {**env_for(sim), CRASH_AT: "download-last-byte:1"}
    killed = runner("run", playbook, env=env)
    assert killed.returncode == -9, killed.stderr
    reports = playbook.parent / "reports"
    assert not (reports / "sites.zip").exists()
    (partial,) = reports.glob(".sites.zip.partial-*")
    return partial


def file_answers(sim) -> list[int]:
    return [e.status for e in sim.log.requests("permission_export_file")]


def test_a_partial_file_holding_every_byte_is_verified_and_renamed(sim, tmp_path: Path):
    playbook = sites_playbook(tmp_path, sim)
    partial = killed_after_last_byte(playbook, sim)
    whole = partial.read_bytes()

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    final = tmp_path / "reports" / "sites.zip"
    assert final.read_bytes() == whole
    assert not partial.exists()
    assert len(submits(sim)) == 1
    assert file_answers(sim) == [200, 416]  # the second run asked past the end and kept it


def test_a_whole_partial_that_fails_verification_is_fetched_again(sim, tmp_path: Path):
    playbook = sites_playbook(tmp_path, sim)
    partial = killed_after_last_byte(playbook, sim)
    good = partial.read_bytes()
    partial.write_bytes(b"\0" * len(good))  # the right size, the wrong bytes

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert (tmp_path / "reports" / "sites.zip").read_bytes() == good
    assert file_answers(sim) == [200, 416, 200]
    assert len(submits(sim)) == 1


def test_a_partial_longer_than_the_file_starts_again(sim, tmp_path: Path):
    playbook = sites_playbook(tmp_path, sim)
    partial = killed_after_last_byte(playbook, sim)
    good = partial.read_bytes()
    partial.write_bytes(good + b"junk")

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert (tmp_path / "reports" / "sites.zip").read_bytes() == good
    assert file_answers(sim) == [200, 416, 200]


def test_a_file_that_never_verifies_fails_its_step_after_bounded_fetches(sim, tmp_path: Path):
    playbook = sites_playbook(tmp_path, sim, retries=1)
    partial = killed_after_last_byte(playbook, sim)
    job_id = int(partial.name.rsplit("-", 1)[1])
    sim.replace_export_file(job_id, b"PK not a zip at all", "sites.zip")

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 1, again.stderr
    assert "not a whole .zip" in again.stderr + again.stdout
    assert "Traceback" not in again.stderr
    # the killed run's fetch; then 416, one fetch from the start, and one per retry
    assert file_answers(sim) == [200, 416, 200, 200]
    assert not list((tmp_path / "reports").glob("*.zip"))
    assert not partial.exists()


def test_the_simulator_answers_a_range_past_the_end_with_416(sim, sim_auth):
    job = call(sim, "site_permission_export", sim_auth,
               {"siteUrls": [sim.tenant.site(1).url]}).json()["id"]
    wait_done(sim, sim_auth, "site_permission_export", job)
    size = len(download(sim, sim_auth, "site_permission_export", job).content)
    for asked in (f"bytes={size}-", f"bytes={size + 10}-", f"bytes={size}-{size + 5}"):
        answer = download(sim, sim_auth, "site_permission_export", job, {"Range": asked})
        assert answer.status_code == 416, asked
        assert answer.headers["Content-Range"] == f"bytes */{size}"
    last = download(sim, sim_auth, "site_permission_export", job,
                    {"Range": f"bytes={size - 1}-"})
    assert last.status_code == 206 and len(last.content) == 1


@pytest.mark.parametrize("start_past", [0, 1000])
def test_the_big_synthetic_file_answers_416_past_its_end(start_past: int) -> None:
    size = 3 * 1024 * 1024
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=0.05,
                             export_bytes=size)) as sim:
        auth = headers(sim)
        job = call(sim, "site_permission_export", auth,
                   {"siteUrls": [sim.tenant.site(1).url]}).json()["id"]
        wait_done(sim, auth, "site_permission_export", job)
        answer = download(sim, auth, "site_permission_export", job,
                          {"Range": f"bytes={size + start_past}-"})
        assert answer.status_code == 416
        assert answer.headers["Content-Range"] == f"bytes */{size}"
        whole = download(sim, auth, "site_permission_export", job)
        assert whole.status_code == 200 and len(whole.content) == size
        with zipfile.ZipFile(io.BytesIO(whole.content)) as archive:
            assert archive.testzip() is None
