"""Child processes measured from outside: wall time, CPU (wait4) and peak RSS (VmHWM).

Every benchmark that runs the runner, the simulator or curl as a process of its own uses
``child``; ``checked`` stops the benchmark with the child's stderr when it failed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PASSWORD_VAR = "SIM_PFX_PASSWORD"  # noqa: S105 - the name of a variable, not a password


@dataclass(frozen=True)
class Child:
    code: int
    wall: float
    cpu: float
    peak_mib: float
    stdout: str
    stderr: str


def child(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
          during: Callable[[int, threading.Event], None] | None = None) -> Child:
    """Run ``argv`` to its end: its wall time, CPU time (wait4) and peak RSS.

    ``during(pid, ended)`` runs on a thread while the child runs (to interrupt it).

    The peak is the child's own ``VmHWM`` (read from /proc while it runs): wait4's
    ``ru_maxrss`` would not do, because Linux carries the parent's high-water mark into a
    child started by vfork+exec, and this parent hosts the simulator.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        peak = [0]
        watcher = threading.Thread(target=_watch_peak, args=(process.pid, peak), daemon=True)
        watcher.start()
        ended = threading.Event()
        if during is not None:
            threading.Thread(target=during, args=(process.pid, ended), daemon=True).start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        ended.set()
        watcher.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(process.returncode, wall, usage.ru_utime + usage.ru_stime,
                     peak[0] / 1024, out.read().decode(errors="replace"),
                     err.read().decode(errors="replace"))


def _watch_peak(pid: int, peak: list[int]) -> None:
    """Keep ``peak[0]`` at the process's VmHWM (kB) until it is gone (polled every 10 ms;
    the mark only grows, so the last reading is within 10 ms of the end)."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]))
                break
        else:
            return  # a zombie: its memory is gone
        time.sleep(0.01)


def checked(result: Child, what: str) -> Child:
    if result.code != 0:
        raise SystemExit(f"{what} failed ({result.code}):\n{result.stderr[-3000:]}")
    return result
