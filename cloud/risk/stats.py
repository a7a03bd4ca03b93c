"""Statistics for the residents' committee: incidents by category, building and month, SLA
compliance per organisation, response times. Drills are left out unless asked for.

:func:`compute_stats` is pure (incident and whistle facts in, figures out); :func:`stats`
reads the facts. Definitions:

* an incident counts in the period when it was created in ``[since, until)``;
* SLA: of the incidents dispatched to an organisation, ``on_time`` were resolved by their
  deadline, ``late`` were resolved after it or are past it unresolved; ``compliance`` =
  on_time / (on_time + late) (None when neither); incidents still within their deadline count
  in ``dispatched`` only;
* response times are from the incident's creation to its acceptance (ack), arrival and
  resolution; whistle times from the whistle to the department's acknowledgement and arrival.
  Percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.governance.tables import Incident, Organisation, Whistle

NO_BUILDING = "-"


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    id: int
    category: str
    building: str | None
    org_id: int | None
    created_at: datetime
    due_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class WhistleFacts:
    blown_at: datetime
    acked_at: datetime | None
    arrived_at: datetime | None


class SlaRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    org_id: int
    org_name: str
    org_name_en: str | None = None
    dispatched: int
    on_time: int
    late: int
    compliance: float | None


class ResponseTimes(BaseModel):
    model_config = ConfigDict(frozen=True)

    ack_p50_s: float | None
    ack_p90_s: float | None
    arrive_p50_s: float | None
    arrive_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    whistle_ack_p50_s: float | None
    whistle_arrive_p50_s: float | None
    acknowledged: int
    arrived: int
    resolved: int


class Stats(BaseModel):
    model_config = ConfigDict(frozen=True)

    total: int
    by_category: dict[str, int]
    by_building: dict[str, int]
    by_month: dict[str, int]
    sla: list[SlaRow]
    response_times: ResponseTimes
    drills_excluded: bool


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _spans(pairs: Sequence[tuple[datetime | None, datetime | None]]) -> list[float]:
    return [(b - a).total_seconds() for a, b in pairs if a is not None and b is not None]


def compute_stats(
    incidents: Sequence[IncidentFacts],
    whistles: Sequence[WhistleFacts],
    org_names: dict[int, str],
    now: datetime,
    *,
    drills_excluded: bool = True,
    org_names_en: dict[int, str] | None = None,
) -> Stats:
    by_category = Counter(i.category for i in incidents)
    by_building = Counter(i.building or NO_BUILDING for i in incidents)
    by_month = Counter(i.created_at.strftime("%Y-%m") for i in incidents)
    sla: dict[int, Counter[str]] = {}
    for i in incidents:
        if i.org_id is None or i.dispatched_at is None:
            continue
        row = sla.setdefault(i.org_id, Counter())
        row["dispatched"] += 1
        if i.due_at is None:
            continue
        if i.resolved_at is not None:
            row["on_time" if i.resolved_at <= i.due_at else "late"] += 1
        elif now > i.due_at:
            row["late"] += 1
    ack = _spans([(i.created_at, i.accepted_at) for i in incidents])
    arrive = _spans([(i.created_at, i.arrived_at) for i in incidents])
    resolve = _spans([(i.created_at, i.resolved_at) for i in incidents])
    w_ack = _spans([(w.blown_at, w.acked_at) for w in whistles])
    w_arrive = _spans([(w.blown_at, w.arrived_at) for w in whistles])
    return Stats(
        total=len(incidents),
        by_category=dict(sorted(by_category.items())),
        by_building=dict(sorted(by_building.items())),
        by_month=dict(sorted(by_month.items())),
        sla=[
            SlaRow(
                org_id=org_id,
                org_name=org_names.get(org_id, str(org_id)),
                org_name_en=(org_names_en or {}).get(org_id),
                dispatched=c["dispatched"],
                on_time=c["on_time"],
                late=c["late"],
                compliance=(
                    round(c["on_time"] / (c["on_time"] + c["late"]), 4)
                    if c["on_time"] + c["late"]
                    else None
                ),
            )
            for org_id, c in sorted(sla.items())
        ],
        response_times=ResponseTimes(
            ack_p50_s=percentile(ack, 50),
            ack_p90_s=percentile(ack, 90),
            arrive_p50_s=percentile(arrive, 50),
            arrive_p90_s=percentile(arrive, 90),
            resolve_p50_s=percentile(resolve, 50),
            resolve_p90_s=percentile(resolve, 90),
            whistle_ack_p50_s=percentile(w_ack, 50),
            whistle_arrive_p50_s=percentile(w_arrive, 50),
            acknowledged=len(ack),
            arrived=len(arrive),
            resolved=len(resolve),
        ),
        drills_excluded=drills_excluded,
    )


def stats(
    db: Session,
    now: datetime,
    *,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_drills: bool = False,
) -> Stats:
    query = select(Incident).where(Incident.state != "cancelled")
    if site is not None:
        query = query.where(Incident.site == site)
    if since is not None:
        query = query.where(Incident.created_at >= since)
    if until is not None:
        query = query.where(Incident.created_at < until)
    if not include_drills:
        query = query.where(Incident.drill.is_(False))
    facts = [
        IncidentFacts(r.id, r.category, r.building, r.org_id, r.created_at, r.due_at,
                      r.dispatched_at, r.accepted_at, r.arrived_at, r.resolved_at)
        for r in db.scalars(query)
    ]  # fmt: skip
    ids = [f.id for f in facts]
    whistles = [
        WhistleFacts(w.blown_at, w.acked_at, w.arrived_at)
        for w in db.scalars(select(Whistle).where(Whistle.incident_id.in_(ids)))
    ]
    orgs = {f.org_id for f in facts if f.org_id is not None}
    found = db.execute(
        select(Organisation.id, Organisation.name, Organisation.name_en).where(
            Organisation.id.in_(orgs)
        )
    ).all()
    names: dict[int, str] = {org_id: name for org_id, name, _ in found}
    names_en = {org_id: name_en for org_id, _, name_en in found if name_en}
    return compute_stats(facts, whistles, names, now, drills_excluded=not include_drills,
                         org_names_en=names_en)  # fmt: skip
