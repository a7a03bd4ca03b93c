"""``passes.sync`` params: validated by a frozen model, refused with the field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.errors import CommandRefused
from edge.gate.gate import Gate
from edge.gate.matching import Gallery
from edge.gate.passes import PassBook, PassesSync, SyncedPass
from edge.gate.pipeline import Pipeline
from edge.gate.policy import Credential, DoorConfig, PolicyConfig, Reason
from protocols.messages import AccessDecision

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def a_pass(**changes: object) -> SyncedPass:
    fields: dict[str, object] = {
        "pass_id": "vp1",
        "code": "abcdefgh",
        "valid_from": T0,
        "valid_until": T0 + timedelta(hours=1),
        "max_uses": 2,
    }
    return SyncedPass.model_validate(fields | changes)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"passes": "[]"}, "params.version"),
        ({"version": 1.0}, "params.passes"),
        ({"version": 1.0, "passes": "[{"}, "not JSON"),
        ({"version": 1.0, "passes": '[{"pass_id": "vp1"}]'}, "passes.0.code"),
        ({"version": 0.0, "passes": "[]"}, "version"),
    ],
)
def test_bad_params_are_refused_naming_the_field(
    params: dict[str, str | float], words: str
) -> None:
    with pytest.raises(CommandRefused, match=words.replace(".", r"\.")):
        PassesSync.from_params(params)


def test_params_round_trip() -> None:
    sync = PassesSync(version=5, passes=(a_pass(), a_pass(pass_id="vp2", code="zzzzzzzz")))
    assert PassesSync.from_params(sync.params()) == sync
    assert json.loads(str(sync.params()["passes"]))[0]["doors"] == []


def test_book_applies_newer_versions_and_keeps_use_counts(tmp_path: Path) -> None:
    from edge.gate.faces import FaceEngine

    policy = PolicyConfig(doors={"main": DoorConfig(door="main"), "side": DoorConfig(door="side")})
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(FaceEngine(), Gallery([], [])),
        policy=policy,
        sink=lambda e: None,
    )
    book = PassBook([gate], tmp_path / "passes.json")
    assert book.apply(PassesSync(version=2, passes=(a_pass(uses=1),)))["changed"] is True
    assert gate.policy.passes[0].doors == frozenset({"main", "side"})  # no doors: every door
    at = T0 + timedelta(minutes=5)
    first = gate.credential(Credential(kind="pin", value="abcdefgh"), at)
    assert first[0].decision is AccessDecision.GRANTED  # 1 use known to the cloud, 2 allowed
    again = gate.credential(Credential(kind="pin", value="abcdefgh"), at)
    assert again[0].reason == Reason.PASS_USED_UP.value
    # An older command changes nothing; a re-sync keeps the edge's count.
    assert book.apply(PassesSync(version=1, passes=()))["changed"] is False
    book.apply(PassesSync(version=3, passes=(a_pass(uses=0),)))
    assert gate.credential(Credential(kind="pin", value="abcdefgh"), at)[0].reason == (
        Reason.PASS_USED_UP.value
    )
    book.apply(PassesSync(version=4, passes=()))  # revoked everywhere
    assert gate.credential(Credential(kind="pin", value="abcdefgh"), at)[0].reason == (
        Reason.UNKNOWN_CREDENTIAL.value
    )
