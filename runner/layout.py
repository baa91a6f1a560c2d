"""The names the runner keeps for its own files beside a user's reports.

A playbook's output may not take one of them: a task writing ``run-report.json`` (or
``run-report.html``) would be overwritten by the run report, one writing into
``.insights-runner/`` would destroy the state.  Pure constants, read by the validator,
the engine and the state store.
"""

STATE_DIRNAME = ".insights-runner"  # the default state directory, beside the playbook
REPORT_NAME = "run-report.json"  # the run report, at the top of the output folder
REPORT_HTML_NAME = "run-report.html"  # the same for people, beside it


def reserved_output_problem(normal: str) -> str | None:
    """What is wrong with a normalised POSIX output path that takes a reserved name."""
    if normal in (REPORT_NAME, REPORT_HTML_NAME):
        return f"{normal!r} is where the run report goes; choose another name"
    if normal.split("/", 1)[0] == STATE_DIRNAME:
        return f"{normal!r} is inside {STATE_DIRNAME}/, the runner's state; choose another folder"
    return None
