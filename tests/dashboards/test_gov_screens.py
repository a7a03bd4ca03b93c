"""Governance pages in real Chromium against the real cloud app (uvicorn, SQLite, mosquitto), in
both languages: a resident reports a fire hazard with a photo from the phone page → the manager
dispatches it on the incident board → its deadline passes (the governance clock is moved and
the deadline loop stepped, no sleeping) → the whistle board shows the fire department has not
reported → the department reports ack/arrive/resolve on the responder page → the property's
worker resolves the work order → closing before the resident confirms is refused, shown in words
→ the resident confirms with 4 stars → the manager closes. Plus the risk register with its linked
device, the statistics, the after-action report, and each role's navigation.

The pages follow incident changes live (the stream): their fallback poll is set to an hour
(``linli.gov.poll_s``), and what another user or the deadline loop changes must show on an open
page without a reload. Organisations show their English name in English (the Chinese one when
they have none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from cloud.api import create_app
from dashboards import STATIC
from linli.services import Mosquitto
from tests.dashboards.conftest import cloud_settings
from tests.dashboards.screens_support import (
    PASSWORD,
    Cloud,
    LiveServer,
    Pages,
    demo_site,
    screenshot,
    sign_in,
    to_docs,
)

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


class ShiftedClock:
    """The governance clock (``app.state.gov_clock``): real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Gov:
    """The running cloud, its API as the manager, the organisations of the site."""

    def __init__(self, app: object, url: str, site: str, clock: ShiftedClock) -> None:
        self.app, self.url, self.site, self.clock = app, url, site, clock
        self.api = httpx.Client(base_url=url, timeout=30)
        login = self.api.post(
            "/api/auth/login", json={"username": "manager1", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        self.property = self.post("/api/gov/organisations", name="安居物业", name_en="Anju",
                                  kind="property", site=site, buildings=["b1", "b2"])  # fmt: skip
        self.fire = self.post("/api/gov/organisations", name="消防救援站", name_en="Fire station",
                              kind="department", department="fire", site=site)  # fmt: skip
        self.police = self.post("/api/gov/organisations", name="派出所", kind="department",
                                department="police", site=site)  # fmt: skip
        self.post(f"/api/gov/organisations/{self.property['id']}/members", username="worker1")
        self.post(f"/api/gov/organisations/{self.fire['id']}/members", username="responder1")

    def post(self, path: str, **body: object) -> dict[str, object]:
        response = self.api.post(path, json=body)
        assert response.status_code in (200, 201, 202), (path, response.text)
        answer: dict[str, object] = response.json()
        return answer

    def get(self, path: str) -> object:
        response = self.api.get(path)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def resident_reports(self, **body: object) -> int:
        """resident1 files a report through the API (as the phone page does); its incident id."""
        with httpx.Client(base_url=self.url, timeout=30) as resident_api:
            login = {"username": "resident1", "password": PASSWORD}
            assert resident_api.post("/api/auth/login", json=login).status_code == 200
            made = resident_api.post("/api/gov/reports", json={"site": self.site, **body})
            assert made.status_code == 201, made.text
        incident: int = made.json()["id"]
        return incident

    def step_deadlines(self) -> None:
        """One pass of G1's deadline loop at the governance clock's time."""
        self.app.state.gov_deadlines.step(self.clock())  # type: ignore[attr-defined]


@pytest.fixture
def gov(tmp_path: Path, mosquitto: Mosquitto, site: str) -> Iterator[Gov]:
    app = create_app(cloud_settings(tmp_path, mosquitto, site, gov_tick_s=3600.0))
    clock = ShiftedClock()
    app.state.gov_clock = clock
    with LiveServer(app) as server:
        cloud = Cloud(app, httpx.Client(base_url=server.url, timeout=30))
        cloud.client.close()
        from sqlalchemy.orm import Session

        from cloud.auth import service
        from cloud.auth.deps import Role

        with Session(app.state.engine) as db:
            service.create_user(db, "worker1", PASSWORD, Role.RESPONDER, display_name="王师傅")
            db.commit()
        services = app.state.services
        with services.sessions.begin() as db:
            services.registry.import_site(db, demo_site(site))
        made = Gov(app, server.url, site, clock)
        try:
            yield made
        finally:
            made.api.close()


POLL_S = 3600
"""The governance pages' fallback poll in these tests: updates seen sooner came live."""


def in_language(pages: Pages, locale: str, **size: int) -> Page:
    page = pages.new(**size) if size else pages.new()
    page.add_init_script(
        f"localStorage.setItem('linli.locale', {json.dumps(locale)});"
        f"localStorage.setItem('linli.gov.poll_s', '{POLL_S}');"
    )
    return page


def catalogue(locale: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{locale}.json").read_text("utf-8"))
    return data


RAW_KEY = re.compile(
    r"\b(?:gov|incidents|resident|responder|risk|app|common)\.[a-z_]+(?:\.[a-z_]+)*"
)


def assert_no_raw_keys(page: Page) -> None:
    """Every visible string came from the catalogue: no key is left on the page."""
    text = page.locator("body").inner_text()
    leftovers = RAW_KEY.findall(text)
    assert not leftovers, leftovers


class Words:
    """The catalogue's text for a key, as the page shows it (``{name}`` filled in)."""

    def __init__(self, locale: str) -> None:
        self.catalogue = catalogue(locale)

    def __call__(self, key: str, **values: object) -> str:
        text = self.catalogue[key]
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text


def assert_fits_the_phone(page: Page) -> None:
    """Nothing sticks out sideways at 360 px: no horizontal scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width


def shot(page: Page, name: str, docs: bool = False) -> None:
    """A screenshot from the top of the page (test-artifacts/; docs/screenshots/ when asked)."""
    page.evaluate("window.scrollTo(0, 0)")
    path = screenshot(page, name)
    if docs:
        to_docs(path)


def photo_file(tmp_path: Path) -> Path:
    """A 2400×1800 JPEG as a phone camera would take (the page downscales it to 1600 px)."""
    image = np.zeros((1800, 2400, 3), np.uint8)
    image[:] = (40, 60, 90)
    cv2.rectangle(image, (300, 400), (2100, 1500), (20, 120, 240), -1)
    cv2.putText(image, "E-BIKE", (700, 1000), cv2.FONT_HERSHEY_SIMPLEX, 8, (255, 255, 255), 20)
    path = tmp_path / "corridor.jpg"
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_report_dispatch_whistle_resolve_confirm_close(
    pages: Pages, gov: Gov, tmp_path: Path, locale: str
) -> None:
    w = Words(locale)
    suffix = "zh" if locale == "zh-CN" else "en"

    # 1. The resident reports a fire hazard with a photo, on a phone.
    resident = in_language(pages, locale, **PHONE)
    sign_in(resident, gov.url, "resident1")
    assert resident.url.endswith("/resident")
    resident.wait_for_selector("body[data-ready='1']")
    expect(resident.locator("h1")).to_have_text(w("app.resident"))
    nav = resident.locator("#screens a")
    assert sorted(nav.evaluate_all("links => links.map(a => a.getAttribute('href'))")) == [
        "/gate",
        "/resident",
    ]  # residents: their page (and visitor passes) only
    resident.select_option("#r-category", "fire_hazard")
    resident.select_option("#r-building", "b1")
    resident.fill("#r-location", "3F corridor")
    resident.fill("#r-description", "E-bike charging in the corridor overnight")
    camera = resident.locator("#r-photo")  # the phone's camera opens for it
    expect(camera).to_have_attribute("accept", "image/*")
    expect(camera).to_have_attribute("capture", "environment")
    resident.set_input_files("#r-photo", str(photo_file(tmp_path)))
    expect(resident.locator("#r-photo-info")).to_have_text(
        w("resident.photo_ready", w=1600, h=1200)
    )
    assert_no_raw_keys(resident)
    shot(resident, f"gov-resident-form-{suffix}")
    resident.click("#r-submit")
    card = resident.locator(".gov-card").first
    expect(card).to_have_attribute("data-state", "reported")
    expect(card).to_contain_text(w("gov.state.reported"))
    incident_id = int(card.get_attribute("data-incident") or 0)
    expect(resident.locator(f"#report-body-{incident_id} .photos img")).to_have_count(1)
    # The photo was downscaled in the browser: the stored JPEG is 1600 px wide at most.
    detail = gov.get(f"/api/gov/incidents/{incident_id}")
    assert isinstance(detail, dict) and len(detail["photos"]) == 1
    stored = gov.api.get(f"/api/gov/incidents/{incident_id}/photos/{detail['photos'][0]['id']}")
    image = cv2.imdecode(np.frombuffer(stored.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and stored.content[:3] == b"\xff\xd8\xff"
    assert image.shape[:2] == (1200, 1600)
    assert_fits_the_phone(resident)
    shot(resident, f"gov-resident-{suffix}", docs=True)

    # 2. The manager sees it on the board and dispatches it to the property with a deadline.
    manager = in_language(pages, locale)
    sign_in(manager, gov.url, "manager1")
    manager.goto(gov.url + "/incidents")
    manager.wait_for_selector("body[data-ready='1']")
    item = manager.locator(f".gov-card[data-incident='{incident_id}']")
    expect(item).to_contain_text(w("gov.state.reported"))
    expect(manager.locator(".gov-group[data-group='new']")).to_contain_text(
        w("incidents.group.new")
    )
    item.click()
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "reported")
    expect(manager.locator(".photos img")).to_have_count(1)
    manager.select_option("#dispatch-org", str(gov.property["id"]))
    manager.fill("#dispatch-assignee", "worker1")
    manager.fill("#dispatch-due", "1")
    manager.click("button[data-action='dispatch']")
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "dispatched")
    expect(manager.locator("#incident-detail")).to_contain_text("worker1")
    property_name = "Anju" if locale == "en" else "安居物业"
    expect(manager.locator("#incident-detail dl")).to_contain_text(property_name)
    # The resident's open page follows without a reload (its poll is an hour away).
    expect(card).to_have_attribute("data-state", "dispatched")
    expect(resident.locator(f"#report-body-{incident_id} dl")).to_contain_text(property_name)

    # 3. The deadline passes (governance clock +2 min, loop stepped): automatic whistle to the
    # fire department; 30 min later its acknowledgement is overdue and a reminder goes out.
    # The whistle board is open while the loop acts: the rows arrive live.
    manager.click('#tabs button[data-tab="whistles"]')
    expect(manager.locator("#whistle-board")).to_contain_text(w("incidents.no_whistles"))
    gov.clock.offset = timedelta(minutes=2)
    gov.step_deadlines()
    row = manager.locator(f"#whistle-table tr[data-org='{gov.fire['id']}']")
    expect(row).to_have_attribute("data-overdue", "")
    gov.clock.offset = timedelta(minutes=30)
    gov.step_deadlines()
    expect(row.locator("td.reminders")).to_have_text("1")
    # The police (no English name) is summoned by hand: the Chinese name stands in.
    gov.post(f"/api/gov/incidents/{incident_id}/whistle", departments=[gov.police["id"]],
             reason="blocked exit")  # fmt: skip
    police = manager.locator(f"#whistle-table tr[data-org='{gov.police['id']}']")
    expect(police.locator("td.org")).to_have_text("派出所")
    expect(row.locator("td.org")).to_have_text("Fire station" if locale == "en" else "消防救援站")
    expect(row).to_have_attribute("data-overdue", "ack")
    expect(row.locator("td[data-stage='ack']")).to_contain_text(w("gov.whistle.overdue"))
    expect(row.locator("td[data-stage='arrive']")).to_contain_text(w("gov.whistle.not_reported"))
    expect(row.locator("td.reminders")).to_have_text("1")
    expect(row).to_contain_text(w("incidents.reason_deadline"))
    colour = row.locator("td[data-stage='ack']").evaluate("td => getComputedStyle(td).color")
    assert colour == "rgb(229, 72, 77)"  # overdue stage in red (--critical)
    assert_no_raw_keys(manager)
    shot(manager, f"gov-whistles-{suffix}", docs=True)

    # 4. The fire department reports in on the responder page, stage by stage.
    fire = in_language(pages, locale, **PHONE)
    sign_in(fire, gov.url, "responder1")
    assert fire.url.endswith("/responder")
    fire.wait_for_selector("body[data-ready='1']")
    whistle = fire.locator(".gov-card[data-whistle]")
    expect(whistle).to_have_attribute("data-next", "ack")
    expect(whistle.locator(".org")).to_have_text("Fire station" if locale == "en" else "消防救援站")
    assert_no_raw_keys(fire)
    assert_fits_the_phone(fire)
    shot(fire, f"gov-responder-{suffix}", docs=True)
    for stage, after in [("ack", "arrive"), ("arrive", "resolve"), ("resolve", None)]:
        if after is None:
            whistle.locator("input.note").fill("Corridor cleared, charger removed")
        whistle.locator(f"button[data-stage='{stage}']").click()
        if after is not None:
            expect(whistle).to_have_attribute("data-next", after)
            expect(whistle.locator(f"td[data-stage='{stage}']")).to_have_attribute("data-done", "1")
            # the manager's board shows the stage reported, live
            done = row.locator(f"td[data-stage='{stage}']")
            expect(done).to_have_attribute("data-done", "1")
    expect(fire.locator("#my-whistles")).to_contain_text(w("responder.no_whistles"))
    expect(row).to_have_count(0)  # resolved: off the open board, live
    # Every stage reported shows with the closed whistles.
    manager.check("#whistle-all")
    expect(row.locator("td[data-done='1']")).to_have_count(3, timeout=15_000)

    # 5. The property's worker accepts, arrives and resolves the work order; the manager's board,
    # open on the incident, follows each step.
    manager.click('#tabs button[data-tab="board"]')
    manager.locator(f".gov-card[data-incident='{incident_id}']").click()
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "dispatched")
    worker = in_language(pages, locale, **PHONE)
    sign_in(worker, gov.url, "worker1")
    worker.wait_for_selector("body[data-ready='1']")
    order = worker.locator(f"#my-orders .gov-card[data-incident='{incident_id}']")
    order.locator("button[data-action='accept']").click()
    expect(order).to_have_attribute("data-state", "in_progress")
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "in_progress")
    expect(manager.locator(f".gov-card[data-incident='{incident_id}']")).to_have_attribute(
        "data-state", "in_progress"
    )
    order.locator("button[data-action='arrive']").click()
    expect(order.locator("button[data-action='arrive']")).to_be_disabled()
    order.locator("input.note").fill("Charger removed, owner informed")
    order.locator("button[data-action='resolve']").click()
    expect(worker.locator("#my-orders")).to_contain_text(w("responder.no_orders"))

    # 6. Closing before the resident confirms is refused, with the reason in words.
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "resolved")
    manager.click("button[data-action='close']")
    expect(manager.locator("#close-error")).to_contain_text(w("incidents.close_refused"))
    shot(manager, f"gov-board-{suffix}", docs=True)

    # 7. The resident's page, never reloaded, shows it resolved; they confirm with 4 stars.
    mine = resident.locator(f"#report-{incident_id}")
    expect(mine).to_have_attribute("data-state", "resolved")
    expect(mine.locator(".feedback")).to_have_count(1)
    mine.locator(".star[data-star='4']").click()
    mine.locator(".confirm-comment").fill("Quick, thanks")
    shot(resident, f"gov-resident-rate-{suffix}")
    mine.locator("button.confirm").click()
    expect(resident.locator(f"#report-{incident_id}")).to_contain_text("★★★★")

    # 8. The manager closes it; the timeline tells the whole story in order.
    manager.locator(f".gov-card[data-incident='{incident_id}']").click()
    manager.click("button[data-action='close']")
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "closed")
    actions = manager.eval_on_selector_all(
        "#gov-timeline li", "items => items.map(i => i.dataset.action)"
    )
    story = ["opened", "dispatch", "deadline_missed", "whistle_reminder", "whistle_ack",
             "whistle_arrive", "whistle_resolve", "resolve", "confirm", "close"]  # fmt: skip
    assert [a for a in actions if a in story] == story, actions
    assert {"photo", "whistle", "accept", "arrive"} <= set(actions), actions
    expect(manager.locator("#gov-timeline")).to_contain_text(w("gov.action.whistle_ack"))
    expect(manager.locator("#incident-detail")).to_contain_text("★★★★")
    assert_no_raw_keys(manager)
    shot(manager, f"gov-incident-closed-{suffix}")

    # The committee's statistics count it: its category and building, and the property's
    # deadline was missed (late, 0 % on time); response times are measured.
    manager.goto(gov.url + "/risk?tab=stats")
    manager.wait_for_selector("body[data-ready='1']")
    expect(manager.locator("#stats-category tr[data-key='fire_hazard'] td.count")).to_have_text("1")
    expect(manager.locator("#stats-building tr[data-key='b1'] td.count")).to_have_text("1")
    sla = manager.locator(f"#stats-sla tr[data-org='{gov.property['id']}']")
    expect(sla.locator("td.org")).to_have_text(property_name)
    expect(sla.locator("td").nth(1)).to_have_text("1")  # dispatched
    expect(sla.locator("td").nth(3)).to_have_text("1")  # late
    expect(sla).to_contain_text("0%")
    expect(manager.locator("#stats-times tr[data-stage='resolve'] td").nth(1)).not_to_have_text(
        w("common.none")
    )
    assert_no_raw_keys(manager)
    shot(manager, f"gov-stats-{suffix}", docs=True)
    manager.goto(gov.url + f"/incidents?incident={incident_id}")  # closed: off the board
    expect(manager.locator("#incident-state")).to_have_attribute("data-state", "closed")

    # The after-action report of the incident opens from the board.
    with manager.expect_popup() as popup:
        manager.click("#incident-detail a.report-html")
    report = popup.value
    report.wait_for_load_state()
    expect(report.locator("body")).to_contain_text(f"#{incident_id}")
    assert report.locator("html").get_attribute("lang") == locale
    report.close()


def test_resident_reopens_a_resolved_report_with_a_reason(pages: Pages, gov: Gov) -> None:
    w = Words("zh-CN")
    incident = gov.resident_reports(category="repair_water", building="b2", location="地下车库",
                                    description="水管漏水")  # fmt: skip
    gov.post(f"/api/gov/incidents/{incident}/dispatch", org_id=gov.property["id"])
    gov.post(f"/api/gov/incidents/{incident}/resolve", note="已更换阀门")

    page = in_language(pages, "zh-CN", **PHONE)
    sign_in(page, gov.url, "resident1")
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(f"#report-{incident}")
    expect(card).to_have_attribute("data-state", "resolved")
    card.locator(".gov-card-head").click()
    expect(card).to_contain_text("已更换阀门")  # the disposal note
    card.locator("button.confirm").click()  # no stars chosen: refused on the page
    expect(card.locator(".feedback .error")).to_have_text(w("resident.pick_rating"))
    card.locator("button.reopen").click()  # no reason: refused on the page
    expect(card.locator(".feedback .error")).to_have_text(w("resident.need_reason"))
    card.locator(".reopen-reason").fill("还在漏水")
    card.locator("button.reopen").click()
    expect(card).to_have_attribute("data-state", "in_progress")
    expect(card.locator(".timeline li[data-action='reopen']")).to_contain_text("还在漏水")
    detail = gov.get(f"/api/gov/incidents/{incident}")
    assert isinstance(detail, dict) and detail["state"] == "in_progress"
    assert detail["confirmed_at"] is None and detail["rating"] is None
    assert_no_raw_keys(page)


CUT_STREAM = """
(() => {
  const Real = window.WebSocket;
  window.__streams = [];
  window.__streamBlocked = false;
  window.WebSocket = class extends Real {
    constructor(url, ...rest) {
      super(window.__streamBlocked ? "ws://127.0.0.1:9/" : url, ...rest);
      window.__streams.push(this);
    }
  };
})();
"""
"""The page's WebSocket, recorded; while ``__streamBlocked`` it cannot reconnect (a dead port)."""


def test_a_page_catches_up_after_the_stream_reconnects(pages: Pages, gov: Gov) -> None:
    """What changed while the stream was down shows once it is back, not at the (hour-long)
    poll: the page re-reads when the stream says hello again."""
    incident = gov.resident_reports(category="repair_water", building="b1", location="1-101",
                                    description="漏水")  # fmt: skip
    page = in_language(pages, "zh-CN", **PHONE)
    page.add_init_script(CUT_STREAM)
    sign_in(page, gov.url, "resident1")
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(f"#report-{incident}")
    expect(card).to_have_attribute("data-state", "reported")
    expect(page.locator("#conn.up")).to_have_count(1)
    page.evaluate("window.__streamBlocked = true; window.__streams.at(-1).close()")
    expect(page.locator("#conn.down")).to_have_count(1)
    gov.post(f"/api/gov/incidents/{incident}/dispatch", org_id=gov.property["id"])
    page.wait_for_timeout(1000)  # the change's event went out while the page was deaf
    expect(card).to_have_attribute("data-state", "reported", timeout=1)
    page.evaluate("window.__streamBlocked = false")
    expect(page.locator("#conn.up")).to_have_count(1, timeout=20_000)
    expect(card).to_have_attribute("data-state", "dispatched")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_risk_register_stats_and_drills_pages(pages: Pages, gov: Gov, locale: str) -> None:
    w = Words(locale)
    suffix = "zh" if locale == "zh-CN" else "en"
    risk = gov.post("/api/gov/risks", site=gov.site, building="b1", category="ebike_corridor",
                    title_zh="楼道电动车充电", title_en="E-bike charging in corridors",
                    likelihood=4, impact=5, phase="prevention", device_ids=["smoke-101"],
                    rule_ids=[], measures=["每周巡查"])  # fmt: skip
    gov.post("/api/gov/residents", site=gov.site, building="b1", unit="101", name="李奶奶",
             living_alone=True, activity_devices=["smoke-101"])  # fmt: skip
    for building in ("b1", "b1", "b2"):
        gov.post("/api/gov/reports", site=gov.site, category="sanitation", building=building,
                 location="gate", description="rubbish")  # fmt: skip

    page = in_language(pages, locale)
    sign_in(page, gov.url, "manager1")
    page.goto(gov.url + "/risk")
    page.wait_for_selector("body[data-ready='1']")
    row = page.locator(f"tr[data-risk='{risk['id']}']")
    expect(row).to_have_attribute("data-level", str(risk["level"]))
    expect(row).to_contain_text(w(f"risk.level.{risk['level']}"))
    expect(row.locator("td.devices")).to_have_text("smoke-101")
    row.click()
    expect(page.locator("#watch-devices tr[data-device='smoke-101']")).to_have_count(1)
    assert_no_raw_keys(page)
    shot(page, f"gov-risk-{suffix}", docs=True)

    page.click('#tabs button[data-tab="residents"]')
    expect(page.locator("#resident-table tr[data-alone='1']")).to_contain_text("李奶奶")

    page.click('#tabs button[data-tab="stats"]')
    expect(page.locator("#stats-category tr[data-key='sanitation'] td.count")).to_have_text("3")
    expect(page.locator("#stats-building tr[data-key='b1'] td.count")).to_have_text("2")
    expect(page.locator("#stats-building tr[data-key='b2'] td.count")).to_have_text("1")
    expect(page.locator("#stats-category")).to_contain_text(w("risk.by_category"))
    assert_no_raw_keys(page)
    shot(page, f"gov-stats-small-{suffix}")

    # A drill of the fire scenario, started from the page: it is listed with its status, and
    # its after-action report opens.
    page.click('#tabs button[data-tab="drills"]')
    expect(page.locator("#drill-scenario option[value='fire-in-building']")).to_have_count(1)
    page.select_option("#drill-scenario", "fire-in-building")
    page.fill("#drill-participants", "guard1, manager1")
    page.click("#drill-start")
    drill = page.locator("#drill-table tr[data-drill]")
    expect(drill).to_have_count(1)
    expect(drill).to_contain_text("fire-in-building")
    status = drill.get_attribute("data-status")
    assert status in ("pending", "running", "finished", "failed"), status
    expect(drill).to_contain_text(w(f"risk.drill.{status}"))
    assert_no_raw_keys(page)
    shot(page, f"gov-drills-{suffix}", docs=True)
    with page.expect_popup() as popup:
        drill.locator("a.report-html").click()
    report = popup.value
    report.wait_for_load_state()
    expect(report.locator("#scenario")).to_have_text("fire-in-building")
    report.close()


def test_each_role_sees_its_own_screens(pages: Pages, gov: Gov) -> None:
    """Residents see only their page (and visitor passes), responders theirs, managers all; a
    page of another role sends the user to their own."""
    expected = {
        "resident1": ("/resident", ["/gate", "/resident"]),
        "responder1": ("/responder", ["/console", "/responder"]),
        "manager1": (
            "/console",
            ["/console", "/gate", "/incidents", "/resident", "/responder", "/risk"],
        ),
        "admin1": (
            "/console",
            ["/console", "/dev", "/gate", "/incidents", "/resident", "/responder", "/risk"],
        ),
        "guard1": ("/gate", ["/console", "/gate"]),
        "viewer1": ("/console", ["/console"]),
    }
    for user, (home, screens) in expected.items():
        page = pages.new()
        sign_in(page, gov.url, user)
        assert page.url.endswith(home), (user, page.url)
        page.wait_for_selector("#screens a")
        links = page.locator("#screens a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
        assert sorted(links) == screens, (user, links)
        if user in ("resident1", "responder1"):
            page.goto(gov.url + "/incidents")  # a manager's page: back to their own
            page.wait_for_url(f"**{home}")
