"""``passes.sync``: the cloud's visitor passes for this gateway, swapped into every gate's policy.

The cloud (``cloud.gate.sync``) sends the whole set of the site's passes each time it changes,
as a versioned command whose params are defined by the wire contract
(:mod:`protocols.passes`): the passes a door may be shown (:class:`SyncedPass`) and those
revoked before they expired (:class:`RevokedPass`: pass id and a digest of the code). A re-sent
or late older version is acknowledged without changing anything. A pass with no ``doors`` is
valid at every door of the gateway. The door policy (:mod:`edge.gate.policy`) then checks
window, doors and uses at the reader, and refuses a revoked pass's code as ``pass_revoked``.

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

import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import CommandRefused
from edge.gate.policy import VisitorPass
from protocols.errors import ProtocolError
from protocols.ids import Ident
from protocols.messages import AttrValue, Command
from protocols.passes import COMMAND, MAX_PASSES, PassesSync, RevokedPass, SyncedPass

if TYPE_CHECKING:
    from edge.gate.gate import Gate

log = logging.getLogger(__name__)
__all__ = [
    "COMMAND",
    "MAX_PASSES",
    "PassBook",
    "PassLedger",
    "PassesSync",
    "RevokedPass",
    "SyncedPass",
    "parse",
    "visitor_pass",
]


def visitor_pass(synced: SyncedPass, all_doors: frozenset[str]) -> VisitorPass:
    """The door policy's form of a synced pass (no doors: every door of the gateway)."""
    return VisitorPass(
        pass_id=synced.pass_id,
        code=synced.code,
        doors=frozenset(synced.doors) or all_doors,
        valid_from=synced.valid_from,
        valid_until=synced.valid_until,
        max_uses=synced.max_uses,
    )


def parse(params: Mapping[str, AttrValue]) -> PassesSync:
    """The command's params, or :class:`CommandRefused` naming the bad field."""
    try:
        return PassesSync.from_params(params)
    except ProtocolError as exc:
        raise CommandRefused(exc.detail) from exc


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
            synced = [visitor_pass(p, doors) for p in sync.passes]
            gate.set_passes(synced, counts, {r.digest: r.pass_id for r in sync.revoked})
        self.version, self.passes = sync.version, sync.passes
        log.info(
            "visitor passes version %d: %d pass(es), %d revoked",
            sync.version,
            len(sync.passes),
            len(sync.revoked),
        )
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
        sync = parse(command.params)
        result = self.apply(sync)
        if result.get("changed"):
            self._save(sync)
        return result
