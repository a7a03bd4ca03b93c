"""The generated locked-down broker, run on the real mosquitto: a gateway's credentials let it
publish only under its own site/gateway prefix and read only its own commands."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from deploy.broker import CLOUD_USER, Credential, gateway_user, hash_password
from deploy.cli import DeployError, _gateways, generate_broker, main
from linli.services.base import find_binary, free_port, spawn, terminate, wait_for_port
from protocols.topics import Channel, topic

GATEWAYS = [("s1", "gw1"), ("s1", "gw2")]


class Broker:
    def __init__(self, out: Path, port: int, tls_port: int, creds: dict[str, Credential]):
        self.out, self.port, self.tls_port, self.creds = out, port, tls_port, creds


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    # Directly under /tmp: as root, mosquitto runs as its own user, which cannot traverse
    # pytest's private tmp_path.
    holder = tempfile.TemporaryDirectory(prefix="linli-acl-")
    out = Path(holder.name) / "broker"
    port, tls_port = free_port(), free_port()
    creds = generate_broker(
        out,
        GATEWAYS,
        hostnames=["localhost", "127.0.0.1"],
        port=port,
        bind="127.0.0.1",
        tls_port=tls_port,
    )
    if os.geteuid() == 0:  # mosquitto drops to its own user and must read its files
        for path in [Path(holder.name), out, *out.rglob("*")]:
            shutil.chown(path, "mosquitto", "mosquitto")
    log = tmp_path / "mosquitto.log"
    proc = spawn([find_binary("mosquitto", "/usr/sbin"), "-c", str(out / "mosquitto.conf")], log)
    try:
        wait_for_port(port, 10, lambda: proc.poll() is None, log)
        wait_for_port(tls_port, 10, lambda: proc.poll() is None, log)
        yield Broker(out, port, tls_port, creds)
    finally:
        terminate(proc)
        holder.cleanup()


def _client(
    broker: Broker, cred: Credential | None, *, tls: bool = False
) -> tuple[mqtt.Client, list[mqtt.MQTTMessage], threading.Event, list[object]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    received: list[mqtt.MQTTMessage] = []
    connected = threading.Event()
    result: list[object] = []

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object = None) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    client.on_message = lambda c, u, m: received.append(m)
    if cred is not None:
        client.username_pw_set(cred.username, cred.password)
    if tls:
        client.tls_set(ca_certs=str(broker.out / "ca.crt"))
    client.connect("127.0.0.1" if not tls else "localhost", broker.tls_port if tls else broker.port)
    client.loop_start()
    assert connected.wait(10), "no CONNACK"
    return client, received, connected, result


def _wait(pred: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_gateway_cannot_publish_under_another_gateway(broker: Broker) -> None:
    cloud, seen, _, rc = _client(broker, broker.creds[CLOUD_USER])
    assert not getattr(rc[0], "is_failure", True)
    cloud.subscribe("linli/v1/+/+/telemetry", qos=1)
    time.sleep(0.3)
    gw1, _, _, rc1 = _client(broker, broker.creds[gateway_user("s1", "gw1")])
    assert not getattr(rc1[0], "is_failure", True)
    gw1.publish(topic("s1", "gw2", Channel.TELEMETRY), b"forged", qos=1).wait_for_publish(5)
    gw1.publish(topic("s2", "gw1", Channel.TELEMETRY), b"other-site", qos=1).wait_for_publish(5)
    gw1.publish(topic("s1", "gw1", Channel.TELEMETRY), b"own", qos=1).wait_for_publish(5)
    # A gateway may not write downlink channels either (it could command itself or others).
    gw1.publish(topic("s1", "gw1", Channel.CMD), b"self-command", qos=1).wait_for_publish(5)
    assert _wait(lambda: any(m.payload == b"own" for m in seen))
    time.sleep(0.5)
    assert [m.payload for m in seen] == [b"own"]
    assert seen[0].topic == topic("s1", "gw1", Channel.TELEMETRY)
    for c in (cloud, gw1):
        c.loop_stop()
        c.disconnect()


def test_gateway_reads_only_its_own_commands(broker: Broker) -> None:
    gw1, got1, _, _ = _client(broker, broker.creds[gateway_user("s1", "gw1")])
    gw2, got2, _, _ = _client(broker, broker.creds[gateway_user("s1", "gw2")])
    gw1.subscribe(topic("s1", "gw2", Channel.CMD), qos=1)  # not its own: denied
    gw1.subscribe(topic("s1", "gw1", Channel.CMD), qos=1)
    gw2.subscribe(topic("s1", "gw2", Channel.CMD), qos=1)
    time.sleep(0.3)
    cloud, _, _, _ = _client(broker, broker.creds[CLOUD_USER])
    cloud.publish(topic("s1", "gw2", Channel.CMD), b"for-gw2", qos=1).wait_for_publish(5)
    cloud.publish(topic("s1", "gw1", Channel.CMD), b"for-gw1", qos=1).wait_for_publish(5)
    assert _wait(lambda: got2 and got1)
    time.sleep(0.5)
    assert [m.payload for m in got1] == [b"for-gw1"]
    assert [m.payload for m in got2] == [b"for-gw2"]
    for c in (gw1, gw2, cloud):
        c.loop_stop()
        c.disconnect()


def test_wrong_password_and_anonymous_are_refused(broker: Broker) -> None:
    real = broker.creds[gateway_user("s1", "gw1")]
    for cred in (Credential(real.username, "guess"), None, Credential("admin", "admin")):
        client, _, _, rc = _client(broker, cred)
        assert getattr(rc[0], "is_failure", False), f"{cred} was accepted"
        client.loop_stop()
        client.disconnect()


def test_tls_listener_with_generated_ca(broker: Broker) -> None:
    gw1, _, _, rc = _client(broker, broker.creds[gateway_user("s1", "gw1")], tls=True)
    assert not getattr(rc[0], "is_failure", True)
    gw1.loop_stop()
    gw1.disconnect()
    # Without the generated CA the server certificate is not trusted.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set()
    with pytest.raises(ssl.SSLError):
        client.connect("localhost", broker.tls_port)


def test_password_file_has_only_hashes_and_files_are_private(broker: Broker) -> None:
    text = (broker.out / "passwd").read_text()
    for cred in broker.creds.values():
        assert cred.password not in text
        assert f"{cred.username}:$7$101$" in text
    assert (broker.out / "server.key").stat().st_mode & 0o077 == 0
    assert (broker.out / "passwd").stat().st_mode & 0o077 == 0
    passwords = [c.password for c in broker.creds.values()]
    assert len(set(passwords)) == len(passwords)  # no shared password


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    pwfile.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "u", "s3cret"], check=True)
    line = pwfile.read_text().strip()
    _, _, iterations, salt_b64, _ = line.split(":", 1)[1].split("$")
    import base64

    ours = hash_password("s3cret", base64.b64decode(salt_b64), int(iterations))
    assert line == f"u:{ours}"


def test_cli_refuses_to_overwrite_and_rejects_empty_site(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s1\ngateways:\n  - id: gw1\n")
    out = tmp_path / "out"
    assert main(["broker", "--site", str(site), "--out", str(out)]) == 0
    assert (out / "credentials" / "s1.gw1.yaml").exists()
    assert main(["broker", "--site", str(site), "--out", str(out)]) == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("site: s1\n")
    with pytest.raises(DeployError, match="no gateways"):
        _gateways([empty])
    assert main(["broker", "--site", str(empty), "--out", str(tmp_path / "o3")]) == 2
