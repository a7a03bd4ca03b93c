"""The site file: a community's buildings, floors, units, zones, gateways and devices, as YAML.

The simulators write site files in this shape and the cloud imports them into the registry
(:func:`cloud.registry.service.import_site`). Example::

    site: demo
    name: Demo Community
    auto_approve: false
    buildings:
      - id: b1
        name: Building 1
        floors:
          - id: b1-f1
            level: 1
            units:
              - id: b1-101
                name: "101"
    zones:
      - id: b1-f1
        name: Building 1, floor 1
        building: b1
        floor: b1-f1
      - id: garage
        name: Underground garage
    gateways:
      - id: gw-b1
        name: Building 1 gateway
        building: b1
        devices:
          - id: smoke-b1-101
            kind: smoke
            building: b1
            floor: b1-f1
            unit: b1-101
            zone: b1-f1
            report_interval_s: 60

Every id is a :data:`protocols.ids.Ident`; ids are unique per kind of thing within a site and
every reference (building, floor, unit, zone) must point at something declared in the file.
``attrs`` is free-form (string, number or boolean values) for drivers and simulators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.ids import Ident
from protocols.kinds import DeviceKind

Name = Annotated[str, Field(max_length=100)]
AttrValue = str | bool | int | float
Attrs = Annotated[dict[str, AttrValue], Field(max_length=64)]


class SiteFileError(ValueError):
    """A site file that cannot be read or validated; the message names the file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnitSpec(_Model):
    id: Ident
    name: Name | None = None


class FloorSpec(_Model):
    id: Ident
    level: int = Field(description="Floor number; negative for basements")
    name: Name | None = None
    units: tuple[UnitSpec, ...] = ()


class BuildingSpec(_Model):
    id: Ident
    name: Name | None = None
    floors: tuple[FloorSpec, ...] = ()


class ZoneSpec(_Model):
    """A place rules correlate over: a floor, a stairwell, a garage, a gate."""

    id: Ident
    name: Name | None = None
    building: Ident | None = None
    floor: Ident | None = None


class DeviceSpec(_Model):
    id: Ident
    kind: DeviceKind
    name: Name | None = None
    building: Ident | None = None
    floor: Ident | None = None
    unit: Ident | None = None
    zone: Ident | None = None
    report_interval_s: float | None = Field(
        None,
        gt=0,
        description="Expected seconds between reports; default per kind (cloud.registry.liveness)",
    )
    attrs: Attrs = Field(default_factory=dict)


class GatewaySpec(_Model):
    id: Ident
    name: Name | None = None
    building: Ident | None = None
    devices: tuple[DeviceSpec, ...] = ()
    attrs: Attrs = Field(default_factory=dict)


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


class SiteFile(_Model):
    site: Ident
    name: Name | None = None
    auto_approve: bool = Field(
        False,
        description="Accept unknown gateways and devices at once (demo/simulators) instead of "
        "holding them for approval",
    )
    buildings: tuple[BuildingSpec, ...] = ()
    zones: tuple[ZoneSpec, ...] = ()
    gateways: tuple[GatewaySpec, ...] = ()

    @property
    def floors(self) -> dict[str, tuple[str, FloorSpec]]:
        """Floor id → (building id, floor)."""
        return {f.id: (b.id, f) for b in self.buildings for f in b.floors}

    @property
    def units(self) -> dict[str, tuple[str, str, UnitSpec]]:
        """Unit id → (building id, floor id, unit)."""
        return {u.id: (b.id, f.id, u) for b in self.buildings for f in b.floors for u in f.units}

    @property
    def devices(self) -> list[tuple[str, DeviceSpec]]:
        """Every device with its gateway id."""
        return [(g.id, d) for g in self.gateways for d in g.devices]

    @model_validator(mode="after")
    def _references(self) -> SiteFile:
        problems: list[str] = []
        for what, ids in (
            ("building", [b.id for b in self.buildings]),
            ("floor", [f.id for b in self.buildings for f in b.floors]),
            ("unit", [u.id for b in self.buildings for f in b.floors for u in f.units]),
            ("zone", [z.id for z in self.zones]),
            ("gateway", [g.id for g in self.gateways]),
            ("device", [d.id for _, d in self.devices]),
        ):
            for dup in _duplicates(ids):
                problems.append(f"{what} id {dup!r} is declared more than once")
        buildings = {b.id for b in self.buildings}
        floors = self.floors
        units = self.units
        zones = {z.id for z in self.zones}

        def check(where: str, building: str | None, floor: str | None, unit: str | None) -> None:
            if building is not None and building not in buildings:
                problems.append(f"{where}: building {building!r} is not declared")
            if floor is not None:
                if floor not in floors:
                    problems.append(f"{where}: floor {floor!r} is not declared")
                elif building is not None and floors[floor][0] != building:
                    problems.append(f"{where}: floor {floor!r} is not in building {building!r}")
            if unit is not None:
                if unit not in units:
                    problems.append(f"{where}: unit {unit!r} is not declared")
                elif floor is not None and units[unit][1] != floor:
                    problems.append(f"{where}: unit {unit!r} is not on floor {floor!r}")

        for z in self.zones:
            check(f"zones.{z.id}", z.building, z.floor, None)
        for g in self.gateways:
            check(f"gateways.{g.id}", g.building, None, None)
            for d in g.devices:
                where = f"gateways.{g.id}.devices.{d.id}"
                check(where, d.building, d.floor, d.unit)
                if d.zone is not None and d.zone not in zones:
                    problems.append(f"{where}: zone {d.zone!r} is not declared")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_site_file(path: str | Path) -> SiteFile:
    """Read and validate a site file; :class:`SiteFileError` names the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SiteFileError(f"{path}: {exc}") from exc
    try:
        return SiteFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in first[:5]
        )
        raise SiteFileError(f"{path}: {detail}") from exc
