"""The screens people use: manager console, gate terminal, developer console, login, and the
governance screens (incident and whistle boards, resident and responder pages, risk & drills).

Static HTML/CSS/vanilla JavaScript (no build step, no Node.js) served by the cloud app, plus the
small APIs only these screens need (visitor passes, the developer console). The app factory calls
:func:`mount` once::

    from dashboards import mount
    mount(app)        # pages at /, /console, /gate, /dev, /login, /incidents, /resident,
                      # /responder, /risk; assets at /static

Strings live in one JSON catalogue per language (``static/i18n/zh-CN.json``, ``en.json``); times
are shown in the site's time zone (``time_zone``, Asia/Shanghai by default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from cloud.auth.deps import public
from protocols.kinds import METRICS

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PAGES = HERE / "pages"
HEAD = "_head.html"
LOCALES = ("zh-CN", "en")
SCREENS = {
    "/console": "console.html",
    "/gate": "gate.html",
    "/dev": "dev.html",
    "/login": "login.html",
    "/incidents": "incidents.html",
    "/resident": "resident.html",
    "/responder": "responder.html",
    "/risk": "risk.html",
}


class MetricInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    unit: str | None
    binary: bool


class UiConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time_zone: str
    default_locale: str
    locales: tuple[str, ...]
    site_time_zones: dict[str, str] = Field(
        default_factory=dict, description="Sites whose zone differs from time_zone"
    )
    metrics: dict[str, tuple[MetricInfo, ...]] = Field(
        default_factory=dict, description="Metrics per device kind (protocols.kinds), for charts"
    )


def _metrics() -> dict[str, tuple[MetricInfo, ...]]:
    return {
        kind.value: tuple(MetricInfo(name=m.name, unit=m.unit, binary=m.binary) for m in metrics)
        for kind, metrics in METRICS.items()
    }


def page_html(name: str) -> str:
    """A screen as served: the shared ``<head>`` (``pages/_head.html``: charset, viewport, title,
    stylesheet) followed by the page's own ``<body>`` (``pages/NAME``). Read on each request, so
    an edited page shows on reload."""
    head = (PAGES / HEAD).read_text(encoding="utf-8")
    body = (PAGES / name).read_text(encoding="utf-8")
    return f"{head}{body}</html>\n"


def _page_endpoint(name: str) -> Callable[[], HTMLResponse]:
    def endpoint() -> HTMLResponse:
        return HTMLResponse(page_html(name), headers={"Cache-Control": "no-cache"})

    endpoint.__name__ = "page_" + name.removesuffix(".html")
    return endpoint


def pages_router(config: UiConfig) -> APIRouter:
    router = APIRouter(dependencies=[Depends(public)], include_in_schema=False)

    @router.get("/")
    def index() -> RedirectResponse:
        return RedirectResponse("/console")

    for path, name in SCREENS.items():
        router.add_api_route(path, _page_endpoint(name), methods=["GET"])

    @router.get("/api/ui/config", include_in_schema=True, tags=["dashboards"])
    def ui_config() -> UiConfig:
        """Time zone and languages of the screens (public: the login page needs it)."""
        return config

    return router


def mount(
    app: FastAPI,
    *,
    time_zone: str = "Asia/Shanghai",
    default_locale: str = "zh-CN",
    dev_console: bool = True,
    site_time_zones: Mapping[str, str] | None = None,
) -> None:
    """Serve the screens and their APIs on ``app``. Raises ValueError on a bad zone/locale.

    ``site_time_zones`` default to ``app.state.settings.site_timezones`` when the app has them.
    """
    if site_time_zones is None:
        site_time_zones = getattr(getattr(app.state, "settings", None), "site_timezones", {})
    zones = {"time_zone": time_zone} | {
        f"site_time_zones.{k}": v for k, v in site_time_zones.items()
    }
    for name, zone in zones.items():
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"dashboards {name}: unknown IANA zone {zone!r}") from exc
    if default_locale not in LOCALES:
        raise ValueError(f"dashboards default_locale: {default_locale!r} not in {LOCALES}")
    from dashboards.api import router as passes_router

    config = UiConfig(
        time_zone=time_zone,
        default_locale=default_locale,
        locales=LOCALES,
        site_time_zones=dict(site_time_zones),
        metrics=_metrics(),
    )
    app.include_router(pages_router(config))
    app.include_router(passes_router)
    if dev_console:
        from dashboards.devapi import router as dev_router

        app.include_router(dev_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboards-static")
