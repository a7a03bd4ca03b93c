"""``linli sim run --check --cloud URL`` against the real cloud served over HTTP by uvicorn:
exit 0 when every expected alert came in time, 1 when one cannot happen."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.api.services import Services
from cloud.auth import service as accounts
from cloud.auth.deps import Role
from cloud.settings import Settings
from linli.services import Mosquitto
from linli.services.base import free_port
from simulators.__main__ import main
from simulators.scenario import LIBRARY, SITES
from simulators.site import load_site

pytestmark = pytest.mark.slow


@pytest.fixture
def http_cloud(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[str, Services]]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        mqtt_port=mosquitto.port,
        mqtt_client_id=f"sim-http-{uuid.uuid4().hex[:8]}",
        static_dashboards=False,
        tick_s=0.5,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        services: Services = app.state.services
        assert services.ingest_ready.is_set() or _wait(services)
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait(services: Services) -> bool:
    deadline = time.monotonic() + 30
    while not services.ingest_ready.is_set():
        assert time.monotonic() < deadline, "ingest did not subscribe"
        time.sleep(0.05)
    return True


def _prepare(services: Services, site: str) -> str:
    sitefile = load_site(SITES / "demo.yaml").model_copy(update={"site": site})
    with services.sessions.begin() as db:
        services.registry.import_site(db, sitefile)
    with Session(services.engine) as db:
        user = accounts.create_user(db, "checker", "correct horse battery staple", Role.VIEWER)
        token, _ = accounts.issue_token(db, user, 3600)
        db.commit()
    return token


def test_check_exit_codes_over_http(
    http_cloud: tuple[str, Services],
    mosquitto: Mosquitto,
    site: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, services = http_cloud
    token = _prepare(services, site)
    common = ["--cloud", url, "--token", token, "--mqtt", f"127.0.0.1:{mosquitto.port}"]
    common += ["--site", site, "--poll", "0.5"]

    assert main(["run", str(LIBRARY / "garage-flood.yaml"), "--check", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and [e["outcome"] for e in report["expected"]] == ["met", "met"]

    impossible = tmp_path / "impossible.yaml"
    impossible.write_text(
        f"name: impossible\nsite: {SITES / 'demo.yaml'}\nclock: {{settle: 1s}}\ngrace: 1s\n"
        "steps:\n  - {at: 0s, force: {device: leak-b1-101, metric: leak, value: false}}\n"
        "expect:\n  - {rule: water-leak, severity: major, subject: leak-b1-101, within: 8s}\n"
    )
    assert main(["run", str(impossible), "--check", *common]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["expected"][0]["outcome"] == "missing"

    assert main(["run", str(impossible), "--check", *common[:1], url, "--token", "wrong",
                 *common[4:]]) == 2  # fmt: skip
    assert "LINLI_TOKEN" in capsys.readouterr().err
