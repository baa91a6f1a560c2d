"""CPU per small request of each HTTP layer the runner could stand on (issue 14, item 4):
``requests.Session``, ``urllib3.PoolManager``, bare ``http.client`` and the runner's own
``runner.client.session.Session``, each keeping its connection, against the simulator in a
process of its own.  Rounds alternate the layers; the figure is the median of the rounds'
CPU (this process's, ``process_time``) divided by the requests.

    .venv/bin/python benchmarks/http_layers.py [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVE = """
import json, sys
from runner.sim import SimConfig, Simulator
with Simulator(SimConfig(seed=1, scale="small")) as sim:
    print(json.dumps({"url": sim.identity_url}), flush=True)
    sys.stdin.read()
"""


def layers(url: str) -> dict[str, Callable[[], object]]:
    import requests
    import urllib3

    from runner.client.session import Session

    parts = urlsplit(url)
    with_requests, pool, ours = requests.Session(), urllib3.PoolManager(), Session()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)

    def bare() -> object:
        connection.request("GET", parts.path, headers={"Accept": "application/json"})
        return json.loads(connection.getresponse().read())

    return {
        "requests.Session": lambda: with_requests.get(url, timeout=10).json(),
        "urllib3.PoolManager": lambda: json.loads(pool.request("GET", url, timeout=10).data),
        "http.client (bare)": bare,
        "runner Session": lambda: ours.request("GET", url, timeout=10).json(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVE], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        url = json.loads(server.stdout.readline())["url"] + "/.well-known/openid-configuration"
        calls = layers(url)
        for call in calls.values():  # connections made, caches warm
            call()
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(options.rounds):
            for name, call in calls.items():
                started = time.process_time()
                for _ in range(options.requests):
                    call()
                cpu[name].append((time.process_time() - started) / options.requests * 1e6)
    finally:
        server.communicate("")
    base = statistics.median(cpu["requests.Session"])
    print(f"CPU per GET of the discovery document (JSON, keep-alive), "
          f"{options.requests} x {options.rounds} rounds, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:")
    for name, figures in cpu.items():
        median = statistics.median(figures)
        print(f"  {name:22s} {median:6.0f} us   requests/this {base / median:4.2f}   "
              f"rounds {', '.join(f'{f:.0f}' for f in figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
