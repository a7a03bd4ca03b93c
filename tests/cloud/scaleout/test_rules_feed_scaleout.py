"""Ingest ×2 in one MQTT 5 shared group + one rules process that tails PostgreSQL.

Three real ``linli cloud run`` processes (``python -m cloud run``) on a real mosquitto and a real
PostgreSQL: two ``--role ingest --shared-group`` members store a gateway's stream between them
(each gets a share), and one ``--role rules`` process reads the stored messages back by id,
in each gateway's order, and raises the alerts. See docs/scale-out.md.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.db import create_schema, make_engine
from cloud.registry.service import Registry
from cloud.registry.sitefile import SiteFile
from cloud.storage.tables import StoredEnvelope
from linli.services import Mosquitto
from linli.services.base import free_port
from protocols.codec import encode, new_id
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, topic
from tests.chaos.chaos_support import Child, wait_until
from tests.cloud.ingest.ingest_support import Publisher

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

SMOKE = "smoke-1"
STEPS = 60
ALARM = range(10, 50)  # smoke from the 11th message to the 50th, 0.1 s apart (event time)

DURATION_RULE = """
- id: smoke-long
  title: {zh: 持续烟雾, en: Smoke for 3 seconds}
  severity: major
  subject: device
  select: {kind: smoke, metric: smoke}
  when: {type: threshold, op: "==", value: true, for: 3s}
"""


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def cloud_process(tmp_path: Path, name: str, env: dict[str, str], *args: str) -> tuple[Child, int]:
    port = free_port()
    assignments = [f"{k}={v}" for k, v in env.items()]
    argv = ["env", *assignments, sys.executable, "-m", "cloud", "run", "--port", str(port)]
    return Child([*argv, *args, "--log-level", "warning"], tmp_path / f"{name}.log"), port


def get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, OSError):
        return None


def metric(port: int, name: str, label: str | None = None) -> float:
    text = get(port, "/metrics") or ""
    labels = "" if label is None else rf'\{{what="{label}"\}}'
    found = re.search(rf"^{name}{labels} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_ingest_processes_and_a_rules_process_evaluate_every_message_in_order(
    engine: Engine, pg_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    sessions = sessionmaker(engine)
    with sessions.begin() as db:
        Registry(engine).import_site(
            db,
            SiteFile.model_validate(
                {
                    "site": site,
                    "zones": [{"id": "z1"}],
                    "gateways": [
                        {"id": "gw1", "devices": [{"id": SMOKE, "kind": "smoke", "zone": "z1"}]}
                    ],
                }
            ),
        )
    rules_file = tmp_path / "long.yaml"
    rules_file.write_text(DURATION_RULE, encoding="utf-8")
    common = {
        "LINLI_DB_URL": pg_url,
        "LINLI_MQTT_PORT": str(mosquitto.port),
        "LINLI_CREATE_SCHEMA": "false",
        "LINLI_STATIC_DASHBOARDS": "false",
        "LINLI_INGEST_SITES": json.dumps([site]),
        "LINLI_RULE_FILES": json.dumps([str(rules_file)]),
        # generous: the machine is shared, commits of the two members may be a second apart
        "LINLI_RULES_FEED": json.dumps({"hold_s": 1.5, "settle_s": 5, "poll_s": 0.1}),
    }
    group = f"g{new_id()[:8]}"
    rules, rules_port = cloud_process(
        tmp_path, "rules", {**common, "LINLI_MQTT_CLIENT_ID": f"rules-{site}"}, "--role", "rules"
    )
    members = [
        cloud_process(
            tmp_path,
            f"ingest{i}",
            {**common, "LINLI_MQTT_CLIENT_ID": f"ingest{i}-{site}"},
            "--role",
            "ingest",
            "--shared-group",
            group,
        )
        for i in range(2)
    ]
    children = [rules] + [c for c, _ in members]
    try:
        for child in children:
            child.start()
        # /ready answers 200 once the rules process has saved its starting watermark and its
        # publisher is connected, and once each member's ingest is subscribed.
        for child, port in [(rules, rules_port), *members]:
            wait_until(lambda p=port: get(p, "/ready") is not None, 90, "ready", child)  # type: ignore[misc]
        time.sleep(1.0)  # the broker applies the SUBSCRIBEs

        boot, t0 = new_id(), datetime.now(UTC)
        frames = []
        for i in range(STEPS):
            ts = t0 + timedelta(seconds=0.1 * i)
            message = Telemetry(
                msg_id=new_id(),
                boot_id=boot,
                seq=i,
                ts=ts,
                readings=(Reading(device=SMOKE, metric="smoke", value=i in ALARM, ts=ts),),
            )
            frames.append((topic(site, "gw1", Channel.TELEMETRY), encode(message)))
        publisher = Publisher(mosquitto.port)
        try:
            publisher.send(frames)  # a burst: the group deals it to both members
        finally:
            publisher.close()

        def stored() -> int:
            with Session(engine) as s:
                q = select(func.count(StoredEnvelope.id)).where(StoredEnvelope.site == site)
                return int(s.scalar(q) or 0)

        wait_until(lambda: stored() == STEPS, 60, "every message stored", *children)
        shares = [metric(port, "linli_ingest_stored_total") for _, port in members]
        assert sum(shares) == STEPS and all(s > 0 for s in shares), shares
        with Session(engine) as s:
            q = select(StoredEnvelope.seq).where(StoredEnvelope.site == site)
            by_id = list(s.scalars(q.order_by(StoredEnvelope.id)))
        # The two members' commits interleave: in id order the gateway's messages are mixed up.
        assert by_id != sorted(by_id), "the stream was not split out of order; nothing tested"

        wait_until(
            lambda: metric(rules_port, "linli_rules_events_total", "observations") >= STEPS,
            60,
            "every message evaluated",
            rules,
        )

        def alerts() -> list[tuple[str, bool]]:
            with sessions() as db:
                found = service.list_alerts(db, service.AlertFilter(site=site))
            return sorted((a.rule_id, a.cleared) for a in found)

        wait_until(
            lambda: alerts() == [("smoke-alarm", True), ("smoke-long", True)],
            60,
            "alarm and duration alert, both cleared",
            rules,
        )
        # In order per device: one streak, so each alert was raised once and cleared once.
        effects = {
            what: metric(rules_port, "linli_rule_effects_total", what)
            for what in ("raise_created", "raise_reraised", "raise_reopened", "cleared")
        }
        assert effects == {
            "raise_created": 2,
            "raise_reraised": 0,
            "raise_reopened": 0,
            "cleared": 2,
        }
        assert metric(rules_port, "linli_rules_events_total", "observations") == STEPS
        assert metric(rules_port, "linli_rules_events_total", "late") == 0
        assert metric(rules_port, "linli_rules_events_total", "skipped_ids") == 0
    finally:
        for child in children:
            child.stop()
