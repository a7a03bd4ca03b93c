"""The one error the wire contract raises."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a message was refused. Stable strings: the cloud counts rejects by these."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    WRONG_DIRECTION = "wrong_direction"
    BAD_ID = "bad_id"


class ProtocolError(ValueError):
    """A topic or payload that breaks the wire contract.

    Carries the topic it arrived on and a machine-readable reason so that a consumer can
    count rejects by reason and dead-letter the message without parsing the text.
    """

    def __init__(self, reason: RejectReason, detail: str, topic: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.topic = topic
        where = f" on {topic!r}" if topic is not None else ""
        super().__init__(f"{reason.value}{where}: {detail}")
