"""Downloads (issue 14, item 2): the runner's client beside curl, same URL, same run.

A synthetic export (``SimConfig.export_bytes``, default 1 GiB) is served by the simulator in
a process of its own, as a real service would be elsewhere.  Each round fetches it, one
after the other: with ``curl -o``; with ``curl -o`` then ``sync FILE`` (curl leaves the
file in the page cache; the runner fsyncs before the rename, so this is the durable
reference); with the runner's client in a child process (whole process: interpreter start,
imports, token, request, sha256 and .zip CRCs while streaming, fsync, rename); and, with no
network, a plain write + fsync of as many bytes (what the disk allows a durable copy).
``--against DIR`` adds another checkout's client to each round (old and new side by side).
The rows give each party's median over the rounds, with the simulator's own CPU.  Every
round is run on the disk (under TMPDIR) and again on /dev/shm where that is a tmpfs: the
same figures without the disk, so what the client's CPU allows.

    .venv/bin/python benchmarks/downloads.py [--export-mib 1024] [--rounds 3] [--against DIR]

``benchmarks/run_all.py`` prints the same rows (``download_figures``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from children import PASSWORD_VAR  # noqa: E402


def serve(mib: int) -> int:
    """(In the simulator's process) serve a finished export of ``mib`` MiB until stdin ends;
    print what the parties need to fetch it as one JSON line."""
    from runner.client.api import InsightsClient
    from runner.client.connection import settings_for_simulator
    from runner.sim import SimConfig, Simulator

    with Simulator(SimConfig(export_bytes=mib * 2**20, job_seconds=0)) as sim:
        with InsightsClient(settings_for_simulator(sim)) as client:
            job = client.submit("link_export", {"exportLinkType": "64"})
            while client.job_status("link_export", job) == 1:
                time.sleep(0.01)
            bearer = str(client.auth.token().value.reveal())
        print(json.dumps({
            "base_url": sim.base_url, "identity_url": sim.identity_url,
            "client_id": sim.client_id, "pfx": str(sim.credentials.pfx_path),
            "password": sim.credentials.pfx_password, "job": str(job), "bearer": bearer,
            "url": f"{sim.url('permission_export_file')}?id={job}"}), flush=True)
        sys.stdin.read()
    return 0


def child_download(job_id: str, dest: str) -> int:
    """(In a child process) download one export with the runner's client."""
    from types import SimpleNamespace

    from runner.client.api import InsightsClient
    from runner.client.connection import settings_for_simulator

    spec = json.loads(os.environ["BENCH_SIM"])
    sim = SimpleNamespace(base_url=spec["base_url"], identity_url=spec["identity_url"],
                          client_id=spec["client_id"], credentials=SimpleNamespace(
                              pfx_path=spec["pfx"], pfx_password=os.environ[PASSWORD_VAR]))
    with InsightsClient(settings_for_simulator(sim)) as client:
        started = time.perf_counter()
        client.download("link_export", int(job_id), Path(dest))
        print(json.dumps({"seconds": time.perf_counter() - started}))
    return 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_write(path: Path, size: int) -> float:
    """Seconds to write ``size`` bytes to ``path`` and fsync it: no network, no check (what
    any durable copy of the file costs on this disk)."""
    block = memoryview(os.urandom(1 << 20))
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for at in range(0, size, len(block)):
            os.write(fd, block[:size - at])
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def download_figures(work: Path, mib: int, row: Callable[..., None], *, rounds: int = 3,
                     against: Path | None = None) -> None:
    """Rows for the disk (files under ``work``) and, where /dev/shm is a tmpfs, for memory
    (the same without the disk: what the client's CPU allows)."""
    print(f"downloads: {mib} MiB, {rounds} rounds", file=sys.stderr)
    places = [("", work)]
    if " /dev/shm tmpfs " in Path("/proc/mounts").read_text():
        places.append((" to tmpfs", Path("/dev/shm")))
    with served(mib) as (server, spec):
        for label, place in places:
            with tempfile.TemporaryDirectory(prefix="insights-bench-", dir=place) as folder:
                runs, disk = _rounds(Path(folder), server, spec, mib, rounds, against)
            _rows(row, runs, disk, mib, label)


def _rounds(dest: Path, server: int, spec: dict, mib: int, rounds: int,
            against: Path | None) -> tuple[dict[str, list], list[float]]:
    """Each party fetches the export once a round, one after the other, into ``dest``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from children import checked, child

    size = mib * 2**20
    env = {**os.environ, PASSWORD_VAR: spec["password"], "NO_COLOR": "1",
           "BENCH_SIM": json.dumps(spec)}
    curl = shutil.which("curl")
    fetch = [curl, "-sS", "-f", "-H", f"Authorization: Bearer {spec['bearer']}", spec["url"]]
    parties: dict[str, list[str]] = {}
    if curl:
        parties["curl"] = [*fetch, "-o", str(dest / "curl.zip")]
        parties["curl + sync"] = ["sh", "-c", '"$@" && sync "$0"', str(dest / "curl.zip"),
                                  *fetch, "-o", str(dest / "curl.zip")]
    ours = ["--child-download", spec["job"], str(dest / "runner.zip")]
    parties["runner"] = [sys.executable, __file__, *ours]
    if against is not None:
        parties["against"] = [sys.executable, __file__, "--root", str(against), *ours]
    runs: dict[str, list] = {name: [] for name in parties}
    disk: list[float] = []
    for _ in range(rounds):
        for name, argv in parties.items():
            before = _cpu_seconds(server)
            result = checked(child(argv, env=env), name)
            served = _cpu_seconds(server) - before
            output = dest / ("curl.zip" if name.startswith("curl") else "runner.zip")
            if output.stat().st_size != size:
                raise SystemExit(f"{name}: the download has the wrong size")
            output.unlink()
            runs[name].append((result, served))
        disk.append(disk_write(dest / "disk.bin", size))
    return runs, disk


def _rows(row: Callable[..., None], runs: dict[str, list], disk: list[float], mib: int,
          label: str) -> None:
    def median(name: str, pick: Callable) -> float:
        return statistics.median(pick(result, served) for result, served in runs[name])

    def rate(name: str) -> float:
        return mib / median(name, lambda r, s: r.wall)

    def costs(name: str, peak: bool = True) -> str:
        rss = f"peak RSS {median(name, lambda r, s: r.peak_mib):.0f} MiB; " if peak else ""
        return (f"CPU {median(name, lambda r, s: r.cpu):.2f} s; {rss}simulator CPU "
                f"{median(name, lambda r, s: s):.2f} s")

    rounds = len(disk)
    name = f"download {mib} MiB{label}"
    ours = rate("runner")
    walls = ", ".join(f"{r.wall:.2f}" for r, _ in runs["runner"])
    inside = statistics.median(json.loads(r.stdout)["seconds"] for r, _ in runs["runner"])
    row(f"{name}, runner", f"{ours:,.0f} MiB/s",
        f"whole process (median of {rounds}: {walls} s); {mib / inside:,.0f} MiB/s from the "
        f"request to the verified file (sha256 and .zip CRCs while streaming, fsync); "
        f"{costs('runner')}")
    if "against" in runs:
        row(f"{name}, the other checkout", f"{rate('against'):,.0f} MiB/s",
            f"{costs('against')}; runner/this {ours / rate('against'):.2f}")
    if "curl" in runs:
        row(f"{name}, curl (same URL)", f"{rate('curl'):,.0f} MiB/s",
            f"{costs('curl')}; runner/curl {ours / rate('curl'):.2f} (goal >= 0.9)")
        row(f"{name}, curl + sync (same URL)", f"{rate('curl + sync'):,.0f} MiB/s",
            f"curl, then `sync FILE` (durable, as the runner's fsync); "
            f"{costs('curl + sync', peak=False)}; runner/this {ours / rate('curl + sync'):.2f}")
    else:
        row("download, curl", "n/a", "curl is not installed")
    written = mib / statistics.median(disk)
    row(f"write + fsync {mib} MiB{label}", f"{written:,.0f} MiB/s",
        f"no network, no check: what a durable copy costs here (median of {rounds}: "
        f"{', '.join(f'{seconds:.2f}' for seconds in disk)} s); runner/this "
        f"{ours / written:.2f}")


@contextlib.contextmanager
def served(mib: int) -> Iterator[tuple[int, dict[str, str]]]:
    """A simulator in a process of its own serving a finished ``mib`` MiB export: its pid
    and what the parties need to fetch it (``serve``)."""
    server = subprocess.Popen([sys.executable, __file__, "--child-sim", str(mib)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.pid, json.loads(server.stdout.readline())
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


def _cpu(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def _fetch_body(spec: dict[str, str], write: int | None) -> None:
    """The export's body read as the runner reads it (into a ring), written to ``write``."""
    import requests

    from runner.client.download import CHUNK_SIZE, _body, _Ring

    headers = {"Authorization": f"Bearer {spec['bearer']}", "Accept-Encoding": "identity"}
    with requests.get(spec["url"], headers=headers, stream=True, timeout=60) as response:
        for chunk in _body(response, _Ring(CHUNK_SIZE, 4)):
            if write is not None:
                os.write(write, chunk)


def stage_figures(work: Path, mib: int, row: Callable[..., None]) -> None:
    """Where the runner's time goes, per stage, in this process (``time.process_time``): the
    body read into the ring; read and written; sha256 and CRC-32 over as many bytes; and
    the fixed cost of a whole process that downloads a 1 MiB export."""
    import hashlib
    import zlib

    from children import checked, child
    from zlib_ng import zlib_ng

    per_gib = 1024 / mib
    with served(mib) as (_, spec):
        read = _cpu(lambda: _fetch_body(spec, None))
        row("stage: body read into the ring", f"{read * per_gib:.2f} s",
            "CPU per GiB: readinto from http.client (under urllib3)")
        for label, place in (("disk", work), ("tmpfs", Path("/dev/shm"))):
            target = place / f"stage-{os.getpid()}.bin"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                seconds = _cpu(lambda: _fetch_body(spec, fd))  # noqa: B023 - called at once
            finally:
                os.close(fd)
                target.unlink()
            row(f"stage: body read and written ({label})", f"{seconds * per_gib:.2f} s",
                "CPU per GiB: the main thread's work (no fsync)")
    block = memoryview(os.urandom(1 << 20))
    digest = hashlib.sha256()
    sha = _cpu(lambda: [digest.update(block) for _ in range(mib)])
    row("stage: sha256", f"{sha * per_gib:.2f} s",
        "CPU per GiB: OpenSSL's, 1 MiB pieces (the checking thread)")
    for name, crc32 in (("zlib-ng", zlib_ng.crc32), ("zlib", zlib.crc32)):
        crc = _cpu(lambda: [crc32(block) for _ in range(mib)])  # noqa: B023 - called at once
        row(f"stage: CRC-32, {name}", f"{crc * per_gib:.2f} s", "CPU per GiB, 1 MiB pieces")
    with served(1) as (_, spec):
        env = {**os.environ, PASSWORD_VAR: spec["password"], "BENCH_SIM": json.dumps(spec)}
        argv = [sys.executable, __file__, "--child-download", spec["job"], str(work / "1.zip")]
        runs = []
        for _ in range(3):
            runs.append(checked(child(argv, env=env), "the runner's download"))
            (work / "1.zip").unlink()
    row("fixed cost: a whole process downloading 1 MiB",
        f"{statistics.median(r.cpu for r in runs):.2f} s CPU",
        f"wall {statistics.median(r.wall for r in runs):.2f} s (median of 3): interpreter, "
        "imports, .pfx, token, request, fsync, rename")


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--root"]:  # a child of another checkout (--against)
        sys.path.insert(0, argv[1])
        argv = argv[2:]
    else:
        sys.path.insert(0, str(ROOT))
    if argv[:1] == ["--child-download"]:
        return child_download(argv[1], argv[2])
    if argv[:1] == ["--child-sim"]:
        return serve(int(argv[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout's runner, side by side")
    parser.add_argument("--stages", action="store_true",
                        help="also the CPU of each stage, measured in this process")
    options = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []

    def row(figure: str, value: str, note: str = "") -> None:
        rows.append((figure, value, note))
        print(f"  {figure}: {value}  {note}", file=sys.stderr, flush=True)

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="insights-bench-") as directory:
        download_figures(Path(directory), options.export_mib, row, rounds=options.rounds,
                         against=options.against)
        if options.stages:
            stage_figures(Path(directory), options.export_mib, row)
    print(f"\nDownloads ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after):\n")
    print("| figure | value | note |\n|---|---|---|")
    for figure, value, note in rows:
        print(f"| {figure} | {value} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
