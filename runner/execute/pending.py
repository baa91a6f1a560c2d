"""What is left to do: a read-only look at the state, for ``plan --detailed-exitcode``.

A Step is done when the state says it succeeded and its file still matches (size and hash,
as a resumed run checks).  A task waiting for a ``register`` is compiled from the files its
registering task left, so a finished playbook with registers answers "nothing to do" too.
Nothing is locked or written: a run may be going on at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.errors import UserError
from runner.execute import outputs
from runner.execute.registry import read_records
from runner.execute.remote import local_output_dir, remote_for
from runner.execute.state import StateStore, StepState
from runner.execute.state.location import TenantState


def pending_steps(playbook: Any, plan: Any, state: Path | TenantState,
                  run_facts: Any = None) -> int:
    """How many Steps (and tasks not yet compilable) of ``plan`` a run would still do.
    ``state``: the tenant's state (or a state folder)."""
    from runner.plan import compile_task

    where = state if isinstance(state, TenantState) else TenantState(str(state), "", state)
    try:
        with StateStore.open(where.location, readonly=True, namespace=where.namespace) as store:
            states = store.steps()
    except UserError:  # no state yet: everything is to do
        return len(plan.steps) + len(plan.deferred)
    output_dir = local_output_dir(plan)
    remote = remote_for(plan)
    if remote is not None:  # done means: the blob is there with the committed etag
        states = {key: state for key, state in states.items()
                  if state.status != "succeeded" or
                  remote.matches(state.output or "", state.bytes, state.etag)}
    steps = list(plan.steps)
    todo = sum(1 for step in steps if not _done(step, states, output_dir, remote is None))
    waiting = list(plan.deferred)
    registered: dict[str, Any] = {}
    progress = True
    while waiting and progress:
        progress = False
        for name in {n for task in waiting for n in task.needs} - set(registered):
            value = _registered(name, steps, states, output_dir)
            if value is not None:
                registered[name] = value
        for task in [t for t in waiting if set(t.needs) <= set(registered)]:
            waiting.remove(task)
            new = compile_task(playbook, task.task_index, registered=registered,
                               run_facts=run_facts, existing=steps)
            steps.extend(new)
            todo += sum(1 for step in new if not _done(step, states, output_dir,
                                                       remote is None))
            progress = True
    return todo + len(waiting)


def _done(step: Any, states: Mapping[str, StepState], output_dir: Path,
          local: bool = True) -> bool:
    state = states.get(step.id)
    if state is None or state.status != "succeeded":
        return False
    if not local:  # checked against its blob above
        return True
    try:
        target = outputs.resolve_output(output_dir, step.output)
    except Exception:  # noqa: BLE001 - an unsafe path is simply not done
        return False
    return outputs.file_matches(target, state.bytes, state.sha256, state.mtime_ns)


def _registered(name: str, steps: list[Any], states: Mapping[str, StepState],
                output_dir: Path) -> list[Any] | None:
    """A register's value as the engine would have built it, if all its Steps are done."""
    own = sorted((s for s in steps if s.register == name), key=lambda s: s.chunk_number)
    if not own or not all(_done(s, states, output_dir) for s in own):
        return None
    values: list[Any] = []
    for step in own:
        state = states[step.id]
        if step.kind == "query":
            values.extend(read_records(outputs.resolve_output(output_dir, step.output),
                                       step.format))
        else:
            values.append({"file": step.output, "bytes": state.bytes, "sha256": state.sha256,
                           "job_id": state.job_id})
    return values
