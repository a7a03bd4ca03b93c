"""cloud.runtime.tune_gc, in a child interpreter (it changes process-wide state)."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import gc, json
from cloud.runtime import YOUNG_THRESHOLD, tune_gc
before = gc.get_threshold()
tune_gc()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "young": YOUNG_THRESHOLD}))
"""


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    got = json.loads(out.stdout)
    assert got["before"][0] != got["young"]
    assert got["after"] == [got["young"], got["before"][1], got["before"][2]]
    assert got["frozen"] > 1000  # the imported modules' objects
