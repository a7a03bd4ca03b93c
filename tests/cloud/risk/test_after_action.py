"""The after-action report builder (pure): durations from the start of the response, what
failed (expected alert missing, command unanswered, deadline missed, whistle stage overdue,
notification failed), the merged timeline; the HTML says it in both languages."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.alerts import service as alerts_service
from cloud.alerts.states import Severity, Status, Transition
from cloud.alerts.views import AlertEventOut, AlertOut
from cloud.auth.deps import Role
from cloud.commands.service import CommandOut
from cloud.commands.tables import CommandStatus
from cloud.governance import incidents, whistles
from cloud.governance.models import IncidentDetail, TimelineEntry, WhistleOut
from cloud.governance.states import Action, State
from cloud.risk.render import format_duration, render_html, render_pdf
from cloud.risk.report import ReportInput, build_report
from tests.cloud.governance.conftest import SITE, GovApp, make_orgs

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def at_(base: datetime, seconds: float) -> datetime:
    return base + timedelta(seconds=seconds)


def alert(ident: int, raised: float, acked: float | None, resolved: float | None = None,
          rule: str = "smoke-alarm") -> AlertOut:  # fmt: skip
    return AlertOut(
        id=ident, site="s1", rule_id=rule, subject=f"dev-{ident}", gateway="gw1",
        device=f"dev-{ident}", zone="z1", building="b1", severity=Severity.CRITICAL,
        status=Status.ACKNOWLEDGED if acked is not None else Status.OPEN, title_en="Smoke",
        title_zh="烟雾报警", cleared=False, cleared_at=None, flapping=False, flap_count=0,
        count=1, first_seen=at(raised), last_seen=at(raised), raised_at=at(raised),
        acknowledged_at=None if acked is None else at(acked),
        acknowledged_by=None if acked is None else "guard1", assignee=None, started_at=None,
        resolved_at=None if resolved is None else at(resolved),
        resolved_by=None if resolved is None else "guard1", closed_at=None, closed_by=None,
        escalation_tier=0, next_escalation_at=None, whistled_at=None, evidence=[], drill=True,
    )  # fmt: skip


def event(alert_id: int, ts: float, kind: str, **detail: Any) -> AlertEventOut:
    return AlertEventOut(id=int(ts * 10) + alert_id, alert_id=alert_id, ts=at(ts), actor="x",
                         kind=kind, from_status=None, to_status=None, note=None,
                         detail=detail)  # fmt: skip


def command(status: CommandStatus, ack: float | None) -> CommandOut:
    return CommandOut(
        cmd_id=f"c-{status}", site="s1", gateway="gw1", target="evac-1", name="door.release",
        params={}, issued_at=at(2), expires_at=at(62), issued_by="rule:confirmed-fire",
        reason=None, rule_id="confirmed-fire", alert_id=1, status=status,
        ack_at=None if ack is None else at(ack), ack_reason=None, result={},
    )  # fmt: skip


def incident(created: float, due: float, accepted: float | None, arrived: float | None,
             resolved: float | None, whistles: list[WhistleOut]) -> IncidentDetail:  # fmt: skip
    def t(v: float | None) -> datetime | None:
        return None if v is None else at(v)

    return IncidentDetail(
        id=7, site="s1", title="fire b1", category="safety_alert", building="b1", zone="z1",
        location=None, description=None, source="alert", reporter=None, created_by="system",
        state=State.IN_PROGRESS, severity="critical", phase="response", drill=True, org_id=1,
        org_name="物业", assignee="pm1", created_at=at(created), due_at=at(due),
        dispatched_at=at(created + 5), accepted_at=t(accepted), arrived_at=t(arrived),
        resolved_at=t(resolved), closed_at=None, cancelled_at=None, deadline_missed_at=None,
        disposal_note=None, rating=None, resident_comment=None, confirmed_at=None,
        overdue=False, timeline=[TimelineEntry(ts=at(created), actor="system", action="opened",
                                               detail={"source": "alert"})],
        whistles=whistles, alert_ids=[1], photos=[], allowed_actions=[],
    )  # fmt: skip


def whistle(acked: float | None, arrived: float | None) -> WhistleOut:
    return WhistleOut(
        id=3, incident_id=7, org_id=4, org_name="消防救援站", blown_at=at(30), blown_by="pm1",
        reason="fire", auto=False, ack_due=at(30 + 900), arrive_due=at(30 + 3600),
        resolve_due=at(30 + 86400), acked_at=None if acked is None else at(acked),
        arrived_at=None if arrived is None else at(arrived), resolved_at=None, reminders=0,
        overdue_stage=None, escalated_stage=None,
    )  # fmt: skip


def test_durations_run_from_the_first_alert_to_the_first_ack_and_arrival() -> None:
    alerts = [alert(1, 0, 12.5), alert(2, 3, 40.0), alert(3, 8, None, rule="heat-high")]
    inp = ReportInput(kind="drill", ident=1, title="t", site="s1", drill=True,
                      started_at=at(-5), alerts=alerts,
                      incidents=[incident(1, 600, 20, 300, None, [whistle(200, 250)])])  # fmt: skip
    report = build_report(inp, at(500))
    d = report.durations
    assert d.started_at == at(0)
    assert d.time_to_acknowledge_s == 12.5  # alert 1, before the incident's acceptance (20 s)
    assert d.time_to_arrive_s == 250.0  # the fire brigade arrived before the property staff
    assert d.time_to_resolve_s is None  # alert 3 and the incident are not resolved
    assert [(a.id, a.ack_s) for a in report.alerts] == [(1, 12.5), (2, 37.0), (3, None)]
    kinds = {(f.kind, f.ref) for f in report.failures}
    assert ("alert_unacknowledged", "alert #3 heat-high/dev-3") in kinds
    assert not any(k == "deadline" for k, _ in kinds)  # due at 600 s, judged at 500 s


def test_time_to_resolve_is_the_last_resolution_once_everything_is_resolved() -> None:
    alerts = [alert(1, 0, 5, resolved=100), alert(2, 10, 15, resolved=160)]
    report = build_report(ReportInput(kind="incident", ident=7, title="t", site="s1",
                                      alerts=alerts), at(1000))  # fmt: skip
    assert report.durations.time_to_resolve_s == 160.0
    assert [a.resolve_s for a in report.alerts] == [100.0, 150.0]
    assert report.failures == []


def test_what_failed_is_listed() -> None:
    alerts = [alert(1, 0, 5)]
    events = {1: [event(1, 0, "raised"), event(1, 1, "notify_failed", channel="sms",
                                               error="HTTP 500"),
                  event(1, 300, "escalated", tier=1)]}  # fmt: skip
    expectations = [
        {"rule": "smoke-alarm", "severity": "critical", "subject": "dev-1", "deadline": 20.0,
         "outcome": "met", "seen_at": 1.0},
        {"rule": "confirmed-fire", "severity": "critical", "subject": "b1-f3", "deadline": 70.0,
         "outcome": "missing", "seen_at": None},
    ]  # fmt: skip
    late_whistle = whistle(acked=30 + 1000, arrived=None)  # ack due at +900 s: late
    inp = ReportInput(
        kind="drill", ident=2, title="fire", site="s1", drill=True, started_at=at(0),
        alerts=alerts, alert_events=events,
        commands=[command(CommandStatus.OK, 3), command(CommandStatus.EXPIRED, None),
                  command(CommandStatus.REFUSED, 4)],
        incidents=[incident(1, 600, None, None, None, [late_whistle])],
        expectations=expectations,
    )  # fmt: skip
    report = build_report(inp, at(5000))
    by_kind: dict[str, list[str]] = {}
    for f in report.failures:
        by_kind.setdefault(f.kind, []).append(f"{f.ref}: {f.detail}")
    assert len(by_kind["expected_alert"]) == 1 and "confirmed-fire" in by_kind["expected_alert"][0]
    assert "missing" in by_kind["expected_alert"][0]
    assert len(by_kind["command"]) == 2
    assert any("not acknowledged" in c for c in by_kind["command"])
    assert any("refused" in c for c in by_kind["command"])
    assert by_kind["deadline"] == [
        f"incident #7: deadline {at(600).isoformat()} missed by 4400.0 s"
    ]
    assert any("ack late" in w for w in by_kind["whistle"])
    assert any("arrive overdue" in w for w in by_kind["whistle"])
    assert by_kind["notification"] == ["alert #1 smoke-alarm/dev-1: sms: HTTP 500"]
    assert len(by_kind["escalated"]) == 1
    assert "alert_unacknowledged" not in by_kind
    stamps = [e.ts for e in report.timeline]
    assert stamps == sorted(stamps)
    sources = {e.source for e in report.timeline}
    assert sources == {"drill", "alert", "command", "incident", "whistle"}
    html_en = render_html(report, "en")
    assert "What failed" in html_en and "confirmed-fire" in html_en and "消防救援站" in html_en
    html_zh = render_html(report, "zh")
    assert "问题与失误" in html_zh and "演练 DRILL" in html_zh
    assert "<script" not in render_html(report.model_copy(update={"title": "<script>x"}), "en")


def test_durations_are_printed_readably() -> None:
    assert format_duration(None) == "—"
    assert format_duration(4.04) == "4.0 s"
    assert format_duration(125.0) == "2 min 05.0 s"
    assert format_duration(3 * 3600 + 120) == "3 h 02 min"


def test_incident_report_through_the_api(gov_app: GovApp) -> None:
    """An incident with a grouped alert, dispatched, accepted, arrived, whistled, resolved: the
    report's durations come from those rows; the PDF renders."""
    t0 = gov_app.clock()
    with gov_app.cloud.services.sessions.begin() as db:
        made = make_orgs(db)
        spec = alerts_service.RaiseSpec(site=SITE, rule_id="water-leak", subject="leak-1",
                                        severity=Severity.MAJOR, title_en="Leak",
                                        title_zh="漏水", ts=t0)  # fmt: skip
        alert_id = alerts_service.raise_alert(db, spec, t0).alert.id
        alerts_service.transition(db, alert_id, Transition.ACKNOWLEDGE, "guard1", at_(t0, 45))
        iid = incidents.open_incident(db, site=SITE, title="leak in b1", category="repair_water",
                                      source="manual", actor="pm1", building="b1",
                                      alert_ids=[alert_id], now=at_(t0, 10))  # fmt: skip
        incidents.dispatch(db, iid, org_id=made.property, actor="pm1", due_s=3600,
                           now=at_(t0, 20))  # fmt: skip
        incidents.act(db, iid, Action.ACCEPT, actor="pm1", now=at_(t0, 30))
        (wid,) = whistles.blow(db, iid, [made.utilities], reason="main valve", actor="pm1",
                               now=at_(t0, 60))  # fmt: skip
        whistles.report(db, wid, "ack", actor="util1", now=at_(t0, 90))
        whistles.report(db, wid, "arrive", actor="util1", now=at_(t0, 400))
        incidents.act(db, iid, Action.ARRIVE, actor="pm1", now=at_(t0, 500))
        done = incidents.ActionArgs(note="valve replaced")
        incidents.act(db, iid, Action.RESOLVE, actor="pm1", args=done, now=at_(t0, 900))
    gov_app.clock.now = at_(t0, 1000)
    url = f"/api/gov/reports/after-action/incident/{iid}"
    report = gov_app.call("GET", f"{url}.json", Role.GUARD)
    d = report["durations"]
    assert d["time_to_acknowledge_s"] == 30.0  # the incident accepted before the alert's ack
    assert d["time_to_arrive_s"] == 400.0  # the utility arrived first
    assert d["time_to_resolve_s"] is None  # the alert itself is not resolved
    assert report["alerts"][0]["ack_s"] == 45.0
    kinds = [e["source"] for e in report["timeline"]]
    assert {"alert", "incident", "whistle"} <= set(kinds)
    assert report["failures"] == []
    pdf = gov_app.client.get(f"{url}.pdf", params={"lang": "en"},
                             headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    html = gov_app.client.get(f"{url}.html", headers=gov_app.headers(Role.VIEWER)).text
    assert "事后复盘报告" in html and "30.0 s" in html  # zh by default
    denied = gov_app.client.get(f"{url}.html", headers=gov_app.headers(Role.RESIDENT))
    assert denied.status_code == 403
    assert gov_app.client.get("/api/gov/reports/after-action/incident/999.html",
                              headers=gov_app.headers(Role.MANAGER)).status_code == 404  # fmt: skip


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    return " ".join(text.split())  # table cells wrap: compare without line breaks


def test_organisations_are_named_in_the_reports_language(tmp_path: Path) -> None:
    """The English report names a department by its English name (the Chinese one when it has
    none), the Chinese report by its Chinese name — in the timeline, the failures, the HTML
    and the PDF."""
    named = whistle(acked=30 + 1000, arrived=None).model_copy(
        update={"org_name_en": "Fire Rescue Station"}
    )
    unnamed = whistle(acked=None, arrived=None).model_copy(
        update={"id": 4, "org_name": "派出所", "org_name_en": None}
    )
    inc = incident(1, 600, None, None, None, [named, unnamed])
    dispatched = TimelineEntry(ts=at(5), actor="pm1", action="dispatch",
                               detail={"org_id": 4, "org_name": "消防救援站",
                                       "org_name_en": "Fire Rescue Station"})  # fmt: skip
    inc = inc.model_copy(update={"timeline": [*inc.timeline, dispatched]})
    report = build_report(ReportInput(kind="incident", ident=7, title="t", site="s1",
                                      incidents=[inc]), at(2000))  # fmt: skip
    zh, en = report.in_language("zh"), report.in_language("en")
    assert zh == report  # the report as built is the Chinese one
    lines = {(e.action, e.ref, e.actor, e.detail) for e in en.timeline if e.ts == at(5)}
    assert lines == {("dispatch", "incident #7", "pm1", "org_id=4, org_name=Fire Rescue Station")}
    zh_lines = {e.detail for e in zh.timeline if e.ts == at(5)}
    assert zh_lines == {"org_id=4, org_name=消防救援站"}
    acked = [e for e in en.timeline if e.source == "whistle" and e.action == "ack"]
    assert [(e.ref, e.actor) for e in acked] == [("whistle #3 Fire Rescue Station",
                                                  "Fire Rescue Station")]  # fmt: skip
    assert {f.ref for f in en.failures if f.kind == "whistle"} == {
        "whistle #3 Fire Rescue Station", "whistle #4 派出所"}  # fmt: skip
    assert {f.ref for f in zh.failures if f.kind == "whistle"} == {
        "whistle #3 消防救援站", "whistle #4 派出所"}  # fmt: skip

    html_en, html_zh = render_html(report, "en"), render_html(report, "zh")
    assert "Fire Rescue Station" in html_en and "消防救援站" not in html_en
    assert "派出所" in html_en  # no English name: the Chinese one
    assert "消防救援站" in html_zh and "Fire Rescue Station" not in html_zh
    pdf_en = pdf_text(render_pdf(report, "en"), tmp_path)
    pdf_zh = pdf_text(render_pdf(report, "zh"), tmp_path)
    assert "Fire Rescue Station" in pdf_en and "消防救援站" not in pdf_en
    assert "消防救援站" in pdf_zh and "Fire Rescue Station" not in pdf_zh
