"""The seeded Google Workspace tenant: a pure function of the seed, lazy, with lookups that
invert its ids and relations that agree when walked both ways."""

from __future__ import annotations

import pytest

from runner.sim.google import MY_DRIVE, SHARED_DRIVE, GoogleTenant
from runner.sim.tenant import SCALES


def snapshot(g: GoogleTenant) -> list:
    return [
        [g.user(u) for u in range(0, g.user_count, 7)],
        [g.group(n) for n in range(g.group_count)],
        [g.drive(d) for d in range(0, g.drive_count, 5)],
        [g.file(d, j) for d in range(3) for j in range(g.drive(d).file_count)],
        [g.link(d, t, j) for d in range(6) for t in (301, 303) for j in range(g.link_count(d, t))],
        list(g.activities(g.user(4).email, True)),
    ]


def test_the_same_seed_gives_the_same_tenant_and_another_seed_another():
    assert snapshot(GoogleTenant(7)) == snapshot(GoogleTenant(7))
    assert snapshot(GoogleTenant(7)) != snapshot(GoogleTenant(8))


def test_size_follows_the_m365_scale_beside_it():
    small, medium = GoogleTenant(7, SCALES["small"]), GoogleTenant(7, SCALES["medium"])
    assert small.user_count == SCALES["small"].users // 2
    assert medium.scale.shared_drives == SCALES["medium"].sites // 4
    assert medium.drive_count == medium.scale.shared_drives + medium.user_count
    # lazy: a record far into a large tenant costs one computation, not a build
    large = GoogleTenant(7, SCALES["large"])
    last = large.my_drive(large.user_count - 1)
    assert large.drive_by_id(last.id) == last and last.kind == MY_DRIVE


def test_lookups_invert_ids_and_refuse_near_misses():
    g = GoogleTenant(7)
    for u in (0, 9, g.user_count - 1):
        user = g.user(u)
        assert g.user_by_email(user.email.upper()) == user
        assert g.drive_by_id(user.email) == g.my_drive(u)  # a My Drive by its owner's e-mail
    for d in (0, 3, g.drive_count - 1):
        drive = g.drive(d)
        assert g.drive_by_id(drive.id) == drive
        assert g.drive_by_id(drive.id[:-1] + "X") is None
        item = g.file(d, drive.file_count - 1)
        assert g.file_by_id(item["id"]) == item
        assert g.file_by_id(item["id"][:-1] + "!") is None
    group = g.group(2)
    assert g.group_by_email(group.email) == group
    assert g.user_by_email(f"nobody{g.user_count + 5}@contoso-workspace.example") is None
    assert g.group_by_email("sales-team1@elsewhere.example") is None


def test_relations_agree_both_ways():
    g = GoogleTenant(7)
    for u in range(0, g.user_count, 9):
        email = g.user(u).email
        groups = g.user_groups(u)
        assert all(email in g.group_members(n) for n in groups)
        for d in g.user_drives(u):
            principals = {m["principal"] for m in g.drive_members(d)}
            assert email in principals or principals & {g.group(n).email for n in groups}
    for n in range(g.group_count):
        for d in g.group_drives(n):
            assert g.drive(d).kind == SHARED_DRIVE
            assert g.group(n).email in {m["principal"] for m in g.drive_members(d)}


@pytest.mark.parametrize("link_type", [301, 303])
def test_links_share_files_of_their_drive(link_type):
    g = GoogleTenant(7)
    found = 0
    for d in range(g.drive_count):
        for j in range(g.link_count(d, link_type)):
            link = g.link(d, link_type, j)
            assert g.file_by_id(link["fileId"])["drive"] == d
            assert link["driveId"] == g.drive(d).id
            found += 1
    assert found


def test_activities_of_a_user_and_on_a_file():
    g = GoogleTenant(7)
    user = next(g.user(u) for u in range(g.user_count)
                if any(True for _ in g.activities(g.user(u).email, True)))
    events = list(g.activities(user.email, True))
    assert {e["actor"] for e in events} == {user.email}
    assert [e["time"] for e in events] == sorted((e["time"] for e in events), reverse=True)
    item = g.file(1, 1)
    assert all(e["fileId"] == item["id"] for e in g.activities(item["id"], False))
