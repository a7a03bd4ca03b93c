"""The registry: sites, buildings, floors, units, zones, gateways and devices, with approval."""

from cloud.registry.liveness import (
    LivenessChange,
    is_offline,
    report_interval,
    sweep,
    sweep_forever,
)
from cloud.registry.service import DeviceLocation, Registry, RegistryError, infer_kind
from cloud.registry.sitefile import SiteFile, SiteFileError, load_site_file
from cloud.registry.tables import Approval

__all__ = [
    "Approval",
    "DeviceLocation",
    "LivenessChange",
    "Registry",
    "RegistryError",
    "SiteFile",
    "SiteFileError",
    "infer_kind",
    "is_offline",
    "load_site_file",
    "report_interval",
    "sweep",
    "sweep_forever",
]
