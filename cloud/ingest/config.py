"""Ingest configuration: one pydantic model, built by the app factory from settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import make_url

from protocols.ids import Ident
from protocols.topics import shared, topic_filter, uplink_filters


class RawlogSettings(Protocol):
    """What :func:`rawlog_path` reads of the app's settings (cloud.settings.Settings)."""

    @property
    def mqtt_client_id(self) -> str: ...
    @property
    def ingest_rawlog_dir(self) -> Path | None: ...
    @property
    def db_url(self) -> str: ...


class IngestConfig(BaseModel):
    """Where ingest reads from and how it batches. Bad values fail at start, naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", title="Broker host")
    port: int = Field(1883, ge=1, le=65535, title="Broker port")
    client_id: Ident = Field(
        "linli-ingest",
        title="MQTT client id",
        description="Stable across restarts: the broker keeps this session's unacknowledged "
        "messages while ingest is down. Each ingest process needs its own.",
    )
    username: str | None = None
    password: str | None = None
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT version. 3.1.1 keeps the persistent session (clean_session false) and "
        "ack-after-store, but has no shared subscriptions",
    )
    sites: tuple[Ident, ...] | None = Field(None, description="Only these sites (None: every site)")
    shared_group: Ident | None = Field(
        None,
        description="Join this MQTT 5 shared-subscription group so several ingest processes "
        "split the stream (retained gateway states are then not redelivered on subscribe)",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        description="How long the broker keeps the session (and queues messages) while ingest "
        "is away",
    )
    all_channels: bool = Field(
        False,
        description="Subscribe to every channel (one filter per site) instead of the uplink "
        "channels only, so that misrouted traffic (a downlink channel published by a gateway, "
        "an unknown channel) is dead-lettered too. The cloud's own commands then land in the "
        "dead-letter table as wrong_direction: use it to audit, not by default.",
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    batch_size: int = Field(
        500, ge=1, le=50_000, description="Messages per database transaction at most"
    )
    batch_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Payload bytes per transaction at most (one larger message still goes "
        "alone). Bounds how long a commit holds the database (SQLite: the write lock that "
        "alerts and the API also need) and so the latency behind it: 256 KiB is ~2,500 "
        "readings",
    )
    linger_s: float = Field(
        0.05,
        ge=0,
        le=10,
        description="How long a batch may wait to fill while the previous one is being "
        "written, at most. When the writer is free the batch is taken at once (no added "
        "latency when idle); urgent channels (event, access) never wait",
    )
    queue_bound: int = Field(
        2000,
        ge=1,
        description="Messages received but not yet stored, at most. When full the MQTT reader "
        "stops reading the socket (TCP back-pressure) instead of dropping.",
    )
    max_inflight: int = Field(
        1000,
        ge=1,
        le=65535,
        description="MQTT 5 Receive Maximum: unacknowledged deliveries the broker may send",
    )
    retry_backoff_s: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="First delay before retrying a failed database write (doubles, capped)"
    )
    reconnect_max_s: int = Field(30, ge=1, le=600, description="Cap of the reconnect backoff")
    mode: Literal["inprocess", "split"] = Field(
        "inprocess",
        title="Ingest mode",
        description="inprocess: this process receives, stores, then acknowledges. split: a "
        "receiver process (python -m cloud.ingest.receive, started and supervised by Ingest) "
        "appends deliveries to a durable raw log and acknowledges them; this process expands "
        "the log into the database (docs/cloud-ingest.md)",
    )
    rawlog_path: Path | None = Field(
        None,
        description="split mode: the raw log's SQLite file (None: ingest-rawlog-<client_id>"
        ".sqlite in the current directory; the app puts it beside the database). One per "
        "client id",
    )
    rawlog_budget_rows: int = Field(
        200_000,
        ge=1,
        description="split mode: when this many logged messages wait to be stored, the "
        "receiver stops taking messages (nothing is acknowledged; the broker holds them)",
    )
    rawlog_budget_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="split mode: the same bound in payload bytes",
    )
    rawlog_poll_s: float = Field(
        0.005,
        gt=0,
        le=0.01,
        description="split mode: how often ingest looks again while its buffer is full (new "
        "rows in an idle log wake it at once through a pipe from the receiver; at most 10 ms: "
        "it is on the alert path)",
    )
    rawlog_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="split mode: SQLite synchronous level of the raw log. NORMAL (as the "
        "main SQLite database): an acknowledged message survives any process being killed; "
        "FULL: also an OS crash or power loss (an fsync per batch)",
    )
    rawlog_truncate_rows: int = Field(
        5000, ge=1, description="split mode: rows deleted below the mark per step, at most"
    )
    receiver_nice: int | None = Field(
        None,
        ge=-20,
        le=19,
        description="split mode: the receiver process's OS niceness (None: inherited). A "
        "negative value (higher priority, e.g. -5) keeps acknowledgements flowing on a busy "
        "host; it needs root or CAP_SYS_NICE (without, the receiver says so and runs as it "
        "is) and takes CPU from everything else on the host (docs/cloud-ingest.md)",
    )

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> IngestConfig:
        if self.shared_group is not None and self.protocol != "5":
            raise ValueError(
                "shared_group needs protocol 5 (MQTT 3.1.1 has no shared subscriptions)"
            )
        if self.receiver_nice is not None and self.mode != "split":
            raise ValueError("receiver_nice applies to mode 'split' (there is no receiver)")
        if self.batch_size > self.queue_bound:
            raise ValueError(
                f"batch_size ({self.batch_size}) must not exceed queue_bound ({self.queue_bound})"
            )
        return self

    def rawlog_file(self) -> Path:
        """The raw log of this client id (split mode)."""
        if self.rawlog_path is not None:
            return self.rawlog_path
        return Path(f"ingest-rawlog-{self.client_id}.sqlite")

    def filters(self) -> tuple[str, ...]:
        """The subscription filters, built by protocols.topics."""
        sites: tuple[str | None, ...] = self.sites if self.sites is not None else (None,)
        if self.all_channels:
            plain = tuple(topic_filter(None, s) for s in sites)
        else:
            plain = tuple(f for s in sites for f in uplink_filters(s))
        if self.shared_group is None:
            return plain
        return tuple(shared(self.shared_group, f) for f in plain)


def default_rawlog(client_id: str, db_url: str, directory: Path | None = None) -> Path:
    """Where split ingest keeps its raw log for this client id and main database.

    In ``directory`` if given, else beside a SQLite database file, else in the user's state
    directory (``$XDG_STATE_HOME/linli``, default ``~/.local/state/linli``) — durable, unlike a
    temporary directory: the log holds acknowledged messages. The name carries a digest of the
    database URL (password hidden) unless it sits beside its SQLite file, so a log is never
    replayed into another database.
    """
    url = make_url(db_url)
    file_db = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if directory is None and file_db:
        return Path(str(url.database)).parent / f"ingest-rawlog-{client_id}.sqlite"
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    if directory is None:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        directory = Path(state) / "linli"
    return directory / f"ingest-rawlog-{client_id}-{digest}.sqlite"


def rawlog_path(settings: RawlogSettings) -> Path:
    """The app's raw log (split mode): :func:`default_rawlog` of its client id and database."""
    return default_rawlog(settings.mqtt_client_id, settings.db_url, settings.ingest_rawlog_dir)
