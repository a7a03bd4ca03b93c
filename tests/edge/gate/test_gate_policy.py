"""Door policy: pure decisions, no camera. Every decision carries its reason."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal

import pytest
from pydantic import ValidationError

from edge.gate.policy import (
    AccessRequest,
    Credential,
    Decision,
    Direction,
    DoorConfig,
    PersonConfig,
    PolicyConfig,
    PolicyState,
    Reason,
    TimeWindow,
    VisitorPass,
    decide,
)
from protocols.messages import AccessDecision, AccessMethod
from protocols.passes import code_digest

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
ALICE = PersonConfig(person_id="alice", credentials={"card": "C-1", "pin": "1234"})
MALLORY = PersonConfig(person_id="mallory", credentials={"card": "C-666"})


def policy(**doors: DoorConfig) -> PolicyConfig:
    return PolicyConfig(
        doors=doors or {"main": DoorConfig(door="main")},
        people={"alice": ALICE, "mallory": MALLORY},
        blocked=frozenset({"mallory"}),
    )


def face(who: str | None, at: datetime = MON_9, door: str = "main", **kw: object) -> AccessRequest:
    fields: dict[str, object] = {"frames": 3, "liveness": 1.0, "distance": 0.4, **kw}
    return AccessRequest(
        door=door,
        at=at,
        method=AccessMethod.FACE,
        person_id=who,
        **fields,
    )


def card(value: str, at: datetime = MON_9, door: str = "main") -> AccessRequest:
    return AccessRequest(
        door=door, at=at, method=AccessMethod.CARD, credential=Credential(kind="card", value=value)
    )


def run(cfg: PolicyConfig, *requests: AccessRequest) -> list[Decision]:
    state = PolicyState()
    out = []
    for req in requests:
        decision, state = decide(cfg, state, req)
        out.append(decision)
    return out


def test_allow_list_face_opens_with_reason() -> None:
    (d,) = run(policy(), face("alice"))
    assert d.decision is AccessDecision.GRANTED and d.opens
    assert d.reason is Reason.ALLOW_LIST and d.person_id == "alice"


@pytest.mark.parametrize(
    "request_",
    [
        face("mallory"),
        face("mallory", frames=10, liveness=1.0),
        card("C-666"),
    ],
    ids=["face", "face-many-frames", "card"],
)
def test_block_list_never_opens_and_alerts(request_: AccessRequest) -> None:
    (d,) = run(policy(), request_)
    assert not d.opens
    assert d.decision is AccessDecision.ALARM and d.alert
    assert d.reason is Reason.BLOCK_LIST and d.person_id == "mallory"


def test_block_list_wins_even_with_a_visitor_pass() -> None:
    cfg = policy().model_copy(
        update={
            "passes": (
                VisitorPass(
                    pass_id="v1",
                    person_id="mallory",
                    doors=frozenset({"main"}),
                    valid_from=MON_9 - timedelta(hours=1),
                    valid_until=MON_9 + timedelta(hours=1),
                ),
            )
        }
    )
    (d,) = run(cfg, face("mallory"))
    assert d.decision is AccessDecision.ALARM and not d.opens


def test_unknown_face_and_unknown_card_are_denied() -> None:
    d1, d2 = run(policy(), face(None), card("nope"))
    assert (d1.decision, d1.reason) == (AccessDecision.DENIED, Reason.UNKNOWN_FACE)
    assert (d2.decision, d2.reason) == (AccessDecision.DENIED, Reason.UNKNOWN_CREDENTIAL)


def test_never_opens_on_a_single_frame() -> None:
    (d,) = run(policy(), face("alice", frames=1))
    assert not d.opens and d.reason is Reason.NOT_ENOUGH_FRAMES


def test_liveness_required_per_door() -> None:
    strict = DoorConfig(door="main", liveness=True)
    lax = DoorConfig(door="side", liveness=False)
    cfg = policy(main=strict, side=lax)
    d1, d2 = run(cfg, face("alice", liveness=0.0), face("alice", door="side", liveness=0.0))
    assert not d1.opens and d1.reason is Reason.LIVENESS_FAILED
    assert d2.opens


def visitor(**kw: object) -> VisitorPass:
    fields: dict[str, object] = {
        "pass_id": "v1",
        "person_id": "vera",
        "doors": frozenset({"main"}),
        "valid_from": MON_9,
        "valid_until": MON_9 + timedelta(hours=2),
        "max_uses": 2,
        **kw,
    }
    return VisitorPass(**fields)


def test_visitor_pass_window_and_use_count() -> None:
    cfg = policy().model_copy(update={"passes": (visitor(),)})
    inside = MON_9 + timedelta(minutes=5)
    decisions = run(
        cfg,
        face("vera", at=MON_9 - timedelta(minutes=1)),
        face("vera", at=inside),
        face("vera", at=inside + timedelta(minutes=1)),
        face("vera", at=inside + timedelta(minutes=2)),
    )
    assert [d.reason for d in decisions] == [
        Reason.PASS_NOT_YET_VALID,
        Reason.VISITOR_PASS,
        Reason.VISITOR_PASS,
        Reason.PASS_USED_UP,
    ]
    assert [d.opens for d in decisions] == [False, True, True, False]


def test_expired_visitor_pass_refused() -> None:
    cfg = policy().model_copy(update={"passes": (visitor(),)})
    (d,) = run(cfg, face("vera", at=MON_9 + timedelta(hours=2, seconds=1)))
    assert not d.opens and d.reason is Reason.PASS_EXPIRED


def test_visitor_qr_code_pass_and_wrong_door() -> None:
    cfg = policy(main=DoorConfig(door="main"), garage=DoorConfig(door="garage")).model_copy(
        update={"passes": (visitor(person_id=None, code="QR-42"),)}
    )
    qr = Credential(kind="qr", value="QR-42")
    at = MON_9 + timedelta(minutes=1)
    ok, wrong = run(
        cfg,
        AccessRequest(door="main", at=at, method=AccessMethod.QR, credential=qr),
        AccessRequest(door="garage", at=at, method=AccessMethod.QR, credential=qr),
    )
    assert ok.opens and ok.reason is Reason.VISITOR_PASS and ok.pass_id == "v1"
    assert not wrong.opens and wrong.reason is Reason.PASS_WRONG_DOOR


def code(value: str, kind: Literal["qr", "pin"] = "qr", at: datetime = MON_9) -> AccessRequest:
    """A visitor pass's code shown at the main door, as a QR code or typed as a PIN."""
    credential = Credential(kind=kind, value=value)
    return AccessRequest(door="main", at=at, method=AccessMethod(kind), credential=credential)


def test_revoked_pass_code_is_refused_as_revoked() -> None:
    """A revoked pass is known only by a digest of its code: shown that code (QR or PIN), the
    door says ``pass_revoked`` and names the pass; other codes stay unknown."""
    cfg = policy().model_copy(update={"revoked": {code_digest("QR-42"): "v9"}})
    qr, pin, other, typed_as_card = run(
        cfg, code("QR-42"), code("QR-42", "pin"), code("QR-43"), card("QR-42")
    )
    assert (qr.decision, qr.reason, qr.pass_id) == (
        AccessDecision.DENIED,
        Reason.PASS_REVOKED,
        "v9",
    )
    assert qr.person_id is None
    assert (pin.reason, pin.pass_id) == (Reason.PASS_REVOKED, "v9")
    assert (other.reason, other.pass_id) == (Reason.UNKNOWN_CREDENTIAL, None)
    assert typed_as_card.reason is Reason.UNKNOWN_CREDENTIAL  # a card is never a pass
    # A pass issued again with the same code is not refused for the revoked one.
    again = visitor(pass_id="v10", person_id=None, code="QR-42")
    (ok,) = run(cfg.model_copy(update={"passes": (again,)}), code("QR-42", at=MON_9 + HOUR))
    assert ok.opens and ok.pass_id == "v10"


def test_schedule_per_door_and_group() -> None:
    office = TimeWindow(days=(0, 1, 2, 3, 4), start=time(8), end=time(18))
    door = DoorConfig(door="main", schedules={"residents": (office,)})
    cfg = policy(main=door)
    weekday, night, saturday = MON_9, MON_9.replace(hour=22), MON_9 + timedelta(days=5)
    decisions = run(cfg, face("alice", at=weekday), face("alice", at=night), card("C-1", saturday))
    assert [d.reason for d in decisions] == [
        Reason.ALLOW_LIST,
        Reason.OUTSIDE_SCHEDULE,
        Reason.OUTSIDE_SCHEDULE,
    ]


def test_group_without_a_schedule_on_a_scheduled_door_is_refused() -> None:
    door = DoorConfig(door="main", schedules={"staff": (TimeWindow(),)})
    (d,) = run(policy(main=door), face("alice"))
    assert not d.opens and d.reason is Reason.OUTSIDE_SCHEDULE


def test_second_factor_per_door() -> None:
    door = DoorConfig(door="main", second_factor="pin")
    cfg = policy(main=door)
    pin_ok = Credential(kind="pin", value="1234")
    pin_bad = Credential(kind="pin", value="0000")
    only_face, bad, good = run(
        cfg, face("alice"), face("alice", credential=pin_bad), face("alice", credential=pin_ok)
    )
    assert only_face.reason is Reason.SECOND_FACTOR_REQUIRED and not only_face.opens
    assert bad.reason is Reason.SECOND_FACTOR_MISMATCH and not bad.opens
    assert good.opens and good.reason is Reason.ALLOW_LIST


def test_anti_passback_for_paired_readers() -> None:
    entry = DoorConfig(door="in", direction=Direction.IN, passback_area="lobby")
    exit_ = DoorConfig(door="out", direction=Direction.OUT, passback_area="lobby")
    cfg = policy(**{"in": entry, "out": exit_})
    t = MON_9
    decisions = run(
        cfg,
        face("alice", at=t, door="in"),
        card("C-1", t + timedelta(seconds=5), door="in"),  # card passed back to a friend
        card("C-1", t + timedelta(hours=1), door="out"),
        face("alice", at=t + timedelta(hours=2), door="in"),
    )
    assert [(d.opens, d.reason) for d in decisions] == [
        (True, Reason.ALLOW_LIST),
        (False, Reason.ANTI_PASSBACK),
        (True, Reason.ALLOW_LIST),
        (True, Reason.ALLOW_LIST),
    ]


def test_per_camera_threshold() -> None:
    door = DoorConfig(door="main", default_threshold=0.5, thresholds={"far_cam": 0.42})
    assert door.threshold("far_cam") == 0.42
    assert door.threshold("near_cam") == 0.5
    assert door.threshold(None) == 0.5


def test_a_door_must_keep_a_non_face_alternative() -> None:
    with pytest.raises(ValidationError, match="non-face"):
        DoorConfig(door="main", methods=frozenset({AccessMethod.FACE}))
    door = DoorConfig(door="main", methods=frozenset({AccessMethod.FACE, AccessMethod.QR}))
    (d,) = run(policy(main=door), card("C-1"))
    assert not d.opens and d.reason is Reason.METHOD_NOT_ACCEPTED


def test_card_alone_opens_where_accepted() -> None:
    (d,) = run(policy(), card("C-1"))
    assert d.opens and d.method is AccessMethod.CARD and d.person_id == "alice"


def test_unknown_door_is_denied() -> None:
    (d,) = run(policy(), face("alice", door="elsewhere"))
    assert not d.opens and d.reason is Reason.NOT_ALLOWED


def test_person_in_gallery_but_not_on_allow_list_is_denied() -> None:
    (d,) = run(policy(), face("stranger_enrolled"))
    assert not d.opens and d.reason is Reason.NOT_ALLOWED
