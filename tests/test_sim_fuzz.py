"""The simulator never answers 5xx unless a fault asked for it: every endpoint fuzzed with
bad ids, bad ranges, bad bodies and bad headers (a fixed seed, so a failure repeats)."""

from __future__ import annotations

import random

import requests
from sim_support import call, headers
from test_sim_exports import wait_done

from runner import catalog

BAD_IDS = ["", "abc", "-1", "0", "1e3", "99999999999999999999999", "1;DROP", "١٢", "\x00",
           "1" * 5000, "[1]"]
BAD_RANGES = ["bytes=abc", "bytes=5-2", "bytes=-0", "bytes=0-0,5-1", "items=0-",
              "bytes=99999999999999999999999-", "bytes=-99999999999999999999", "bytes=",
              "bytes=1-2,3-4,5-6", "bytes=0-", "garbage"]
BAD_BODIES = [b"", b"{", b"[]", b'"x"', b"null", b"1", b'{"a": ' * 200 + b"1" + b"}" * 200,
              b"\xff\xfe", b'{"id": {"$gt": 1}}']
FIELD_VALUES = [None, "", "x" * 10000, -1, 2 ** 70, 1.5, [], {}, [None], ["x"] * 500, True,
                "2025-13-45T99:99:99", "\u202e\x00"]


def assert_no_5xx(response: requests.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"


def test_every_endpoint_survives_fuzzing(sim) -> None:
    auth = headers(sim)
    rng = random.Random(10)
    job = call(sim, "site_permission_export", auth,
               {"siteUrls": [sim.tenant.site(1).url]}).json()["id"]
    wait_done(sim, auth, "site_permission_export", job)
    for op in catalog.iter_operations():  # every endpoint of the catalog
        url = sim.url(op.name)
        sender = requests.get if op.method == "GET" else requests.post
        if op.kind in ("status", "file"):
            for bad in BAD_IDS:
                assert_no_5xx(sender(url, params={"id": bad}, headers=auth, timeout=30),
                              f"{op.name} id={bad[:20]!r}")
        if op.kind == "file":
            for bad in BAD_RANGES:
                answer = requests.get(url, params={"id": job},
                                      headers={**auth, "Range": bad}, timeout=30)
                assert_no_5xx(answer, f"{op.name} Range: {bad[:30]}")
        if op.method == "POST":
            for body in BAD_BODIES:
                answer = requests.post(url, data=body, timeout=30,
                                       headers={**auth, "Content-Type": "application/json"})
                assert_no_5xx(answer, f"{op.name} body {body[:20]!r}")
            names = [f.api for f in op.fields] or ["x"]
            for _ in range(25):
                body = {name: rng.choice(FIELD_VALUES) for name in names
                        if rng.random() < 0.7}
                assert_no_5xx(requests.post(url, json=body, headers=auth, timeout=30),
                              f"{op.name} {body!r:.200}")
        else:
            names = [f.api for f in op.fields] or ["x"]
            for _ in range(10):
                params = {name: str(rng.choice(FIELD_VALUES)) for name in names}
                assert_no_5xx(requests.get(url, params=params, headers=auth, timeout=30),
                              f"{op.name} {params!r:.200}")
        for bad_headers in ({"Authorization": "Bearer x"}, {"Authorization": "Basic Zm9v"},
                            {**auth, "Content-Type": "text/plain"},
                            {**auth, "Accept": "\x7f/\x7f"}, {**auth, "Accept-Language": "!!"},
                            {"Authorization": "Bearer " + "a" * 8000}):
            assert_no_5xx(sender(url, headers=bad_headers, data=b"{}", timeout=30),
                          f"{op.name} headers {list(bad_headers)}")
