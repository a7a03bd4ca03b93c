"""Storage: the ingest tables and the queries and maintenance over them."""

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
    "RetentionResult",
    "apply_retention",
    "downsample",
    "gaps",
    "rollup",
]
