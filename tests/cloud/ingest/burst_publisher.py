"""Publish a burst of large device events from a separate process (so its memory is its own).

python burst_publisher.py PORT SITE BOOT_ID COUNT PAYLOAD_BYTES
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocols.codec import encode, new_id
from protocols.messages import DeviceEvent
from protocols.topics import Channel, topic


def main(argv: list[str]) -> int:
    port, site, boot_id, n, size = int(argv[0]), argv[1], argv[2], int(argv[3]), int(argv[4])
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"burst-{new_id()[:8]}")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t = topic(site, "gw1", Channel.EVENT)
    pending = []
    for i in range(n):
        event = DeviceEvent(
            msg_id=new_id(),
            boot_id=boot_id,
            seq=i,
            ts=datetime.now(UTC),
            device="cam-1",
            event="blob.test",
            attrs={"blob": f"{i:06d}" + "x" * size},
        )
        pending.append(client.publish(t, encode(event), qos=1))
        if len(pending) >= 100:
            for info in pending:
                info.wait_for_publish(30)
            pending.clear()
    for info in pending:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
