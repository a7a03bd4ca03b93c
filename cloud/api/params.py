"""Bounded parameter types shared by the routers.

Database ids and offsets are 64-bit: an unbounded ``int`` lets a client send 2**63 and turn a
plain "not found" into a driver OverflowError (a 500). Bounding them here makes it a 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

BIGINT_MAX = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Database id")]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX)]
RowIdFilter = Annotated[int | None, Query(ge=1, le=BIGINT_MAX)]
