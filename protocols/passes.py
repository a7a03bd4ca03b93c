"""``passes.sync``: the params of the command that carries a site's visitor passes to a gateway.

Command params are flat scalars, so the lists travel as JSON arrays in strings::

    name   "passes.sync"
    params {"version": 1764236400123,
            "passes":  "[{\"pass_id\": \"vp12\", \"code\": \"…\", …}]",
            "revoked": "[{\"pass_id\": \"vp9\", \"digest\": \"3f1c…\"}]"}

* ``version`` grows with each change (the cloud's clock in ms): an older or repeated set is
  acknowledged without changing anything.
* ``passes`` (:class:`SyncedPass`): every pass a door may be shown — the whole set each time, so
  a pass absent from it is no longer known to the gateway.
* ``revoked`` (:class:`RevokedPass`, optional, added in v1 without breaking older gateways,
  which read only ``version`` and ``passes``): passes revoked before they expired, so a door
  can tell a guard "pass revoked" rather than "unknown code". Only the pass id and a digest of
  the code (:func:`code_digest`) are sent — never the code itself. The cloud drops a revoked
  pass from the list once it would have expired anyway, so the list stays bounded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.errors import ProtocolError, RejectReason
from protocols.ids import Ident
from protocols.messages import AttrValue

COMMAND = "passes.sync"
MAX_PASSES = 500
"""About 200 bytes each: 500 stay well inside the 256 KB payload cap."""
MAX_REVOKED = 500
"""About 100 bytes each (the most recently revoked are kept if there are more)."""
DIGEST_PREFIX = b"linli-pass-code:"


def code_digest(code: str) -> str:
    """How a revoked pass's code is named on the wire: SHA-256 (hex) of ``linli-pass-code:``
    + the code. A door digests the code it is shown and looks it up."""
    return hashlib.sha256(DIGEST_PREFIX + code.encode()).hexdigest()


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyncedPass(_Model):
    """One visitor pass as the cloud sends it."""

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


class RevokedPass(_Model):
    """A pass revoked before it expired: what a door needs to recognise it, no more."""

    pass_id: Ident
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="code_digest(code)")]


class PassesSync(_Model):
    """The validated params of a ``passes.sync`` command."""

    version: int = Field(ge=1)
    passes: tuple[SyncedPass, ...] = Field(max_length=MAX_PASSES)
    revoked: tuple[RevokedPass, ...] = Field((), max_length=MAX_REVOKED)

    @classmethod
    def from_params(cls, params: Mapping[str, AttrValue]) -> PassesSync:
        """Raises :class:`ProtocolError` (``schema``) naming the bad field."""
        version = params.get("version")
        if isinstance(version, bool) or not isinstance(version, float | int):
            raise _bad("passes.sync needs params.version (a number ≥ 1)")
        body = {
            "version": int(version),
            "passes": _array(params, "passes"),
            "revoked": _array(params, "revoked", "[]"),
        }
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise _bad(f"passes.sync: {where}: {err['msg']}") from exc

    def params(self) -> dict[str, AttrValue]:
        """The command params; ``revoked`` only when there is one (older gateways' form)."""
        out: dict[str, AttrValue] = {"version": float(self.version), "passes": _json(self.passes)}
        if self.revoked:
            out["revoked"] = _json(self.revoked)
        return out


def _array(params: Mapping[str, AttrValue], name: str, default: str | None = None) -> object:
    text = params.get(name, default)
    if not isinstance(text, str):
        raise _bad(f"passes.sync needs params.{name} (a JSON array)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"passes.sync: params.{name} is not JSON: {exc.msg}") from exc


def _json(items: tuple[_Model, ...]) -> str:
    return json.dumps([i.model_dump(mode="json") for i in items], separators=(",", ":"))


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(RejectReason.SCHEMA, detail)
