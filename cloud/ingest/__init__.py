"""Ingest: uplink MQTT messages → validated, deduplicated, durably stored → acknowledged.

Public API: :class:`Ingest` (run in the app's TaskGroup), :class:`IngestConfig`,
:class:`StoredMessage` (what ``on_stored`` receives) and :class:`IngestStats`.
"""

from cloud.ingest.config import IngestConfig
from cloud.ingest.models import OnStored, StoredMessage
from cloud.ingest.service import Ingest, IngestStats
from cloud.ingest.store import STORE_ERROR

__all__ = ["STORE_ERROR", "Ingest", "IngestConfig", "IngestStats", "OnStored", "StoredMessage"]
