"""Export files: a .zip of .xlsx reports per finished job, as the reference's "Sample
Reports" describe them, with sheet headers, sheet names and file names in the job's
language (en-US, ja-JP, fr-FR).

* site permission export: an overview of every requested site + one report per site;
* user / group access export: a summary + (option 1) a site-collection level access
  report or (option 2) an access report to all objects, per user / group; option 3 is
  the summary alone;
* link export: one report for the requested link type, links created in the time range;
* activity export: the user's activity report and/or the activity report on the object.

A file is built on first download and kept, so every download of a job is the same bytes
(zip entries are stamped with the job's submission time).
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from runner import catalog
from runner.sim import records
from runner.sim.jobs import Job
from runner.sim.tenant import Tenant, parse_time
from runner.sim.xlsx import Sheet, workbook

_LANGS = ("en-US", "ja-JP", "fr-FR")
BUILT_CACHE = 8  # export files kept built (per simulator)

# column key -> header in en-US, ja-JP, fr-FR
HEADERS: dict[str, tuple[str, str, str]] = {
    "site_name": ("Site Name", "サイト名", "Nom du site"),
    "site_url": ("Site URL", "サイト URL", "URL du site"),
    "workspace": ("Workspace", "ワークスペース", "Espace de travail"),
    "permission_count": ("Permissions", "アクセス許可の数", "Autorisations"),
    "direct_users": ("Users with Direct Access", "直接アクセス権を持つユーザー",
                     "Utilisateurs avec accès direct"),
    "external": ("External Principals", "外部プリンシパル", "Principaux externes"),
    "links": ("Sharing Links", "共有リンク", "Liens de partage"),
    "result": ("Result", "結果", "Résultat"),
    "object_name": ("Object Name", "オブジェクト名", "Nom de l'objet"),
    "url": ("URL", "URL", "URL"),
    "object_type": ("Object Type", "オブジェクトの種類", "Type d'objet"),
    "principal": ("User/Group", "ユーザー/グループ", "Utilisateur/Groupe"),
    "email": ("Email", "メール アドレス", "E-mail"),
    "principal_type": ("Type", "種類", "Type"),
    "permission": ("Permission", "アクセス許可", "Autorisation"),
    "members": ("Number of Members", "メンバー数", "Nombre de membres"),
    "is_external": ("External User", "外部ユーザー", "Utilisateur externe"),
    "breaks": ("Inheritance Broken", "継承の解除", "Héritage rompu"),
    "link_access": ("Link Giving Access To", "リンクのアクセス先", "Accès donné par le lien"),
    "display_name": ("Display Name", "表示名", "Nom d'affichage"),
    "login_name": ("Login Name", "ログイン名", "Nom de connexion"),
    "user_status": ("User Status", "ユーザーの状態", "État de l'utilisateur"),
    "trust_status": ("Trust Status", "信頼の状態", "État d'approbation"),
    "direct_sites": ("Sites with Direct Access", "直接アクセス権を持つサイト",
                     "Sites avec accès direct"),
    "last_signin": ("Last Sign-in", "最終サインイン", "Dernière connexion"),
    "created": ("Created", "作成日時", "Créé le"),
    "user": ("User", "ユーザー", "Utilisateur"),
    "location": ("Location", "場所", "Emplacement"),
    "sensitivity": ("Sensitivity Level", "機密レベル", "Niveau de sensibilité"),
    "data_type": ("Data Type", "データの種類", "Type de données"),
    "direct": ("Direct Permission", "直接のアクセス許可", "Autorisation directe"),
    "inherited_from": ("Inherited From", "継承元", "Hérité de"),
    "group": ("Group", "グループ", "Groupe"),
    "group_id": ("Group ID", "グループ ID", "ID du groupe"),
    "group_type": ("Group Type", "グループの種類", "Type de groupe"),
    "membership": ("Membership Type", "メンバーシップの種類", "Type d'appartenance"),
    "external_members": ("External Members", "外部メンバー", "Membres externes"),
    "link_type": ("Link Type", "リンクの種類", "Type de lien"),
    "link_url": ("Link URL", "リンク URL", "URL du lien"),
    "shared_by": ("Shared By", "共有者", "Partagé par"),
    "shared_with": ("Shared With", "共有先の数", "Partagé avec"),
    "expires": ("Expiration Time", "有効期限", "Date d'expiration"),
    "time": ("Time (UTC)", "日時 (UTC)", "Heure (UTC)"),
    "operation": ("Operation", "操作", "Opération"),
    "object": ("Object", "オブジェクト", "Objet"),
    "client_ip": ("Client IP", "クライアント IP", "IP du client"),
}

# report/sheet/file names in en-US, ja-JP, fr-FR
NAMES: dict[str | int, tuple[str, str, str]] = {
    "overview": ("Overview", "概要", "Vue d'ensemble"),
    "permission_report": ("Permission Report", "アクセス許可レポート", "Rapport d'autorisations"),
    "user_summary": ("User Summary", "ユーザーの概要", "Synthèse des utilisateurs"),
    "group_summary": ("Group Summary", "グループの概要", "Synthèse des groupes"),
    "site_access": ("Site Collection Level Access Report",
                    "サイト コレクション レベルのアクセス レポート",
                    "Rapport d'accès au niveau de la collection de sites"),
    "object_access": ("Access Report", "アクセス レポート", "Rapport d'accès"),
    "user_activity": ("User Activity Report", "ユーザー アクティビティ レポート",
                      "Rapport d'activité de l'utilisateur"),
    "object_activity": ("Activity Report on Object", "オブジェクトのアクティビティ レポート",
                        "Rapport d'activité sur l'objet"),
    "not_found": ("Not found in the configured scope", "構成されたスコープに見つかりません",
                  "Introuvable dans l'étendue configurée"),
    "exported": ("Exported", "エクスポート済み", "Exporté"),
    32: ("Specific People Links Report", "特定のユーザー リンク レポート",
         "Rapport des liens pour des personnes spécifiques"),
    64: ("Organization Links Report", "組織リンク レポート", "Rapport des liens d'organisation"),
    128: ("Anyone Links Report", "すべてのユーザー リンク レポート",
          "Rapport des liens Tout le monde"),
    "site_permission_export": ("SitePermissionReport", "サイトのアクセス許可レポート",
                               "RapportAutorisationsSites"),
    "user_access_export": ("UserAccessReport", "ユーザー アクセス レポート",
                           "RapportAccesUtilisateurs"),
    "group_access_export": ("GroupAccessReport", "グループ アクセス レポート",
                            "RapportAccesGroupes"),
    "link_export": ("LinkReport", "リンク レポート", "RapportLiens"),
    "activity_export": ("ActivityReport", "アクティビティ レポート", "RapportActivite"),
}


# the columns of each report, as HEADERS keys
OVERVIEW_COLUMNS = ("site_name", "site_url", "workspace", "permission_count", "direct_users",
                    "external", "links", "result")
SITE_PERMISSION_COLUMNS = ("object_name", "url", "object_type", "principal", "email",
                           "principal_type", "permission", "members", "is_external", "breaks",
                           "link_access")
USER_SUMMARY_COLUMNS = ("display_name", "login_name", "email", "user_status", "trust_status",
                        "direct_sites", "last_signin", "created")
GROUP_SUMMARY_COLUMNS = ("display_name", "group_id", "email", "group_type", "membership",
                         "external_members", "created")
ACCESS_COLUMNS = ("workspace", "site_name", "object_name", "location", "object_type",
                  "permission", "sensitivity", "data_type", "direct", "inherited_from")
LINK_COLUMNS = ("object_name", "url", "object_type", "link_type", "link_url", "permission",
                "shared_by", "shared_with", "created", "expires", "sensitivity")
ACTIVITY_COLUMNS = ("time", "user", "operation", "object", "site_url", "client_ip")


def text(table: dict[Any, tuple[str, str, str]], key: Any, language: str) -> str:
    return table[key][_LANGS.index(language) if language in _LANGS else 0]


class Reports:
    def __init__(self, tenant: Tenant):
        self.tenant = tenant
        self._lock = threading.Lock()
        self._built: OrderedDict[int, tuple[bytes, str, str]] = OrderedDict()
        # Files a test put in place of a job's report (Simulator.replace_export_file).
        self.replaced: dict[int, tuple[bytes, str, str]] = {}

    def file(self, job: Job) -> tuple[bytes, str, str]:
        """The job's .zip, its (localized) file name and an ASCII fallback name.

        Built files are cached for the last few jobs only (a resumed download asks for the
        same bytes again, and ``build`` is deterministic anyway): a run of thousands of
        exports must not keep every file in the simulator's memory.
        """
        with self._lock:
            if job.id in self.replaced:
                return self.replaced[job.id]
            built = self._built.pop(job.id, None) or self.build(job)
            self._built[job.id] = built
            while len(self._built) > BUILT_CACHE:
                self._built.popitem(last=False)
            return built

    def build(self, job: Job) -> tuple[bytes, str, str]:
        language = str(job.values.get("language") or catalog.DEFAULT_LANGUAGE)
        books = _BUILDERS[job.operation](self, job.values, language)
        return archive(job, books, text(NAMES, job.operation, language), NAMES[job.operation][0])

    # ------------------------------------------------------------------ builders

    def _sheet(self, name_key: Any, language: str, columns: Sequence[str],
               rows: Iterable[Sequence[Any]]) -> Sheet:
        return (text(NAMES, name_key, language), [text(HEADERS, c, language) for c in columns],
                rows)

    def site_permissions(self, values: dict[str, Any], language: str) -> list:
        overview, books = [], []
        for url in values["site_urls"]:
            site = self.tenant.site_by_url(url)
            if site is None:
                overview.append([None, url, None, None, None, None, None,
                                 text(NAMES, "not_found", language)])
                continue
            rows = records.site_permissions(self.tenant, site.index)
            overview.append([
                site.name, site.url, catalog.MODULE.label(site.module), len(rows),
                sum(r["principalType"] == "User" for r in rows),
                sum(bool(r["isExternalUser"]) for r in rows),
                sum(r["principalType"] == "Sharing Link" for r in rows),
                text(NAMES, "exported", language)])
            books.append((f"{text(NAMES, 'permission_report', language)} - {site.name}", [
                self._sheet("permission_report", language, SITE_PERMISSION_COLUMNS, [
                    [r["name"], r["url"], r["objectType"], r["principalName"], r["email"],
                     r["principalType"], r["permission"], r["numberOfMembers"],
                     r["isExternalUser"], r["inheritType"], r["linkGivingAccessTo"]]
                    for r in rows])]))
        return [(text(NAMES, "overview", language),
                 [self._sheet("overview", language, OVERVIEW_COLUMNS, overview)]), *books]

    def _scope(self, values: dict[str, Any]) -> tuple[set[int], set[int] | None]:
        labels = {str(v) for v in values.get("data_sources") or ()}
        modules = {int(m.code) for m in catalog.MODULE.members if m.label in labels}
        urls = values.get("site_urls") or []
        sites = {s.index for s in map(self.tenant.site_by_url, urls) if s is not None}
        return modules, (sites if urls else None)

    def _in_scope(self, s: int, modules: set[int], sites: set[int] | None) -> bool:
        return self.tenant.site(s).module in modules and (sites is None or s in sites)

    def user_access(self, values: dict[str, Any], language: str) -> list:
        modules, scope = self._scope(values)
        option = int(values["export_option"])
        summary, books = [], []
        for email in values["emails"]:
            user = self.tenant.user_by_email(email)
            if user is None:
                summary.append([None, email, email, None, None, None, None, None])
                continue
            sites = [s for s in self.tenant.user_sites(user.index)
                     if self._in_scope(s, modules, scope)]
            row = records.user_summary(self.tenant, user.index)
            summary.append([row["displayName"], row["loginName"], row["email"], row["userStatus"],
                            row["trustStatus"], len(sites), row["lastSignin"], row["createdOn"]])
            if option == 3:
                continue
            rows = [r for s in sites for r in records.user_permissions(self.tenant, user.index, s)
                    if option == 2 or r["isDirect"]]
            key = "site_access" if option == 1 else "object_access"
            books.append((f"{text(NAMES, key, language)} - {user.email}", [
                self._sheet(key, language, ("user", *ACCESS_COLUMNS), [
                    [user.email, r["module"], r["siteName"], r["name"], r["location"],
                     r["objectType"], r["permission"], r["sensitivityLevel"], r["dataType"],
                     r["isDirect"], r["inheritedFrom"]] for r in rows])]))
        return [(text(NAMES, "user_summary", language),
                 [self._sheet("user_summary", language, USER_SUMMARY_COLUMNS, summary)]), *books]

    def group_access(self, values: dict[str, Any], language: str) -> list:
        modules, scope = self._scope(values)
        option = int(values["export_option"])
        ids = values["group_ids"] or [self.tenant.group(g).id
                                      for g in range(self.tenant.group_count)]
        summary, books = [], []
        for group_id in ids:
            group = self.tenant.group_by_id(group_id)
            if group is None:
                summary.append([None, group_id, None, None, None, None, None])
                continue
            row = records.group_summary(self.tenant, group.index)
            summary.append([row["displayName"], row["groupId"], row["email"], row["groupType"],
                            row["membershipType"], row["externalMemberCount"], row["createdOn"]])
            if option == 3:
                continue
            rows = []
            for s in self.tenant.group_sites(group.index):
                if not self._in_scope(s, modules, scope):
                    continue
                site = self.tenant.site(s)
                objects = self.tenant.site_objects(s)
                for j in range(len(objects) if option == 2 else 1):
                    obj = records.detail_record(objects[j])
                    rows.append([group.display_name, obj["module"], site.name, obj["name"],
                                 obj["location"], obj["objectType"],
                                 "Edit" if group.index % 2 else "Read", obj["sensitivityLevel"],
                                 ", ".join(obj["dataType"]), j == 0,
                                 None if j == 0 else site.name])
            key = "site_access" if option == 1 else "object_access"
            books.append((f"{text(NAMES, key, language)} - {group.display_name}",
                          [self._sheet(key, language, ("group", *ACCESS_COLUMNS), rows)]))
        return [(text(NAMES, "group_summary", language),
                 [self._sheet("group_summary", language, GROUP_SUMMARY_COLUMNS, summary)]),
                *books]

    def links(self, values: dict[str, Any], language: str) -> list:
        link_type = int(values["link_type"])
        start = parse_time(values["start_time"]) if values.get("start_time") else None
        end = parse_time(values["end_time"]) if values.get("end_time") else None
        rows = []
        for s in range(self.tenant.site_count):
            for j in range(self.tenant.link_count(s, link_type)):
                link = self.tenant.link(s, link_type, j)
                created = parse_time(link["createTime"])
                if (start and created < start) or (end and created > end):
                    continue
                rows.append([link["name"], link["objectUrl"], link["fileType"], link["linkType"],
                             link["linkUrl"], link["permission"], link["shareBy"],
                             link["shareWith"], link["createTime"], link["expireTime"],
                             link["sensitivityLevel"]])
        return [(text(NAMES, link_type, language),
                 [self._sheet(link_type, language, LINK_COLUMNS, rows)])]

    def activity(self, values: dict[str, Any], language: str) -> list:
        start = parse_time(values["start_time"]) if values.get("start_time") else None
        end = parse_time(values["end_time"]) if values.get("end_time") else None
        kinds = {k.lower() for k in values.get("event_types") or ()}
        books = []
        for subject, key, user_report in ((values["email"], "user_activity", True),
                                          (values["path"], "object_activity", False)):
            if not subject:
                continue
            rows = [[e["time"].strftime("%Y-%m-%dT%H:%M:%SZ"), e["user"], e["operation"],
                     e["object"], e["site"], e["client_ip"]]
                    for e in self.tenant.activities(subject, user_report)
                    if (not start or e["time"] >= start) and (not end or e["time"] <= end)
                    and (not kinds or e["operation"].lower() in kinds)]
            books.append((text(NAMES, key, language),
                          [self._sheet(key, language, ACTIVITY_COLUMNS, rows)]))
        return books


_BUILDERS = {
    "site_permission_export": Reports.site_permissions,
    "user_access_export": Reports.user_access,
    "group_access_export": Reports.group_access,
    "link_export": Reports.links,
    "activity_export": Reports.activity,
}


def archive(job: Job, books: Iterable[tuple[str, list[Sheet]]], name: str,
            ascii_name: str) -> tuple[bytes, str, str]:
    """The .zip of ``books`` (one .xlsx each), its file name and an ASCII fallback name."""
    stamp = time.gmtime(job.submitted)[:6]
    stamp = (max(stamp[0], 1980), *stamp[1:])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        used: set[str] = set()
        for n, (book, sheets) in enumerate(books):
            member = f"{_unique(_safe(book), used)}.xlsx"
            if job.hostile:
                member = ("../../", "/tmp/")[n % 2] + member  # noqa: S108 - on purpose
            zipped.writestr(zipfile.ZipInfo(member, stamp), workbook(sheets, stamp))
    suffix = f"_{job.id}.zip"
    prefix = "../../" if job.hostile else ""
    return buffer.getvalue(), prefix + name + suffix, prefix + ascii_name + suffix


def _safe(name: str) -> str:
    """A zip member name that is a plain file name on every system."""
    cleaned = "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in name)
    return cleaned.strip(" .")[:150] or "report"


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate, n = f"{name} ({n})", n + 1
    used.add(candidate.lower())
    return candidate
