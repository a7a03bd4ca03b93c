"""Several sirens on one gateway (one per floor): each addressable by id, all when untargeted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from edge.actuators import Actuators, SimulatedOutput
from edge.config import ActuatorsConfig
from edge.errors import CommandRefused
from protocols.codec import new_id
from protocols.messages import Command

pytestmark = pytest.mark.anyio


def _command(name: str, target: str | None) -> Command:
    now = datetime.now(UTC)
    return Command(
        cmd_id=new_id(),
        name=name,
        target=target,
        params={},
        issued_at=now,
        expires_at=now + timedelta(seconds=30),
    )


def _on(acts: Actuators) -> dict[str, bool]:
    out = {}
    for ident, siren in acts.sirens.items():
        assert isinstance(siren.output, SimulatedOutput)
        out[ident] = siren.output.value
    return out


async def test_a_floor_siren_sounds_alone_and_untargeted_sounds_all() -> None:
    config = ActuatorsConfig.model_validate({"sirens": [{"id": "siren-f1"}, {"id": "siren-f3"}]})
    acts = Actuators.from_config(config)
    result = await acts.siren_on(_command("siren.on", "siren-f3"))
    assert result == {"siren": "siren-f3", "on": True}
    assert _on(acts) == {"siren-f1": False, "siren-f3": True}
    await acts.siren_on(_command("siren.on", None))
    assert _on(acts) == {"siren-f1": True, "siren-f3": True}
    await acts.siren_off(_command("siren.off", "siren-f1"))
    assert _on(acts) == {"siren-f1": False, "siren-f3": True}
    with pytest.raises(CommandRefused, match="unknown siren 'siren-f9'"):
        await acts.siren_on(_command("siren.on", "siren-f9"))


async def test_the_single_siren_form_still_works() -> None:
    acts = Actuators.from_config(ActuatorsConfig.model_validate({"siren_id": "s1"}))
    assert list(acts.sirens) == ["s1"] and acts.siren is not None
    assert (await acts.siren_on(_command("siren.on", None)))["siren"] == "s1"
    none = Actuators.from_config(ActuatorsConfig.model_validate({"siren": None}))
    with pytest.raises(CommandRefused, match="no siren"):
        await none.siren_on(_command("siren.on", None))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"siren_id": "a", "sirens": [{"id": "b"}]}, "either siren/siren_id or sirens"),
        ({"sirens": [{"id": "b"}, {"id": "b"}]}, "duplicate id"),
        ({"sirens": [{"id": "b", "colour": "red"}]}, "colour"),
    ],
)
def test_bad_siren_config_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ActuatorsConfig.model_validate(data)
