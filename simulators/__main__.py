"""``linli sim``: run a simulated site, or a scenario with ``--check`` against a running cloud.

    linli sim run-site simulators/sites/demo.yaml --mqtt 127.0.0.1:1883 [--duration 10m]
    linli sim run SCENARIO.yaml --check --cloud http://127.0.0.1:8000 --mqtt 127.0.0.1:1883
    linli sim list                    # the starter scenarios
    linli sim validate FILE…          # scenario or site files
    linli sim gen-site --buildings 20 --floors 10 > big.yaml

``run --check`` prints a JSON report and exits 0 only if every expected alert appeared in time
and no unexpected critical alert did (1 otherwise; 2 for bad input). The token for the cloud
API comes from ``--token`` or ``LINLI_TOKEN``; the cloud URL from ``--cloud`` or ``LINLI_CLOUD``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from simulators.errors import SimulatorError

log = logging.getLogger("simulators")


def _hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linli sim", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="count", default=0)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--mqtt", type=_hostport, default=("127.0.0.1", 1883), metavar="HOST:PORT")
        sp.add_argument("--site", help="run under this site id instead of the file's")
        sp.add_argument("--state-dir", type=Path, help="outboxes of the simulated gateways")
        sp.add_argument("--seed", type=int, default=0)

    run = sub.add_parser("run", help="run a scenario (and --check its alerts)")
    run.add_argument("scenario", type=Path)
    common(run)
    run.add_argument("--check", action="store_true", help="check the expected alerts")
    run.add_argument("--cloud", default=os.environ.get("LINLI_CLOUD"), help="cloud base URL")
    run.add_argument("--token", default=os.environ.get("LINLI_TOKEN"), help="API bearer token")
    run.add_argument("--poll", type=float, default=1.0, help="seconds between alert polls")
    run.add_argument("--full", action="store_true", help="run the whole timeline even when met")

    site = sub.add_parser("run-site", help="run a site file's gateways and devices")
    site.add_argument("sitefile", type=Path)
    common(site)
    site.add_argument("--duration", default=None, help="e.g. 10m; default: until Ctrl-C")
    site.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    site.add_argument("--realistic", action="store_true", help="read devices at their own rates")

    sub.add_parser("list", help="list the starter scenarios")
    val = sub.add_parser("validate", help="validate scenario or site files")
    val.add_argument("files", type=Path, nargs="+")

    gen = sub.add_parser("gen-site", help="print a generated site file")
    gen.add_argument("--site", default="demo")
    gen.add_argument("--buildings", type=int, default=3)
    gen.add_argument("--floors", type=int, default=3)
    gen.add_argument("--units", type=int, default=2)
    gen.add_argument("--devices", type=int, help="about this many devices (scale sites)")
    return p


async def _run(args: argparse.Namespace) -> int:
    from simulators.cloudclient import CloudClient
    from simulators.runner import RunOptions, ScenarioRun
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if args.check and not args.cloud:
        raise SimulatorError("--check needs --cloud URL (or LINLI_CLOUD)")
    with tempfile.TemporaryDirectory(prefix="linli-sim-") as tmp:
        options = RunOptions(
            mqtt_host=args.mqtt[0],
            mqtt_port=args.mqtt[1],
            cloud=args.cloud,
            token=args.token,
            site=args.site,
            state_dir=args.state_dir or Path(tmp),
            poll=args.poll,
            seed=args.seed,
            stop_when_met=not args.full,
            check=args.check,
        )
        cloud = CloudClient(args.cloud, args.token) if args.cloud else None
        try:
            report = await ScenarioRun(scenario, options, cloud=cloud).run()
        finally:
            if cloud is not None:
                await cloud.__aexit__()
    print(report.model_dump_json(indent=2))
    return 0 if report.passed or not args.check else 1


async def _run_site(args: argparse.Namespace) -> int:
    from simulators.clock import ClockMode, SimClock
    from simulators.gateways import SimSite
    from simulators.scenario import parse_duration
    from simulators.site import SiteOptions, load_site, site_configs

    sitefile = load_site(args.sitefile)
    duration = parse_duration(args.duration) if args.duration else None
    mode = ClockMode.REALTIME if args.speed == 1.0 else ClockMode.AHEAD
    clock = SimClock.start(mode, speed=args.speed)
    with tempfile.TemporaryDirectory(prefix="linli-sim-") as tmp:
        configs = site_configs(
            sitefile,
            SiteOptions(
                host=args.mqtt[0],
                port=args.mqtt[1],
                state_dir=args.state_dir or Path(tmp),
                seed=args.seed,
                max_interval=None if args.realistic else 5.0,
                site=args.site,
            ),
        )
        async with SimSite(configs, clock.now, proxies=False) as sim:
            await sim.wait_connected(within=30.0)
            devices = sum(len(g.devices) for g in sim.gateways.values())
            log.info("running %d gateways, %d devices", len(sim.gateways), devices)
            print(
                json.dumps(
                    {
                        "site": args.site or sitefile.site,
                        "gateways": len(sim.gateways),
                        "devices": devices,
                    }
                ),
                flush=True,
            )
            if duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(clock.real_delay(duration))
    return 0


def _validate(files: list[Path]) -> int:
    import yaml

    from simulators.scenario import load_scenario
    from simulators.site import check_references, load_site

    bad = 0
    for f in files:
        try:
            try:
                data = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
                raise SimulatorError(str(exc), str(f)) from exc
            if isinstance(data, dict) and ("gateways" in data or "buildings" in data):
                load_site(f)
            else:
                sc = load_scenario(f)
                check_references(sc, load_site(sc.resolve(sc.site)))
            print(f"{f}: ok")
        except SimulatorError as exc:
            bad += 1
            print(f"{f}: {exc}", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "run-site":
            try:
                return asyncio.run(_run_site(args))
            except KeyboardInterrupt:
                return 0
        if args.command == "list":
            from simulators.scenario import library, load_scenario

            for path in library():
                sc = load_scenario(path)
                summary = sc.description.split(". ")[0].strip()
                if len(summary) > 90:
                    summary = summary[:89] + "…"
                print(f"{path.stem:<26} {summary}")
            return 0
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "gen-site":
            from simulators.sitegen import generate, scale_site, to_yaml

            if args.devices:
                s = scale_site(args.devices, site=args.site)
            else:
                s = generate(
                    args.site,
                    buildings=args.buildings,
                    floors=args.floors,
                    units_per_floor=args.units,
                )
            print(to_yaml(s), end="")
            return 0
    except SimulatorError as exc:
        print(f"linli sim: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
