"""Review, then apply: a saved plan (``plan --out plan.json``) and the check that applying
it (``run plan.json``) runs exactly what was reviewed.

A plan file is versioned JSON: what to recompile from (the playbook and inventory, relative
to the plan file, the -e values, --limit, the ``run`` values the templates saw) and what was
planned (every tenant's Steps), with fingerprints of the playbook, the inventory and the
variables.  Applying recompiles from the same inputs and refuses (exit 2) when a fingerprint
or a single Step differs.  Connection secrets never reach the file: the plan's connection
holds them as ``Secret``, which is written masked.

``compile_targets`` is the one way every command turns (playbook, -e, -i, --limit) into one
compiled plan per tenant.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner import yamlbudget
from runner.errors import Diagnostic, PlanError, UserError
from runner.inventory import Inventory, targets
from runner.manifest import Playbook, load_playbook
from runner.plan import Plan, compile_plan
from runner.templating import RunFacts

FORMAT = "insights-runner-plan"
VERSION = 1


@dataclass(frozen=True)
class Compiled:
    """One tenant's compiled plan (``tenant`` is None for an inline connection)."""

    tenant: str | None
    playbook: Playbook
    plan: Plan


@dataclass(frozen=True)
class Compilation:
    playbook: Playbook  # as loaded (before any tenant's view)
    inventory: Inventory | None
    extra_vars: tuple[str, ...]
    limit: str | None
    run_facts: RunFacts
    tenants: tuple[Compiled, ...]

    @property
    def several(self) -> bool:
        return len(self.tenants) > 1

    def fingerprints(self) -> dict[str, str]:
        """What a saved plan is checked against: the files and the variables."""
        variables = hashlib.sha256()
        variables.update(_canonical(dict(self.playbook.extra_vars)).encode())
        variables.update(b"\0" + (self.limit or "").encode())
        for compiled in self.tenants:  # each tenant's vars, as merged from the inventory
            variables.update(b"\0" + _canonical([compiled.tenant,
                                                 dict(compiled.playbook.vars)]).encode())
        return {
            "playbook": _sha(self.playbook.text),
            "inventory": _sha(self.inventory.text) if self.inventory else "",
            "variables": variables.hexdigest(),
        }

    def fingerprint(self) -> str:
        return _sha(_canonical(self.fingerprints()))


def compile_targets(playbook_path: str | Path, extra_vars: Sequence[str] = (),
                    inventory: str | Path | None = None, limit: str | None = None, *,
                    run_facts: RunFacts | None = None,
                    expand_connection: bool = True) -> Compilation:
    """Load the playbook, pick its tenants, compile one plan each (every problem at once)."""
    loaded = load_playbook(playbook_path, extra_vars)
    found_inventory, found = targets(loaded, inventory, limit)
    facts = run_facts or RunFacts.now()
    compiled = tuple(
        Compiled(t.tenant, t.playbook, compile_plan(t.playbook, run_facts=facts,
                                                    expand_connection=expand_connection))
        for t in found)
    return Compilation(loaded, found_inventory, tuple(extra_vars), limit, facts, compiled)


# ------------------------------------------------------------------------- saving


def to_json(compilation: Compilation, plan_file: Path) -> dict[str, Any]:
    base = plan_file.resolve().parent
    inventory = compilation.inventory
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "playbook": _relative(compilation.playbook.path, base),
        "inventory": _relative(inventory.path, base) if inventory else None,
        "extra_vars": list(compilation.extra_vars),
        "limit": compilation.limit,
        "run": compilation.run_facts.as_dict(),
        "fingerprint": compilation.fingerprint(),
        "fingerprints": compilation.fingerprints(),
        "tenants": [{"tenant": c.tenant, "plan": c.plan.to_json()}
                    for c in compilation.tenants],
    }


def dump(compilation: Compilation, plan_file: Path) -> str:
    return json.dumps(to_json(compilation, plan_file), indent=2, ensure_ascii=False) + "\n"


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path)


# ------------------------------------------------------------------------ applying


def is_plan_file(path: str | Path) -> bool:
    """Whether ``path`` is a saved plan (JSON with our format marker), not a playbook."""
    if not str(path).lower().endswith(".json"):
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return f'"{FORMAT}"' in head


def read(plan_file: str | Path) -> dict[str, Any]:
    try:
        text = yamlbudget.read_limited(plan_file, "saved plan")
    except OSError as exc:
        raise UserError(f"{plan_file}: cannot read the saved plan: {exc}") from None
    if isinstance(text, Diagnostic):
        raise UserError(str(text))
    try:
        saved = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{plan_file}:{exc.lineno}:{exc.colno}: cannot read the saved plan: "
                        f"{exc.msg}") from None
    except RecursionError:
        raise UserError(f"{plan_file}:1:1: the saved plan nests too deep to be one") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise UserError(f"{plan_file}: not a saved plan (make one with `insights-runner plan "
                        "PLAYBOOK --out plan.json`)")
    if saved.get("version") != VERSION:
        raise UserError(f"{plan_file}: saved plan version {saved.get('version')!r}; this "
                        f"insights-runner applies version {VERSION}: make the plan again")
    return saved


def recompile(plan_file: str | Path) -> Compilation:
    """The saved plan, compiled again from its inputs; refuses when anything changed."""
    saved = read(plan_file)
    base = Path(plan_file).resolve().parent
    playbook = base / saved["playbook"]
    inventory = base / saved["inventory"] if saved.get("inventory") else None
    if not playbook.is_file():
        raise PlanError(f"{plan_file}: the playbook it was made from, {playbook}, is gone")
    fingerprints = saved.get("fingerprints") or {}
    for what, path in (("playbook", playbook), ("inventory", inventory)):
        if path is not None and _file_sha(path) != fingerprints.get(what):
            raise PlanError(f"{plan_file}: {what} changed since the plan was made "
                            f"({path}); make a new plan and review it")
    try:
        compilation = compile_targets(playbook, saved.get("extra_vars") or (), inventory,
                                      saved.get("limit"), run_facts=_facts(saved))
    except UserError as exc:
        raise PlanError(f"{plan_file}: the playbook no longer compiles as it did when the "
                        f"plan was made:\n{exc}") from None
    now = compilation.fingerprints()
    for what in ("playbook", "inventory", "variables"):
        if now[what] != fingerprints.get(what):
            raise PlanError(f"{plan_file}: {what} changed since the plan was made; make a new "
                            "plan and review it")
    _same_steps(plan_file, saved, compilation)
    return compilation


def _facts(saved: Mapping[str, Any]) -> RunFacts:
    try:
        return RunFacts(**saved["run"])
    except (KeyError, TypeError):
        raise UserError("the saved plan has no valid 'run' values: make the plan again") from None


def _same_steps(plan_file: str | Path, saved: Mapping[str, Any],
                compilation: Compilation) -> None:
    """Files read by templates (lookup('file'), env) may change what the Steps are."""
    before = {t["tenant"]: [s["id"] for s in t["plan"]["steps"]] for t in saved["tenants"]}
    after = {c.tenant: [s.id for s in c.plan.steps] for c in compilation.tenants}
    if before.keys() != after.keys():
        raise PlanError(f"{plan_file}: the tenants changed since the plan was made "
                        f"({_names(before)} then, {_names(after)} now); make a new plan")
    for tenant, ids in before.items():
        if ids != after[tenant]:
            changed = len(set(ids) ^ set(after[tenant])) or len(ids)
            where = f" for tenant {tenant}" if tenant else ""
            raise PlanError(f"{plan_file}: the inputs changed since the plan was made{where}: "
                            f"{changed} Steps differ (a file or environment value the "
                            "templates read?); make a new plan and review it")


def _names(mapping: Mapping[str | None, Any]) -> str:
    return ", ".join(str(k) for k in mapping) or "none"


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
