"""Wire faults are what they claim: each malformed class is refused by the codec for its reason."""

from __future__ import annotations

import pytest

from protocols.codec import decode
from protocols.errors import ProtocolError, RejectReason
from protocols.messages import Telemetry
from simulators.scenario import Malformed, WireStep
from simulators.wire import malformed, plan

EXPECTED = {
    Malformed.BAD_TOPIC: RejectReason.BAD_TOPIC,
    Malformed.NOT_JSON: RejectReason.NOT_JSON,
    Malformed.NOT_UTF8: RejectReason.NOT_UTF8,
    Malformed.SCHEMA: RejectReason.SCHEMA,
    Malformed.TOO_LARGE: RejectReason.TOO_LARGE,
    Malformed.WRONG_DIRECTION: RejectReason.WRONG_DIRECTION,
}


@pytest.mark.parametrize("kind", list(Malformed))
def test_each_malformed_class_is_refused_for_its_reason(kind: Malformed) -> None:
    m = malformed("s1", "gw1", kind)
    with pytest.raises(ProtocolError) as err:
        decode(m.topic, m.payload, uplink=True)
    assert err.value.reason is EXPECTED[kind]


def test_duplicates_repeat_msg_ids_and_reorder_reverses_seq() -> None:
    step = WireStep(
        gateway="gw1", duplicate=3, reorder=4, device="t1", metric="temperature", value=21.5
    )
    msgs = plan("s1", step, 1_780_000_000.0)
    decoded = [decode(m.topic, m.payload, uplink=True).message for m in msgs]
    assert all(isinstance(d, Telemetry) for d in decoded)
    tel = [d for d in decoded if isinstance(d, Telemetry)]
    dup, reo = tel[:6], tel[6:]
    assert [d.msg_id for d in dup[::2]] == [d.msg_id for d in dup[1::2]]
    assert len({d.msg_id for d in dup}) == 3
    assert [d.seq for d in reo] == [3, 2, 1, 0]
    assert reo[0].boot_id != dup[0].boot_id
    assert reo[0].readings[0].value == 21.5
