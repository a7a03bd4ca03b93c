"""Routes: drills and after-action reports (HTML and PDF, zh and en)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict

from cloud.api.params import RowId
from cloud.auth import audit
from cloud.auth.deps import DbSession
from cloud.governance.web import Manager, Now, http_errors
from cloud.risk import drills, gather
from cloud.risk.render import render_html, render_pdf
from cloud.risk.report import AfterAction, Lang, build_report
from cloud.risk.routes_register import Reader
from cloud.risk.runtime import Runtime
from simulators.scenario import load_scenario

router = APIRouter(prefix="/api/gov", tags=["risk"])


class ScenarioOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    expected: list[dict[str, object]]


@router.get("/drills/scenarios", summary="The scenarios a drill can run")
def list_scenarios(who: Reader) -> list[ScenarioOut]:
    out = []
    for name, path in sorted(drills.scenarios().items()):
        scenario = load_scenario(path)
        out.append(
            ScenarioOut(
                name=name,
                description=scenario.description.strip(),
                expected=drills.expected_of(scenario),
            )
        )
    return out


@router.post("/drills", status_code=202, summary="Start a drill: run a scenario as an exercise")
def start_drill(
    body: drills.DrillIn, who: Manager, db: DbSession, runtime: Runtime, now: Now
) -> drills.DrillOut:
    with http_errors(db):
        row = drills.create_drill(db, body, actor=who.username, now=now)
        audit.record(db, who, "gov.drill.start", f"drill:{row.id}",
                     {"site": row.site, "scenario": row.scenario})  # fmt: skip
        db.commit()
    runtime.drills.submit(row.id)
    return drills.drill_out(db, row, now)


@router.get("/drills", summary="Drills, newest first")
def list_drills(
    who: Reader, db: DbSession, now: Now, site: str | None = None
) -> list[drills.DrillOut]:
    return drills.list_drills(db, now, site)


@router.get("/drills/{drill_id}", summary="One drill: status, expected alerts vs raised")
def get_drill(drill_id: RowId, who: Reader, db: DbSession, now: Now) -> drills.DrillOut:
    with http_errors(db):
        return drills.drill_out(db, gather.get_drill(db, drill_id), now)


ReportKind = Literal["incident", "drill"]
Format = Literal["html", "pdf", "json"]


def after_action(db: DbSession, kind: ReportKind, ident: int, now: Now) -> AfterAction:
    with http_errors(db):
        if kind == "drill":
            inp = gather.drill_input(db, ident, now)
        else:
            inp = gather.incident_input(db, ident, now)
    return build_report(inp, now)


@router.get(
    "/reports/after-action/{kind}/{ident}.{fmt}",
    summary="After-action report of an incident or a drill (html, pdf or json)",
    response_model=None,
)
def get_after_action(
    kind: ReportKind,
    ident: RowId,
    fmt: Format,
    who: Reader,
    db: DbSession,
    now: Now,
    lang: Lang = "zh",
) -> Response | AfterAction:
    report = after_action(db, kind, ident, now)
    if fmt == "json":
        return report
    if fmt == "html":
        return HTMLResponse(render_html(report, lang))
    name = f"after-action-{kind}-{ident}-{lang}.pdf"
    return Response(
        render_pdf(report, lang),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
