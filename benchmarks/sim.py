"""How fast the simulator answers, so later benchmarks know it is not their bottleneck.

Prints requests per second for a query page and for a status poll (one requests.Session
against the embedded server, a bounded number of requests), records per second of a
large tenant's detail records, and the time to build a 10 MB export file.

    .venv/bin/python benchmarks/sim.py [--requests N]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.serialization import pkcs12

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import catalog  # noqa: E402
from runner.sim import SimConfig, Simulator  # noqa: E402
from runner.sim.jobs import Job  # noqa: E402
from runner.sim.reports import Reports  # noqa: E402
from runner.sim.tenant import Tenant  # noqa: E402

TARGET_BYTES = 10 * 1024 * 1024


def bearer(sim: Simulator, session: requests.Session) -> dict[str, str]:
    creds = sim.credentials
    key, _, _ = pkcs12.load_key_and_certificates(creds.pfx_path.read_bytes(),
                                                 creds.pfx_password.encode())
    now = int(time.time())
    assertion = jwt.encode({"iss": sim.client_id, "sub": sim.client_id,
                            "aud": sim.token_endpoint, "exp": now + 300,
                            "jti": str(uuid.uuid4())}, key, algorithm="RS256")
    answer = session.post(sim.token_endpoint, data={
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": catalog.CLIENT_ASSERTION_TYPE, "scope": catalog.SCOPE})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def rate(count: int, send) -> float:
    start = time.perf_counter()
    for _ in range(count):
        response = send()
        assert response.status_code == 200, response.text
    return count / (time.perf_counter() - start)


def http_figures(count: int) -> None:
    with Simulator(SimConfig(job_seconds=0.01)) as sim, requests.Session() as session:
        auth = bearer(sim, session)
        session.headers.update(auth)
        page_url = sim.url("detail_records")
        per_s = rate(count, lambda: session.post(page_url, json={"pageSize": 100}))
        print(f"query page (detail_records, 100 records): {per_s:8.0f} requests/s")
        summary_url = sim.url("user_summary")
        per_s = rate(count, lambda: session.post(summary_url, json={"StartPage": 1}))
        print(f"query page (user_summary, 100 users):     {per_s:8.0f} requests/s")
        job = session.post(sim.url("link_export"), json={"exportLinkType": "64"}).json()["id"]
        status_url = sim.url("permission_export_status")
        per_s = rate(count, lambda: session.get(status_url, params={"id": job}))
        print(f"status poll:                              {per_s:8.0f} requests/s")


def large_walk(pages: int) -> None:
    with Simulator(SimConfig(scale="large")) as sim, requests.Session() as session:
        session.headers.update(bearer(sim, session))
        url, token, records = sim.url("detail_records"), None, 0
        start = time.perf_counter()
        for _ in range(pages):
            page = session.post(url, json={"pageSize": 100, "token": token}).json()
            records += len(page["results"])
            token = page["nextToken"]
        elapsed = time.perf_counter() - start
        print(f"detail records, large tenant, {pages} pages:   {records / elapsed:8.0f} records/s "
              f"({elapsed / pages * 1000:.1f} ms/page)")


def export_build() -> None:
    tenant = Tenant(7, "large")
    sources = [m.code for m in catalog.DATA_SOURCE.members]

    def build(users: int) -> tuple[int, float]:
        emails = [tenant.user(u).email for u in range(1, users + 1)]
        values = {"emails": emails, "data_sources": sources, "site_urls": None,
                  "language": "en-US", "export_option": 2}
        job = Job(1, "user_access_export", "permission", values, "bench", time.time(), 0,
                  catalog.STATUS_SUCCEEDED)
        start = time.perf_counter()
        data, _, _ = Reports(tenant).build(job)
        return len(data), time.perf_counter() - start

    # The API takes 100 e-mails per job; the builder takes any number, which is how this
    # reaches 10 MB in one file (a real 10 MB export comes from fewer, busier users).
    probe, _ = build(10)
    users = max(10, round(10 * TARGET_BYTES * 1.05 / probe))
    size, seconds = build(users)
    print(f"export build (user access, all objects, {users} users): {size / 2**20:.1f} MB in "
          f"{seconds:.2f} s ({size / 2**20 / seconds:.1f} MB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per figure")
    parser.add_argument("--pages", type=int, default=50, help="pages of the large walk")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with Simulator(SimConfig()):
        pass
    print(f"simulator start+stop (first, with key generation): {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    with Simulator(SimConfig()):
        pass
    print(f"simulator start+stop (cached key):                 {time.perf_counter() - t0:.3f} s")
    http_figures(args.requests)
    large_walk(args.pages)
    export_build()


if __name__ == "__main__":
    main()
