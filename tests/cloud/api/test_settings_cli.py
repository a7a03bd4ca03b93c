"""Settings from LINLI_* (bad ones fail at start naming the field) and the ``linli cloud`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from cloud.__main__ import main
from cloud.auth import service as accounts
from cloud.db import make_engine
from cloud.registry.tables import Device
from cloud.settings import Settings, unknown_env


def test_settings_come_from_the_environment_and_unknown_keys_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINLI_DB_URL", "sqlite:///x.db")
    monkeypatch.setenv("LINLI_ESCALATION", '{"whistle_url": "http://fire.example/whistle"}')
    settings = Settings()
    assert settings.db_url == "sqlite:///x.db"
    assert settings.escalation.whistle_url == "http://fire.example/whistle"
    with pytest.raises(ValidationError, match="bogus"):
        Settings(bogus=1)  # type: ignore[call-arg]
    monkeypatch.setenv("LINLI_ESCALATION", '{"whistle": "http://typo"}')
    with pytest.raises(ValidationError, match=r"escalation\.whistle"):
        Settings()  # nested models refuse unknown keys too


def test_cross_field_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="shard_index"):
        Settings(shard_index=2, shard_count=2)
    with pytest.raises(ValidationError, match=r"unknown channel\(s\) \['pager'\]"):
        Settings(escalation={"tiers": [{"after_s": 60, "channels": ["pager"]}]})
    with pytest.raises(ValidationError, match="tick_s"):
        Settings(tick_s=0)


def test_cli_migrate_and_import_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--db", url]) == 0
    engine = make_engine(url)
    assert {"alerts", "alert_events", "commands", "gateway_configs"} <= set(
        inspect(engine).get_table_names()
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: clitest\nzones: [{id: z1}]\n"
        "gateways: [{id: gw1, devices: [{id: smoke-1, kind: smoke, zone: z1}]}]\n",
        encoding="utf-8",
    )
    assert main(["import-site", str(site), "--db", url]) == 0
    with Session(engine) as db:
        assert db.scalars(select(Device.id).where(Device.site == "clitest")).all() == ["smoke-1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: x\ngateways: [{id: gw1, devices: [{id: d, kind: toaster}]}]\n", "utf-8")
    assert main(["import-site", str(bad), "--db", url]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "gateways.0.devices.0.kind" in err
    engine.dispose()


def test_cli_create_admin_delegates_to_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    assert main(["create-admin", "--db", url, "--generate", "root"]) == 0
    assert "root" in capsys.readouterr().out
    engine = make_engine(url)
    with Session(engine) as db:
        user = accounts.get_user(db, "root")
        assert user is not None and user.role == "admin"
    engine.dispose()
    assert main(["create-admin", "--db", url, "--generate", "root"]) == 1  # exists already


def test_unknown_linli_variables_are_reported() -> None:
    env = {"LINLI_DB_URL": "x", "LINLI_DB_ULR": "typo", "LINLI_SHARED_DATA": "/d", "PATH": "/"}
    assert unknown_env(env) == ["LINLI_DB_ULR"]
