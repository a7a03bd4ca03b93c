"""After-action reports: what happened during an incident or a drill, how fast, what failed.

:func:`build_report` is a pure function of :class:`ReportInput` (alerts and their audit events,
commands and their acks, incidents with their timelines and whistles, a drill's expectations);
:mod:`cloud.risk.gather` reads those from the database and :mod:`cloud.risk.render` prints the
report as HTML or PDF.

Durations are measured from the start of the response — the first alert raised (else the first
incident opened, else the drill's start):

* time to acknowledge: to the first acknowledgement (an alert acknowledged, an incident
  accepted, a summoned department acknowledging its whistle);
* time to arrive: to the first arrival on site (incident or whistle);
* time to resolve: to the last resolution, once every alert and incident is resolved.

Each alert also has its own time to acknowledge and to resolve (from its raise).

Organisations are named in the report's language: the report keeps the English form of each
line that names one (``ref_en``, ``actor_en``, ``detail_en``: the organisation's English name,
its Chinese one when it has none) and :meth:`AfterAction.in_language` picks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cloud.alerts.views import AlertEventOut, AlertOut
from cloud.commands.service import CommandOut
from cloud.commands.tables import CommandStatus
from cloud.governance.models import IncidentDetail, WhistleOut

ReportKind = Literal["incident", "drill"]
Lang = Literal["zh", "en"]
UNANSWERED = frozenset({CommandStatus.SENT, CommandStatus.EXPIRED})
COMMAND_FAILED = frozenset({CommandStatus.FAILED, CommandStatus.REFUSED})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Entry(_Frozen):
    """One line of the report's timeline (``*_en``: the line in English where it names an
    organisation; None = the same in both languages)."""

    ts: datetime
    source: Literal["drill", "alert", "command", "incident", "whistle"]
    ref: str
    actor: str
    action: str
    detail: str = ""
    ref_en: str | None = None
    actor_en: str | None = None
    detail_en: str | None = None

    def in_english(self) -> Entry:
        english = {"ref": self.ref_en, "actor": self.actor_en, "detail": self.detail_en}
        return self.model_copy(update={k: v for k, v in english.items() if v is not None})


class AlertTimes(_Frozen):
    id: int
    rule_id: str
    subject: str
    severity: str
    title_en: str
    title_zh: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    ack_s: float | None
    resolve_s: float | None


class Durations(_Frozen):
    started_at: datetime | None
    time_to_acknowledge_s: float | None
    time_to_arrive_s: float | None
    time_to_resolve_s: float | None


FailureKind = Literal[
    "expected_alert",
    "alert_unacknowledged",
    "escalated",
    "notification",
    "command",
    "deadline",
    "whistle",
]


class Failure(_Frozen):
    kind: FailureKind
    ref: str
    detail: str
    ref_en: str | None = None

    def in_english(self) -> Failure:
        return self if self.ref_en is None else self.model_copy(update={"ref": self.ref_en})


class AfterAction(_Frozen):
    kind: ReportKind
    ident: int
    title: str
    site: str
    scenario: str | None
    drill: bool
    participants: list[str]
    started_at: datetime | None
    ended_at: datetime | None
    generated_at: datetime
    durations: Durations
    alerts: list[AlertTimes]
    expectations: list[dict[str, Any]]
    timeline: list[Entry]
    failures: list[Failure]

    def in_language(self, lang: Lang) -> AfterAction:
        """The report as printed in ``lang``: organisations by their Chinese name in Chinese,
        by their English name (else the Chinese one) in English."""
        if lang == "zh":
            return self
        timeline = [e.in_english() for e in self.timeline]
        return self.model_copy(
            update={"timeline": timeline, "failures": [f.in_english() for f in self.failures]}
        )


@dataclass(frozen=True, slots=True)
class ReportInput:
    kind: ReportKind
    ident: int
    title: str
    site: str
    drill: bool = False
    scenario: str | None = None
    participants: Sequence[str] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    alerts: Sequence[AlertOut] = ()
    alert_events: Mapping[int, Sequence[AlertEventOut]] = field(default_factory=dict)
    commands: Sequence[CommandOut] = ()
    incidents: Sequence[IncidentDetail] = ()
    expectations: Sequence[Mapping[str, Any]] = ()
    """A drill's checker results: rule, severity, subject, deadline, outcome, seen_at."""


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _first(times: Iterable[datetime | None]) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _durations(inp: ReportInput) -> Durations:
    start = (
        _first(a.raised_at for a in inp.alerts)
        or _first(i.created_at for i in inp.incidents)
        or inp.started_at
    )
    whistles = [w for i in inp.incidents for w in i.whistles]
    acked = _first(
        [a.acknowledged_at for a in inp.alerts]
        + [i.accepted_at for i in inp.incidents]
        + [w.acked_at for w in whistles]
    )
    arrived = _first([i.arrived_at for i in inp.incidents] + [w.arrived_at for w in whistles])
    ends = [a.resolved_at for a in inp.alerts] + [i.resolved_at for i in inp.incidents]
    resolved = max((t for t in ends if t is not None), default=None)
    if any(t is None for t in ends):
        resolved = None
    return Durations(
        started_at=start,
        time_to_acknowledge_s=seconds(start, acked),
        time_to_arrive_s=seconds(start, arrived),
        time_to_resolve_s=seconds(start, resolved),
    )


def _alert_times(alert: AlertOut) -> AlertTimes:
    return AlertTimes(
        id=alert.id,
        rule_id=alert.rule_id,
        subject=alert.subject,
        severity=alert.severity.value,
        title_en=alert.title_en,
        title_zh=alert.title_zh,
        raised_at=alert.raised_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        resolved_by=alert.resolved_by,
        ack_s=seconds(alert.raised_at, alert.acknowledged_at),
        resolve_s=seconds(alert.raised_at, alert.resolved_at),
    )


def _detail(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if v not in (None, "", [], {}))


def _english(zh: str, en: str) -> str | None:
    """``en`` where it differs from ``zh`` (the field stays None otherwise)."""
    return None if en == zh else en


def _org_en(zh: str, en: str | None) -> str:
    """An organisation's name in English: its English name, else its Chinese one."""
    return en or zh


def _details(values: Mapping[str, Any]) -> tuple[str, str | None]:
    """An incident line's detail in Chinese and (if it names an organisation that has an
    English name) in English: ``org_name`` in the report's language, once."""
    zh = {k: v for k, v in values.items() if k != "org_name_en"}
    text = _detail(zh)
    en_name = values.get("org_name_en")
    if not en_name or "org_name" not in zh:
        return text, None
    return text, _english(text, _detail({**zh, "org_name": en_name}))


def _whistle_ref(w: WhistleOut) -> tuple[str, str | None]:
    ref = f"whistle #{w.id} {w.org_name}"
    return ref, _english(ref, f"whistle #{w.id} {_org_en(w.org_name, w.org_name_en)}")


def _timeline(inp: ReportInput) -> list[Entry]:
    out: list[Entry] = []
    if inp.kind == "drill" and inp.started_at is not None:
        out.append(
            Entry(
                ts=inp.started_at,
                source="drill",
                ref=f"drill #{inp.ident}",
                actor="system",
                action="started",
                detail=inp.scenario or "",
            )
        )
    if inp.kind == "drill" and inp.ended_at is not None:
        out.append(
            Entry(
                ts=inp.ended_at,
                source="drill",
                ref=f"drill #{inp.ident}",
                actor="system",
                action="finished",
            )
        )
    for alert in inp.alerts:
        ref = f"alert #{alert.id} {alert.rule_id}/{alert.subject}"
        for ev in inp.alert_events.get(alert.id, ()):
            text = _detail({"note": ev.note, **ev.detail})
            out.append(
                Entry(
                    ts=ev.ts, source="alert", ref=ref, actor=ev.actor, action=ev.kind, detail=text
                )
            )
    for cmd in inp.commands:
        ref = f"command {cmd.name} → {cmd.gateway}/{cmd.target or '-'}"
        out.append(
            Entry(
                ts=cmd.issued_at,
                source="command",
                ref=ref,
                actor=cmd.issued_by,
                action="sent",
                detail=cmd.reason or "",
            )
        )
        if cmd.ack_at is not None:
            out.append(
                Entry(
                    ts=cmd.ack_at,
                    source="command",
                    ref=ref,
                    actor=cmd.gateway,
                    action=f"ack {cmd.status.value}",
                    detail=cmd.ack_reason or "",
                )
            )
    for inc in inp.incidents:
        ref = f"incident #{inc.id}"
        for line in inc.timeline:
            detail, detail_en = _details(line.detail)
            out.append(
                Entry(
                    ts=line.ts,
                    source="incident",
                    ref=ref,
                    actor=line.actor,
                    action=line.action,
                    detail=detail,
                    detail_en=detail_en,
                )
            )
        for w in inc.whistles:
            wref, wref_en = _whistle_ref(w)
            org_en = _english(w.org_name, _org_en(w.org_name, w.org_name_en))
            stages = (
                ("blown", w.blown_at, w.blown_by, None),
                ("ack", w.acked_at, w.org_name, org_en),
                ("arrive", w.arrived_at, w.org_name, org_en),
                ("resolve", w.resolved_at, w.org_name, org_en),
            )
            for action, ts, actor, actor_en in stages:
                if ts is not None:
                    detail = w.reason if action == "blown" else ""
                    out.append(
                        Entry(
                            ts=ts,
                            source="whistle",
                            ref=wref,
                            actor=actor,
                            action=action,
                            detail=detail,
                            ref_en=wref_en,
                            actor_en=actor_en,
                        )
                    )
    return sorted(out, key=lambda e: e.ts)


def _failures(inp: ReportInput, now: datetime) -> list[Failure]:
    out: list[Failure] = []
    for exp in inp.expectations:
        if exp.get("outcome") != "met":
            out.append(
                Failure(
                    kind="expected_alert",
                    ref=f"{exp.get('rule')}/{exp.get('subject')}",
                    detail=f"expected {exp.get('severity')} alert within "
                    f"{exp.get('deadline')} s: {exp.get('outcome')}",
                )
            )
    for alert in inp.alerts:
        ref = f"alert #{alert.id} {alert.rule_id}/{alert.subject}"
        if alert.acknowledged_at is None:
            out.append(
                Failure(
                    kind="alert_unacknowledged",
                    ref=ref,
                    detail=f"{alert.severity.value} alert never acknowledged",
                )
            )
        for ev in inp.alert_events.get(alert.id, ()):
            if ev.kind == "escalated":
                out.append(
                    Failure(
                        kind="escalated",
                        ref=ref,
                        detail=f"escalated to tier {ev.detail.get('tier')} at "
                        f"{ev.ts.isoformat()} (not acknowledged in time)",
                    )
                )
            elif ev.kind == "notify_failed":
                out.append(
                    Failure(
                        kind="notification",
                        ref=ref,
                        detail=f"{ev.detail.get('channel')}: {ev.detail.get('error')}",
                    )
                )
    for cmd in inp.commands:
        if cmd.status in UNANSWERED or cmd.status in COMMAND_FAILED:
            what = "not acknowledged" if cmd.status in UNANSWERED else cmd.status.value
            out.append(
                Failure(
                    kind="command",
                    ref=f"command {cmd.name} → {cmd.target or '-'}",
                    detail=f"{what} ({cmd.ack_reason or cmd.status.value})",
                )
            )
    for inc in inp.incidents:
        ref = f"incident #{inc.id}"
        end = inc.resolved_at or now
        if inc.due_at is not None and end > inc.due_at:
            late = seconds(inc.due_at, end)
            out.append(
                Failure(
                    kind="deadline",
                    ref=ref,
                    detail=f"deadline {inc.due_at.isoformat()} missed by {late} s",
                )
            )
        for w in inc.whistles:
            wref, wref_en = _whistle_ref(w)
            for stage, done, due in (
                ("ack", w.acked_at, w.ack_due),
                ("arrive", w.arrived_at, w.arrive_due),
                ("resolve", w.resolved_at, w.resolve_due),
            ):
                if (done or now) > due:
                    state = "late" if done is not None else "overdue"
                    out.append(
                        Failure(
                            kind="whistle",
                            ref=wref,
                            detail=f"{stage} {state} (due {due.isoformat()})",
                            ref_en=wref_en,
                        )
                    )
    return out


def build_report(inp: ReportInput, now: datetime) -> AfterAction:
    """The after-action report of ``inp`` as of ``now`` (open deadlines are judged at ``now``)."""
    return AfterAction(
        kind=inp.kind,
        ident=inp.ident,
        title=inp.title,
        site=inp.site,
        scenario=inp.scenario,
        drill=inp.drill,
        participants=list(inp.participants),
        started_at=inp.started_at,
        ended_at=inp.ended_at,
        generated_at=now,
        durations=_durations(inp),
        alerts=[_alert_times(a) for a in sorted(inp.alerts, key=lambda a: a.raised_at)],
        expectations=[dict(e) for e in inp.expectations],
        timeline=_timeline(inp),
        failures=_failures(inp, now),
    )
