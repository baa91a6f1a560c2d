"""A download's .zip CRCs are checked while it streams, not by reading the file back; what
the stream cannot show is still read back, and a corrupt .zip is refused either way."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from client_support import files_in, make_client, wait_terminal

from runner import catalog
from runner.errors import DownloadError
from runner.sim import Faults

OP = "link_export"


@pytest.fixture
def job(sim):
    client = make_client(sim)
    job_id = client.submit(OP, {"link_type": "anyone"})
    assert wait_terminal(client, OP, job_id) == catalog.STATUS_SUCCEEDED
    return client, job_id


@pytest.fixture
def read_backs(monkeypatch) -> list[str]:
    """The files whose members were tested by reading them back (``ZipFile.testzip``)."""
    calls: list[str] = []
    real = zipfile.ZipFile.testzip

    def testzip(self):
        calls.append(str(self.filename))
        return real(self)

    monkeypatch.setattr(zipfile.ZipFile, "testzip", testzip)
    return calls


def archive(method: int, *, streamed: bool = False) -> bytes:
    """A .zip of three reports (one large); ``streamed``: sizes in data descriptors, as a
    writer that cannot seek leaves them."""
    members = {"a.xlsx": b"sheet " * 50_000, "b é.csv": bytes(range(256)) * 900,
               "empty.txt": b""}
    if not streamed:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", method) as out:
            for name, data in members.items():
                out.writestr(name, data)
        return buffer.getvalue()

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, chunk) -> int:
            self.data += chunk
            return len(chunk)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", method) as out:
        for name, data in members.items():
            with out.open(name, "w") as member:
                member.write(data)
    return bytes(sink.data)


def flipped(data: bytes, member: str) -> bytes:
    """``data`` with one byte flipped inside ``member``'s stored or compressed bytes."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    at = info.header_offset + 30 + len(info.orig_filename.encode()) + len(info.extra) \
        + info.compress_size // 2
    broken = bytearray(data)
    broken[at] ^= 0xFF
    return bytes(broken)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_crcs_are_checked_while_streaming_and_a_bad_one_is_refused(
        sim, job, tmp_path: Path, read_backs: list[str], method: int) -> None:
    client, job_id = job
    good = archive(method)
    sim.replace_export_file(job_id, good, "report.zip")
    done = client.download(OP, job_id, tmp_path / "good.zip")
    assert done.path.read_bytes() == good
    assert done.sha256 == hashlib.sha256(good).hexdigest()

    for member in ("a.xlsx", "b é.csv"):
        sim.replace_export_file(job_id, flipped(good, member), "report.zip")
        with pytest.raises(DownloadError, match=f"{member}' fails its CRC"):
            client.download(OP, job_id, tmp_path / "bad.zip")

    assert read_backs == []  # every verdict came from the stream
    assert files_in(tmp_path) == ["good.zip"]


def test_members_sized_after_their_data_are_read_back(sim, job, tmp_path: Path,
                                                      read_backs: list[str]) -> None:
    client, job_id = job
    good = archive(zipfile.ZIP_DEFLATED, streamed=True)
    sim.replace_export_file(job_id, good, "report.zip")
    assert client.download(OP, job_id, tmp_path / "good.zip").path.read_bytes() == good
    assert len(read_backs) == 1

    sim.replace_export_file(job_id, flipped(good, "b é.csv"), "report.zip")
    with pytest.raises(DownloadError, match="corrupt"):
        client.download(OP, job_id, tmp_path / "bad.zip")
    assert files_in(tmp_path) == ["good.zip"]


def test_a_resumed_download_is_checked_from_its_first_byte(sim, job, tmp_path: Path,
                                                           read_backs: list[str]) -> None:
    client, job_id = job
    good = archive(zipfile.ZIP_STORED)
    sim.replace_export_file(job_id, good, "report.zip")
    sim.set_faults(Faults(seed=9, truncate_rate=0.5))  # two transfers stop halfway
    done = client.download(OP, job_id, tmp_path / "good.zip")
    assert done.resumes == 2 and done.path.read_bytes() == good
    assert done.sha256 == hashlib.sha256(good).hexdigest()

    sim.replace_export_file(job_id, flipped(good, "a.xlsx"), "report.zip")
    sim.set_faults(Faults(seed=9, truncate_rate=0.5))
    with pytest.raises(DownloadError, match="a.xlsx' fails its CRC"):
        client.download(OP, job_id, tmp_path / "bad.zip")
    assert read_backs == []
