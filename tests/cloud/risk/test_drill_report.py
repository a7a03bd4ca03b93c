"""Acceptance: a drill of the fire scenario against a real cloud (the app with ingest and rules,
the session's real mosquitto, real edge agents) marks its alerts and notifications as drill; a
responder acknowledges the critical alert a known time after it was raised; the after-action
report's durations match the alert rows; the HTML and the PDF (rendered to PNG with pdftoppm and
read back with pdftotext) say so, in Chinese and in English."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alerts.tables import Notification
from cloud.auth import service as accounts
from cloud.auth.deps import Role
from cloud.notify.channels import DRILL_PREFIX
from cloud.risk.render import format_duration
from cloud.risk.runtime import RiskRuntime
from linli.services import Mosquitto
from tests.simulators.conftest import in_process_cloud

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SCENARIO = "fire-in-building"
ACK_DELAY_S = 4.0
"""The responder acknowledges the smoke alarm this long after it was raised."""
TOLERANCE_S = 1.5
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "after-action"


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _until(check: Callable[[], Awaitable[Any]], within: float) -> Any:
    async with asyncio.timeout(within):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.2)


def _pdf_checks(pdf: bytes, workdir: Path, name: str) -> str:
    """Render every page to PNG (pdftoppm): as many images as pages, none blank; return
    the text (pdftotext)."""
    path = workdir / f"{name}.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    pages = int(next(line.split()[-1] for line in info.stdout.splitlines()
                     if line.startswith("Pages:")))  # fmt: skip
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(workdir / name)], check=True)
    images = sorted(workdir.glob(f"{name}-*.png"))
    assert pages >= 1 and len(images) == pages
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for image in images:  # for a person to look at
        shutil.copy(image, ARTIFACTS / image.name)
    for image in images:
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        assert gray is not None and gray.shape[0] > 500
        inked = float((gray < 160).mean())
        assert inked > 0.005, f"{image.name} looks blank ({inked:.4f} of the pixels inked)"
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    return text


async def test_fire_drill_after_action_report(
    site: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with in_process_cloud(mosquitto, tmp_path) as cloud:
        tokens = {}
        with Session(cloud.services.engine) as db:
            for name, role in (("manager1", Role.MANAGER), ("responder1", Role.RESPONDER)):
                user = accounts.create_user(db, name, "correct horse battery staple", role)
                tokens[name], _ = accounts.issue_token(db, user, 3600)
            db.commit()

        def auth(name: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[name]}"}

        transport = httpx.ASGITransport(app=cloud.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud",
                                     timeout=30) as http:  # fmt: skip
            started = await http.post(
                "/api/gov/drills",
                json={"site": site, "scenario": SCENARIO, "participants": ["responder1"],
                      "note": "quarterly fire drill"},
                headers=auth("manager1"),
            )  # fmt: skip
            assert started.status_code == 202, started.text
            drill_id = started.json()["id"]
            again = await http.post("/api/gov/drills", headers=auth("manager1"),
                                    json={"site": site, "scenario": SCENARIO})  # fmt: skip
            assert again.status_code == 409  # one drill per site at a time

            async def smoke_alarm() -> dict[str, Any] | None:
                answer = await http.get("/api/alerts", params={"site": site},
                                        headers=auth("responder1"))  # fmt: skip
                return next((a for a in answer.json() if a["rule_id"] == "smoke-alarm"), None)

            alert = await _until(smoke_alarm, 90)
            assert alert["drill"] is True and alert["severity"] == "critical"
            wait = (_ts(alert["raised_at"]) - datetime.now(UTC)).total_seconds() + ACK_DELAY_S
            await asyncio.sleep(max(0.0, wait))
            ack = await http.post(f"/api/alerts/{alert['id']}/ack", json={},
                                  headers=auth("responder1"))  # fmt: skip
            assert ack.status_code == 200, ack.text

            runtime: RiskRuntime = cloud.app.state.risk
            async with asyncio.timeout(240):
                await runtime.drills.wait(drill_id)
            drill = (await http.get(f"/api/gov/drills/{drill_id}", headers=auth("manager1"))).json()
            assert drill["status"] == "finished", drill
            assert drill["check"]["passed"] is True, drill["check"]
            assert {(e["rule"], e["subject"]) for e in drill["expected"]} <= {
                (a["rule_id"], a["subject"]) for a in drill["raised"]
            }
            alerts = (await http.get("/api/alerts", params={"site": site},
                                     headers=auth("manager1"))).json()  # fmt: skip
            assert len(alerts) >= 3 and all(a["drill"] for a in alerts)
            await cloud.services.notifier.join()
            with Session(cloud.services.engine) as db:
                notes = db.scalars(select(Notification).order_by(Notification.id)).all()
            about_alerts = [n for n in notes if n.alert_id in {a["id"] for a in alerts}]
            assert about_alerts and all(n.title_en.startswith(DRILL_PREFIX) for n in about_alerts)
            assert all(n.title_zh.startswith(DRILL_PREFIX) for n in about_alerts)
            drill_notes = [n.title_en for n in notes if n.alert_id is None]
            assert f"{DRILL_PREFIX}Drill {SCENARIO} started" in drill_notes
            assert f"{DRILL_PREFIX}Drill {SCENARIO} finished" in drill_notes
            # the participant (a responder, whom the in-app channel's roles do not reach) is told
            mine = (await http.get("/api/notifications", headers=auth("responder1"))).json()
            assert {f"{DRILL_PREFIX}Drill {SCENARIO} {s}" for s in ("started", "finished")} <= {
                n["title_en"] for n in mine if n["username"] == "responder1"
            }

            url = f"/api/gov/reports/after-action/drill/{drill_id}"
            report = (await http.get(f"{url}.json", headers=auth("manager1"))).json()
            # the expected figures, from the alert rows
            start = min(_ts(a["raised_at"]) for a in alerts)
            first_ack = min(_ts(a["acknowledged_at"]) for a in alerts if a["acknowledged_at"])
            expected_tta = (first_ack - start).total_seconds()
            durations = report["durations"]
            assert _ts(durations["started_at"]) == start
            assert durations["time_to_acknowledge_s"] == pytest.approx(expected_tta, abs=1e-3)
            assert durations["time_to_resolve_s"] is None  # nothing was resolved
            smoke = next(a for a in report["alerts"] if a["id"] == alert["id"])
            assert smoke["acknowledged_by"] == "responder1"
            assert smoke["ack_s"] == pytest.approx(ACK_DELAY_S, abs=TOLERANCE_S)
            assert {a["id"] for a in report["alerts"]} == {a["id"] for a in alerts}
            unacked = {f["ref"] for f in report["failures"] if f["kind"] == "alert_unacknowledged"}
            assert all(f"alert #{a['id']} " in " ".join(unacked) for a in alerts
                       if a["acknowledged_at"] is None)  # fmt: skip
            assert not any(f["kind"] == "expected_alert" for f in report["failures"])
            actions = [(e["source"], e["action"]) for e in report["timeline"]]
            assert actions[0] == ("drill", "started") and ("alert", "acknowledge") in actions

            tta = format_duration(expected_tta)
            for lang, label in (("zh", "确认用时"), ("en", "Time to acknowledge")):
                page = await http.get(f"{url}.html", params={"lang": lang},
                                      headers=auth("manager1"))  # fmt: skip
                assert page.status_code == 200 and page.headers["content-type"].startswith(
                    "text/html"
                )
                html = page.text
                assert SCENARIO in html and label in html and tta in html
                assert ("演练 DRILL" if lang == "zh" else "DRILL —") in html
                pdf = await http.get(f"{url}.pdf", params={"lang": lang},
                                     headers=auth("manager1"))  # fmt: skip
                assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
                text = _pdf_checks(pdf.content, tmp_path, f"report-{lang}")
                assert SCENARIO in text and tta in text and label in text
            # a viewer may read it; a resident may not
            denied = await http.get(f"{url}.pdf", headers={"Authorization": "Bearer x"})
            assert denied.status_code == 401
