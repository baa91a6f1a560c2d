"""``insights-runner diff``: what changed between two runs of one playbook.

Stages, each a module: ``history`` keeps a snapshot of every run's outputs (hard links, in
the state folder) so that the last two runs can be compared after the files were replaced;
``readers`` turns an output (JSON Lines, JSON, CSV, or an export's .zip through the
``convert`` code) into tables of rows; ``keys`` is the one table of each module's record
identity; ``compare`` matches rows by identity and lists added, removed and changed ones;
``render`` prints the summary, the JSON and a CSV per output.
"""
