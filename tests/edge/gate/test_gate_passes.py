"""``passes.sync`` params: validated by a frozen model, refused with the field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.errors import CommandRefused
from edge.gate.gate import Gate
from edge.gate.matching import Gallery
from edge.gate.passes import PassBook, PassesSync, RevokedPass, SyncedPass, parse
from edge.gate.pipeline import Pipeline
from edge.gate.policy import Credential, DoorConfig, PolicyConfig, Reason
from protocols.messages import AccessDecision
from protocols.passes import code_digest

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
        ({"version": 1.0, "passes": "[]", "revoked": 1.0}, "params.revoked"),
        (
            {"version": 1.0, "passes": "[]", "revoked": '[{"pass_id": "vp1", "digest": "x"}]'},
            "revoked.0.digest",
        ),
    ],
)
def test_bad_params_are_refused_naming_the_field(
    params: dict[str, str | float], words: str
) -> None:
    with pytest.raises(CommandRefused, match=words.replace(".", r"\.")):
        parse(params)


def test_params_round_trip() -> None:
    sync = PassesSync(version=5, passes=(a_pass(), a_pass(pass_id="vp2", code="zzzzzzzz")))
    assert parse(sync.params()) == sync
    assert json.loads(str(sync.params()["passes"]))[0]["doors"] == []
    # No revoked pass: the params are exactly what older gateways read (no new key).
    assert set(sync.params()) == {"version", "passes"}
    revoked = RevokedPass(pass_id="vp3", digest=code_digest("gone-code"))
    with_revoked = sync.model_copy(update={"revoked": (revoked,)})
    assert set(with_revoked.params()) == {"version", "passes", "revoked"}
    assert parse(with_revoked.params()) == with_revoked
    assert "gone-code" not in str(with_revoked.params())  # the digest travels, not the code


def a_gate(door: str = "main") -> Gate:
    from edge.gate.faces import FaceEngine

    policy = PolicyConfig(doors={"main": DoorConfig(door="main"), "side": DoorConfig(door="side")})
    return Gate(
        door=door,
        camera="cam1",
        pipeline=Pipeline(FaceEngine(), Gallery([], [])),
        policy=policy,
        sink=lambda e: None,
    )


def use(gate: Gate, at: datetime, code: str = "abcdefgh") -> str:
    """Present the pass's PIN; the decision's reason."""
    return gate.credential(Credential(kind="pin", value=code), at)[0].reason


AT = T0 + timedelta(minutes=5)
GRANTED = Reason.VISITOR_PASS.value
USED_UP = Reason.PASS_USED_UP.value


def test_book_applies_newer_versions_and_counts_every_use_once(tmp_path: Path) -> None:
    gate = a_gate()
    book = PassBook([gate], tmp_path / "passes.json")
    # The cloud knows of 1 use, made at another gateway; 3 allowed.
    assert book.apply(PassesSync(version=2, passes=(a_pass(max_uses=3, uses=1),)))["changed"]
    assert gate.policy.passes[0].doors == frozenset({"main", "side"})  # no doors: every door
    assert use(gate, AT) == GRANTED  # 2 of 3
    # An older command changes nothing.
    assert book.apply(PassesSync(version=1, passes=()))["changed"] is False
    # The cloud has not heard of our use yet: ours still counts (1 elsewhere + 1 here).
    book.apply(PassesSync(version=3, passes=(a_pass(max_uses=3, uses=1),)))
    assert book.ledger.counts() == {"vp1": 2}
    # Now it has (uses 2, of which 1 here): still 2, not 3 — one more use, then used up.
    book.apply(PassesSync(version=4, passes=(a_pass(max_uses=3, uses=2, uses_here=1),)))
    assert book.ledger.counts() == {"vp1": 2}
    assert use(gate, AT) == GRANTED
    assert use(gate, AT) == USED_UP
    book.apply(PassesSync(version=5, passes=()))  # gone from the set (and not listed revoked)
    assert use(gate, AT) == Reason.UNKNOWN_CREDENTIAL.value


def test_a_revoked_pass_is_refused_as_revoked_at_every_gate(tmp_path: Path) -> None:
    main, side = a_gate("main"), a_gate("side")
    book = PassBook([main, side], tmp_path / "passes.json")
    book.apply(PassesSync(version=1, passes=(a_pass(max_uses=5),)))
    assert use(main, AT) == GRANTED
    revoked = RevokedPass(pass_id="vp1", digest=code_digest("abcdefgh"))
    sync = PassesSync(version=2, passes=(), revoked=(revoked,))
    book.apply(sync)
    book._save(sync)
    for gate in (main, side):
        (event,) = gate.credential(Credential(kind="qr", value="abcdefgh"), AT)
        assert (event.decision, event.reason) == (AccessDecision.DENIED, "pass_revoked")
        assert event.attrs["pass_id"] == "vp1"
    assert use(main, AT, code="other-code") == Reason.UNKNOWN_CREDENTIAL.value
    # The revoked list is kept with the set: a reboot before the cloud answers still knows it.
    rebooted = a_gate()
    PassBook([rebooted], tmp_path / "passes.json").load_cached()
    assert use(rebooted, AT) == Reason.PASS_REVOKED.value
    # A later set without it (expired a day ago, dropped by the cloud): unknown again.
    book.apply(PassesSync(version=3, passes=()))
    assert use(main, AT) == Reason.UNKNOWN_CREDENTIAL.value


def test_gates_of_one_gateway_share_the_count(tmp_path: Path) -> None:
    main, side = a_gate("main"), a_gate("side")
    book = PassBook([main, side], tmp_path / "passes.json")
    book.apply(PassesSync(version=1, passes=(a_pass(max_uses=1),)))
    assert use(main, AT) == GRANTED
    assert use(side, AT) == USED_UP  # the one use was made at the other door


def test_own_uses_survive_a_reboot_before_the_cloud_hears_of_them(tmp_path: Path) -> None:
    book = PassBook([gate := a_gate()], tmp_path / "passes.json")
    sync = PassesSync(version=1, passes=(a_pass(max_uses=1),))
    book.apply(sync)
    book._save(sync)
    assert use(gate, AT) == GRANTED
    # Reboot while offline: the cached set still says 0 uses, the gateway's own count says 1.
    again = a_gate()
    rebooted = PassBook([again], tmp_path / "passes.json")
    rebooted.load_cached()
    assert rebooted.ledger.counts() == {"vp1": 1}
    assert use(again, AT) == USED_UP


def test_uses_here_above_uses_is_refused() -> None:
    with pytest.raises(CommandRefused, match="uses_here"):
        sync = PassesSync(version=1, passes=(a_pass(),))
        body = json.loads(str(sync.params()["passes"]))
        body[0] |= {"uses": 1, "uses_here": 2}
        parse({"version": 1.0, "passes": json.dumps(body)})
