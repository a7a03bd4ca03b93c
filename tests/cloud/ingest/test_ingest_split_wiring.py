"""``linli cloud run`` runs split ingest unless told otherwise; the app places the raw log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cloud.__main__ import main
from cloud.api.app import build_services
from cloud.ingest.config import rawlog_path
from cloud.settings import Settings


def _served_settings(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> Settings:
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    assert main(["run", "--no-mqtt", *argv]) == 0
    [app] = served
    settings = app.state.settings
    assert isinstance(settings, Settings)
    return settings


def test_linli_cloud_run_uses_split_ingest_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"]
    monkeypatch.delenv("LINLI_INGEST_MODE", raising=False)
    assert _served_settings(monkeypatch, db).ingest_mode == "split"
    mode = ["--ingest-mode", "inprocess"]
    assert _served_settings(monkeypatch, db + mode).ingest_mode == "inprocess"
    monkeypatch.setenv("LINLI_INGEST_MODE", "inprocess")
    assert _served_settings(monkeypatch, db).ingest_mode == "inprocess"
    assert Settings().ingest_mode == "inprocess"  # the library default is unchanged


def test_the_raw_log_goes_beside_a_sqlite_database_or_into_a_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite = Settings(db_url=f"sqlite:///{tmp_path / 'data' / 'linli.db'}", mqtt_client_id="c1")
    assert rawlog_path(sqlite) == tmp_path / "data" / "ingest-rawlog-c1.sqlite"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    pg = Settings(db_url="postgresql+psycopg://u:secret@127.0.0.1/linli", mqtt_client_id="c1")
    path = rawlog_path(pg)
    assert path.parent == tmp_path / "state" / "linli"
    assert path.name.startswith("ingest-rawlog-c1-") and "secret" not in path.name
    other = Settings(db_url="postgresql+psycopg://u:secret@127.0.0.1/other", mqtt_client_id="c1")
    assert rawlog_path(other) != path  # never replayed into another database
    given = Settings(db_url=pg.db_url, mqtt_client_id="c1", ingest_rawlog_dir=tmp_path / "logs")
    assert rawlog_path(given).parent == tmp_path / "logs"


def test_the_app_builds_split_ingest_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'linli.db'}",
        ingest_mode="split",
        mqtt_client_id="cloud-a",
        rules_enabled=False,
    )
    services = build_services(settings)
    try:
        assert services.ingest is not None
        config = services.ingest.config
        assert config.mode == "split" and config.client_id == "cloud-a"
        assert config.rawlog_file() == tmp_path / "ingest-rawlog-cloud-a.sqlite"
    finally:
        services.engine.dispose()
