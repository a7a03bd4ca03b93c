"""Acceptance in real Chromium against the real cloud app (uvicorn, SQLite, mosquitto).

A manager sees a simulated smoke alarm arrive live, acknowledges and resolves it, and finds the
audit entry; a guard sees an access event arrive on the gate terminal and opens a door by hand
with a reason; a viewer can do neither. Screenshots of the three screens in both languages go to
test-artifacts/screenshots/ (with LINLI_UPDATE_DOCS_SCREENSHOTS=1 also to docs/screenshots/).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.auth import service as accounts
from cloud.auth.deps import Role
from linli.services import Mosquitto
from protocols.codec import new_id
from protocols.kinds import DeviceKind
from protocols.messages import (
    AccessDecision,
    AccessEvent,
    AccessKind,
    AccessMethod,
    Command,
    Reading,
    Telemetry,
)
from simulators.devices import make_device
from tests.dashboards.conftest import cloud_settings
from tests.dashboards.screens_support import (
    PASSWORD,
    REPO,
    SCREENSHOTS,
    FakeGatewayLink,
    LiveServer,
    Pages,
    demo_site,
    screenshot,
    sign_in,
    to_docs,
)

pytestmark = pytest.mark.browser


class Site:
    def __init__(self, server: LiveServer, gateway: FakeGatewayLink, site: str) -> None:
        self.server, self.gateway, self.site = server, gateway, site
        self.url = server.url


@pytest.fixture
def live_site(tmp_path: Path, mosquitto: Mosquitto, site: str) -> Iterator[Site]:
    app = create_app(cloud_settings(tmp_path, mosquitto, site))
    with LiveServer(app) as server:
        from tests.dashboards.screens_support import Cloud

        cloud = Cloud(app, httpx.Client(base_url=server.url, timeout=30))
        services = app.state.services
        with services.sessions.begin() as db:
            services.registry.import_site(db, demo_site(site))
        cloud.wait_for(lambda: cloud.client.get("/ready").status_code == 200)
        gateway = FakeGatewayLink(mosquitto.port, site)
        try:
            yield Site(server, gateway, site)
        finally:
            gateway.close()
            cloud.client.close()


def smoke_alarm(gateway: FakeGatewayLink, device: str) -> Telemetry:
    """A reading from the simulator's smoke detector model, forced into alarm."""
    virtual = make_device(DeviceKind.SMOKE, device, seed=1)
    virtual.force("smoke", True)
    now = datetime.now(UTC)
    readings = tuple(
        Reading(device=device, metric=metric, value=value, ts=now)
        for metric, value in virtual.read(now.timestamp())
    )
    return Telemetry(
        msg_id=new_id(), boot_id=gateway.boot_id, seq=gateway.next_seq(), ts=now, readings=readings
    )


def face_thumbnail() -> str:
    image = np.full((96, 96, 3), (60, 120, 200), np.uint8)
    cv2.circle(image, (48, 40), 22, (180, 200, 230), -1)
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


def access_granted(gateway: FakeGatewayLink, door: str, name: str) -> AccessEvent:
    return AccessEvent(
        msg_id=new_id(),
        boot_id=gateway.boot_id,
        seq=gateway.next_seq(),
        ts=datetime.now(UTC),
        door=door,
        kind=AccessKind.DECISION,
        decision=AccessDecision.GRANTED,
        reason="allow_list",
        method=AccessMethod.FACE,
        person_id="p-zhang",
        person_name=name,
        distance=0.38,
        liveness=0.93,
        thumbnail_jpeg_b64=face_thumbnail(),
    )


def lock_state(gateway: FakeGatewayLink, door: str, *, locked: bool) -> Telemetry:
    now = datetime.now(UTC)
    return Telemetry(
        msg_id=new_id(),
        boot_id=gateway.boot_id,
        seq=gateway.next_seq(),
        ts=now,
        readings=(Reading(device=door, metric="locked", value=locked, ts=now),),
    )


def _wait_for_reading(live_site: Site, device: str) -> None:
    """Wait until ingest has stored a reading of ``device`` (asked as the admin)."""
    with httpx.Client(base_url=live_site.url, timeout=30) as client:
        login = client.post("/api/auth/login", json={"username": "admin1", "password": PASSWORD})
        assert login.status_code == 200
        params = {"site": live_site.site, "device": device}
        deadline = datetime.now(UTC).timestamp() + 30
        while not client.get("/api/telemetry/latest", params=params).json():
            assert datetime.now(UTC).timestamp() < deadline, "reading never stored"
            time.sleep(0.1)


def blocked(gateway: FakeGatewayLink, door: str) -> AccessEvent:
    return AccessEvent(
        msg_id=new_id(),
        boot_id=gateway.boot_id,
        seq=gateway.next_seq(),
        ts=datetime.now(UTC),
        door=door,
        kind=AccessKind.DECISION,
        decision=AccessDecision.ALARM,
        reason="block_list",
        method=AccessMethod.FACE,
        person_id="p-banned",
        person_name="王五",
        distance=0.31,
    )


def audit_actions(page: Page) -> list[str]:
    page.click('#tabs button[data-tab="audit"]')
    page.wait_for_selector("#audit-table")
    actions: list[str] = page.eval_on_selector_all(
        "#audit-table tr[data-action]", "rows => rows.map(r => r.dataset.action)"
    )
    return actions


def test_manager_sees_alert_live_acknowledges_resolves_and_finds_the_audit_entry(
    pages: Pages, live_site: Site
) -> None:
    page = pages.new()
    sign_in(page, live_site.url, "manager1")
    assert page.url.endswith("/console")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#conn")).to_have_class("conn up")
    assert page.locator(".alert-card").count() == 0

    live_site.gateway.send(smoke_alarm(live_site.gateway, "smoke-101"))
    card = page.locator(".alert-card[data-severity='critical']")
    expect(card).to_have_count(1)  # arrived over the WebSocket: the page was never reloaded
    expect(card).to_contain_text("smoke-101")
    expect(card).to_contain_text("烟感报警")
    assert page.evaluate("window.linliBeeps || 0") >= 1  # the critical alert sounded
    expect(page.locator(".kpi.critical .value")).to_have_text("1")
    expect(page.locator("#bell-count")).to_have_text("1")  # the in-app notification, live
    page.click("#bell")
    expect(page.locator("#notes .note.unseen")).to_contain_text("烟感报警")
    expect(page.locator("#bell-count")).to_have_count(0)  # opened: seen
    page.click("#bell")

    card.click()
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "open")
    page.click("button[data-action='acknowledge']")
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "acknowledged")
    page.fill("#assignee", "guard1")
    page.click("button[data-action='assign']")
    expect(page.locator("#alert-detail dl")).to_contain_text("guard1")
    page.fill("#note", "保安已到场查看")
    page.click("button[data-action='comment']")
    expect(page.locator("#timeline li[data-kind='comment']")).to_contain_text("保安已到场查看")
    page.fill("#note", "误报：厨房油烟")
    page.click("button[data-action='resolve']")
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "resolved")
    expect(page.locator("#timeline li[data-kind='resolve']")).to_have_count(1)
    kinds = page.eval_on_selector_all("#timeline li", "items => items.map(i => i.dataset.kind)")
    assert {"raised", "acknowledge", "resolve"} <= set(kinds), kinds
    expect(page.locator("#timeline")).to_contain_text("误报：厨房油烟")
    screenshot(page, "console-alert-zh")

    page.click("button[data-action='close']")
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "closed")
    expect(page.locator(".alert-card")).to_have_count(0)  # closed alerts leave the board…
    page.check("#show-closed")
    expect(page.locator(".alert-card[data-status='closed']")).to_have_count(1)  # …unless asked

    actions = audit_actions(page)
    assert actions[:2] == ["alert.close", "alert.resolve"], actions
    row = page.locator("#audit-table tr[data-action='alert.resolve']").first
    expect(row).to_contain_text("manager1")
    expect(row).to_contain_text("误报：厨房油烟")


def test_guard_sees_access_event_live_and_opens_a_door_with_a_reason(
    pages: Pages, live_site: Site
) -> None:
    page = pages.new()
    live_site.gateway.send(lock_state(live_site.gateway, "gate-1", locked=True))
    _wait_for_reading(live_site, "gate-1")
    sign_in(page, live_site.url, "guard1")
    assert page.url.endswith("/gate")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#conn")).to_have_class("conn up")
    expect(page.locator(".door")).to_have_count(2)
    expect(page.locator(".door[data-door='gate-1'] .door-state")).to_have_text("已上锁")
    expect(page.locator(".door[data-door='gate-2'] .door-state")).to_have_text("未知")

    live_site.gateway.send(access_granted(live_site.gateway, "gate-1", "张三"))
    entry = page.locator(".access[data-decision='granted']")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("张三")
    expect(entry).to_contain_text("在白名单中")
    expect(entry.locator("img")).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))

    # A block-listed person: the door stays shut, the guard must acknowledge the alert.
    live_site.gateway.send(blocked(live_site.gateway, "gate-2"))
    expect(page.locator(".access[data-decision='alarm']")).to_contain_text("在黑名单中")
    pending = page.locator(".ack-item")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("黑名单人员")
    pending.locator("button").click()
    expect(page.locator(".ack-item")).to_have_count(0)
    expect(page.locator("#ack-list")).to_contain_text("暂无待确认事项")

    page.click(".door[data-door='gate-1'] button")
    page.click("#open-confirm")  # no reason yet: refused on the page
    expect(page.locator("#open-error")).to_have_text("必须填写原因")
    page.fill("#open-reason", "快递员送件")
    page.click("#open-confirm")
    expect(page.locator(".toast.ok")).to_contain_text("gate-1")
    expect(page.locator("#open-modal")).to_have_class("modal hidden")
    screenshot(page, "gate-zh")

    # The command reached the gateway's topic, and the audit log holds the reason.
    deadline = datetime.now(UTC).timestamp() + 20
    while not live_site.gateway.commands and datetime.now(UTC).timestamp() < deadline:
        page.wait_for_timeout(100)
    command = live_site.gateway.commands[0]
    assert isinstance(command, Command)
    assert (command.name, command.target, command.issued_by) == ("door.open", "gate-1", "guard1")
    mpage = pages.new()
    sign_in(mpage, live_site.url, "manager1")
    entries = mpage.evaluate("fetch('/api/audit?action=door.open').then(r => r.json())")
    assert [(e["actor"], e["target"], e["detail"]["reason"]) for e in entries] == [
        ("guard1", f"{live_site.site}/gate-1", "快递员送件")
    ]
    acked = mpage.evaluate("fetch('/api/alerts?rule_id=block-listed-person').then(r => r.json())")
    assert [(a["subject"], a["status"], a["acknowledged_by"]) for a in acked] == [
        ("gate-2", "acknowledged", "guard1")
    ]


def test_viewer_can_neither_acknowledge_nor_open_a_door(pages: Pages, live_site: Site) -> None:
    live_site.gateway.send(smoke_alarm(live_site.gateway, "smoke-201"))
    page = pages.new()
    sign_in(page, live_site.url, "viewer1")
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(".alert-card")
    expect(card).to_have_count(1)
    card.click()
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "open")
    expect(page.locator("button[data-action='acknowledge']")).to_be_disabled()
    alert_id = card.get_attribute("data-alert-id")
    status = page.evaluate(
        f"fetch('/api/alerts/{alert_id}/ack', {{method: 'POST'}}).then(r => r.status)"
    )
    assert status == 403

    page.goto(live_site.url + "/gate")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".toast.error")).to_contain_text("无权")  # the access feed is refused
    page.click(".door[data-door='gate-1'] button")
    page.fill("#open-reason", "只是看看")
    page.click("#open-confirm")
    expect(page.locator("#open-error")).to_have_text("您的角色无权执行此操作")
    assert live_site.gateway.commands == []
    # The alert is still open: nothing the viewer did changed it.
    detail = page.evaluate(f"fetch('/api/alerts/{alert_id}').then(r => r.json())")
    assert detail["alert"]["status"] == "open"


def test_screens_in_both_languages(pages: Pages, live_site: Site) -> None:
    live_site.gateway.send(smoke_alarm(live_site.gateway, "smoke-101"))
    live_site.gateway.send(access_granted(live_site.gateway, "gate-1", "李四"))
    made: list[Path] = []
    for user, path in [("admin1", "/console"), ("guard1", "/gate"), ("admin1", "/dev")]:
        page = pages.new()
        sign_in(page, live_site.url, user)
        page.goto(live_site.url + path)
        page.wait_for_selector("body[data-ready='1']")
        name = path.strip("/")
        if name == "console":
            expect(page.locator(".alert-card")).to_have_count(1)
        if name == "gate":
            expect(page.locator(".access")).to_have_count(1)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        made.append(screenshot(page, f"{name}-zh"))
        page.click("#lang")  # switch language: the page reloads in English
        page.wait_for_selector("html[lang='en']")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("h1")).not_to_contain_text("控制台")
        expect(page.locator("#lang")).to_have_text("中文")
        made.append(screenshot(page, f"{name}-en"))
    assert all(p.stat().st_size > 10_000 for p in made)
    for shot in made:
        to_docs(shot)
    english = {"console-en.png", "dev-en.png", "gate-en.png"}
    assert english <= {p.name for p in SCREENSHOTS.glob("*-en.png")}


def test_developer_runs_a_scenario_and_watches_messages_and_alerts(
    pages: Pages, tmp_path: Path, mosquitto: Mosquitto, site: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The gas-leak starter scenario, run from the page through the real simulator, edge agents,
    broker, ingest and rules: its MQTT messages and the alert it causes appear live."""
    from dashboards import devapi
    from simulators.site import load_site

    real = devapi.scenario_command
    monkeypatch.setattr(  # the scenario's site under this test's own id (topic isolation)
        devapi, "scenario_command", lambda *args: [*real(*args), "--site", site]
    )
    sitefile = load_site(REPO / "simulators" / "sites" / "demo.yaml").model_copy(
        update={"site": site}
    )
    app = create_app(cloud_settings(tmp_path, mosquitto, site))
    with LiveServer(app) as server:
        services = app.state.services
        with services.sessions.begin() as db:
            services.registry.import_site(db, sitefile)
        page = pages.new()
        with Session(app.state.engine) as db:
            accounts.create_user(db, "admin1", PASSWORD, Role.ADMIN)
            db.commit()
        sign_in(page, server.url, "admin1")
        page.goto(server.url + "/dev")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#broker")).to_have_text("已连接消息服务器")
        row = page.locator(".scenario[data-scenario='gas-leak']")
        row.locator("button").click()
        expect(row).to_contain_text("运行中")
        expect(
            page.locator(f".msg[data-channel='telemetry']:has-text('{site}')").first
        ).to_be_visible(timeout=60_000)
        alert = page.locator("#dev-alerts .alert-card:has-text('gas-ch4-high')")
        expect(alert).to_have_count(1, timeout=90_000)
        expect(alert).to_contain_text("gas-b2-101")
        to_docs(screenshot(page, "dev-scenario-zh"))
        row.locator("button").click()  # stop
        expect(row.locator("button")).to_have_text("启动", timeout=30_000)
        pages.close()
        console = app.state.dev_console
        assert all(run.process.poll() is not None for run in console.runs.values())


def heat_readings(gateway: FakeGatewayLink, device: str, values: list[float]) -> Telemetry:
    now = datetime.now(UTC).timestamp()
    readings = tuple(
        Reading(
            device=device,
            metric="temperature",
            value=value,
            ts=datetime.fromtimestamp(now - (len(values) - i) * 600, UTC),
        )
        for i, value in enumerate(values)
    )
    return Telemetry(
        msg_id=new_id(),
        boot_id=gateway.boot_id,
        seq=gateway.next_seq(),
        ts=datetime.now(UTC),
        readings=readings,
    )


def test_console_map_devices_gateways_and_csv(pages: Pages, live_site: Site) -> None:
    live_site.gateway.send(heat_readings(live_site.gateway, "heat-101", [21.0, 22.5, 24.0, 23.0]))
    live_site.gateway.send(smoke_alarm(live_site.gateway, "smoke-101"))
    page = pages.new(accept_downloads=True)
    sign_in(page, live_site.url, "manager1")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator(".alert-card")).to_have_count(1)

    page.click('#tabs button[data-tab="map"]')
    expect(page.locator("svg.map circle[data-device]")).to_have_count(6)
    expect(page.locator("svg.map circle[data-device='smoke-101']")).to_have_class("dev dev-alarm")
    expect(page.locator("svg.map circle[data-device='smoke-201']")).to_have_class("dev dev-ok")
    expect(page.locator("svg.map g[data-building='b1']")).to_contain_text("b1-f2")
    screenshot(page, "console-map-zh")

    page.click("svg.map circle[data-device='heat-101']")  # opens the device detail
    expect(page.locator("#device-title")).to_contain_text("heat-101")
    expect(page.locator("#device-detail svg.chart path.line")).to_have_count(1)
    expect(page.locator("#device-detail h3[data-metric='temperature']")).to_have_text("温度 (°C)")
    expect(page.locator("#device-detail")).to_contain_text("暂无读数")  # battery: never reported
    screenshot(page, "console-device-zh")

    page.click('#tabs button[data-tab="gateways"]')
    # Other tests' sites on this cloud have a gw1 too: a row is (site, gateway).
    row = page.locator(f"tr[data-site='{live_site.site}'][data-gateway='gw1']")
    expect(row).to_contain_text(f"{live_site.site}/gw1")
    expect(row.locator("td").nth(3)).not_to_have_text("…")  # gaps filled from /health

    page.click('#tabs button[data-tab="alerts"]')
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    header, first = text.splitlines()[:2]
    assert header.startswith("id,site,rule_id,subject,severity,status")
    assert "smoke-101" in first and "烟感报警" in first


def test_resident_invites_a_visitor_with_a_qr_pass(pages: Pages, live_site: Site) -> None:
    page = pages.new(width=1000)
    sign_in(page, live_site.url, "resident1")
    assert page.url.endswith("/resident")  # a resident's home; visitor passes are one link away
    page.click("#screens a[href='/gate']")
    page.wait_for_url("**/gate")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#gate-left")).to_be_hidden()  # no access feed for residents
    expect(page.locator("#doors-panel")).to_be_hidden()
    expect(page.locator(".toast.error")).to_have_count(0)
    page.fill("#pass-name", "王阿姨")
    page.fill("#pass-host", "b1-101")
    page.fill("#pass-hours", "3")
    page.fill("#pass-uses", "2")
    page.click("#pass-issue")
    expect(page.locator("#pass-summary")).to_contain_text("王阿姨")
    expect(page.locator("#pass-summary")).to_contain_text("可用 2 次")
    qr = page.locator("#pass-qr")
    expect(qr).to_be_visible()
    page.wait_for_function("document.getElementById('pass-qr').naturalWidth > 100")
    screenshot(page, "gate-pass-zh")
    # The code on the screen scans back to the pass the server issued.
    png = np.frombuffer(page.locator(".qr").screenshot(), np.uint8)
    image = cv2.imdecode(png, cv2.IMREAD_COLOR)
    assert image is not None
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    if not text:  # OpenCV's detector misses a few codes at one scale; a phone would rescale too
        bigger = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        text, _, _ = cv2.QRCodeDetector().detectAndDecode(bigger)
    passes = page.evaluate("fetch('/api/visitor-passes?active=false').then(r => r.status)")
    assert passes == 403  # residents cannot list every pass…
    assert text.startswith("LINLI-PASS:") and len(text) > 20
    gpage = pages.new()
    sign_in(gpage, live_site.url, "guard1")
    issued = gpage.evaluate("fetch('/api/visitor-passes').then(r => r.json())")
    assert [(p["qr_text"], p["visitor_name"], p["max_uses"]) for p in issued] == [
        (text, "王阿姨", 2)
    ]  # …the guard sees it, with the code that was scanned


def test_admin_manages_users_in_the_console(pages: Pages, live_site: Site) -> None:
    page = pages.new()
    sign_in(page, live_site.url, "admin1")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#users-tab")
    expect(page.locator("#users-table tr[data-user]")).to_have_count(len(Role))
    page.fill("#new-username", "lihua")
    page.fill("#new-display", "李华")
    page.fill("#new-password", "zhe shi mima 2026")
    page.select_option("#new-role", "guard")
    page.click("#create-user")
    row = page.locator("#users-table tr[data-user='lihua']")
    expect(row).to_contain_text("李华")
    row.locator("select").select_option("manager")
    expect(page.locator(".toast.ok").last).to_contain_text("物业经理")
    expect(page.locator("#users-table tr[data-user='lihua'] select")).to_have_value("manager")
    screenshot(page, "console-users-zh")
    # The new account works, with its new role; both changes are in the audit log.
    opage = pages.new()
    opage.goto(live_site.url + "/login")
    opage.wait_for_selector("body[data-ready='1']")
    opage.fill("#username", "lihua")
    opage.fill("#password", "zhe shi mima 2026")
    opage.click("#submit")
    opage.wait_for_url("**/console")
    opage.wait_for_selector("body[data-ready='1']")
    expect(opage.locator("#who")).to_contain_text("李华 · 物业经理")
    expect(opage.locator("#users-tab")).to_be_hidden()  # managers do not manage users
    actions = audit_actions(opage)
    assert actions[:2] == ["user.role", "user.create"], actions


def test_manager_approves_a_new_device(pages: Pages, live_site: Site) -> None:
    """A device the site file does not declare reports in: it waits for approval; the manager
    approves it on the devices tab (audited)."""
    now = datetime.now(UTC)
    live_site.gateway.send(
        Telemetry(
            msg_id=new_id(),
            boot_id=live_site.gateway.boot_id,
            seq=live_site.gateway.next_seq(),
            ts=now,
            readings=(Reading(device="smoke-new", metric="smoke", value=False, ts=now),),
        )
    )
    page = pages.new()
    sign_in(page, live_site.url, "manager1")
    page.wait_for_selector("body[data-ready='1']")
    item = page.locator(f".pending-item[data-pending='{live_site.site}/smoke-new']")
    deadline = time.monotonic() + 30
    while item.count() == 0:  # ingest registers the unknown device as it stores the reading
        assert time.monotonic() < deadline, "the new device never waited for approval"
        page.click('#tabs button[data-tab="alerts"]')
        page.click('#tabs button[data-tab="devices"]')
        page.wait_for_timeout(300)
    item.locator("select.kind-pick").select_option("smoke")  # its kind was not known
    screenshot(page, "console-pending-zh")
    item.locator("button[data-approval='approved']").click()
    expect(item).to_have_count(0)
    row = page.locator("tr[data-device='smoke-new']")
    expect(row).to_contain_text("烟感")
    expect(row).to_contain_text("正常")
    log = page.evaluate("fetch('/api/audit?action=device.approval').then(r => r.json())")
    assert [(e["actor"], e["target"]) for e in log] == [("manager1", f"{live_site.site}/smoke-new")]
