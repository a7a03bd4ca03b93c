"""JSON Schema files for every message type, for third parties building compatible devices."""

from __future__ import annotations

import json
from pathlib import Path

from protocols.codec import MODELS


def schemas() -> dict[str, dict[str, object]]:
    """``{channel: JSON Schema}`` for every channel's payload model."""
    return {
        channel.value: model.model_json_schema(mode="validation")
        for channel, model in MODELS.items()
    }


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for channel, schema in schemas().items():
        path = out / f"{channel}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
