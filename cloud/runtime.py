"""Process-wide settings for a long-running cloud process (not for embedders or tests).

Ingest allocates about twenty objects per reading (the decoded models, row tuples, datetimes);
with CPython's default thresholds the cyclic collector then runs a young-generation pass every
few hundred allocations and keeps re-scanning everything imported at start-up.
bench/ingest_cpu.py measured the collector at ~80 µs of a ~410 µs 20-reading message and
~8–19 µs with the settings below. Nothing here is about correctness: reference counting frees
almost everything; the collector only finds cycles, which a larger threshold finds later.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (minus deallocations) between young-generation passes (CPython default: 700)."""


def tune_gc() -> None:
    """Freeze what start-up created (modules, schemas, settings) out of the collector's scans,
    and collect the young generation less often. Call once, after start-up."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
