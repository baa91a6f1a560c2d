"""Time to validate and compile a playbook with 100,000 site URLs and 100,000 emails.

The lists are read from files with lookup('file', ...).splitlines(), as users would.
Expected: 2,000 Steps (1,000 per task, 100 values each), well under a second.

    python benchmarks/compile.py [--sites N] [--emails N] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.manifest import load_playbook  # noqa: E402
from runner.plan import compile_plan  # noqa: E402
from runner.templating import RunFacts  # noqa: E402

PLAYBOOK = """\
version: 1
name: Benchmark
connection: {simulator: true}
vars:
  sites: "{{ lookup('file', 'sites.txt').splitlines() }}"
tasks:
  - name: Site permission reports
    site_permission_export:
      site_urls: "{{ sites }}"
      language: en-US
    output: "sites/part-{{ chunk.number }}-of-{{ chunk.total }}.zip"
  - name: User access reports
    user_access_export:
      emails: "{{ lookup('file', 'emails.txt').splitlines() }}"
      data_sources: [teams, sharepoint, onedrive]
      export_option: summary_and_site_level
    output: "users/part-{{ chunk.number }}.zip"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    facts = RunFacts("2025-01-31", "08-00-00", "2025-01-31T08:00:00Z", "bench")
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "sites.txt").write_text(
            "".join(f"https://contoso.sharepoint.com/sites/site{i:06d}\n"
                    for i in range(1, options.sites + 1)), encoding="utf-8")
        (root / "emails.txt").write_text(
            "".join(f"user{i:06d}@contoso.onmicrosoft.com\n"
                    for i in range(1, options.emails + 1)), encoding="utf-8")
        playbook = root / "bench.yml"
        playbook.write_text(PLAYBOOK, encoding="utf-8")
        timings = []
        for _ in range(options.repeat):
            started = time.perf_counter()
            plan = compile_plan(load_playbook(playbook), run_facts=facts)
            timings.append(time.perf_counter() - started)
    best, first = min(timings), timings[0]
    print(f"validate + compile: {options.sites:,} site URLs and {options.emails:,} emails -> "
          f"{len(plan.steps):,} Steps in {best:.3f} s (best of {options.repeat}; "
          f"first, cold: {first:.3f} s)")
    expected = -(-options.sites // 100) + -(-options.emails // 100)
    if len(plan.steps) != expected:
        print(f"expected {expected} Steps", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
