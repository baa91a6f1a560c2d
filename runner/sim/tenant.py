"""The synthetic tenant: sites, users, groups, permissions, sharing links, objects, activities.

Everything is a pure function of ``(seed, index)``: nothing is generated up front and
nothing is kept but a small cache of sites, so a large tenant (hundreds of thousands of
users, millions of objects) costs no memory and a query page costs O(page) time.  Records
are addressed by cursors (tuples of indices) that paged endpoints turn into opaque tokens.

Relations are arithmetic so they can be walked both ways:

* user ``u`` has direct access to sites ``(u + k) % S`` for ``k < direct_count(u)``; the
  users of site ``s`` are found by solving that for ``u`` (``S`` candidates per ``k``);
* group ``g`` has access to sites ``(3g + k) % S`` for ``k < group_site_count(g)``;
* object ``j`` of site ``s`` belongs to ``s``; a link shares one object of its site.

Names and e-mail addresses carry their index, which is how lookups by URL, e-mail or id
work without a table; a lookup also checks the whole value, so near misses are not found.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from runner import catalog

TENANT = "contoso"
DOMAIN = f"{TENANT}.onmicrosoft.com"
SP_HOST = f"https://{TENANT}.sharepoint.com"
MY_HOST = f"https://{TENANT}-my.sharepoint.com"
PARTNER_DOMAINS = ("fabrikam.com", "northwind.example", "adatum.example")
EPOCH = dt.datetime(2025, 6, 30, 12, 0, 0, tzinfo=dt.UTC)  # the tenant's "now"

_FIRST = ("Ava", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hiro", "Ines", "Jonas",
          "Keiko", "Liam", "Mia", "Noah", "Olivia", "Pierre", "Quinn", "Ren", "Sofia", "Tom")
_LAST = ("Adams", "Bernard", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hayashi", "Ito",
         "Jones", "Kim", "Laurent", "Martin", "Nakamura", "Okafor", "Petit", "Rossi", "Sato")
_TOPICS = ("Finance", "Marketing", "Legal", "HR", "Sales", "Engineering", "Research",
           "Operations", "Support", "Design", "Procurement", "Board")
_FILES = ("budget", "contract", "roadmap", "minutes", "payroll", "forecast", "invoice",
          "policy", "design", "report", "plan", "customers")
_EXTS = ("docx", "xlsx", "pptx", "pdf", "txt", "csv")
_DATA_TYPES = ("U.S. Social Security Number (SSN)", "Credit Card Number", "ABA Routing Number",
               "EU Passport Number", "Japan My Number - Personal", "France National ID Card")
_CLASSIFIERS = ("Threat", "Harassment", "Source code", "Resume", "Finance")
_LABELS = ("", "", "General", "Confidential", "Highly Confidential")
_TAGS = ("", "", "", "In Progress", "Reviewed", "Escalated")
_RETENTION = (None, "", "Retention label01", "Keep 7 years")
_PERMISSIONS = ("Full Control", "Edit", "Contribute", "Read")
_GROUP_TYPES = ("Microsoft 365 Group", "Security Group", "Distribution Group",
                "Mail-enabled Security Group")
EVENT_TYPES = ("FileAccessed", "FileModified", "FileDownloaded", "FileUploaded", "FileDeleted",
               "SharingSet", "SharingInvitationCreated", "AnonymousLinkCreated",
               "PermissionLevelAdded", "FolderCreated")


@dataclass(frozen=True)
class Scale:
    sites: int
    users: int
    groups: int
    objects_per_site: tuple[int, int]  # inclusive range
    links_per_type: int  # at most, per site and link type
    direct_sites: int  # at most, per user
    activities: int  # at most, per user or object


SCALES: dict[str, Scale] = {
    "small": Scale(sites=40, users=200, groups=20, objects_per_site=(10, 90), links_per_type=4,
                   direct_sites=6, activities=40),
    "medium": Scale(sites=500, users=20_000, groups=500, objects_per_site=(100, 300),
                    links_per_type=8, direct_sites=8, activities=400),
    "large": Scale(sites=5_000, users=250_000, groups=5_000, objects_per_site=(200, 600),
                   links_per_type=12, direct_sites=10, activities=4_000),
}


def sized_scale(objects: int | None = None, users: int | None = None) -> Scale:
    """The large scale with exactly ``objects`` objects (so ``detail_records`` serves exactly
    that many) and/or exactly ``users`` users; for benchmarks that compare sizes."""
    base = SCALES["large"]
    changes: dict[str, Any] = {}
    if objects is not None:
        if objects < 1:
            raise ValueError("a tenant holds at least one object")
        per_site = math.gcd(objects, 100)  # equal sites, as close to 100 objects as divides
        changes.update(sites=objects // per_site, objects_per_site=(per_site, per_site))
    if users is not None:
        if users < 1:
            raise ValueError("a tenant holds at least one user")
        changes["users"] = users
    return dataclasses.replace(base, **changes)


_NAIVE_EPOCH = EPOCH.replace(tzinfo=None)


def _iso(seconds_before_epoch: int, z: bool = False) -> str:
    text = (_NAIVE_EPOCH - dt.timedelta(seconds=seconds_before_epoch)).isoformat("T", "seconds")
    return text + "Z" if z else text


def parse_time(value: str) -> dt.datetime:
    """An ISO date-time as the service reads it (naive means UTC); ValueError otherwise."""
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Site:
    index: int
    id: str
    url: str
    name: str
    module: int  # catalog.MODULE code
    object_count: int
    privacy: str


@dataclass(frozen=True)
class User:
    index: int
    display_name: str
    email: str
    login_name: str
    external: bool
    active: bool
    trusted: bool
    direct_sites: int
    created: str
    last_signin: str


@dataclass(frozen=True)
class Group:
    index: int
    id: str
    display_name: str
    email: str
    group_type: str
    membership: str
    created: str
    external_members: int
    site_count: int


class Tenant:
    """One seeded tenant at one scale; every method is deterministic and thread-safe."""

    def __init__(self, seed: int = 7, scale: str | Scale = "small"):
        self.seed = seed
        self.scale = SCALES[scale] if isinstance(scale, str) else scale
        self._key = str(seed).encode()
        self.site = lru_cache(maxsize=20_000)(self._site)  # type: ignore[method-assign]
        self.user = lru_cache(maxsize=50_000)(self._user)  # type: ignore[method-assign]
        # A site's objects are read together (exports, walks): keep the last few sites'.
        self.person = lru_cache(maxsize=50_000)(self._person)  # type: ignore[method-assign]
        self.site_objects = lru_cache(maxsize=16)(self._site_objects)  # type: ignore[method-assign]
        # The one thing a client can change: tags set through the v2 settag endpoint,
        # by (site, object index), over the seeded ones.  Both generations read them.
        self._tags: dict[tuple[int, int], str] = {}
        self._tag_lock = threading.Lock()

    # ------------------------------------------------------------------ randomness

    def h(self, *parts: object) -> int:
        data = "|".join(map(str, parts)).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=self._key).digest())

    def _uuid(self, *parts: object) -> str:
        data = "|".join(map(str, parts)).encode()
        digest = hashlib.blake2b(data, digest_size=16, key=self._key).digest()
        return str(uuid.UUID(bytes=digest, version=4))

    @staticmethod
    def _pick(seq: tuple, n: int) -> Any:
        return seq[n % len(seq)]

    # ----------------------------------------------------------------------- sites

    @property
    def site_count(self) -> int:
        return self.scale.sites

    def _site(self, i: int) -> Site:
        module = (1, 1, 1, 2, 2, 2, 2, 3, 4, 2)[i % 10]
        topic = self._pick(_TOPICS, self.h("topic", i))
        if module == 3:
            user = self.user(i % self.scale.users)
            slug = user.email.split("@")[0].replace(".", "_")
            url, name = f"{MY_HOST}/personal/od{i:05d}_{slug}", f"{user.display_name} OneDrive"
        elif module == 1:
            url, name = f"{SP_HOST}/teams/team{i:05d}", f"{topic} Team {i}"
        elif module == 4:
            url, name = f"{SP_HOST}/sites/group{i:05d}", f"{topic} Group {i}"
        else:
            url, name = f"{SP_HOST}/sites/site{i:05d}", f"{topic} Site {i}"
        low, high = self.scale.objects_per_site
        count = low + self.h("objects", i) % (high - low + 1)
        privacy = "Private" if self.h("privacy", i) % 3 else "Public"
        return Site(i, self._uuid("site", i), url, name, module, count, privacy)

    def site_by_url(self, url: str) -> Site | None:
        match = re.search(r"/(?:team|site|group|od)(\d{5,})(?:[_/]|$)", url or "", re.IGNORECASE)
        if not match or int(match.group(1)) >= self.site_count:
            return None
        site = self.site(int(match.group(1)))
        return site if site.url.lower() == url.strip().rstrip("/").lower() else None

    def site_by_id(self, site_id: str) -> Site | None:
        # Site ids are random-looking, so this is the one lookup that needs a table: built
        # on first use (one entry per site, thousands at most), not for tenants never asked.
        return self._site_ids().get((site_id or "").strip().lower())

    @lru_cache(maxsize=1)  # noqa: B019 - one tenant per simulator, cache lives with it
    def _site_ids(self) -> dict[str, Site]:
        return {self.site(i).id: self.site(i) for i in range(self.site_count)}

    # ----------------------------------------------------------------------- users

    @property
    def user_count(self) -> int:
        return self.scale.users

    def _person(self, u: int) -> tuple[str, str, str]:
        """User ``u``'s display name, e-mail and login name (cheaper than ``user``)."""
        first = self._pick(_FIRST, self.h("first", u))
        last = self._pick(_LAST, self.h("last", u))
        local = f"{first}.{last}{u}".lower()
        if u % 10 == 9:  # every tenth user is a guest from a partner domain
            partner = self._pick(PARTNER_DOMAINS, u)
            return f"{first} {last}", f"{local}@{partner}", f"{local}_{partner}#ext#@{DOMAIN}"
        return f"{first} {last}", f"{local}@{DOMAIN}", f"{local}@{DOMAIN}"

    def _user(self, u: int) -> User:
        display, email, login = self.person(u)
        external = u % 10 == 9
        roll = self.h("status", u)
        signin = "None" if roll % 7 == 0 else _iso(roll % 5_000_000)
        return User(
            index=u, display_name=display, email=email, login_name=login,
            external=external, active=roll % 13 != 0, trusted=roll % 3 == 0,
            direct_sites=self.h("direct", u) % (min(self.scale.direct_sites, self.site_count) + 1),
            created=_iso(10_000_000 + self.h("created", u) % 60_000_000), last_signin=signin,
        )

    def users(self) -> Sequence[int]:
        """The indices of the tenant's users, in order (a drifted tenant has lost some)."""
        return range(self.user_count)

    def user_by_email(self, email: str) -> User | None:
        match = re.search(r"(\d+)(?:_[^@]*#ext#)?@", email or "")
        if not match or int(match.group(1)) >= self.user_count:
            return None
        user = self.user(int(match.group(1)))
        key = email.strip().lower()
        return user if key in (user.email.lower(), user.login_name.lower()) else None

    def user_sites(self, u: int) -> list[int]:
        """The sites user ``u`` has direct permissions on (``sitesWithDirectAccess`` of them)."""
        return [(u + k) % self.site_count for k in range(self.user(u).direct_sites)]

    def site_users(self, s: int) -> list[int]:
        """The users with direct permissions on site ``s``, in index order."""
        users = []
        for k in range(min(self.scale.direct_sites, self.site_count)):
            u = (s - k) % self.site_count
            while u < self.user_count:
                if self.user(u).direct_sites > k:
                    users.append(u)
                u += self.site_count
        return sorted(users)

    def user_permission(self, u: int, s: int) -> str:
        return self._pick(_PERMISSIONS, self.h("perm", u, s))

    # ---------------------------------------------------------------------- groups

    @property
    def group_count(self) -> int:
        return self.scale.groups

    def group(self, g: int) -> Group:
        roll = self.h("group", g)
        topic = self._pick(_TOPICS, roll)
        return Group(
            index=g, id=f"{self._uuid('group', g)[:24]}{g:012x}",
            display_name=f"{topic} Partners {g}", email=f"{topic.lower()}.partners{g}@{DOMAIN}",
            group_type=self._pick(_GROUP_TYPES, roll >> 8),
            membership="Dynamic" if roll % 5 == 0 else "Assigned",
            created=_iso(5_000_000 + roll % 40_000_000),
            external_members=1 + (roll >> 16) % 20, site_count=1 + (roll >> 24) % 3,
        )

    def group_by_id(self, group_id: str) -> Group | None:
        key = (group_id or "").strip().lower()
        try:
            g = int(key[-12:], 16)
        except ValueError:
            return None
        if g >= self.group_count or len(key) != 36:
            return None
        group = self.group(g)
        return group if group.id == key else None

    def group_sites(self, g: int) -> list[int]:
        return sorted({(g + 7 * k) % self.site_count for k in range(self.group(g).site_count)})

    def site_groups(self, s: int) -> list[int]:
        groups = set()
        for k in range(3):
            g = (s - 7 * k) % self.site_count
            while g < self.group_count:
                if self.group(g).site_count > k:
                    groups.add(g)
                g += self.site_count
        return sorted(groups)

    def group_members(self, g: int) -> list[int]:
        """The external users in group ``g`` (users whose index ends in 9 are guests)."""
        count = self.group(g).external_members
        start = self.h("members", g) % max(1, self.user_count // 10)
        return [((start + i) % max(1, self.user_count // 10)) * 10 + 9 for i in range(count)
                if ((start + i) % max(1, self.user_count // 10)) * 10 + 9 < self.user_count]

    # --------------------------------------------------------------------- objects

    def _site_objects(self, s: int) -> tuple[dict[str, Any], ...]:
        """Every object of site ``s`` (shared: callers must not change them)."""
        return tuple(self.object(s, j) for j in range(self.site(s).object_count))

    def _object_digest(self, s: int, j: int) -> bytes:
        # One digest gives everything: the id (16 bytes), the attributes, the creator.
        return hashlib.blake2b(f"object|{s}|{j}".encode(), digest_size=32,
                               key=self._key).digest()

    @staticmethod
    def _codes(j: int, roll: int) -> tuple[int, int, int, int]:
        object_type = 11 if j == 0 else 14 if j == 1 else \
            (2, 2, 2, 2, 2, 2, 1, 1, 3, 13, 12)[roll % 11]
        sensitivity = (0, 0, 1, 1, 2, 3, -2)[(roll >> 16) % 7]
        exposure = 1 + (roll >> 20) % 3
        risk = sensitivity if sensitivity in (0, -2) else min(sensitivity, exposure)
        return object_type, sensitivity, exposure, risk

    def object_codes(self, s: int, j: int) -> tuple[int, int, int, int]:
        """Object ``j``'s type, sensitivity, exposure and risk codes, without the rest."""
        return self._codes(j, int.from_bytes(self._object_digest(s, j)[16:24]))

    def object(self, s: int, j: int) -> dict[str, Any]:
        """Object ``j`` of site ``s`` as a detail record (codes, not labels: see records.py)."""
        site = self.site(s)
        digest = self._object_digest(s, j)
        roll = int.from_bytes(digest[16:24])
        object_type, sensitivity, exposure, risk = self._codes(j, roll)
        if j == 0:
            name, location = site.name, site.url
        elif j == 1:
            name, location = "Shared Documents", f"{site.url}/shared documents"
        else:
            stem = f"{self._pick(_FILES, roll >> 4)} {j:04d}"
            name = f"{stem}.{self._pick(_EXTS, roll >> 8)}" if object_type == 2 else stem
            folder = f"folder {(roll >> 12) % 8:02d}"
            location = f"{site.url}/shared documents/{folder}/{name}".lower()
        creator_name, creator_email, _ = self.person(int.from_bytes(digest[24:]) % self.user_count)
        created = 1_000_000 + (roll >> 24) % 50_000_000
        data_types = [self._pick(_DATA_TYPES, roll >> (28 + 3 * n)) for n in range(sensitivity)
                      ] if sensitivity > 0 else []
        return {
            "id": str(uuid.UUID(bytes=digest[:16], version=4)), "name": name,
            "location": location,
            "objectType": object_type, "createdBy": creator_name,
            "module": site.module, "inheritance": "No" if roll % 4 == 0 else "Yes",
            "siteName": site.name, "sensitivityLevel": sensitivity, "exposureLevel": exposure,
            "scannedTime": _iso((roll >> 30) % 500_000, z=True),
            "createdTime": _iso(created, z=True),
            "modifiedTime": _iso(created - (roll >> 34) % created, z=True) if roll % 9 else "",
            "channelName": f"Channel {(roll >> 40) % 5:02d}" if site.module == 1 else "",
            "riskLevel": risk, "privacy": site.privacy,
            "dataType": sorted(set(data_types)),
            "trainableClassifier": [self._pick(_CLASSIFIERS, roll >> 44)] if roll % 6 == 0 else [],
            "sensitivityLabel": self._pick(_LABELS, roll >> 48) or None,
            "tagName": self._tags.get((s, j), self._pick(_TAGS, roll >> 52)),
            "retentionLabel": self._pick(_RETENTION, roll >> 56),
            "creatorEmail": creator_email, "webUrl": site.url,
        }

    def object_by_url(self, s: int, url: str) -> int | None:
        """The index of the object of site ``s`` at ``url`` (case-insensitive), if any."""
        key = (url or "").strip().rstrip("/").lower()
        for j, obj in enumerate(self.site_objects(s)):
            if obj["location"].lower() == key:
                return j
        return None

    def set_tag(self, s: int, j: int, tag: str) -> None:
        """Tag object ``j`` of site ``s``: the tag replaces the one it had (an object holds
        one ``tagName``), and every later record of the object shows it."""
        with self._tag_lock:
            self._tags[(s, j)] = tag
            self.site_objects.cache_clear()  # type: ignore[attr-defined]

    # ----------------------------------------------------------------------- links

    def link_count(self, s: int, link_type: int) -> int:
        return self.h("links", s, link_type) % (self.scale.links_per_type + 1)

    def link(self, s: int, link_type: int, j: int) -> dict[str, Any]:
        """Sharing link ``j`` of one type in site ``s`` (link summary record, labels)."""
        site = self.site(s)
        roll = self.h("link", s, link_type, j)
        target = self.object(s, 2 + roll % max(1, site.object_count - 2))
        link_id = self._uuid("link", s, link_type, j)
        edit = roll % 2 == 0
        kind = {32: "Flexible", 64: "Organization" + ("Edit" if edit else "View"),
                128: "Anonymous" + ("Edit" if edit else "View")}[link_type]
        created = 100_000 + (roll >> 8) % 20_000_000
        expires = (_iso(created - 30 * 86400, z=True) if link_type == 128 and roll % 3 == 0
                   else None)
        sharer = self.user(self.h("sharer", s, link_type, j) % self.user_count)
        return {
            "id": self._uuid("link-row", s, link_type, j), "siteId": site.id,
            "selfId": target["id"], "linkId": link_id,
            "loginName": f"SharingLinks.{target['id']}.{kind}.{link_id}",
            "createTime": _iso(created, z=True), "expireTime": expires,
            "name": target["name"], "objectUrl": target["location"],
            "linkType": catalog.LINK_TYPE.label(link_type), "shareBy": sharer.display_name,
            "inheritFrom": None, "inheritType": "Unique",
            "shareWith": 0 if link_type == 128 else 1 + (roll >> 16) % 6,
            "linkUrl": f"{site.url.split('/sites/')[0].split('/teams/')[0].split('/personal/')[0]}"
                       f"/:{'f' if target['objectType'] == 1 else 'w'}:/s/{link_id[:8]}",
            "permission": "Edit" if edit else "View",
            "fileType": catalog.OBJECT_TYPE.label(target["objectType"]),
            "sensitivityLevel": catalog.SENSITIVITY_LEVEL.label(target["sensitivityLevel"]),
        }

    # ------------------------------------------------------------------ activities

    def activities(self, subject: str, user_report: bool) -> Iterator[dict[str, Any]]:
        """The activity events of a user (by e-mail) or on an object (by URL), newest first."""
        count = self.h("activities", subject.lower()) % (self.scale.activities + 1)
        for n in range(count):
            roll = self.h("activity", subject.lower(), n)
            site = self.site(roll % self.site_count)
            if user_report:
                who = subject
                target = self.object(site.index, roll % site.object_count)["location"]
            else:
                who = self.user(roll % self.user_count).email
                target = subject
            yield {
                "time": EPOCH - dt.timedelta(seconds=n * 3600 + (roll >> 8) % 3600),
                "user": who, "operation": self._pick(EVENT_TYPES, roll >> 16),
                "object": target, "site": site.url,
                "client_ip": f"10.{(roll >> 24) % 256}.{(roll >> 32) % 256}.{(roll >> 40) % 256}",
            }
