"""``linli deploy``: generate locked-down deployment files.

    linli deploy broker --site simulators/sites/demo.yaml --out /etc/linli/broker \\
        --hostname mqtt.example.org [--port 1883 --tls-port 8883]

writes ``mosquitto.conf``, ``passwd`` (PBKDF2 hashes only), ``acl``, a private CA and a server
certificate, and one credentials file per gateway (for its edge config) plus ``cloud.env`` for
the cloud. Run mosquitto with ``mosquitto -c OUT/mosquitto.conf``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from deploy.broker import (
    CLOUD_USER,
    Credential,
    Listener,
    acl,
    gateway_user,
    mosquitto_conf,
    new_password,
    password_file,
)
from deploy.tls import make_ca, make_server_cert


class DeployError(RuntimeError):
    """Bad input to a deploy command; the message says what to change."""


def _gateways(site_files: Sequence[Path]) -> list[tuple[str, str]]:
    from cloud.registry.sitefile import load_site_file

    found: list[tuple[str, str]] = []
    for path in site_files:
        try:
            sitefile = load_site_file(path)
        except Exception as exc:  # the loader's own errors name file and field; keep its text
            raise DeployError(f"{path}: {exc}") from exc
        found += [(sitefile.site, g.id) for g in sitefile.gateways]
    if not found:
        raise DeployError("the site file(s) declare no gateways")
    return found


def _write(path: Path, data: str | bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_broker(
    out: Path,
    gateways: list[tuple[str, str]],
    *,
    hostnames: list[str],
    port: int | None,
    bind: str,
    tls_port: int | None,
    force: bool = False,
) -> dict[str, Credential]:
    """Write every file; returns the credentials by username (for tests and the summary)."""
    if (out / "passwd").exists() and not force:
        raise DeployError(f"{out} already holds a broker configuration; pass --force to replace it")
    if port is None and tls_port is None:
        raise DeployError("at least one of --port and --tls-port is needed")
    creds = {CLOUD_USER: Credential(CLOUD_USER, new_password())}
    for site, gateway in gateways:
        user = gateway_user(site, gateway)
        creds[user] = Credential(user, new_password())
    listeners = []
    if port is not None:
        listeners.append(Listener(port, bind))
    if tls_port is not None:
        listeners.append(Listener(tls_port, bind, tls=True))
        ca = make_ca()
        server = make_server_cert(ca, hostnames)
        _write(out / "ca.crt", ca.cert)
        _write(out / "ca.key", ca.key, private=True)
        _write(out / "server.crt", server.cert)
        _write(out / "server.key", server.key, private=True)
    directory = str(out.resolve())
    (out / "data").mkdir(parents=True, exist_ok=True)
    _write(out / "mosquitto.conf", mosquitto_conf(directory, listeners))
    _write(out / "passwd", password_file(list(creds.values())), private=True)
    _write(out / "acl", acl(gateways))
    host = hostnames[0]
    for site, gateway in gateways:
        cred = creds[gateway_user(site, gateway)]
        broker: dict[str, object] = {
            "host": host,
            "port": tls_port if tls_port is not None else port,
            "username": cred.username,
            "password": cred.password,
        }
        if tls_port is not None:
            broker |= {"tls": True, "ca_file": f"{directory}/ca.crt"}
        _write(
            out / "credentials" / f"{site}.{gateway}.yaml",
            yaml.safe_dump({"broker": broker}, sort_keys=False),
            private=True,
        )
    cloud = creds[CLOUD_USER]
    _write(
        out / "credentials" / "cloud.env",
        f"LINLI_MQTT_USERNAME={cloud.username}\nLINLI_MQTT_PASSWORD={cloud.password}\n",
        private=True,
    )
    return creds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linli deploy", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    broker = sub.add_parser("broker", help="mosquitto with per-gateway credentials, ACL and TLS")
    broker.add_argument("--site", type=Path, action="append", required=True, help="site file")
    broker.add_argument("--out", type=Path, required=True)
    broker.add_argument("--hostname", action="append", help="broker name(s) for the certificate")
    broker.add_argument("--bind", default="0.0.0.0")
    broker.add_argument("--port", type=int, default=None, help="plain listener (off by default)")
    broker.add_argument("--tls-port", type=int, default=8883)
    broker.add_argument("--no-tls", action="store_true")
    broker.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    try:
        gateways = _gateways(args.site)
        creds = generate_broker(
            args.out,
            gateways,
            hostnames=args.hostname or ["localhost", "127.0.0.1"],
            port=args.port,
            bind=args.bind,
            tls_port=None if args.no_tls else args.tls_port,
            force=args.force,
        )
    except DeployError as exc:
        print(f"linli deploy: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}/mosquitto.conf, passwd, acl, credentials/ for {len(creds) - 1} gateways"
    )
    print(f"start the broker with: mosquitto -c {args.out.resolve()}/mosquitto.conf")
    if os.geteuid() == 0:
        print("as root, mosquitto runs as user 'mosquitto': chown -R mosquitto " + str(args.out))
    return 0
