"""Scale: registers read lazily from their files, resumption without a request, and the
simulator's knobs for sized tenants and large export files.  (Speed and memory figures live
in benchmarks/run_all.py; nothing here is timed.)"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import requests
from run_support import env_for, report, runner, write_playbook
from sim_support import headers

from runner import catalog
from runner.execute import outputs
from runner.execute.registry import RecordFiles, iter_records
from runner.sim.tenant import Tenant, sized_scale

RECORDS = [{"email": f"user{i}@contoso.example", "userStatus": "Active" if i % 3 else "Blocked",
            "note": "line\u2028break, \"quoted\"\nnewline" if i == 4 else f"n{i}"}
           for i in range(250)]


def write(tmp_path: Path, fmt: str, records: list[dict], pages: int = 3) -> Path:
    final = tmp_path / f"users.{fmt}"
    writer = outputs.RecordWriter.open(final, "step1", fmt, ("email", "userStatus", "note"))
    size = -(-len(records) // pages) or 1
    for start in range(0, max(1, len(records)), size):
        writer.write_page(records[start:start + size])
    writer.finish()
    return final


@pytest.mark.parametrize("fmt", outputs.FORMATS)
def test_a_register_streams_its_records_from_the_files(tmp_path: Path, fmt: str) -> None:
    first = write(tmp_path / "a", fmt, RECORDS[:100])
    second = write(tmp_path / "b", fmt, RECORDS[100:])
    value = RecordFiles([(first, fmt), (second, fmt)])

    assert list(value) == RECORDS
    assert list(value) == RECORDS  # iterating again reads the files again
    assert len(value) == 250 and value
    assert value[0] == RECORDS[0] and value[-1] == RECORDS[-1] and value[120] == RECORDS[120]
    assert value[3:6] == RECORDS[3:6]
    assert next(reversed(value)) == RECORDS[-1]
    with pytest.raises(IndexError):
        value[250]


@pytest.mark.parametrize("fmt", outputs.FORMATS)
def test_an_empty_register_is_empty(tmp_path: Path, fmt: str) -> None:
    value = RecordFiles([(write(tmp_path, fmt, []), fmt)])
    assert list(value) == [] and len(value) == 0 and not value


def test_a_json_array_written_by_hand_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[{"a": 1}, {"a": 2}]', encoding="utf-8")
    assert list(iter_records(path, "json")) == [{"a": 1}, {"a": 2}]


def test_templates_filter_a_lazy_register_and_get_a_list_when_they_take_it_whole(
        tmp_path: Path) -> None:
    from runner.manifest import load_playbook
    from runner.plan import compile_task
    from runner.templating import RunFacts

    users = RecordFiles([(write(tmp_path, "jsonl", RECORDS), "jsonl")])
    playbook = tmp_path / "book.yml"
    playbook.write_text("""\
version: 1
name: lazy
connection: {simulator: true}
tasks:
  - name: Users
    user_summary: {}
    register: users
    output: users.jsonl
  - name: Access
    user_access_export:
      emails: "{{ users | selectattr('userStatus', 'eq', 'Active')
                  | map(attribute='email') | list }}"
      data_sources: [teams]
      export_option: summary_only
    output: "access/{{ chunk.number }}.zip"
  - name: One per user
    user_summary: {}
    loop: "{{ users }}"
    when: "{{ users | length > 249 and item.email.endswith('0@contoso.example') }}"
    output: "one/{{ item.email }}.jsonl"
""", encoding="utf-8")
    book = load_playbook(playbook)
    facts = RunFacts("2025-01-31", "08-00-00", "2025-01-31T08:00:00Z", "t")
    access = compile_task(book, 1, registered={"users": users}, run_facts=facts)
    emails = [e for step in access for e in step.request["emails"]]
    assert emails == [r["email"] for r in RECORDS if r["userStatus"] == "Active"]
    assert len(access) == 2  # 166 e-mails: two Steps of at most 100
    per_user = compile_task(book, 2, registered={"users": users}, run_facts=facts)
    assert len(per_user) == 25


def test_a_finished_register_playbook_runs_again_without_any_request(sim, tmp_path: Path
                                                                     ) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "register": "users", "output": "users.jsonl"},
        {"name": "Access of active users",
         "user_access_export": {
             "emails": "{{ users | selectattr('userStatus', 'eq', 'Active') "
                       "| map(attribute='email') | list }}",
             "data_sources": ["teams"], "export_option": "summary_only"},
         "output": "access/part-{{ chunk.number }}.zip"},
    ])
    first = runner("run", playbook, "-q", env=env_for(sim))
    assert first.returncode == 0, first.stderr
    steps = report(playbook)["steps"]
    active = sum(1 for u in range(sim.tenant.user_count) if sim.tenant.user(u).active)
    assert len(steps) == 1 + -(-active // catalog.MAX_LIST_VALUES)
    sim.log.clear()

    again = runner("run", playbook, "-q", env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert sim.log.entries == []  # not even a token
    assert all(step["reused"] for step in report(playbook)["steps"])


def test_a_sized_tenant_serves_exactly_that_many_detail_records(make_sim) -> None:
    sim = make_sim(scale=sized_scale(objects=1234))
    url, token, count = sim.url("detail_records"), None, 0
    auth = headers(sim)
    with requests.Session() as session:
        while True:
            page = session.post(url, json={"pageSize": 100, "token": token}, headers=auth).json()
            count += len(page["results"])
            token = page["nextToken"]
            if token is None:
                break
    assert count == 1234


def test_sized_scales_count_users_and_objects_exactly() -> None:
    tenant = Tenant(7, sized_scale(objects=1_000_000, users=200_000))
    assert tenant.user_count == 200_000
    assert tenant.site_count * tenant.scale.objects_per_site[0] == 1_000_000
    assert tenant.scale.objects_per_site[0] == tenant.scale.objects_per_site[1]
    with pytest.raises(ValueError):
        sized_scale(objects=0)


def test_a_large_synthetic_export_downloads_whole_and_resumes_by_range(make_sim,
                                                                       tmp_path: Path) -> None:
    from runner.client.api import InsightsClient
    from runner.client.connection import settings_for_simulator

    size = 3 * 2**20 + 12345
    sim = make_sim(export_bytes=size, job_seconds=0)
    with InsightsClient(settings_for_simulator(sim)) as client:
        job = client.submit("link_export", {"exportLinkType": "64"})
        done = client.download("link_export", job, tmp_path / "big.zip")
    assert done.bytes == size == done.path.stat().st_size
    with zipfile.ZipFile(done.path) as archive:
        assert archive.testzip() is None
    whole = done.path.read_bytes()
    answer = requests.get(sim.url("permission_export_file"), params={"id": job},
                          headers={**headers(sim), "Range": "bytes=2000000-"}, timeout=60)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes 2000000-{size - 1}/{size}"
    assert answer.content == whole[2_000_000:]


def test_a_deferred_task_is_compiled_once_and_remembered_in_the_state(sim, tmp_path: Path
                                                                      ) -> None:
    access = {"name": "Access", "user_access_export": {
        "emails": "{{ users | map(attribute='email') | list }}",
        "data_sources": ["teams"], "export_option": "summary_only"},
        "output": "access/part-{{ chunk.number }}.zip"}
    dated = {**access, "name": "Dated", "output": "dated/{{ run.date }}-{{ chunk.number }}.zip"}
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "register": "users", "output": "users.jsonl"},
        access, dated])
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    memos = sorted((tmp_path / ".insights-runner" / "compiled").glob("task*"))  # plan-*: the
    # whole plan's memo (runner.planmemo), which does not read run.date: the Dated task waits
    # The task that reads run.date may compile differently next time: never remembered.
    assert [m.name.split("-")[0] for m in memos] == ["task1"]

    memos[0].write_text("{not json", encoding="utf-8")  # a broken memo: compiled again
    sim.log.clear()
    again = runner("run", playbook, "-q", env=env_for(sim))
    assert again.returncode == 0, again.stderr
    assert sim.log.entries == []
    assert all(step["reused"] for step in report(playbook)["steps"])


def test_pages_appended_after_the_last_checkpoint_are_cut_on_resume(tmp_path: Path) -> None:
    final = tmp_path / "r.jsonl"
    writer = outputs.RecordWriter.open(final, "step1", "jsonl")
    writer.append(RECORDS[:10])
    mark = writer.checkpoint()  # committed with the token of page 2
    writer.append(RECORDS[10:20])  # appended, never checkpointed: the crash comes now
    writer.close()

    again = outputs.RecordWriter.open(final, "step1", "jsonl", resume=mark)
    again.append(RECORDS[10:30])  # page 2 fetched again from the committed token
    again.finish()
    assert list(iter_records(final, "jsonl")) == RECORDS[:30]


def test_prefetched_pages_arrive_in_order_with_the_error_last() -> None:
    import threading

    from runner.errors import ServiceError
    from runner.execute.paging import prefetched as _prefetched

    def pages():
        yield from range(5)
        raise ServiceError("page 6 refused")

    got = []
    with pytest.raises(ServiceError, match="page 6"):
        for page in _prefetched(pages(), threading.Event()):
            got.append(page)
    assert got == [0, 1, 2, 3, 4]

    fetched = []

    def endless():
        n = 0
        while True:
            fetched.append(n)
            yield n
            n += 1

    for page in _prefetched(endless(), threading.Event(), depth=2):
        if page == 3:
            break
    assert len(fetched) <= 3 + 2 + 2  # the helper stops a page or two after the consumer


def test_only_tasks_that_depend_on_nothing_but_playbook_and_registers_are_remembered(
        tmp_path: Path) -> None:
    from runner.execute.registry import _pure
    from runner.manifest import load_playbook

    playbook = tmp_path / "book.yml"
    playbook.write_text("""\
version: 1
name: purity
connection: {simulator: true}
vars:
  plain: "{{ users | map(attribute='email') | list }}"
  dated: "{{ plain if run.date else [] }}"
  lucky: "{{ users | random }}"
tasks:
  - {name: Users, user_summary: {}, register: users, output: users.jsonl}
  - name: Pure
    user_access_export: {emails: "{{ plain }}", data_sources: [teams],
                         export_option: summary_only}
    output: "a/{{ chunk.number }}.zip"
  - name: Dated through a var
    user_access_export: {emails: "{{ dated }}", data_sources: [teams],
                         export_option: summary_only}
    output: "b/{{ chunk.number }}.zip"
  - name: Random through a var
    user_access_export: {emails: ["{{ lucky.email }}"], data_sources: [teams],
                         export_option: summary_only}
    output: "c/{{ chunk.number }}.zip"
  - name: Env
    user_access_export: {emails: "{{ plain }}", data_sources: [teams],
                         export_option: summary_only}
    output: "{{ env('HOME') | length }}/{{ chunk.number }}.zip"
""", encoding="utf-8")
    book = load_playbook(playbook)
    assert [_pure(book, task) for task in book.tasks[1:]] == [True, False, False, False]


def test_a_bad_certificate_still_stops_the_run_with_exit_2_at_its_line(sim, tmp_path: Path
                                                                        ) -> None:
    # The connection opens on first use (a finished re-run never opens it), and a failure
    # to open it still ends the run at once, pointing at the playbook.
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl"},
        {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip"}])
    env = {**env_for(sim), "SIM_PFX_PASSWORD": "not the password"}

    result = runner("run", playbook, "-q", env=env)

    assert result.returncode == 2, result.stderr
    assert "playbook.yml:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "reports" / "users.jsonl").exists()
    assert sim.log.entries == []
