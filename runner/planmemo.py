"""The whole compiled plan, remembered: ``run`` of an unchanged playbook skips loading,
validating and compiling it, and the yaml, jsonschema and jinja2 imports that takes.  A
re-run of a finished plan then costs little more than reading the state.

A memo is ``<state folder>/compiled/plan-<key>.json``, written after a run (only into a
state folder that exists).  Its key is what the command line says: the runner's version
and source files, the working folder, the playbook's path, ``-e``, ``-i`` and ``--limit``.
It is used only if every input the compile read is still the same: each file (playbook,
inventory, ``-e @file``, ``lookup('file')``) by the sha256 of its bytes, and each
environment variable read by ``env()`` by the sha256 of its value (``runner.inputs``).
Any other change misses it, and the plan is compiled as before.

Never memoised: a plan whose templates read ``run`` (other values each run) or use
``random``/``lipsum``, a ``max_exports`` given by a template, saved plans
(``run plan.json``) and ``run --check``.  The connection is kept masked, and what it read
is not part of the key: a plan from the memo compiles its connection again
(``MemoPlan.compiled_again``) whenever the run opens it, so secrets are never memoised,
not even as a hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import runner
from runner import inputs
from runner.steps import DeferredTask, Plan, SkippedTask, Step, freeze

MEMO_VERSION = 1
KEEP = 8  # memos per state folder (one per command line: -e, -i, --limit)
_DIRNAME = "compiled"  # shared with the deferred tasks' memo (runner.execute.registry)
_RANDOM = re.compile(r"\b(random|lipsum)\b")


@dataclass(frozen=True)
class MemoPlan(Plan):
    """A ``Plan`` read from the memo; ``compiled_again()`` gives the freshly compiled
    (playbook, plan) of its tenant, with the connection's real values."""

    compiled_again: Callable[[], tuple[Any, Any]] | None = field(
        default=None, compare=False, repr=False)


class MemoPlaybook:
    """What the engine reads of a playbook, from the memo; anything else loads the real
    one (a deferred task to compile again, a connection to open)."""

    def __init__(self, path: str, facts: Mapping[int, tuple[frozenset[str], bool]],
                 compiled_again: Callable[[], tuple[Any, Any]]) -> None:
        self.path = Path(path)
        self._facts = facts
        self._again = compiled_again

    def task_facts(self, task_index: int) -> tuple[frozenset[str], bool]:
        return self._facts[task_index]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._again()[0], name)


@dataclass(frozen=True)
class MemoTenant:
    tenant: str | None
    playbook: Any
    plan: MemoPlan


@dataclass(frozen=True)
class MemoInventory:
    path: Path
    state: str | None


@dataclass(frozen=True)
class MemoCompilation:
    """What ``run`` reads of a ``planfile.Compilation``."""

    inventory: MemoInventory | None
    run_facts: Any
    tenants: tuple[MemoTenant, ...]


class LazyRunFacts:
    """``run`` values made on first use: a plan from the memo reads none, but a deferred
    task compiled during the run may."""

    def __init__(self) -> None:
        self._facts: Any = None

    def get(self) -> Any:
        if self._facts is None:
            from runner.templating import RunFacts

            self._facts = RunFacts.now()
        return self._facts

    def as_dict(self) -> dict[str, str]:
        return self.get().as_dict()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- key


@dataclass(frozen=True)
class Call:
    """The command line a plan was compiled for."""

    playbook: str
    extra_vars: tuple[str, ...]
    inventory: str | None
    limit: str | None
    state: str | None  # --state as given (where the memo lives)

    def key(self) -> str:
        parts = [MEMO_VERSION, runner.__version__, _source_stamp(), os.getcwd(),
                 os.path.abspath(self.playbook), list(self.extra_vars),
                 None if self.inventory is None else os.path.abspath(self.inventory),
                 self.limit]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:40]

    def path(self) -> Path:
        return memo_folder(self.playbook, self.state) / f"plan-{self.key()}.json"


def memo_folder(playbook: str, state: str | None) -> Path:
    """``compiled/`` in the state folder given, else in ``.insights-runner/`` beside the
    playbook (where a PostgreSQL state keeps its local cache too)."""
    from runner.execute.state.base import default_state_dir
    from runner.execute.state.location import choose
    from runner.execute.state.postgres import is_url

    given = choose(state)
    root = default_state_dir(playbook) if given is None or is_url(given) else Path(given)
    return root / _DIRNAME


_STAMP: list[Any] = []


def _source_stamp() -> list[Any]:
    """The runner's own modules (name, size, mtime): a runner that compiles differently,
    even at the same version, misses every memo."""
    if not _STAMP:
        base = os.path.dirname(runner.__file__)
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and d != "sim")
            for name in sorted(files):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    _STAMP.append([os.path.relpath(os.path.join(folder, name), base),
                                   stat.st_size, stat.st_mtime_ns])
    return _STAMP


# ---------------------------------------------------------------------------- load


def load(call: Call) -> MemoCompilation | None:
    """The memoised plan of ``call`` if every input it was compiled from is unchanged."""
    if call.playbook.lower().endswith(".json"):  # perhaps a saved plan: planfile decides
        return None
    try:
        document = json.loads(call.path().read_bytes())
        if document.get("version") != MEMO_VERSION or not _unchanged(document):
            return None
        return _compilation(document, call)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing, unreadable or of another shape: compile


def _unchanged(document: Mapping[str, Any]) -> bool:
    for path, digest in document["files"].items():
        try:
            with open(path, "rb") as handle:
                if inputs.digest(handle.read()) != digest:
                    return False
        except OSError:
            return False
    return all(inputs.digest(os.environ.get(name)) == digest
               for name, digest in document["env"].items())


def _compilation(document: Mapping[str, Any], call: Call) -> MemoCompilation:
    again = _CompileAgain(call)
    tenants = []
    for one in document["tenants"]:
        name = one["tenant"]
        compiled_again = again.of(name, [s["id"] for s in one["plan"]["steps"]])
        facts = {int(index): (frozenset(needs), bool(pure))
                 for index, (needs, pure) in one["tasks"].items()}
        plan = _plan(one["plan"], compiled_again)
        tenants.append(MemoTenant(name, MemoPlaybook(plan.playbook, facts, compiled_again),
                                  plan))
    inventory = document["inventory"]
    return MemoCompilation(
        None if inventory is None else MemoInventory(Path(inventory["path"]),
                                                     inventory["state"]),
        again.run_facts, tuple(tenants))


def _plan(document: Mapping[str, Any], compiled_again: Callable[[], tuple[Any, Any]]
          ) -> MemoPlan:
    return MemoPlan(
        playbook=document["playbook"], name=document["name"],
        output_dir=document["output_dir"], connection=freeze(document["connection"]),
        steps=tuple(Step.from_json(s) for s in document["steps"]),
        deferred=tuple(DeferredTask(d["task_index"], d["task_name"], tuple(d["needs"]))
                       for d in document["deferred"]),
        fingerprint=document["fingerprint"],
        skipped=tuple(SkippedTask(**s) for s in document["skipped"]),
        compiled_again=compiled_again)


class _CompileAgain:
    """The plan compiled afresh from the same command line, once, on first need."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.run_facts = LazyRunFacts()
        self._lock = threading.Lock()
        self._compiled: Any = None

    def of(self, tenant: str | None, step_ids: Sequence[str]
           ) -> Callable[[], tuple[Any, Any]]:
        def compiled_again() -> tuple[Any, Any]:
            from runner.errors import PlanError

            for one in self._compile().tenants:
                if one.tenant == tenant and [s.id for s in one.plan.steps] == list(step_ids):
                    return one.playbook, one.plan
            raise PlanError(f"{self.call.playbook}: its inputs changed while it ran; run it "
                            "again")
        return compiled_again

    def _compile(self) -> Any:
        with self._lock:
            if self._compiled is None:
                from runner.planfile import compile_targets

                call = self.call
                self._compiled = compile_targets(call.playbook, call.extra_vars,
                                                 call.inventory, call.limit,
                                                 run_facts=self.run_facts.get())
            return self._compiled


# ---------------------------------------------------------------------------- save


def save(call: Call, compilation: Any, reads: inputs.Reads) -> None:
    """Remember ``compilation`` (a ``planfile.Compilation``) if it can be; a failure to
    write only costs the next run a compile."""
    from runner.execute.outputs import write_atomic
    from runner.execute.registry import task_facts

    if reads.impure or not _memoisable(call, compilation):
        return
    path = call.path()
    if not path.parent.parent.is_dir():  # no state folder (yet): nothing to put it in
        return
    inventory = compilation.inventory
    document = {
        "version": MEMO_VERSION,
        "files": reads.files,
        "env": reads.env,
        "inventory": None if inventory is None else {
            "path": str(inventory.path), "state": getattr(inventory, "state", None)},
        "tenants": [{
            "tenant": one.tenant,
            "plan": one.plan.to_json(),
            "tasks": {str(d.task_index): [sorted(facts[0]), facts[1]]
                      for d in one.plan.deferred
                      for facts in [task_facts(one.playbook, d.task_index)]},
        } for one in compilation.tenants],
    }
    try:
        path.parent.mkdir(exist_ok=True)
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        write_atomic(path, data, "memo")
        older = sorted(path.parent.glob("plan-*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in older[:-KEEP]:
            old.unlink(missing_ok=True)
    except (OSError, TypeError, ValueError):
        return


def _memoisable(call: Call, compilation: Any) -> bool:
    texts = [compilation.playbook.text, *call.extra_vars]
    if compilation.inventory is not None:
        texts.append(compilation.inventory.text)
    if any(_RANDOM.search(text) for text in texts):
        return False
    for one in compilation.tenants:  # the slots are read from the memo's connection
        written, compiled = one.playbook.connection, one.plan.connection
        if isinstance(written, Mapping) and isinstance(compiled, Mapping) and \
                written.get("max_exports") != compiled.get("max_exports"):
            return False
    return True
