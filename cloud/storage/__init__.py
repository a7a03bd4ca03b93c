"""Storage: the ingest tables and the queries and maintenance over them."""

from cloud.storage.maintenance import RetentionPolicy, retention_forever
from cloud.storage.queries import (
    Bucket,
    Gap,
    RetentionResult,
    apply_retention,
    downsample,
    gaps,
    rollup,
)

__all__ = [
    "Bucket",
    "Gap",
    "RetentionPolicy",
    "RetentionResult",
    "apply_retention",
    "downsample",
    "gaps",
    "retention_forever",
    "rollup",
]
