"""The simulator's seeded drift: the same tenant some time later, over HTTP, exactly as
``DriftedTenant.changes`` says (new anyone-links, removed users, raised risk)."""

from __future__ import annotations

from sim_support import call, headers

from runner import catalog
from runner.sim import SimConfig, Simulator
from runner.sim.drift import DriftedTenant
from runner.sim.tenant import Tenant

ANYONE = "128"


def _users(sim: Simulator, auth: dict[str, str]) -> list[str]:
    emails: list[str] = []
    page = 1
    while True:
        rows = call(sim, "user_summary", auth, {"PageSize": 100, "StartPage": page}).json()
        emails += [r["email"] for r in rows["results"]]
        if len(rows["results"]) < 100:
            return emails
        page += 1


def _links(sim: Simulator, auth: dict[str, str], url: str) -> list[str]:
    body = call(sim, "link_summary", auth, {"LinkType": ANYONE, "SiteUrls": [url]}).json()
    return [r["linkId"] for r in body["results"]]


def test_drift_changes_exactly_what_it_lists() -> None:
    drifted = DriftedTenant(7, "small", 3)
    changes = drifted.changes()
    assert changes.new_links and changes.removed_users and changes.raised
    base = Tenant(7, "small")
    with Simulator(SimConfig(seed=7)) as before, Simulator(SimConfig(seed=7, drift=3)) as after:
        a, b = headers(before), headers(after)
        old, new = _users(before, a), _users(after, b)
        assert set(old) - set(new) == {u.email for u in changes.removed_users}
        assert set(new) <= set(old) and len(new) == len(old) - len(changes.removed_users)
        for s, link in changes.new_links[:3]:
            url = base.site(s).url
            assert _links(after, b, url) == [*_links(before, a, url), link["linkId"]]
        gone = changes.removed_users[0]
        body = {"SiteUrls": [base.site(s).url for s in base.user_sites(gone.index)]}
        rows = call(after, "site_permissions", b, body).json()["results"]
        assert body["SiteUrls"] and gone.email not in {r["email"] for r in rows}
        s, j, old_risk, new_risk = changes.raised[0]
        wanted = base.object(s, j)["id"]
        query = {"siteId": base.site(s).id, "pageSize": 100}
        for sim, auth, risk in ((before, a, old_risk), (after, b, new_risk)):
            records, token = [], None
            while True:
                page = call(sim, "detail_records_by_site", auth,
                            {**query, **({"token": token} if token else {})}).json()
                records += page["results"]
                token = page["nextToken"]
                if not token:
                    break
            (record,) = [r for r in records if r["id"] == wanted]
            assert record["riskLevel"] == catalog.RISK_LEVEL.label(risk)
        assert old_risk != new_risk == 3


def test_drift_is_deterministic_and_zero_is_none() -> None:
    one, two = DriftedTenant(7, "small", 3).changes(), DriftedTenant(7, "small", 3).changes()
    assert one == two
    assert DriftedTenant(7, "small", 4).changes() != one
    with Simulator(SimConfig(seed=7, drift=0)) as plain:
        assert type(plain.tenant) is Tenant
