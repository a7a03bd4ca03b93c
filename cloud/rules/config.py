"""How the rules runner saves its progress, replays after a restart and tails the database."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FeedConfig(BaseModel):
    """``LINLI_RULES_FEED`` (JSON). Bad values fail at start, naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    save_every_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Save the rule state and its watermark this often when something changed "
        "(and on shutdown); a crash replays what was stored since. A snapshot costs CPU: "
        "~0.6 s + 0.5 s JSON for 40,000 devices here",
    )
    replay_max_age_s: float = Field(
        3600.0,
        gt=0,
        description="On start, stored messages received longer ago than this are not replayed "
        "(the watermark moves past them; they are counted as replay_too_old)",
    )
    replay_max_rows: int = Field(
        100_000,
        ge=1,
        description="On start, at most this many ingest_messages rows after the watermark are "
        "read (all sites); older ones are skipped and counted as replay_skipped",
    )
    poll_s: float = Field(
        0.2, gt=0, le=10, description="role rules: how often the database is read for new rows"
    )
    settle_s: float = Field(
        2.0,
        ge=0,
        le=600,
        description="role rules: how long a missing id (a transaction of another ingest process "
        "still open, or rolled back) is waited for before it is skipped and logged",
    )
    hold_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="role rules: how long a message waits for an earlier one of its gateway "
        "(by boot_id/seq) that another ingest process may not have committed yet",
    )
    batch_rows: int = Field(
        2000, ge=1, le=100_000, description="Rows read and evaluated per step, at most"
    )
