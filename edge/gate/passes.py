"""``passes.sync``: the cloud's visitor passes for this gateway, swapped into every gate's policy.

The cloud (``cloud.gate.sync``) sends the whole set of active passes of the site each time it
changes — a revoked pass is simply absent — as a versioned command:

    name   "passes.sync"
    params {"version": 1764236400123, "passes": "[{\"pass_id\": \"vp12\", \"code\": …}]"}

``passes`` is a JSON array (command params are flat scalars) of :class:`SyncedPass`; ``version``
grows with each change (the cloud's clock in ms), so a re-sent or late older command is
acknowledged without changing anything. A pass with no ``doors`` is valid at every door of the
gateway. The door policy (:mod:`edge.gate.policy`) then checks window, doors and uses at the
reader.

Uses: each pass carries ``uses`` (every use the cloud has recorded, at any gateway) and
``uses_here`` (of those, the ones made at this gateway). :class:`PassLedger`, shared by every
gate of the gateway, counts a pass as ``(uses − uses_here) + max(own, uses_here)`` — uses made
elsewhere plus this gateway's own, whichever of its own count and the cloud's is larger — so a
use is never counted twice and never forgotten: uses made here that the cloud has not heard of
yet (offline) still count, and the gateway's own count is kept in ``STATE_DIR/pass_uses.json``
across reboots. The last set is kept in ``STATE_DIR/passes.json`` so a reboot does not wait for
the cloud.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import CommandRefused
from edge.gate.policy import VisitorPass
from protocols.ids import Ident
from protocols.messages import AttrValue, Command

if TYPE_CHECKING:
    from edge.gate.gate import Gate

log = logging.getLogger(__name__)
COMMAND = "passes.sync"
MAX_PASSES = 500
"""About 200 bytes each: 500 stay well inside the 256 KB payload cap."""


class SyncedPass(BaseModel):
    """One visitor pass as the cloud sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pass_id: Ident
    code: Annotated[str, Field(min_length=6, max_length=64)]
    doors: tuple[Ident, ...] = Field((), description="Empty: every door of this gateway")
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    max_uses: int = Field(ge=1, le=1000)
    uses: int = Field(0, ge=0, description="Uses the cloud knows of, at every gateway")
    uses_here: int = Field(0, ge=0, description="Of those, the uses made at this gateway")

    @model_validator(mode="after")
    def _here_within_total(self) -> SyncedPass:
        if self.uses_here > self.uses:
            raise ValueError(f"pass {self.pass_id}: uses_here must not exceed uses")
        return self

    def visitor_pass(self, all_doors: frozenset[str]) -> VisitorPass:
        return VisitorPass(
            pass_id=self.pass_id,
            code=self.code,
            doors=frozenset(self.doors) or all_doors,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            max_uses=self.max_uses,
        )


class PassesSync(BaseModel):
    """The validated params of a ``passes.sync`` command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    passes: tuple[SyncedPass, ...] = Field(max_length=MAX_PASSES)

    @classmethod
    def from_params(cls, params: Mapping[str, AttrValue]) -> PassesSync:
        """Raises :class:`CommandRefused` naming the bad field."""
        version, passes = params.get("version"), params.get("passes")
        if isinstance(version, bool) or not isinstance(version, float | int):
            raise CommandRefused("passes.sync needs params.version (a number ≥ 1)")
        if not isinstance(passes, str):
            raise CommandRefused("passes.sync needs params.passes (a JSON array)")
        try:
            return cls.model_validate({"version": int(version), "passes": json.loads(passes)})
        except json.JSONDecodeError as exc:
            raise CommandRefused(f"passes.sync: params.passes is not JSON: {exc.msg}") from exc
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise CommandRefused(f"passes.sync: {where}: {err['msg']}") from exc

    def params(self) -> dict[str, AttrValue]:
        body = [p.model_dump(mode="json") for p in self.passes]
        return {"version": float(self.version), "passes": json.dumps(body, separators=(",", ":"))}


class PassLedger:
    """Uses of the synced visitor passes at this gateway, shared by all its gates.

    Hold :attr:`lock` around reading :meth:`counts`, deciding and :meth:`used`, so two doors
    cannot both grant the last use.
    """

    def __init__(self, cache: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.cache = cache
        self.own: dict[str, int] = {}
        """Pass id → uses granted at this gateway (all time)."""
        self.elsewhere: dict[str, int] = {}
        """Pass id → uses the cloud recorded at other gateways."""

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {p: n + self.own.get(p, 0) for p, n in self.elsewhere.items()}

    def used(self, pass_id: str) -> None:
        with self.lock:
            if pass_id not in self.elsewhere:
                return  # not a synced pass (one of the gate's own configuration)
            self.own[pass_id] = self.own.get(pass_id, 0) + 1
            self._save()

    def apply(self, passes: Sequence[SyncedPass]) -> None:
        """A new set from the cloud: passes absent from it are forgotten."""
        with self.lock:
            self.elsewhere = {p.pass_id: p.uses - p.uses_here for p in passes}
            self.own = {p.pass_id: max(self.own.get(p.pass_id, 0), p.uses_here) for p in passes}
            self._save()

    def load_cached(self) -> None:
        if self.cache is None or not self.cache.is_file():
            return
        try:
            own = _OwnUses.model_validate_json(self.cache.read_bytes()).own
        except ValidationError as exc:
            log.error("cached visitor pass uses %s unusable: %s", self.cache, exc)
            return
        with self.lock:
            self.own = dict(own)

    def _save(self) -> None:
        if self.cache is not None:
            _write_atomic(self.cache, _OwnUses(own=self.own).model_dump_json())


class _OwnUses(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    own: dict[Ident, Annotated[int, Field(ge=0)]]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class PassBook:
    """Holds the synced set; applies it to every gate of the gateway, which share one
    :class:`PassLedger` (kept in ``pass_uses.json`` beside ``cache``)."""

    def __init__(self, gates: Sequence[Gate], cache: Path | None = None) -> None:
        self.gates = list(gates)
        self.cache = cache
        self.version = 0
        self.passes: tuple[SyncedPass, ...] = ()
        self.ledger = PassLedger(None if cache is None else cache.with_name("pass_uses.json"))
        self.ledger.load_cached()
        for gate in self.gates:
            gate.ledger = self.ledger

    def apply(self, sync: PassesSync) -> dict[str, AttrValue]:
        if sync.version <= self.version:
            return {"version": float(self.version), "changed": False}
        # Not under the ledger's lock: a gate takes its own lock, then the ledger's.
        self.ledger.apply(sync.passes)
        counts = self.ledger.counts()
        for gate in self.gates:
            doors = frozenset(gate.policy.doors)
            gate.set_passes([p.visitor_pass(doors) for p in sync.passes], counts)
        self.version, self.passes = sync.version, sync.passes
        log.info("visitor passes version %d: %d pass(es)", sync.version, len(sync.passes))
        return {"version": float(sync.version), "changed": True, "passes": float(len(sync.passes))}

    def load_cached(self) -> None:
        if self.cache is None or not self.cache.is_file():
            return
        try:
            self.apply(PassesSync.model_validate_json(self.cache.read_bytes()))
        except ValidationError as exc:
            log.error("cached visitor passes %s unusable: %s", self.cache, exc)

    def _save(self, sync: PassesSync) -> None:
        if self.cache is not None:
            _write_atomic(self.cache, sync.model_dump_json())

    async def handle(self, command: Command) -> Mapping[str, AttrValue]:
        """The agent's ``passes.sync`` handler."""
        sync = PassesSync.from_params(command.params)
        result = self.apply(sync)
        if result.get("changed"):
            self._save(sync)
        return result
