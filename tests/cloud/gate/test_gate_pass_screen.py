"""The gate terminal lists the active visitor passes with the uses the gateways reported, and
says in words why a pass was refused (a revoked pass: "Pass revoked" / "通行证已撤销")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.gate.uses import record_uses
from cloud.storage.tables import AccessEventRow
from tests.cloud.gate.conftest import LiveCloud, access_row
from tests.dashboards.screens_support import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def stored(cloud: LiveCloud, row: AccessEventRow) -> None:
    """A gateway's access event, stored as ingest stores it; pass uses then recorded."""
    engine = make_engine(cloud.db_url)
    try:
        with Session(engine) as db:
            db.add(row)
            db.commit()
            record_uses(db, 0, datetime.now(UTC))
            db.commit()
    finally:
        engine.dispose()


@pytest.fixture
def chrome(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


def gate_page(chrome: Browser, cloud: LiveCloud, locale: str = "zh-CN") -> Page:
    """The gate terminal, signed in as guard1, in ``locale``."""
    page = chrome.new_context().new_page()
    page.set_default_timeout(30_000)
    page.add_init_script(f"localStorage.setItem('linli.locale', {json.dumps(locale)});")
    page.goto(cloud.url + "/login")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#username", "guard1")
    page.fill("#password", "correct horse battery")
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(cloud.url + "/gate")
    page.wait_for_selector("body[data-ready='1']")
    return page


def test_gate_page_shows_uses_and_state(live_cloud: LiveCloud, site: str, chrome: Browser) -> None:
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    issued = [
        live_cloud.client.post(
            "/api/visitor-passes",
            json={"visitor_name": name, "site": site, "valid_until": until, "max_uses": uses},
        ).json()
        for name, uses in (("王阿姨", 1), ("Mr Li", 3))
    ]
    stored(live_cloud, access_row(site, f"vp{issued[0]['id']}"))
    stored(live_cloud, access_row(site, f"vp{issued[1]['id']}"))
    page = gate_page(chrome, live_cloud)
    used_up = page.locator(f"#pass-list li[data-pass='{issued[0]['id']}']")
    expect(used_up).to_have_attribute("data-state", "pass_used_up")
    expect(used_up).to_contain_text("王阿姨 · 已用 1/1 次 · 通行证次数已用完")
    active = page.locator(f"#pass-list li[data-pass='{issued[1]['id']}']")
    expect(active).to_contain_text("Mr Li · 已用 1/3 次 · 有效")


@pytest.mark.parametrize(("locale", "words"), [("zh-CN", "通行证已撤销"), ("en", "Pass revoked")])
def test_access_feed_says_a_pass_was_revoked(
    live_cloud: LiveCloud, site: str, chrome: Browser, locale: str, words: str
) -> None:
    row = access_row(site, "vp7", reason="pass_revoked", decision="denied")
    msg_id = row.msg_id
    stored(live_cloud, row)
    page = gate_page(chrome, live_cloud, locale)
    card = page.locator(f"#feed .access[data-msg-id='{msg_id}']")
    expect(card).to_have_attribute("data-decision", "denied")
    expect(card.locator(".reason")).to_have_text(f"main · {words}")
