"""Cloud settings: one pydantic-settings model read from ``LINLI_*`` environment variables.

Built by ``main`` or the app factory (``Settings()``), never at import time. Unknown keys fail at
start (``extra="forbid"``), naming the field. Nested values are JSON in the environment, e.g.
``LINLI_CHANNELS='{"ops": {"type": "webhook", "url": "http://…"}}'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.alerts.states import Severity
from cloud.rules.config import FeedConfig


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Model):
    type: Literal["webhook"] = "webhook"
    url: str = Field(description="POSTed a JSON body describing the alert")
    timeout_s: float = Field(5.0, gt=0, le=60)


class EmailChannel(_Model):
    type: Literal["email"] = "email"
    to: tuple[str, ...] = Field(min_length=1, description="Recipient addresses")
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "linli@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=120)


class InAppChannel(_Model):
    type: Literal["inapp"] = "inapp"
    roles: tuple[str, ...] = ("manager", "guard")


Channel = Annotated[WebhookChannel | EmailChannel | InAppChannel, Field(discriminator="type")]


def _inapp_for_all() -> dict[Severity, tuple[str, ...]]:
    return {s: ("app",) for s in Severity}


def _inapp_channel() -> dict[str, WebhookChannel | EmailChannel | InAppChannel]:
    return {"app": InAppChannel()}


class Tier(_Model):
    """One escalation step: after ``after_s`` unacknowledged, notify ``channels``."""

    after_s: float = Field(gt=0, description="Seconds since the previous tier (or the raise)")
    channels: tuple[str, ...] = Field(description="Channel names from ``channels``")
    label: str = ""


class EscalationPolicy(_Model):
    on_raise: dict[Severity, tuple[str, ...]] = Field(
        default_factory=_inapp_for_all,
        description="Channels notified when an alert of this severity is raised",
    )
    tiers: tuple[Tier, ...] = Field(
        default=(Tier(after_s=300, channels=("app",), label="duty manager"),),
        description="Unacknowledged alerts climb these tiers in order",
    )
    min_severity: Severity = Field(
        Severity.MINOR, description="Alerts below this severity never escalate"
    )
    whistle_url: str | None = Field(
        None,
        description="'Whistle' webhook of the outside department, called once when a critical "
        "alert escalates unacknowledged (吹哨报到)",
    )


class Settings(BaseSettings):
    """Everything ``linli cloud run`` needs. Environment: ``LINLI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", extra="forbid", frozen=True)

    db_url: str = Field("sqlite:///linli.db", description="SQLAlchemy URL (SQLite or PostgreSQL)")
    create_schema: bool = Field(True, description="Bring the database schema up to date at start")
    sqlite_fair_writes: bool = Field(
        True, description="SQLite: writers of this process take turns (alerts never starve)"
    )
    mqtt_enabled: bool = Field(True, description="Connect to the broker (ingest and commands)")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_client_id: str = Field("linli-cloud", description="Ingest's persistent session id")
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5", description='MQTT version: "5", or "3.1.1" for brokers without MQTT 5'
    )
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    role: Literal["all", "ingest", "rules"] = Field(
        "all",
        description="all: ingest hands its batches to the rules in this process; ingest: store "
        "only (one of an MQTT 5 shared group); rules: read stored messages from the database "
        "for this shard's sites (docs/scale-out.md)",
    )
    ingest_shared_group: str | None = Field(
        None, description="MQTT 5 shared-subscription group of the ingest processes"
    )
    rules_feed: FeedConfig = Field(
        default_factory=FeedConfig, description="Rules checkpoint, replay and database feed"
    )
    ingest_enabled: bool = Field(True, description="Run MQTT ingest in this process")
    ingest_sites: tuple[str, ...] | None = Field(
        None, description="Only these sites (a rules shard's sites); None: every site"
    )
    ingest_batch_size: int = Field(500, ge=1, le=50_000, description="Messages per transaction")
    ingest_linger_s: float = Field(0.05, ge=0, le=10, description="Wait for a batch to fill")
    ingest_queue_bound: int = Field(2000, ge=1, description="Received, not yet stored, at most")
    ingest_mode: Literal["inprocess", "split"] = Field(
        "inprocess",
        description="split: a receiver process acknowledges once a message is in a durable raw "
        "log and this process stores from the log (faster; 'linli cloud run' uses it unless "
        "told otherwise). inprocess: receive, store, acknowledge here (docs/cloud-ingest.md)",
    )
    ingest_rawlog_dir: Path | None = Field(
        None,
        description="split mode: directory of the raw log (None: beside a SQLite database "
        "file, else the working directory)",
    )
    ingest_receiver_nice: int | None = Field(
        None,
        ge=-20,
        le=19,
        description="split mode: the receiver process's OS niceness (None: inherited; -5 "
        "raises its priority on a busy host, needs root or CAP_SYS_NICE)",
    )
    rules_enabled: bool = Field(True, description="Run the rules runner in this process")
    rule_files: tuple[Path, ...] = Field((), description="Rule packs loaded beside the default")
    default_pack: bool = Field(True, description="Load the shipped residential rule pack")
    shard_index: int = Field(0, ge=0, description="This process's rules shard")
    shard_count: int = Field(1, ge=1, description="Number of rules shards (processes)")
    tick_s: float = Field(1.0, gt=0, le=60, description="Rule timers and escalation period")
    command_ttl_s: float = Field(60.0, gt=0, le=86400, description="Command expiry")
    flap_window_s: float = Field(
        300.0, ge=0, description="Raise/clear cycles closer than this mark an alert flapping"
    )
    stale_after_s: float = Field(
        900.0,
        gt=0,
        description="A raise whose trigger is older than this (event time) is not a new alert",
    )
    channels: dict[str, Channel] = Field(
        default_factory=_inapp_channel,
        description="Named notification channels",
    )
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)
    default_timezone: str = Field(
        "Asia/Shanghai", description="IANA time zone for rule schedules and the screens"
    )
    site_timezones: dict[str, str] = Field(
        default_factory=dict, description="Per-site IANA time zones (overrides the default)"
    )
    static_dashboards: bool = Field(True, description="Mount dashboards/ if present")
    cors_origins: tuple[str, ...] = ()
    gov_tick_s: float = Field(30.0, gt=0, le=3600, description="Governance deadline loop period")
    gov_remind_every_s: float = Field(
        900.0, gt=0, description="Between reminders of an overdue whistle stage (governance)"
    )
    gov_channels: tuple[str, ...] = Field(
        ("app",), description="Channels told of missed deadlines, whistle reminders, escalations"
    )
    gov_group_window_s: float = Field(
        600.0, ge=0, description="A serious alert joins an incident of its site+zone this recent"
    )
    gov_group_min_severity: Severity = Field(
        Severity.MAJOR, description="Alerts at least this severe open or join an incident"
    )
    gov_close_override_after_s: float = Field(
        7 * 86400.0,
        ge=3600,
        le=365 * 86400,
        description="A manager may close a resolved report its resident never confirmed "
        "this long after resolution (seconds; default 7 days)",
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.shard_index >= self.shard_count:
            raise ValueError(
                f"shard_index: {self.shard_index} must be < shard_count {self.shard_count}"
            )
        if self.ingest_shared_group is not None and self.role == "all" and self.rules_enabled:
            raise ValueError(
                "ingest_shared_group: a shared group splits a site's stream between processes; "
                "use role 'ingest' for its members and run the rules with role 'rules'"
            )
        names = set(self.channels)
        used = {c for chans in self.escalation.on_raise.values() for c in chans}
        used |= {c for tier in self.escalation.tiers for c in tier.channels}
        missing = sorted(used - names)
        if missing:
            raise ValueError(f"escalation: unknown channel(s) {missing}; define them in channels")
        return self


OTHER_AREAS = frozenset(
    {
        "LINLI_CHROMIUM",
        "LINLI_CLOUD",
        "LINLI_DATABASE_URL",
        "LINLI_FACES_GALLERY",
        "LINLI_GATE_URL",
        "LINLI_FUZZ_EXAMPLES",
        "LINLI_SHARED_DATA",
        "LINLI_TOKEN",
    }
)
"""``LINLI_*`` variables read by other parts of Linli (tests, simulators, faces), not the cloud."""


def unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LINLI_*`` variables that no setting reads: most likely typos (``LINLI_DB_ULR``).

    pydantic-settings ignores them silently, so the app factory logs them at start.
    """
    env = os.environ if environ is None else environ
    known = {f"LINLI_{name.upper()}" for name in Settings.model_fields} | OTHER_AREAS
    return sorted(k for k in env if k.startswith("LINLI_") and k not in known)
