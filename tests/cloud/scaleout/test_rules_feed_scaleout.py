"""Ingest ×2 in one MQTT 5 shared group + one rules process that tails PostgreSQL.

Three real ``linli cloud run`` processes (``python -m cloud run``) on a real mosquitto and a real
PostgreSQL: two ``--role ingest --shared-group`` members store a gateway's stream between them
(each gets a share), and one ``--role rules`` process reads the stored messages back by id,
in each gateway's order, and raises the alerts. See docs/scale-out.md.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
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
def engine(pg_engine: Engine) -> Engine:
    return pg_engine


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


def import_site(engine: Engine, site: str) -> None:
    with sessionmaker(engine).begin() as db:
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


def environment(pg_url: str, port: int, site: str, tmp_path: Path) -> dict[str, str]:
    rules_file = tmp_path / "long.yaml"
    rules_file.write_text(DURATION_RULE, encoding="utf-8")
    return {
        "LINLI_DB_URL": pg_url,
        "LINLI_MQTT_PORT": str(port),
        "LINLI_CREATE_SCHEMA": "false",
        "LINLI_STATIC_DASHBOARDS": "false",
        "LINLI_INGEST_SITES": json.dumps([site]),
        "LINLI_RULE_FILES": json.dumps([str(rules_file)]),
        # generous: on a shared 2-core machine (CI runs three test workers) the two members'
        # commits were seen 1.5 s apart; "late" below must count ordering, not a busy machine
        "LINLI_RULES_FEED": json.dumps(
            {"hold_s": 10, "settle_s": 15, "poll_s": 0.1, "save_every_s": 0.5}
        ),
    }


def smoke_frames(site: str, values: list[bool]) -> list[tuple[str, bytes]]:
    """One gateway boot's telemetry: one smoke reading per message, 0.1 s apart."""
    boot, t0 = new_id(), datetime.now(UTC)
    frames = []
    for i, value in enumerate(values):
        ts = t0 + timedelta(seconds=0.1 * i)
        message = Telemetry(
            msg_id=new_id(),
            boot_id=boot,
            seq=i,
            ts=ts,
            readings=(Reading(device=SMOKE, metric="smoke", value=value, ts=ts),),
        )
        frames.append((topic(site, "gw1", Channel.TELEMETRY), encode(message)))
    return frames


def publish(port: int, frames: list[tuple[str, bytes]]) -> None:
    publisher = Publisher(port)
    try:
        publisher.send(frames)
    finally:
        publisher.close()


def alerts(engine: Engine, site: str) -> list[tuple[str, bool]]:
    with Session(engine) as db:
        found = service.list_alerts(db, service.AlertFilter(site=site))
    return sorted((a.rule_id, a.cleared) for a in found)


def stored(engine: Engine, site: str) -> int:
    with Session(engine) as s:
        q = select(func.count(StoredEnvelope.id)).where(StoredEnvelope.site == site)
        return int(s.scalar(q) or 0)


def ready(child: Child, port: int) -> None:
    """/ready answers 200 once the rules process has saved its starting watermark and its
    publisher is connected, and once an ingest member is subscribed."""
    wait_until(lambda: get(port, "/ready") is not None, 90, "ready", child)


def test_two_ingest_processes_and_a_rules_process_evaluate_every_message_in_order(
    engine: Engine, pg_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    import_site(engine, site)
    common = environment(pg_url, mosquitto.port, site, tmp_path)
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
        for child, port in [(rules, rules_port), *members]:
            ready(child, port)
        time.sleep(1.0)  # the broker applies the SUBSCRIBEs
        # A burst: the group deals it to both members.
        publish(mosquitto.port, smoke_frames(site, [i in ALARM for i in range(STEPS)]))
        wait_until(lambda: stored(engine, site) == STEPS, 60, "every message stored", *children)
        # Split ingest (`linli cloud run`'s default): each member's receiver process acked its
        # share, as /metrics reports it.
        wait_until(
            lambda: (
                sum(metric(p, "linli_ingest_receiver_total", "acked") for _, p in members) == STEPS
            ),
            30,
            "every message acked by a receiver process",
            *children,
        )
        assert all(metric(p, "linli_ingest_receiver_starts_total") == 1 for _, p in members)
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

        wait_until(
            lambda: alerts(engine, site) == [("smoke-alarm", True), ("smoke-long", True)],
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


def test_a_rules_process_killed_mid_stream_raises_once_after_restart(
    engine: Engine, pg_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    """kill -9 of the rules process: what ingest stores meanwhile is evaluated after the
    restart (replay from the saved watermark), once; a clean restart evaluates nothing again."""
    import_site(engine, site)
    common = environment(pg_url, mosquitto.port, site, tmp_path)
    ingest, ingest_port = cloud_process(
        tmp_path, "ingest", {**common, "LINLI_MQTT_CLIENT_ID": f"ingest-{site}"}, "--role", "ingest"
    )
    rules_env = {**common, "LINLI_MQTT_CLIENT_ID": f"rules-{site}"}
    rules, rules_port = cloud_process(tmp_path, "rules", rules_env, "--role", "rules")
    children = [ingest, rules]
    try:
        for child, port in ((ingest, ingest_port), (rules, rules_port)):
            child.start()
            ready(child, port)
        time.sleep(1.0)
        publish(mosquitto.port, smoke_frames(site, [False] * 5))
        wait_until(
            lambda: metric(rules_port, "linli_rules_events_total", "observations") >= 5,
            60,
            "first messages evaluated",
            rules,
        )
        time.sleep(1.5)  # a checkpoint (save_every_s 0.5) after them
        rules.kill9()
        # Stored and acknowledged while no rules process runs: a new boot's smoke alarm, raised
        # and cleared (too short for the 3-second rule).
        publish(mosquitto.port, smoke_frames(site, [False, True, True, False]))
        wait_until(lambda: stored(engine, site) == 9, 60, "stored while rules are down", ingest)
        assert alerts(engine, site) == []

        rules.start()
        ready(rules, rules_port)
        wait_until(
            lambda: alerts(engine, site) == [("smoke-alarm", True)], 60, "alarm raised", rules
        )
        assert metric(rules_port, "linli_rules_events_total", "replayed") >= 4
        assert metric(rules_port, "linli_rule_effects_total", "raise_created") == 1

        # A clean stop saves state and watermark: the next start evaluates nothing again.
        # (uvicorn shuts down gracefully, then re-raises SIGTERM: the exit status says so)
        assert rules.stop() in (0, -signal.SIGTERM), rules.tail()
        rules.start()
        ready(rules, rules_port)
        time.sleep(2.0)
        assert metric(rules_port, "linli_rules_events_total", "checkpoints") >= 1  # it runs
        assert metric(rules_port, "linli_rules_events_total", "replayed") == 0
        assert metric(rules_port, "linli_rules_events_total", "observations") == 0
        assert alerts(engine, site) == [("smoke-alarm", True)]
        assert metric(rules_port, "linli_rule_effects_total", "raise_created") == 0
    finally:
        for child in children:
            child.stop()
