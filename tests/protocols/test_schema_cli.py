from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from protocols.__main__ import main
from protocols.codec import encode
from protocols.messages import GatewayState, GatewayStatus
from protocols.topics import Channel


def test_schema_command_writes_one_file_per_message_type(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path / "schemas")]) == 0
    files = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert files == sorted(f"{c.value}.schema.json" for c in Channel)
    telemetry = json.loads((tmp_path / "schemas" / "telemetry.schema.json").read_text())
    assert telemetry["additionalProperties"] is False
    assert {"msg_id", "boot_id", "seq", "ts", "readings"} <= set(telemetry["required"])


def test_linli_console_command_runs_protocol_schema(tmp_path: Path) -> None:
    linli = Path(sys.executable).parent / "linli"
    out = tmp_path / "s"
    result = subprocess.run(
        [str(linli), "protocol", "schema", "--out", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (out / "cmd.schema.json").exists()


def test_check_command(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    good = tmp_path / "state.json"
    good.write_bytes(
        encode(GatewayState(status=GatewayStatus.OFFLINE, boot_id="b" * 16, ts=datetime.now(UTC)))
    )
    assert main(["check", "linli/v1/s/g/state", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"status": "maybe"}')
    assert main(["check", "linli/v1/s/g/state", str(bad)]) == 1
