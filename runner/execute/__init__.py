"""Running a plan: the scheduler, the state store (``state``) and the files (``outputs``).

These are the only modules of the runner, with the client, that do I/O while a plan runs.
"""
