"""The synthetic Google Workspace tenant that the Graph API (v2) Google endpoints report on:
users, groups, shared drives and My Drives, files with their permissions and sharing
links, and activities.

Like the Microsoft 365 tenant (``tenant.py``) everything is a pure function of
``(seed, index)``, computed when asked and kept only in small caches, so a large tenant
costs no memory.  Its size follows the M365 scale it sits beside (half the users and
groups, a shared drive per four sites).

Relations are arithmetic so they can be walked both ways:

* shared drive ``d`` has members ``(5d + k) % U`` for ``k < member_count(d)``, and group
  ``d % G`` when ``d`` is even;
* user ``u`` owns My Drive number ``D + u`` (``D`` shared drives), addressed by the
  owner's e-mail as well as by its id (the reference's sample passes an e-mail as a
  ``driveIds`` value, §10 question 26);
* group ``g`` has members ``(7g + k) % U`` for ``k < member_count(g)``;
* a file may carry one direct permission of another user or of an outside address, and
  sharing links of the two Google link types (301 target audience, 303 anyone): a shared
  drive up to ``links_per_type`` of each, one My Drive in eight one or two (so a large
  tenant's link export stays the size of the M365 one).

Identifiers carry their indices (base 36 in fixed places), which is how lookups work
without a table; a lookup also rebuilds the whole id, so near misses are not found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from runner.sim.tenant import Scale

DOMAIN = "contoso-workspace.example"
OUTSIDE_DOMAINS = ("gmail.com", "fabrikam.example", "partners.example")
EPOCH = dt.datetime(2025, 6, 30, 12, 0, 0, tzinfo=dt.UTC)  # the tenant's "now"
SHARED_DRIVE = "shared drive"
MY_DRIVE = "my drive"
LINK_TYPES = (301, 303)  # target audience link, anyone link
LINK_LABELS = {301: "Target audience link", 303: "Anyone link"}
EVENT_TYPES = ("create", "edit", "view", "download", "rename", "move", "trash",
               "label_added", "label_removed", "acl_change", "change_user_access")
ROLES = ("Manager", "Content manager", "Contributor", "Commenter", "Viewer")
_FIRST = ("Alba", "Bruno", "Carla", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jade",
          "Kofi", "Lena", "Milo", "Nia", "Otto", "Priya", "Raj", "Sara", "Timo", "Uma")
_LAST = ("Alves", "Berg", "Costa", "Diaz", "Eriksen", "Fofana", "Gupta", "Horvat", "Ivanova",
         "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Ortiz", "Park", "Quist", "Rahman")
_TOPICS = ("Finance", "Marketing", "Legal", "People", "Sales", "Engineering", "Research",
           "Operations", "Support", "Design", "Procurement", "Leadership")
_FILES = ("budget", "contract", "roadmap", "notes", "payroll", "forecast", "invoice",
          "policy", "mockup", "report", "plan", "customers")
_MIME = (("Google Docs", "document"), ("Google Sheets", "spreadsheet"),
         ("Google Slides", "presentation"), ("PDF", "pdf"), ("Folder", "folder"))
_ALPHABET = string.ascii_letters + string.digits + "-_"
_B36 = string.digits + string.ascii_lowercase


@dataclass(frozen=True)
class GoogleScale:
    users: int
    groups: int
    shared_drives: int
    files_per_drive: tuple[int, int]  # inclusive range, shared drives
    files_per_my_drive: tuple[int, int]
    links_per_type: int  # at most, per drive and link type
    activities: int  # at most, per user or object


def scale_beside(scale: Scale) -> GoogleScale:
    """The Google tenant that sits beside an M365 tenant of ``scale``."""
    low, high = scale.objects_per_site
    return GoogleScale(
        users=max(1, scale.users // 2), groups=max(1, scale.groups // 2),
        shared_drives=max(1, scale.sites // 4),
        files_per_drive=(max(2, low // 2), max(2, high // 2)),
        files_per_my_drive=(1, max(2, high // 8)), links_per_type=scale.links_per_type,
        activities=scale.activities)


def _b36(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


def _iso(seconds_before_epoch: int) -> str:
    return (EPOCH - dt.timedelta(seconds=seconds_before_epoch)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GUser:
    index: int
    display_name: str
    email: str
    suspended: bool
    is_admin: bool
    org_unit: str
    created: str
    last_login: str


@dataclass(frozen=True)
class GGroup:
    index: int
    name: str
    email: str
    member_count: int
    external_members: int
    created: str


@dataclass(frozen=True)
class Drive:
    index: int
    id: str
    name: str
    kind: str  # SHARED_DRIVE or MY_DRIVE
    owner: str | None  # a My Drive's owner e-mail
    file_count: int
    created: str


class GoogleTenant:
    """One seeded Google Workspace tenant; every method is deterministic and thread-safe."""

    def __init__(self, seed: int = 7, scale: GoogleScale | Scale | None = None):
        self.seed = seed
        if scale is None or isinstance(scale, Scale):
            from runner.sim.tenant import SCALES

            scale = scale_beside(scale or SCALES["small"])
        self.scale = scale
        self._key = f"google|{seed}".encode()
        self.user = lru_cache(maxsize=50_000)(self._user)  # type: ignore[method-assign]
        self.drive = lru_cache(maxsize=20_000)(self._drive)  # type: ignore[method-assign]
        self.drive_files = lru_cache(maxsize=16)(self._drive_files)  # type: ignore[method-assign]

    # ------------------------------------------------------------------ randomness

    def h(self, *parts: object) -> int:
        data = "|".join(map(str, parts)).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=self._key).digest())

    def _chars(self, n: int, *parts: object) -> str:
        digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32,
                                 key=self._key).digest()
        return "".join(_ALPHABET[b % 64] for b in digest[:n])

    @staticmethod
    def _pick(seq: tuple, n: int) -> Any:
        return seq[n % len(seq)]

    # ----------------------------------------------------------------------- users

    @property
    def user_count(self) -> int:
        return self.scale.users

    def _user(self, u: int) -> GUser:
        roll = self.h("user", u)
        first, last = self._pick(_FIRST, roll), self._pick(_LAST, roll >> 8)
        login = "Never" if roll % 11 == 0 else _iso((roll >> 16) % 8_000_000)
        return GUser(u, f"{first} {last}", f"{first}.{last}{u}@{DOMAIN}".lower(),
                     suspended=roll % 17 == 0, is_admin=u % 50 == 0,
                     org_unit=f"/{self._pick(_TOPICS, roll >> 24)}",
                     created=_iso(10_000_000 + (roll >> 32) % 50_000_000), last_login=login)

    def user_by_email(self, email: str) -> GUser | None:
        local, _, domain = (email or "").strip().lower().rpartition("@")
        digits = len(local) - len(local.rstrip(string.digits))
        if domain != DOMAIN or not digits or int(local[-digits:]) >= self.user_count:
            return None
        user = self.user(int(local[-digits:]))
        return user if user.email == email.strip().lower() else None

    def outsider(self, *parts: object) -> str:
        """An outside address (a guest) that a file is shared with."""
        roll = self.h("outsider", *parts)
        name = f"{self._pick(_FIRST, roll)}.{self._pick(_LAST, roll >> 8)}".lower()
        return f"{name}{roll % 100}@{self._pick(OUTSIDE_DOMAINS, roll >> 16)}"

    # ---------------------------------------------------------------------- groups

    @property
    def group_count(self) -> int:
        return self.scale.groups

    def group(self, g: int) -> GGroup:
        roll = self.h("group", g)
        topic = self._pick(_TOPICS, roll)
        return GGroup(g, f"{topic} Team {g}", f"{topic.lower()}-team{g}@{DOMAIN}",
                      member_count=1 + roll % min(12, self.user_count),
                      external_members=(roll >> 8) % 4,
                      created=_iso(5_000_000 + (roll >> 16) % 40_000_000))

    def group_by_email(self, email: str) -> GGroup | None:
        local, _, domain = (email or "").strip().lower().rpartition("@")
        digits = len(local) - len(local.rstrip(string.digits))
        if domain != DOMAIN or not digits or int(local[-digits:]) >= self.group_count:
            return None
        group = self.group(int(local[-digits:]))
        return group if group.email == email.strip().lower() else None

    def group_members(self, g: int) -> list[str]:
        """The e-mails of group ``g``'s members: users, then outside addresses."""
        group = self.group(g)
        inside = sorted({(7 * g + k) % self.user_count for k in range(group.member_count)})
        return [self.user(u).email for u in inside] + \
            [self.outsider("member", g, k) for k in range(group.external_members)]

    def user_groups(self, u: int) -> list[int]:
        """The groups user ``u`` belongs to (inverse of ``group_members``)."""
        found = []
        for g in range(self.group_count):
            count = self.group(g).member_count
            if any((7 * g + k) % self.user_count == u for k in range(count)):
                found.append(g)
        return found

    # ---------------------------------------------------------------------- drives

    @property
    def drive_count(self) -> int:
        """Shared drives, then one My Drive per user."""
        return self.scale.shared_drives + self.user_count

    def _drive(self, d: int) -> Drive:
        roll = self.h("drive", d)
        shared = d < self.scale.shared_drives
        low, high = self.scale.files_per_drive if shared else self.scale.files_per_my_drive
        count = low + roll % (high - low + 1)
        if shared:
            name, owner = f"{self._pick(_TOPICS, roll >> 8)} Drive {d}", None
        else:
            user = self.user(d - self.scale.shared_drives)
            name, owner = f"My Drive of {user.display_name}", user.email
        drive_id = f"0A{self._chars(7, 'drive', d)}{_b36(d, 4)}Uk9PVA"
        return Drive(d, drive_id, name, SHARED_DRIVE if shared else MY_DRIVE, owner, count,
                     _iso(2_000_000 + (roll >> 16) % 40_000_000))

    def drive_by_id(self, value: str) -> Drive | None:
        """A drive by its id, or a My Drive by its owner's e-mail."""
        key = (value or "").strip()
        if "@" in key:
            user = self.user_by_email(key)
            return self.drive(self.scale.shared_drives + user.index) if user else None
        if len(key) != 19 or not key.startswith("0A"):
            return None
        try:
            d = int(key[9:13], 36)
        except ValueError:
            return None
        if d >= self.drive_count:
            return None
        drive = self.drive(d)
        return drive if drive.id == key else None

    def my_drive(self, u: int) -> Drive:
        return self.drive(self.scale.shared_drives + u)

    def drive_members(self, d: int) -> list[dict[str, Any]]:
        """Who a drive is shared with: ``{principal, type, role}`` rows."""
        drive = self.drive(d)
        if drive.kind == MY_DRIVE:
            return [{"principal": drive.owner, "type": "User", "role": "Owner"}]
        count = 1 + self.h("members", d) % min(6, self.user_count)
        users = sorted({(5 * d + k) % self.user_count for k in range(count)})
        rows = [{"principal": self.user(u).email, "type": "User",
                 "role": "Manager" if n == 0 else self._pick(ROLES, self.h("role", d, u))}
                for n, u in enumerate(users)]
        if d % 2 == 0:
            rows.append({"principal": self.group(d % self.group_count).email, "type": "Group",
                         "role": "Contributor"})
        return rows

    def user_drives(self, u: int) -> list[int]:
        """The drives user ``u`` reaches as a member: shared drives, then their My Drive."""
        email = self.user(u).email
        groups = {self.group(g).email for g in self.user_groups(u)}
        found = [d for d in range(self.scale.shared_drives)
                 if any(m["principal"] in groups | {email} for m in self.drive_members(d))]
        return [*found, self.scale.shared_drives + u]

    def group_drives(self, g: int) -> list[int]:
        return [d for d in range(0, self.scale.shared_drives, 2) if d % self.group_count == g]

    # ----------------------------------------------------------------------- files

    def _drive_files(self, d: int) -> tuple[dict[str, Any], ...]:
        return tuple(self.file(d, j) for j in range(self.drive(d).file_count))

    def file(self, d: int, j: int) -> dict[str, Any]:
        """File ``j`` of drive ``d`` (``j == 0`` is a top folder)."""
        drive = self.drive(d)
        roll = self.h("file", d, j)
        kind, ext = ("Folder", "folder") if j == 0 else self._pick(_MIME, roll)
        stem = f"{self._pick(_FILES, roll >> 4)} {j:04d}"
        name = stem if kind == "Folder" else f"{stem}.{ext}" if ext == "pdf" else stem
        owner = drive.owner or self.user((5 * d) % self.user_count).email
        shared = None
        if j and roll % 4 == 0:  # one direct permission beyond the drive's members
            if roll % 3 == 0:
                shared = {"principal": self.outsider("file", d, j), "type": "User",
                          "role": "Viewer", "external": True}
            else:
                other = self.user((roll >> 12) % self.user_count).email
                shared = {"principal": other, "type": "User", "role": "Commenter",
                          "external": False}
        created = 1_000_000 + (roll >> 20) % 30_000_000
        return {
            "id": f"1{self._chars(20, 'file', d, j)}{_b36(d, 4)}{_b36(j, 4)}{self._chars(4, d, j)}",
            "name": name, "type": kind, "drive": d, "driveName": drive.name,
            "path": f"/{drive.name}" + ("" if j == 0 else f"/folder {(roll >> 8) % 4}/{name}"),
            "owner": owner, "createdTime": _iso(created),
            "modifiedTime": _iso(created - (roll >> 28) % created),
            "label": self._pick(("", "", "Internal", "Confidential"), roll >> 36),
            "shared": shared,
        }

    def file_by_id(self, file_id: str) -> dict[str, Any] | None:
        key = (file_id or "").strip()
        if len(key) != 33 or not key.startswith("1"):
            return None
        try:
            d, j = int(key[21:25], 36), int(key[25:29], 36)
        except ValueError:
            return None
        if d >= self.drive_count or j >= self.drive(d).file_count:
            return None
        found = self.file(d, j)
        return found if found["id"] == key else None

    def file_permissions(self, d: int, j: int) -> list[dict[str, Any]]:
        """Every principal with access to file ``j``: the drive's members (inherited) and
        its own direct permission, if any."""
        rows = [{**m, "inherited": True, "external": False} for m in self.drive_members(d)]
        extra = self.file(d, j)["shared"]
        if extra:
            rows.append({**extra, "inherited": False})
        return rows

    # ----------------------------------------------------------------------- links

    def link_count(self, d: int, link_type: int) -> int:
        roll = self.h("links", d, link_type)
        if d >= self.scale.shared_drives:  # My Drives: one in eight shares a link or two
            return 0 if roll % 8 else 1 + (roll >> 8) % 2
        return roll % (self.scale.links_per_type + 1)

    def link(self, d: int, link_type: int, j: int) -> dict[str, Any]:
        drive = self.drive(d)
        roll = self.h("link", d, link_type, j)
        target = self.file(d, roll % drive.file_count)
        created = 50_000 + (roll >> 8) % 20_000_000
        return {
            "fileId": target["id"], "name": target["name"], "path": target["path"],
            "type": target["type"], "driveId": drive.id, "driveName": drive.name,
            "linkType": LINK_LABELS[link_type],
            "audience": DOMAIN if link_type == 301 else "Anyone with the link",
            "role": ("Viewer", "Commenter", "Editor")[(roll >> 4) % 3],
            "url": f"https://drive.google.com/file/d/{target['id']}/view?usp=sharing",
            "sharedBy": target["owner"], "createdTime": _iso(created),
        }

    # ------------------------------------------------------------------ activities

    def activities(self, subject: str, user_report: bool) -> Iterator[dict[str, Any]]:
        """The events of a user (by e-mail) or on a file (by id), newest first."""
        count = self.h("activities", subject.lower()) % (self.scale.activities + 1)
        for n in range(count):
            roll = self.h("activity", subject.lower(), n)
            d = roll % self.drive_count
            if user_report:
                who = subject.lower()
                target = self.file(d, (roll >> 8) % self.drive(d).file_count)
            else:
                who = self.user((roll >> 8) % self.user_count).email
                target = self.file_by_id(subject) or {"id": subject, "name": "", "drive": d}
            yield {
                "time": EPOCH - dt.timedelta(seconds=n * 3600 + (roll >> 16) % 3600),
                "actor": who, "event": self._pick(EVENT_TYPES, roll >> 24),
                "fileId": target["id"], "name": target["name"],
                "drive": self.drive(target["drive"]).name,
                "ip": f"10.{(roll >> 32) % 256}.{(roll >> 40) % 256}.{(roll >> 48) % 256}",
            }

