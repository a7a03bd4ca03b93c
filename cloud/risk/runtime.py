"""What the app's lifespan runs for risk governance (the drill runner, the welfare loop) and
how routes reach it (``app.state.risk``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from cloud.risk import drillmode
from cloud.risk.drills import DrillRunner
from cloud.risk.welfare import welfare_loop

if TYPE_CHECKING:  # cloud.api imports this module's router: no import back at run time
    from cloud.api.services import Services

STATE = "risk"
CONFIG_STATE = "risk_config"
"""``app.state.risk_config``: a :class:`RiskConfig` set before the app starts (else defaults)."""


class RiskConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    welfare_every_s: float = Field(60.0, gt=0, le=3600, description="Welfare pass period")
    drill_poll_s: float = Field(1.0, gt=0, le=30, description="Alert poll period of a drill")


@dataclass
class RiskRuntime:
    config: RiskConfig
    drills: DrillRunner
    services: Services
    clock: Callable[[], datetime]

    @classmethod
    def build(
        cls, services: Services, config: RiskConfig | None, clock: Callable[[], datetime]
    ) -> RiskRuntime:
        """Built inside the running loop (the drill runner belongs to it). Registers the drill
        mode of cloud.alerts: from now on alerts of a drilling site are marked."""
        config = config or RiskConfig()
        drillmode.install()
        runner = DrillRunner(
            services.settings,
            services.sessions,
            services.registry,
            services.notifier,
            poll_s=config.drill_poll_s,
        )
        return cls(config, runner, services, clock)

    async def welfare(self) -> None:
        await welfare_loop(self.services.sessions, self.config.welfare_every_s, self.clock)


def get_runtime(conn: HTTPConnection) -> RiskRuntime:
    runtime: RiskRuntime | None = getattr(conn.app.state, STATE, None)
    if runtime is None:
        raise RuntimeError("the app's lifespan has not started (use it as a context manager)")
    return runtime


Runtime = Annotated[RiskRuntime, Depends(get_runtime)]
