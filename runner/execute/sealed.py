"""A finished plan, sealed: its re-run costs a ``stat`` per file, not a Step's work per Step.

When a run ends with every Step of its plan succeeded, the runner seals the plan in the
state folder's ``compiled/`` (beside the plan memo):

- ``sealed-<key>.json``: each output file's size and modification time (the folders'
  listing the re-run checks), and what the run report makes of the Steps when every one
  of them is reused (``runner.report.prepared``: its summary, HTML body, terminal lines);
- ``sealed-<key>.<token>.steps``: those entries' JSON, as ``run-report.json`` holds them;
- ``sealed-<key>.run``: the state's run that the seal stands for, by its id, start time and
  fingerprint (moved on by each re-run).

Its entries are, in their order, what every later re-run reports: a run in which every
Step was reused seals with its own; one that did Steps, with its re-run's, made from the
state (``runner.execute.rerun_view``), so that its first re-run is a sealed one.  The key
is the plan's (its fingerprint, Steps, deferred tasks and output folder) and the state's
(its location).  A later run uses the seal only when nothing it describes can have
changed:

- the plan comes from the plan memo (the same inputs, so the same Steps) and its deferred
  tasks compile from their registers alone (so the same Steps again, from the same files);
- the run takes the whole plan in one tenant's own report to a local folder, its state
  private (SQLite: one run at a time): no ``--tags``/``--skip-tags``, ``--fresh``,
  ``-i``, object storage or PostgreSQL state (where other runners may change Steps at
  any time);
- every file listed still has its size and modification time (the re-run check of
  ``outputs.file_matches``), as a regular file in real folders of the output folder;
- the state's run before this one is the seal's (the same id, start time and fingerprint:
  not a new state file's run of that id) and succeeded: no run of anything came between
  (``--fresh``, another playbook).

Then the run begins, moves the plan's stamp to itself, and ends in the state, and writes its
reports from the seal: no Step is decoded, read from the state or checked one by one, and
the report says what a Step-by-Step re-run would (``reused_values``).  Otherwise the run
goes the usual way, and seals the plan again if it ends finished.  The seal is a cache:
losing any of its files costs one ordinary re-run, and a crash anywhere leaves a state
whose last run is not the seal's, so the next run checks every Step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import crashpoint
from runner.execute import outputs

SEAL_VERSION = 2  # 2: a folder's files in three columns
_DIRNAME = "compiled"  # shared with the plan memo and the deferred tasks' memos


@dataclass(frozen=True)
class Seal:
    """A seal found valid for the files; ``current`` checks it against the state."""

    key: str
    token: str  # binds the three files of one seal
    run_id: int
    run: Mapping[str, Any]  # the seal's run in the state: run_id, started, fingerprint
    steps_path: Path
    report: Mapping[str, Any]  # PreparedSteps.as_json()
    paths: tuple[Path, Path, Path]  # header, run file, steps


def eligible(plan: Any, options: Any, remote: Any, where: Any) -> bool:
    """Runs a seal is made by and used in: the whole plan, one tenant, local files, a
    private state (``where``: the ``TenantState``)."""
    return (not options.tags and not options.skip_tags and options.write_report
            and options.tenant_state is None and remote is None and not options.check
            and not where.shared)


def seal_key(plan: Any, output_dir: Path, where: Any) -> str:
    ids = hashlib.sha256()
    for step in plan.steps:
        ids.update(step.id.encode() + b"\n")
    deferred = [int(task.task_index) for task in plan.deferred]
    text = json.dumps([SEAL_VERSION, str(plan.fingerprint), str(plan.playbook),
                       os.path.abspath(output_dir), ids.hexdigest(), deferred,
                       os.path.abspath(where.location), where.namespace])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _paths(state_dir: Path, key: str, token: str) -> tuple[Path, Path, Path]:
    folder = Path(state_dir) / _DIRNAME
    return (folder / f"sealed-{key}.json", folder / f"sealed-{key}.run",
            folder / f"sealed-{key}.{token}.steps")


# ------------------------------------------------------------------ the re-run


def find(plan: Any, playbook: Any, options: Any, output_dir: Path, where: Any,
         remote: Any) -> Seal | None:
    """The plan's seal, if it may stand for this run and its files are all unchanged."""
    state_dir = where.local_dir
    if state_dir is None or options.fresh or not eligible(plan, options, remote, where):
        return None
    if getattr(plan, "compiled_again", None) is None:  # not from the plan memo
        return None
    from runner.execute.registry import task_facts

    if not all(task_facts(playbook, task.task_index)[1] for task in plan.deferred):
        return None
    key = seal_key(plan, output_dir, where)
    header_path, run_path, _ = _paths(state_dir, key, "")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
        header = json.loads(header_path.read_text(encoding="utf-8"))
        if header.get("version") != SEAL_VERSION or header.get("key") != key or \
                run.get("token") != header.get("token"):
            return None
        _identity(run)  # (a run file without all of it is no seal)
        if not files_unchanged(output_dir, header["files"]):
            return None
        paths = _paths(state_dir, key, str(header["token"]))
        return Seal(key, str(header["token"]), int(run["run_id"]), run, paths[2],
                    header["report"], paths)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no seal, or one from a killed run: the run checks every Step


def files_unchanged(output_dir: Path, files: Mapping[str, Sequence[Any]]) -> bool:
    """Every file still a regular file of the size and modification time listed, in a
    folder that is itself (no symbolic link swapped in for it since).  ``files``: each
    folder's names, sizes and modification times, three lists (``FolderListing``)."""
    real_base = os.path.realpath(output_dir)
    for folder, entries in files.items():
        where = os.path.join(real_base, folder) if folder else real_base
        if os.path.realpath(os.path.join(output_dir, folder)) != where:
            return False
        try:
            descriptor = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            names, sizes, mtimes = entries
            if not len(names) == len(sizes) == len(mtimes):
                return False
            for name, size, mtime_ns in zip(names, sizes, mtimes, strict=True):
                found = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
                if found.st_size != size or found.st_mtime_ns != mtime_ns or \
                        not stat.S_ISREG(found.st_mode):
                    return False
        except OSError:
            return False
        finally:
            os.close(descriptor)
    return True


def current(store: Any, run_id: int, seal: Seal) -> Any:
    """This run's record (just begun as ``run_id``) when the run before it was the seal's,
    and succeeded; else None."""
    from runner.execute.state import RunStatus

    runs = store.runs(limit=2)
    if len(runs) != 2 or runs[0].id != run_id:
        return None
    before = runs[1]
    if not (_identity(before) == _identity(seal.run) and before.status == RunStatus.SUCCEEDED):
        return None
    return runs[0]


def _identity(run: Any) -> tuple[int, float, str]:
    """A run of the state as the seal names it: its id alone could be a new state file's."""
    if isinstance(run, Mapping):
        return int(run["run_id"]), float(run["started"]), str(run["fingerprint"])
    return int(run.id), float(run.started), str(run.fingerprint)


def _run_file(run: Any, token: str) -> bytes:
    run_id, started, fingerprint = _identity(run)
    return json.dumps({"run_id": run_id, "started": started, "fingerprint": fingerprint,
                       "token": token}).encode()


def prepared_steps(seal: Seal) -> Any:
    """The report's entries, from the seal (None when its steps file is gone or cut)."""
    from runner.report.prepared import open_prepared

    try:
        return open_prepared(seal.report, seal.steps_path)
    except (KeyError, TypeError, ValueError):
        return None


def advance(seal: Seal, run: Any) -> None:
    """The seal now stands for ``run`` (this run's record; a failure only costs the next
    run a check)."""
    with contextlib.suppress(OSError):
        _write(seal.paths[1], _run_file(run, seal.token))


# ------------------------------------------------------------------ sealing


def seal(result: Any, plan: Any, store: Any, run_id: int, output_dir: Path,
         where: Any, rows: Sequence[Any] | None = None) -> Any:
    """Seal a finished run: the report's entries as every re-run gives them
    (``PreparedSteps``), or None when not sealed (a file no longer as the state recorded
    it: changed during the run).  ``rows``: the re-run's (``runner.execute.rerun_view``)
    when this run did Steps; by default its own, when it reused every Step."""
    from runner.execute.rerun_view import NotFinished

    if result.skipped_tasks or result.interrupted:
        return None
    if rows is None:
        rows = list(result.outcomes)
        if any(o.status != "succeeded" or not o.reused for o in rows):
            return None
    if not rows:
        return None
    try:
        return _seal(rows, result, store, run_id, output_dir, where, plan)
    except NotFinished:  # (the state changed under the run: no seal)
        return None


def _seal(done: Sequence[Any], result: Any, store: Any, run_id: int, output_dir: Path,
          where: Any, plan: Any) -> Any:
    from runner.execute.postprocess import MARKER, folder_for
    from runner.report import build_report
    from runner.report.prepared import prepare

    runs = store.runs(limit=1)
    if not runs or runs[0].id != run_id:
        return None
    base = Path(output_dir)
    root = str(base)
    files: dict[str, FolderListing] = {}

    def listed(relative: str) -> os.stat_result:
        found = os.lstat(os.path.join(root, relative))
        folder = relative.rpartition("/")[0]
        listing = files.get(folder)
        if listing is None:
            listing = files[folder] = FolderListing(folder)
        listing.add(relative, found)
        return found

    try:
        for outcome in done:
            output = outcome.step.output
            if not output:
                return None
            # Outputs and extracted files are normalised POSIX paths, relative to the
            # output folder (manifest.output_problem, postprocess): listed as they are.
            made = listed(str(output))
            for extracted in outcome.files:
                listed(str(extracted))
            if outcome.files:
                marker = folder_for(Path(output)) / MARKER
                if (base / marker).exists():
                    listed(marker.as_posix())
            # Checked when the run reused it; looked at again, as it may have changed since
            if made.st_size != outcome.bytes or not stat.S_ISREG(made.st_mode):
                return None
            if made.st_mtime_ns != outcome.mtime_ns and \
                    outputs.hash_file(base / output) != (outcome.bytes, outcome.sha256):
                return None  # (touched, the same bytes: sealed with its new time)
    except OSError:
        return None
    report = build_report(playbook=result.playbook, run_id=None, started=None,
                          finished=None, status="succeeded", rows=done, name=result.name,
                          statuses=getattr(done, "statuses", None))
    key = seal_key(plan, output_dir, where)
    token = secrets.token_hex(6)
    header_path, run_path, steps_path = _paths(where.local_dir, key, token)
    prepared = None
    try:
        header_path.parent.mkdir(parents=True, exist_ok=True)
        prepared = prepare(report, base, steps_path)
        del report  # (its entries: the largest thing this run holds, at 200,000 Steps)
        crashpoint.hit("seal")  # its entries written, not yet its header
        _write_pieces(header_path, _header_pieces(key, token, files, prepared.as_json()))
        _write(run_path, _run_file(runs[0], token))
    except OSError:
        if prepared is not None:
            prepared.close()
        return None
    for old in header_path.parent.glob(f"sealed-{key}.*.steps"):
        if old != steps_path:
            old.unlink(missing_ok=True)
    return prepared


def _write(path: Path, data: bytes) -> None:
    outputs.write_atomic(path, data, "seal")


def _write_pieces(path: Path, pieces: Iterable[str]) -> None:
    with outputs.AtomicFile(path, outputs.own_partial_id("seal")) as out:
        for piece in pieces:
            out.write(piece.encode("utf-8"))
    outputs.remove_stale_partials(path, "seal")


class FolderListing:
    """A folder's files as the seal lists them: names, sizes and modification times in
    three columns (a list of three for each of 200,000 files was 40 MB).  A name is kept as
    the output-relative path it was listed by (the Step's own string, held anyway) and cut
    to the folder's name when written: not a second string a file."""

    __slots__ = ("paths", "cut", "sizes", "mtimes")

    def __init__(self, folder: str) -> None:
        self.paths: list[str] = []
        self.cut = len(folder) + 1 if folder else 0
        self.sizes = array("q")
        self.mtimes = array("q")

    def add(self, relative: str, found: os.stat_result) -> None:
        self.paths.append(relative)
        self.sizes.append(found.st_size)
        self.mtimes.append(found.st_mtime_ns)

    def column(self, which: int, start: int, stop: int) -> list[Any]:
        """A slice of a column: 0 the names (cut to the folder's), 1 sizes, 2 mtimes."""
        if which == 0:
            cut = self.cut
            return [path[cut:] for path in self.paths[start:stop]]
        return (self.sizes if which == 1 else self.mtimes)[start:stop].tolist()


_HEADER_SLICE = 4096  # a folder's files written at a time: its listing's text never whole


def _header_pieces(key: str, token: str, files: Mapping[str, FolderListing],
                   report: Mapping[str, Any]) -> Iterator[str]:
    """The header's JSON text a few thousand files at a time (each folder's three columns
    as ``json.dumps`` writes them), not the whole listing's text at once."""
    yield json.dumps({"version": SEAL_VERSION, "key": key, "token": token,
                      "report": report}, ensure_ascii=False)[:-1] + ', "files": {'
    for number, (folder, listing) in enumerate(files.items()):
        yield ("" if number == 0 else ", ") + json.dumps(folder, ensure_ascii=False) + ": ["
        for which in range(3):
            yield ", [" if which else "["
            for start in range(0, len(listing.paths), _HEADER_SLICE):
                text = json.dumps(listing.column(which, start, start + _HEADER_SLICE),
                                  ensure_ascii=False)
                yield (", " if start else "") + text[1:-1]
            yield "]"
        yield "]"
    yield "}}"
