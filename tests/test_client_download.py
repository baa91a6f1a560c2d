"""Export downloads: resumed after truncation, verified as .zip, named safely, atomic."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile

import pytest
from client_support import files_in, make_client, wait_terminal

from runner import catalog
from runner.client import streamcheck
from runner.client.download import _Ring, content_disposition_name, safe_name
from runner.errors import DownloadError
from runner.sim import Faults

OP = "site_permission_export"


@pytest.fixture
def finished_job(sim):
    """A client and a finished export of a dozen sites (a .zip of some size)."""
    client = make_client(sim)
    urls = [
        s["siteUrl"] for s in next(client.iter_pages("site_overview", {"page_size": 12})).records
    ]
    job_id = client.submit(OP, {"site_urls": urls})
    assert wait_terminal(client, OP, job_id) == catalog.STATUS_SUCCEEDED
    return client, job_id


def test_a_resumed_download_equals_the_original_byte_for_byte(sim, finished_job, tmp_path):
    client, job_id = finished_job
    original = client.download(OP, job_id, tmp_path / "original.zip")
    assert original.resumes == 0

    # seed 9: the first two transfers stop halfway, the third completes
    sim.set_faults(Faults(seed=9, truncate_rate=0.5))
    resumed = client.download(OP, job_id, tmp_path / "resumed.zip")
    assert resumed.resumes == 2
    assert resumed.path.read_bytes() == original.path.read_bytes()
    assert (
        resumed.sha256 == original.sha256 == hashlib.sha256(resumed.path.read_bytes()).hexdigest()
    )
    assert resumed.bytes == original.bytes
    ranged = [e for e in sim.log.requests("permission_export_file") if e.status == 206]
    assert len(ranged) == 2  # the transfer went on from where it stopped, not from zero
    assert files_in(tmp_path) == ["original.zip", "resumed.zip"]


def test_content_disposition_is_only_a_hint(sim, finished_job, tmp_path):
    client, job_id = finished_job
    out = tmp_path / "reports" / "out"
    out.mkdir(parents=True)
    first = client.download(OP, job_id, out)
    assert first.path == out / first.suggested_name and first.suggested_name.endswith(".zip")
    data = first.path.read_bytes()
    first.path.unlink()

    # the service suggests a path that climbs out of the output folder
    sim.replace_export_file(job_id, data, "../../etc/passwd")
    result = client.download(OP, job_id, out)
    assert result.path == out / "passwd"
    assert result.path.read_bytes() == data
    assert files_in(tmp_path) == ["reports", "reports/out", "reports/out/passwd"]


def test_a_file_that_is_not_a_whole_zip_is_refused_and_not_left(sim, finished_job, tmp_path):
    client, job_id = finished_job
    data = client.download(OP, job_id, tmp_path / "good.zip").path.read_bytes()
    broken = bytearray(data)
    broken[len(broken) // 3] ^= 0xFF  # one flipped byte inside a member: the CRC fails
    for body in (b"this is not a zip at all" * 40, bytes(broken)):
        sim.replace_export_file(job_id, body, "report.zip")
        with pytest.raises(DownloadError) as info:
            client.download(OP, job_id, tmp_path / "bad.zip")
        assert info.value.transient
    assert files_in(tmp_path) == ["good.zip"]  # no half file, no temporary left behind
    assert zipfile.is_zipfile(tmp_path / "good.zip")


def test_dropped_connections_during_downloads_are_retried(sim, finished_job, tmp_path):
    client, job_id = finished_job
    sim.set_faults(Faults(seed=18, drop_rate=0.5))  # the first try is dropped
    result = client.download(OP, job_id, tmp_path / "r.zip")
    assert zipfile.is_zipfile(result.path)
    assert any(e.fault == "drop" for e in sim.log.entries)


@pytest.mark.parametrize(
    ("suggested", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("C:\\Windows\\system32\\evil.zip", "evil.zip"),
        ("..", None),
        (".hidden.zip", "hidden.zip"),
        ("rep\x00ort\n.zip", "rep_ort_.zip"),
        ("レポート_1.zip", "レポート_1.zip"),
    ],
)
def test_safe_names(suggested, safe):
    assert safe_name(suggested) == safe


def test_content_disposition_prefers_the_encoded_name():
    header = "attachment; filename=\"Report_1.zip\"; filename*=UTF-8''%E3%83%AC%E3%83%9D.zip"
    assert content_disposition_name(header) == "レポ.zip"
    assert content_disposition_name('attachment; filename="../x/../../y.zip"') == "y.zip"
    assert content_disposition_name(None) is None


def test_a_file_of_many_chunks_is_hashed_and_checked_as_it_came(sim, finished_job, tmp_path):
    """Chunks go through a ring of a few buffers to the checking thread: a file of dozens of
    chunks, cut off twice on the way, still hashes to its bytes, and one flipped byte near
    its end is still caught."""
    client, job_id = finished_job
    payload = hashlib.sha512(b"seed").digest() * (3 * 2**20 // 64)  # 3 MiB, stored
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
        out.writestr("big.bin", payload)
        out.writestr("small.txt", b"after the big one")
    data = buffer.getvalue()
    sim.replace_export_file(job_id, data, "big.zip")
    sim.set_faults(Faults(seed=9, truncate_rate=0.5))  # the first two transfers stop halfway

    result = client.download(OP, job_id, tmp_path / "big.zip", chunk_size=64 * 1024)

    assert result.resumes == 2
    assert result.path.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()

    sim.set_faults(Faults())
    broken = bytearray(data)
    broken[len(payload) - 10] ^= 0xFF  # inside big.bin, in one of its last chunks
    sim.replace_export_file(job_id, bytes(broken), "big.zip")
    with pytest.raises(DownloadError, match="fails its CRC"):
        client.download(OP, job_id, tmp_path / "broken.zip", chunk_size=64 * 1024)
    assert files_in(tmp_path) == ["big.zip"]


def test_a_checker_that_lags_behind_a_broken_transfer_still_sees_every_byte(
    sim, finished_job, tmp_path, monkeypatch, caplog
):
    """CI once found a cut-off transfer put together into a file that failed its check: the
    read that met the end of the cut body used up a buffer's turn without a chunk, so a
    buffer came round again while the checking thread was still on the chunk in it.  Here
    the check is made slow (as on a loaded machine) so it is always as far behind as it may
    be: the file still verifies at the first try, with both resumes."""
    client, job_id = finished_job
    payload = hashlib.sha512(b"lag").digest() * (2 * 2**20 // 64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
        out.writestr("big.bin", payload)
    data = buffer.getvalue()
    sim.replace_export_file(job_id, data, "big.zip")
    sim.set_faults(Faults(seed=9, truncate_rate=0.5))  # the first two transfers stop halfway
    feed = streamcheck.ZipWalker.feed

    def slow_feed(walker, chunk):
        time.sleep(0.004)  # the chunk is read after the pause, when the reader has moved on
        feed(walker, chunk)

    monkeypatch.setattr(streamcheck.ZipWalker, "feed", slow_feed)

    result = client.download(OP, job_id, tmp_path / "big.zip", chunk_size=64 * 1024)

    assert "fails verification" not in caplog.text
    assert result.resumes == 2
    assert result.path.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_a_read_that_brings_nothing_keeps_its_buffer_for_the_next():
    """The ring's promise, which the checking thread leans on: between two chunks taken from
    one buffer there are always ``count - 1`` others, however many reads came back empty."""
    ring = _Ring(64 * 1024, 4)
    first = ring.free()
    ring.take(10)
    owners = []
    for _ in range(3):
        assert ring.free() is ring.free()  # an empty read: the turn stays
        owners.append(ring.free())
        ring.take(5)
    assert all(owner is not first for owner in owners)
    assert ring.free() is first
