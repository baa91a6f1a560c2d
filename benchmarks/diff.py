"""What ``insights-runner diff`` costs on a large output, beside what reading it costs.

Writes the detail records of a tenant and of the same tenant drifted (``--drift 3``: about
one object in twenty raised to high risk) as two JSON Lines outputs, then measures, side by
side in one run: parsing both files once with ``json.loads`` (the floor: diff must read
them), and ``insights-runner diff A B --summary`` as a user runs it.  Prints the seconds,
the ratio, and diff's peak memory against the files' size.  The parse keeps nothing.

    .venv/bin/python benchmarks/diff.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.sim.drift import DriftedTenant  # noqa: E402
from runner.sim.records import detail_record  # noqa: E402
from runner.sim.tenant import Tenant, sized_scale  # noqa: E402

PARSE = ("import json, sys\n"
         "for name in sys.argv[1:]:\n"
         "    with open(name, encoding='utf-8') as f:\n"
         "        for line in f:\n"
         "            json.loads(line)\n")


def write(folder: Path, tenant: Tenant) -> Path:
    folder.mkdir()
    path = folder / "records.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for s in range(tenant.site_count):
            for j in range(tenant.site(s).object_count):
                handle.write(json.dumps(detail_record(tenant.object(s, j))) + "\n")
    report = {"steps": [{"id": "1", "task": "records", "operation": "detail_records",
                         "status": "succeeded", "output": "records.jsonl"}]}
    (folder / "run-report.json").write_text(json.dumps(report), encoding="utf-8")
    return path


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    scale = sized_scale(objects=args.records)
    with tempfile.TemporaryDirectory(prefix="bench-diff-") as root:
        a = write(Path(root) / "a", Tenant(7, scale))
        b = write(Path(root) / "b", DriftedTenant(7, scale, 3))
        size = a.stat().st_size + b.stat().st_size
        diff, out = timed([sys.executable, "-m", "runner", "diff", str(a.parent),
                           str(b.parent), "--summary"])
        # the largest child so far is diff (Linux: KiB); the parse, run after, holds less
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        parse, _ = timed([sys.executable, "-c", PARSE, str(a), str(b)])
    print(out.strip().splitlines()[-1])
    print(f"{args.records:,} records a side, {size / 1e6:.0f} MB in all")
    print(f"parse both files once: {parse:6.2f} s")
    print(f"insights-runner diff:  {diff:6.2f} s  ({diff / parse:.1f}x the parse)")
    print(f"diff's peak memory:    {peak / 1e6:.0f} MB ({peak / size:.1f}x the files' size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
