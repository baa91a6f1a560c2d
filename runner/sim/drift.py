"""Tenant drift: the same seeded tenant, some time later (``SimConfig(drift=N)``,
``sim serve --drift N``).

A drifted tenant differs from its base in three ways, each drawn from ``(drift, index)``
so that a test can list exactly what changed (``DriftedTenant.changes``):

* **new anyone-links**: about one site in four gains one more "Anyone" sharing link (the
  link that index ``count`` would be, so every older link stays as it was);
* **removed users**: about one user in twenty-five is gone: absent from the user summary,
  from site permissions and from lookups by e-mail (what other records say about them,
  such as who created a file, stays: that is history);
* **raised risk**: about one object in twenty that was not already high risk becomes
  highly exposed and high risk (exposure 3, risk 3), which the site overview counts too.

``drift=0`` is no drift: the simulator builds a plain ``Tenant``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from runner.sim.tenant import Scale, Tenant, User

ANYONE = 128
HIGH = 3
NEW_LINK_EVERY = 4  # about one site in four gains an anyone-link
REMOVED_USER_EVERY = 25
RAISED_OBJECT_EVERY = 20


@dataclass(frozen=True)
class Changes:
    """What a drift changed, by identity: what ``insights-runner diff`` should find."""

    new_links: tuple[tuple[int, dict[str, Any]], ...]  # (site index, link_summary record)
    removed_users: tuple[User, ...]
    raised: tuple[tuple[int, int, int, int], ...]  # (site, object, old risk, new risk)


class DriftedTenant(Tenant):
    """``Tenant(seed, scale)`` after drift number ``drift`` (>= 1)."""

    def __init__(self, seed: int = 7, scale: str | Scale = "small", drift: int = 1):
        if drift < 1:
            raise ValueError("drift is a positive number (0 means no drift)")
        super().__init__(seed, scale)
        self.drift = drift

    def _d(self, *parts: object) -> int:
        return self.h("drift", self.drift, *parts)

    # ------------------------------------------------------------------ the draws

    def gains_link(self, s: int) -> bool:
        return self._d("link", s) % NEW_LINK_EVERY == 0

    def removed(self, u: int) -> bool:
        return self._d("user", u) % REMOVED_USER_EVERY == 0

    def raises(self, s: int, j: int) -> bool:
        return self._d("risk", s, j) % RAISED_OBJECT_EVERY == 0 and \
            super().object_codes(s, j)[3] != HIGH

    # ------------------------------------------------------- the tenant, drifted

    def link_count(self, s: int, link_type: int) -> int:
        count = super().link_count(s, link_type)
        return count + 1 if link_type == ANYONE and self.gains_link(s) else count

    @cached_property
    def _users(self) -> tuple[int, ...]:
        return tuple(u for u in range(self.user_count) if not self.removed(u))

    def users(self) -> Sequence[int]:
        return self._users

    def user_by_email(self, email: str) -> User | None:
        user = super().user_by_email(email)
        return None if user is None or self.removed(user.index) else user

    def site_users(self, s: int) -> list[int]:
        return [u for u in super().site_users(s) if not self.removed(u)]

    def object_codes(self, s: int, j: int) -> tuple[int, int, int, int]:
        object_type, sensitivity, exposure, risk = super().object_codes(s, j)
        if self.raises(s, j):
            return object_type, sensitivity, HIGH, HIGH
        return object_type, sensitivity, exposure, risk

    def object(self, s: int, j: int) -> dict[str, Any]:
        record = super().object(s, j)
        if self.raises(s, j):
            record = {**record, "exposureLevel": HIGH, "riskLevel": HIGH}
        return record

    # ----------------------------------------------------------------- the record

    def changes(self, sites: Sequence[int] | None = None) -> Changes:
        """Every change of this drift, on ``sites`` (default: all) for links and risk."""
        chosen = range(self.site_count) if sites is None else sites
        base = Tenant(self.seed, self.scale)
        new_links = tuple((s, self.link(s, ANYONE, base.link_count(s, ANYONE)))
                          for s in chosen if self.gains_link(s))
        removed = tuple(self.user(u) for u in range(self.user_count) if self.removed(u))
        raised = tuple((s, j, base.object_codes(s, j)[3], HIGH) for s in chosen
                       for j in range(self.site(s).object_count) if self.raises(s, j))
        return Changes(new_links, removed, raised)


def tenant_for(seed: int, scale: str | Scale, drift: int) -> Tenant:
    """The simulator's tenant: plain, or drifted when ``drift`` is set."""
    return DriftedTenant(seed, scale, drift) if drift else Tenant(seed, scale)
