"""The revoked passes a ``passes.sync`` carries: a digest of the code, only until the pass would
have expired anyway (a day after ``valid_until``, like the active ones), at most MAX_REVOKED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.gate import sync as gate_sync
from cloud.gate.sync import active_passes, fingerprint, revoked_passes
from cloud.registry.tables import Site
from protocols.codec import MAX_PAYLOAD_BYTES, decode, encode, new_id
from protocols.messages import Command
from protocols.passes import (
    MAX_PASSES,
    MAX_REVOKED,
    PassesSync,
    RevokedPass,
    SyncedPass,
    code_digest,
)
from protocols.topics import Channel, topic
from tests.cloud.gate.conftest import visitor_pass

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_revoked_passes_of_the_site_until_they_would_have_expired(
    site: str, site_db: sessionmaker[Session]
) -> None:
    with site_db() as db:
        db.add(Site(id="elsewhere"))
        rows = {
            "active": visitor_pass(site, NOW, code="active-code"),
            "revoked": visitor_pass(site, NOW, code="revoked-code", revoked_at=NOW),
            "any-site": visitor_pass(None, NOW, code="any-site-code", revoked_at=NOW),
            "expired-12h": visitor_pass(
                site, NOW - 13 * HOUR, code="recent-code", revoked_at=NOW - 13 * HOUR
            ),
            "expired-2d": visitor_pass(
                site, NOW - 49 * HOUR, code="old-code", revoked_at=NOW - 49 * HOUR
            ),
            "other-site": visitor_pass("elsewhere", NOW, code="other-code", revoked_at=NOW),
        }
        db.add_all(rows.values())
        db.commit()
        wire = {name: f"vp{row.id}" for name, row in rows.items()}
        revoked = revoked_passes(db, site, NOW)
        assert [r.pass_id for r in revoked] == [
            wire["revoked"],
            wire["any-site"],
            wire["expired-12h"],
        ]
        assert revoked[0].digest == code_digest("revoked-code")
        params = PassesSync(version=1, passes=(), revoked=revoked).params()
        assert "revoked-code" not in str(params["revoked"])
        assert [p.pass_id for p in active_passes(db, site, NOW)] == [wire["active"]]
        # A revocation changes what the gateway must be sent.
        active = active_passes(db, site, NOW)
        assert fingerprint(active, revoked) != fingerprint(active, revoked[:-1])


def test_only_the_most_recently_revoked_are_kept(
    site: str, site_db: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gate_sync, "MAX_REVOKED", 2)
    with site_db() as db:
        rows = [
            visitor_pass(site, NOW, code=f"code-{i:04d}", revoked_at=NOW - i * HOUR / 10)
            for i in range(4)
        ]
        db.add_all(rows)
        db.commit()
        assert [r.pass_id for r in revoked_passes(db, site, NOW)] == [
            f"vp{rows[0].id}",
            f"vp{rows[1].id}",
        ]


def test_full_lists_fit_in_one_command() -> None:
    """MAX_PASSES passes and MAX_REVOKED revoked passes, as the cloud issues them (``vp<id>``,
    16-character codes, every door), fit in one command under the payload cap."""
    passes = tuple(
        SyncedPass(
            pass_id=f"vp{100000 + i}",
            code=f"{i:016d}",
            valid_from=NOW,
            valid_until=NOW + HOUR,
            max_uses=1000,
            uses=999,
            uses_here=998,
        )
        for i in range(MAX_PASSES)
    )
    revoked = tuple(
        RevokedPass(pass_id=f"vp{200000 + i}", digest=code_digest(f"{i:016d}x"))
        for i in range(MAX_REVOKED)
    )
    sync = PassesSync(version=int(NOW.timestamp() * 1000), passes=passes, revoked=revoked)
    command = Command(
        cmd_id=new_id(),
        name="passes.sync",
        params=sync.params(),
        issued_at=NOW,
        expires_at=NOW + HOUR,
    )
    payload = encode(command)
    assert len(payload) <= MAX_PAYLOAD_BYTES
    decoded = decode(topic("s1", "gw1", Channel.CMD), payload, uplink=False).message
    assert isinstance(decoded, Command)
    assert PassesSync.from_params(decoded.params) == sync
