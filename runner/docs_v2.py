"""README's "Moving to the Graph API" tables, generated from the catalog so they cannot
drift: each module on both generations, the v2-only modules' fields, and the open
questions of the v2 reference with the project's answer (``tests/test_docs_v2.py`` keeps
README equal to these)."""

from __future__ import annotations

from runner import catalog, schema
from runner.catalog import questions, v2


def _route(op: catalog.Operation) -> str:
    if op.splits:
        return " + ".join(_route(catalog.operation(s.operation, op.generation))
                          for s in op.splits)
    return f"{op.method} `{op.path}`"


def _per_request(op: catalog.Operation) -> str:
    capped = [f"{f.name} {f.cap}" for f in op.fields if f.cap is not None]
    if op.splits:
        capped = ["one user or one object"]
    return ", ".join(capped) or "-"


def generations_markdown() -> str:
    """One row per module: its v1 and v2 routes and what one request (job) takes."""
    lines = ["| module | v1 (Web API) | per v1 request | v2 (Graph API) | per v2 request |",
             "|---|---|---|---|---|"]
    for name in catalog.all_module_names():
        cells = [f"`{name}`"]
        for generation in catalog.GENERATIONS.values():
            if generation.has(name) and generation.get(name).is_module:
                op = generation.get(name)
                cells += [_route(op) + (" **(writes)**" if op.changes_tenant else ""),
                          _per_request(op)]
            elif name in generation.unavailable:
                cells += ["none: " + generation.unavailable[name].split(": ", 1)[-1], "-"]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def v2_only_markdown() -> str:
    """The fields of the modules only v2 has."""
    only = tuple(op for op in catalog.modules("v2") if not catalog.V1.has(op.name))
    return schema.modules_markdown(only)


def refused_markdown() -> str:
    """What a v2 connection refuses in a task written for v1, and what to do instead."""
    lines = ["| module | field | on v2 |", "|---|---|---|",
             f"| every module | `language` | {v2.NO_LANGUAGE} |"]
    for op in catalog.modules("v2"):
        for field, why in op.v1_only.items():
            if field != "language":
                lines.append(f"| `{op.name}` | `{field}` | {why} |")
        if op.filters and catalog.V1.has(op.name):
            dropped = [f.name for f in catalog.V1.get(op.name).filters
                       if f.name not in {g.name for g in op.filters}]
            if dropped:
                lines.append(f"| `{op.name}` | `filters` | keeps only "
                             f"{', '.join(f.name for f in op.filters)}; "
                             f"{', '.join(dropped)} are refused |")
    for (module, field), why in v2.REQUIRED_ON_V2.items():
        lines.append(f"| `{module}` | `{field}` | {why} |")
    return "\n".join(lines) + "\n"


def questions_markdown() -> str:
    lines = ["| § 10 | question | settled |", "|---|---|---|"]
    for number, (question, answer) in sorted(questions.SETTLED.items()):
        lines.append(f"| {number} | {question} | {answer} |")
    return "\n".join(lines) + "\n"


BLOCKS = {
    "generations": generations_markdown,
    "v2-refused": refused_markdown,
    "v2-modules": v2_only_markdown,
    "v2-questions": questions_markdown,
}
