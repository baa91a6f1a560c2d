"""Paging as a property: whatever the page sizes a client picks, page by page, every record
of a query comes back exactly once and in the same order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_support import call, headers

from runner.sim import SimConfig, Simulator


@pytest.fixture(scope="module")
def shared():
    with Simulator(SimConfig(seed=5)) as sim:
        yield sim, headers(sim)


def collect(sim, auth, operation, body, sizes, size_field, token_field):
    records, token, n = [], None, 0
    while True:
        size = sizes[n % len(sizes)]
        n += 1
        page = call(sim, operation, auth, {**body, size_field: size, token_field: token}).json()
        assert len(page["results"]) <= size
        records += page["results"]
        token = page["nextToken"]
        if token is None:
            return records


@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 100), min_size=1, max_size=4),
       sites=st.lists(st.integers(0, 39), min_size=1, max_size=6, unique=True))
def test_site_permissions_any_page_sizes(shared, sizes, sites):
    sim, auth = shared
    urls = [sim.tenant.site(s).url for s in sites]
    body = {"SiteUrls": urls}
    reference = collect(sim, auth, "site_permissions", body, [100], "Top", "Token")
    assert collect(sim, auth, "site_permissions", body, sizes, "Top", "Token") == reference
    assert len(reference) >= 3 * len(sites)  # each site has at least its three groups


@settings(max_examples=8, deadline=None)
@given(sizes=st.lists(st.integers(5, 100), min_size=1, max_size=3),
       link_type=st.sampled_from(["32", "64", "128"]))
def test_link_summary_any_page_sizes(shared, sizes, link_type):
    sim, auth = shared
    body = {"LinkType": link_type}
    reference = collect(sim, auth, "link_summary", body, [100], "PageSize", "Token")
    got = collect(sim, auth, "link_summary", body, sizes, "PageSize", "Token")
    assert got == reference
    assert len({r["id"] for r in got}) == len(got)
