"""The gate terminal lists the active visitor passes with the uses the gateways reported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.gate.uses import record_uses
from linli.services import Mosquitto
from tests.cloud.gate.conftest import LiveCloud, access_row, serve_cloud
from tests.dashboards.screens_support import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


@pytest.fixture
def cloud(
    tmp_path: Path, mosquitto: Mosquitto, site: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveCloud]:
    with serve_cloud(f"sqlite:///{tmp_path / 'cloud.db'}", mosquitto, site, monkeypatch) as live:
        yield live


def used_once(cloud: LiveCloud, site: str, pass_id: int) -> None:
    """A gateway's grant of the pass, stored as ingest stores it, then recorded."""
    engine = make_engine(cloud.db_url)
    try:
        with Session(engine) as db:
            db.add(access_row(site, f"vp{pass_id}"))
            db.commit()
            record_uses(db, 0, datetime.now(UTC))
            db.commit()
    finally:
        engine.dispose()


def test_gate_page_shows_uses_and_state(cloud: LiveCloud, site: str, chromium: str) -> None:
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    issued = [
        cloud.client.post(
            "/api/visitor-passes",
            json={"visitor_name": name, "site": site, "valid_until": until, "max_uses": uses},
        ).json()
        for name, uses in (("王阿姨", 1), ("Mr Li", 3))
    ]
    used_once(cloud, site, issued[0]["id"])
    used_once(cloud, site, issued[1]["id"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page: Page = browser.new_context().new_page()
            page.set_default_timeout(30_000)
            page.goto(cloud.url + "/login")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#username", "guard1")
            page.fill("#password", "correct horse battery")
            page.click("#submit")
            page.wait_for_url(lambda url: "/login" not in url)
            page.goto(cloud.url + "/gate")
            page.wait_for_selector("body[data-ready='1']")
            used_up = page.locator(f"#pass-list li[data-pass='{issued[0]['id']}']")
            expect(used_up).to_have_attribute("data-state", "pass_used_up")
            expect(used_up).to_contain_text("王阿姨 · 已用 1/1 次 · 通行证次数已用完")
            active = page.locator(f"#pass-list li[data-pass='{issued[1]['id']}']")
            expect(active).to_contain_text("Mr Li · 已用 1/3 次 · 有效")
        finally:
            browser.close()
