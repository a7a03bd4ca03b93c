"""Site files: the schema the simulators write, validated with errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloud.registry import SiteFileError, load_site_file
from protocols.kinds import DeviceKind

SITE = {
    "site": "demo",
    "name": "Demo Community",
    "buildings": [
        {
            "id": "b1",
            "floors": [
                {"id": "b1-f1", "level": 1, "units": [{"id": "b1-101"}]},
                {"id": "b1-f2", "level": 2},
            ],
        }
    ],
    "zones": [{"id": "b1-f1", "building": "b1", "floor": "b1-f1"}, {"id": "garage"}],
    "gateways": [
        {
            "id": "gw-b1",
            "building": "b1",
            "devices": [
                {
                    "id": "smoke-101",
                    "kind": "smoke",
                    "building": "b1",
                    "floor": "b1-f1",
                    "unit": "b1-101",
                    "zone": "b1-f1",
                },
                {"id": "leak-g1", "kind": "water_leak", "zone": "garage", "attrs": {"mean": 0.1}},
            ],
        }
    ],
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_site_file_loads(tmp_path: Path) -> None:
    site = load_site_file(write(tmp_path, SITE))
    assert site.site == "demo"
    assert [(g, d.id, d.kind) for g, d in site.devices] == [
        ("gw-b1", "smoke-101", DeviceKind.SMOKE),
        ("gw-b1", "leak-g1", DeviceKind.WATER_LEAK),
    ]
    assert site.units["b1-101"][:2] == ("b1", "b1-f1")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("gateways", 0, "devices", 0, "zone"), "nowhere", "zone 'nowhere' is not declared"),
        (("gateways", 0, "devices", 0, "floor"), "b1-f2", "unit 'b1-101' is not on floor 'b1-f2'"),
        (("gateways", 0, "devices", 1, "id"), "smoke-101", "device id 'smoke-101' is declared"),
        (("gateways", 0, "devices", 0, "kind"), "toaster", "gateways.0.devices.0.kind"),
        (("gateways", 0, "devices", 0, "id"), "bad id", "gateways.0.devices.0.id"),
        (("zones", 0, "building"), "b9", "zones.b1-f1: building 'b9' is not declared"),
    ],
)
def test_bad_site_file_names_the_field(
    tmp_path: Path, path: tuple[str | int, ...], value: str, message: str
) -> None:
    data = yaml.safe_load(yaml.safe_dump(SITE))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    file = write(tmp_path, data)
    with pytest.raises(SiteFileError) as err:
        load_site_file(file)
    assert str(file) in str(err.value)
    assert message in str(err.value)


def test_unreadable_site_file(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text("site: [unclosed")
    with pytest.raises(SiteFileError, match=r"site\.yaml"):
        load_site_file(bad)
    with pytest.raises(SiteFileError, match="colour: Extra inputs"):
        load_site_file(write(tmp_path, {**SITE, "colour": "red"}))
