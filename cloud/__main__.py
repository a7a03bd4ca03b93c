"""``linli cloud``: run the cloud, create the first admin, migrate the database, import a site.

    linli cloud run [--host 127.0.0.1] [--port 8000] [--db URL] [--mqtt HOST:PORT] [--rules FILE]
                    [--role all|ingest|rules] [--shared-group GROUP]
    linli cloud create-admin USERNAME [--generate | --password-stdin] [--db URL]
    linli cloud migrate [--db URL]
    linli cloud import-site SITE.yaml [--db URL]

Everything else comes from ``LINLI_*`` environment variables (see docs/cloud.md); flags win.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloud.settings import Settings


def _mqtt(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linli cloud", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the API, ingest, rules and alerts (uvicorn)")
    run.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--db", help="database URL (LINLI_DB_URL)")
    run.add_argument("--mqtt", type=_mqtt, help="broker HOST:PORT (LINLI_MQTT_HOST/PORT)")
    run.add_argument("--no-mqtt", action="store_true", help="API only: no ingest, no commands")
    run.add_argument("--rules", type=Path, action="append", help="extra rule file (repeatable)")
    run.add_argument(
        "--role",
        choices=("all", "ingest", "rules"),
        help="all (default): ingest + rules in one process; ingest: store only; rules: evaluate "
        "what the ingest processes stored (LINLI_ROLE, docs/scale-out.md)",
    )
    run.add_argument("--shared-group", help="MQTT 5 shared group of --role ingest processes")
    run.add_argument(
        "--ingest-mode",
        choices=("split", "inprocess"),
        help="split (default here): a receiver process acks once a message is in a durable raw "
        "log; inprocess: ack after the database commit (LINLI_INGEST_MODE, docs/cloud-ingest.md)",
    )
    run.add_argument("--log-level", default="info")
    ca = sub.add_parser("create-admin", help="create an admin account (no default password)")
    ca.add_argument("rest", nargs=argparse.REMAINDER, help="see 'linli cloud create-admin -h'")
    mig = sub.add_parser("migrate", help="bring the database schema up to date")
    mig.add_argument("--db", help="database URL (LINLI_DB_URL)")
    imp = sub.add_parser("import-site", help="import a site file into the registry")
    imp.add_argument("file", type=Path)
    imp.add_argument("--db", help="database URL (LINLI_DB_URL)")
    return p


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud.api import create_app
    from cloud.runtime import tune_gc

    overrides: dict[str, Any] = {"db_url": args.db}
    if args.mqtt:
        overrides["mqtt_host"], overrides["mqtt_port"] = args.mqtt
    if args.no_mqtt:
        overrides["mqtt_enabled"] = False
    if args.rules:
        overrides["rule_files"] = tuple(args.rules)
    overrides["role"] = args.role
    overrides["ingest_shared_group"] = args.shared_group
    # The product runs split ingest unless told otherwise (bench/ingest.py: faster, as safe);
    # Settings' own default stays inprocess for embedders and tests.
    overrides["ingest_mode"] = args.ingest_mode or os.environ.get("LINLI_INGEST_MODE", "split")
    settings = _settings(**overrides)
    app = create_app(settings)
    tune_gc()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from cloud.db import create_schema, make_engine

    settings = _settings(db_url=args.db)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    engine.dispose()
    print(f"schema up to date: {engine.url.render_as_string(hide_password=True)}")
    return 0


def _import_site(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from cloud.db import create_schema, make_engine
    from cloud.registry.service import Registry
    from cloud.registry.sitefile import SiteFileError, load_site_file

    try:
        sitefile = load_site_file(args.file)
    except SiteFileError as exc:
        print(f"linli cloud import-site: {exc}", file=sys.stderr)
        return 2
    settings = _settings(db_url=args.db)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    registry = Registry(engine)
    with Session(engine) as db, db.begin():
        registry.import_site(db, sitefile)
    engine.dispose()
    print(f"imported site {sitefile.site}: {len(sitefile.devices)} devices")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["create-admin"]:  # the accounts area owns its options
        from cloud.auth.service import create_admin_cli

        return create_admin_cli(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "migrate":
            return _migrate(args)
        return _import_site(args)
    except ValidationError as exc:
        print(f"linli cloud: bad settings:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
