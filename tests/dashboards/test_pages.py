"""The pages and assets are served; the UI config carries the site's time zone."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page

import dashboards
from tests.dashboards.screens_support import LiveServer


@pytest.mark.parametrize("path", ["/console", "/gate", "/dev", "/login"])
def test_pages_are_served_without_a_session(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="/static/js/common.js">' in response.text
    # One shared <head> (pages/_head.html), then the page's own body.
    text = response.text
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert text.count("<head>") == 1 and text.index("</head>") < text.index("<body")
    assert '<link rel="stylesheet" href="/static/css/linli.css">' in text


def test_root_redirects_to_console(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307) and response.headers["location"] == "/console"


def test_static_assets_and_catalogues(client: TestClient) -> None:
    for path in ["/static/css/linli.css", "/static/js/console.js", "/static/i18n/zh-CN.json"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/static/i18n/fr.json").status_code == 404


def test_ui_config_default_and_custom() -> None:
    app = FastAPI()
    dashboards.mount(app, time_zone="Europe/Paris", default_locale="en", dev_console=False)
    with TestClient(app) as client:
        body = client.get("/api/ui/config").json()
        assert body.pop("metrics")["smoke"][0] == {"name": "smoke", "unit": None, "binary": True}
        assert body == {
            "time_zone": "Europe/Paris",
            "default_locale": "en",
            "locales": ["zh-CN", "en"],
            "site_time_zones": {},
        }
        assert client.get("/api/dev/scenarios").status_code == 404  # not mounted


def test_default_time_zone_is_shanghai(client: TestClient) -> None:
    assert client.get("/api/ui/config").json()["time_zone"] == "Asia/Shanghai"


def test_bad_settings_fail_at_mount() -> None:
    with pytest.raises(ValueError, match="time_zone"):
        dashboards.mount(FastAPI(), time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"site_time_zones\.s9: unknown IANA zone"):
        dashboards.mount(FastAPI(), site_time_zones={"s9": "Nowhere/Town"})
    with pytest.raises(ValueError, match="default_locale"):
        dashboards.mount(FastAPI(), default_locale="fr")


def test_times_show_in_the_site_zone_in_the_browser(page: Page) -> None:
    """2026-01-01 00:00 UTC is 08:00 in Shanghai (the default) and 01:00 at a Paris site."""
    app = FastAPI()
    dashboards.mount(app, site_time_zones={"paris": "Europe/Paris"}, dev_console=False)
    with LiveServer(app) as server:
        page.goto(server.url + "/login")
        page.wait_for_function("Linli.state.config && Linli.state.config.time_zone")
        shown = page.evaluate(
            """[Linli.formatTime("2026-01-01T00:00:00Z"),
                Linli.formatTime("2026-01-01T00:00:00Z", true, "paris"),
                Linli.formatTime("2026-01-01T00:00:00Z", false, "elsewhere")]"""
        )
    assert shown == ["2026/01/01 08:00:00", "2026/01/01 01:00:00", "08:00:00"]
