"""The manager's override of a resident's missing confirmation: allowed exactly
``LINLI_GOV_CLOSE_OVERRIDE_AFTER_S`` after resolution (7 days unless set), judged by the
governance clock; the setting is validated at start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cloud.auth.deps import Role
from cloud.settings import Settings
from tests.cloud.api.conftest import Cloud
from tests.cloud.governance.conftest import FakeClock, GovApp

SITE = "close-site"
M = Role.MANAGER


def resolved_report(g: GovApp) -> int:
    """A resident's report, dispatched and resolved at the clock's time; never confirmed."""
    g.user("res1", Role.RESIDENT)
    org = g.call("POST", "/api/gov/organisations", M, 201,
                 json={"name": "物业", "kind": "property", "site": SITE})  # fmt: skip
    body = {"site": SITE, "category": "noise", "location": "3-201", "description": "装修"}
    iid: int = g.call("POST", "/api/gov/reports", "res1", 201, json=body)["id"]
    g.call("POST", f"/api/gov/incidents/{iid}/dispatch", M, json={"org_id": org["id"]})
    g.call("POST", f"/api/gov/incidents/{iid}/resolve", M, json={"note": "talked to them"})
    return iid


def app_with(make_cloud: Callable[..., Cloud], **settings: object) -> GovApp:
    cloud = make_cloud(gov_tick_s=3600.0, **settings)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    cloud.app.state.gov_clock = clock
    return GovApp(cloud, clock)


def close(g: GovApp, iid: int) -> tuple[int, object]:
    answer = g.client.post(f"/api/gov/incidents/{iid}/close", headers=g.headers(M),
                           json={"override_reason": "resident unreachable"})  # fmt: skip
    return answer.status_code, answer.json()


def test_default_override_is_allowed_seven_days_after_resolution_not_a_second_sooner(
    gov_app: GovApp,
) -> None:
    g = gov_app
    iid = resolved_report(g)
    g.clock.advance(7 * 86400 - 1)
    status, body = close(g, iid)
    assert status == 409, body
    assert isinstance(body, dict) and "override allowed 7 days after resolution" in body["detail"]
    g.clock.advance(1)
    status, body = close(g, iid)
    assert status == 200 and isinstance(body, dict) and body["state"] == "closed", body
    assert body["timeline"][-1]["detail"]["override_reason"] == "resident unreachable"


def test_the_waiting_time_is_a_setting(make_cloud: Callable[..., Cloud]) -> None:
    g = app_with(make_cloud, gov_close_override_after_s=36 * 3600)
    iid = resolved_report(g)
    g.clock.advance(36 * 3600 - 1)
    status, body = close(g, iid)
    assert status == 409 and isinstance(body, dict), body
    assert "override allowed 36 hours after resolution" in body["detail"]
    assert "resolved 2159 minutes ago" in body["detail"]
    g.clock.advance(1)
    assert close(g, iid)[0] == 200


@pytest.mark.parametrize("seconds", [0, 60, 366 * 86400])
def test_an_unreasonable_waiting_time_fails_at_start_naming_the_setting(seconds: int) -> None:
    with pytest.raises(ValidationError) as failed:
        Settings(gov_close_override_after_s=seconds)
    assert "gov_close_override_after_s" in str(failed.value)


def test_the_default_is_seven_days() -> None:
    assert timedelta(seconds=Settings().gov_close_override_after_s) == timedelta(days=7)
