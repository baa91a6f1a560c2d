"""The hostile corpus of issue 10, each file timed through ``insights-runner validate``.

Alias bombs, deep nesting, a huge value, a NUL byte, invalid UTF-8, a ``!!python`` tag and a
100 MB file must each be refused with exit 2 naming their line; BOM + CRLF must be accepted.
Printed as a table: the exit code, the line named, the wall time of the whole CLI process
(interpreter start included, beside a ``validate`` of an ordinary playbook) against the 1 s
budget.

    .venv/bin/python benchmarks/hostile.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hostile_support import CASES, HEAD, TASKS  # noqa: E402

BUDGET = 1.0


def validate(path: Path) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runner", "validate", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def main() -> int:
    rows, failures = [], 0
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "plain.yml"
        plain.write_text(HEAD + TASKS, encoding="utf-8")
        _, _, baseline = validate(plain)
        for case in CASES:
            path = Path(folder) / "playbook.yml"
            case.write(path)
            code, out, seconds = validate(path)
            found = re.search(re.escape(str(path)) + r":(\d+):", out)
            line = int(found.group(1)) if found else 0
            ok = seconds < BUDGET and (code == 0 if case.line == 0 else
                                       code == 2 and line == case.line)
            failures += not ok
            rows.append((case.name, code, line or "-", case.line or "-", seconds,
                         "ok" if ok else "FAIL"))
    print(f"{'input':32} {'exit':>4} {'line':>5} {'want':>5} {'time':>8}  budget 1 s")
    for name, code, line, want, seconds, verdict in rows:
        print(f"{name:32} {code:>4} {line!s:>5} {want!s:>5} {seconds * 1000:>6.0f} ms  {verdict}")
    print(f"{'(ordinary playbook, for scale)':32} {0:>4} {'-':>5} {'-':>5} "
          f"{baseline * 1000:>6.0f} ms")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
