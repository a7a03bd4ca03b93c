"""``make bench`` / ``python -m bench``: run every benchmark and write ``bench/results/``.

Each benchmark is a module ``bench/NAME.py`` whose ``python -m bench.NAME`` prints one JSON
object (its last line of standard output). This runner adds the machine it ran on, writes
``bench/results/NAME.json`` and a markdown table ``bench/results/SUMMARY.md``. Figures are
meaningful beside the baseline the benchmark measured in the same run; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
LIBRARIES = (
    "paho-mqtt", "aiomqtt", "SQLAlchemy", "fastapi", "uvicorn", "pydantic", "numpy",
    "dlib-bin", "opencv-python-headless", "influxdb-client", "psycopg",
)  # fmt: skip
TIMEOUT_S = 600


def benchmarks() -> list[str]:
    return sorted(
        p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_") and p.stem != "machine"
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    mosquitto = subprocess.run(
        ["sh", "-c", "mosquitto -h 2>/dev/null | head -1"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
        "mosquitto": mosquitto or None,
    }


def run_one(name: str) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=BENCH.parent,
    )
    elapsed = round(time.monotonic() - started, 1)
    result: dict[str, Any] = {"benchmark": name, "seconds": elapsed, "exit_code": proc.returncode}
    figures = _last_json(proc.stdout)
    if proc.returncode != 0 or figures is None:
        result["error"] = (proc.stderr or proc.stdout)[-2000:]
    else:
        result["result"] = figures
    return result


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            return value if isinstance(value, dict) else None
    try:  # a pretty-printed object spanning the whole output
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield prefix, value


def summary(results: Sequence[dict[str, Any]], host: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {host['cores']} cores, {host['cpu_model']}, Python {host['python']}.",
        "Read each figure beside its baseline and ratio, measured in the same run.",
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]
    for res in results:
        if "error" in res:
            first = res["error"].strip().splitlines()[-1:] or ["failed"]
            lines.append(f"| {res['benchmark']} | **failed** | {first[0][:120]} |")
            continue
        for key, value in _flatten(res["result"]):
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {res['benchmark']} | {key} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run one benchmark (comma-separated for several)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = benchmarks()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown benchmark(s) {unknown}; have {names}", file=sys.stderr)
            return 2
        names = wanted
    host = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        print(f"bench {name} …", file=sys.stderr, flush=True)
        try:
            res = run_one(name)
        except subprocess.TimeoutExpired:
            res = {"benchmark": name, "error": f"timed out after {TIMEOUT_S}s"}
        res["machine"] = host
        (args.out / f"{name}.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
        results.append(res)
        print(f"bench {name}: {'FAILED' if 'error' in res else 'ok'}", file=sys.stderr, flush=True)
    # The summary covers every result on disk, so `ONLY=NAME` refreshes one row set.
    on_disk = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    (args.out / "SUMMARY.md").write_text(summary(on_disk, host))
    failed = [r["benchmark"] for r in results if "error" in r]
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
