"""The receiver process's MQTT side: one paho client driven by the caller's own thread, in passes.

In-process ingest runs paho in its own network thread (:class:`cloud.ingest.receiver.Receiver`)
and hands each message to the storing loop through a :class:`BoundedBuffer`. The receiver
process has nothing to do between reading and appending, so it drives paho itself
(:class:`PassReceiver`): a *pass* reads what the socket holds, bounded in messages and bytes;
the caller appends that to the raw log in one transaction and acknowledges exactly it; the
PUBACKs go out in one write. No second thread, no condition variable, one GIL holder.

What it keeps from :class:`Receiver`: MQTT 5 (or 3.1.1) persistent session (``clean_start``
false, session expiry, Receive Maximum), manual acknowledgements (a message is acknowledged only
when the caller says so, and only on the connection that delivered it), subscription on every
connect (a lost session is subscribed again). What it does itself instead of paho's
``loop_start`` thread: reconnecting with a capped, jittered backoff, and keeping the connection
alive while the caller stops reading (:meth:`PassReceiver.idle`).

The socket (:class:`_BufferedSocket`) is paho's own, read in chunks of up to 256 KiB: paho reads a
packet with three or more ``recv`` calls (command byte, length bytes, body) and writes each packet
with its own ``send`` — five system calls or more per delivered message with its PUBACK. Here paho
reads from memory and its writes are gathered until :meth:`PassReceiver.flush`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt._packet as _packet
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud.ingest.buffer import Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.receiver import (
    accept_connection,
    connect_options,
    delivery_of,
    log_subscription,
    make_client,
)

log = logging.getLogger(__name__)

RECV_CHUNK = 256 * 1024  # bytes per recv() at most
CLOSE_WAIT_S = 2.0  # close(): how long to wait for the broker to hang up after DISCONNECT
RECONNECT_FIRST_S = 0.25  # first delay after a failed connection (doubles, jittered, capped)
PINGREQ = b"\xc0\x00"  # MQTT PINGREQ: fixed header, no body (3.1.1 and 5)
DISCONNECT = b"\xe0\x00"  # MQTT DISCONNECT, normal (3.1.1; 5: reason 0, no properties)


class _BufferedSocket:
    """A non-blocking TCP socket read in large chunks, its writes gathered until :meth:`flush`.

    paho only calls ``recv``/``send``/``fileno``/``close``/``setblocking`` (its ``SocketLike``);
    ``recv`` raises ``BlockingIOError`` when nothing is buffered and the socket has nothing
    either, as a plain non-blocking socket does. ``send`` always takes everything: bytes the
    kernel does not take at once wait here for the next :meth:`flush`.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._in = b""
        self._pos = 0
        self._out = bytearray()
        self.starved = False  # the last recv found nothing (the pass may end)

    @property
    def buffered(self) -> int:
        return len(self._in) - self._pos

    @property
    def unsent(self) -> int:
        return len(self._out)

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._in):
            try:
                data = self._sock.recv(RECV_CHUNK)
            except BlockingIOError:
                self.starved = True
                raise
            if not data:
                return b""  # end of stream: paho reports the connection lost
            self._in, self._pos = data, 0
        end = min(self._pos + size, len(self._in))
        chunk = self._in[self._pos : end]
        self._pos = end
        return chunk

    def send(self, data: bytes | bytearray) -> int:
        self._out += data
        return len(data)

    def flush(self) -> bool:
        """Write what the kernel takes now; True when nothing is left. OSError: the connection
        is gone."""
        while self._out:
            try:
                n = self._sock.send(self._out)
            except BlockingIOError:
                return False
            del self._out[:n]
        return True

    def shutdown_write(self) -> None:
        """End our side of the stream (after a flush): the broker reads to the end, then closes."""
        self._sock.shutdown(socket.SHUT_WR)

    def discard(self) -> bool:
        """Read and drop what arrived (closing: nothing more is processed); False at the end
        of the stream."""
        self._in, self._pos = b"", 0
        try:
            return bool(self._sock.recv(RECV_CHUNK))
        except BlockingIOError:
            return True

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.flush()  # best effort (paho closes after its DISCONNECT, keepalive, errors)
        self._in, self._pos = b"", 0
        self._out.clear()
        self._sock.close()


class _Client(paho.Client):
    """paho's client with its socket wrapped (the one place paho is extended)."""

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())


class _SharedTableProperties(Properties):
    """paho's MQTT 5 ``Properties`` with its lookup tables built once instead of per packet.

    paho decodes every MQTT 5 PUBLISH's properties into a new ``Properties``, whose constructor
    builds two 27-entry dicts (names, property types) and whose ``clear`` walks them: ≈ 22 µs of
    the ≈ 80 µs the receiver spent per message here. The tables are never changed after
    construction, so instances can share one set; everything else is paho's own code.
    """

    _TABLES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    _OWN = frozenset(("packetType", "types", "names", "properties"))

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "types", self._TABLES.types)
        object.__setattr__(self, "names", self._TABLES.names)
        object.__setattr__(self, "properties", self._TABLES.properties)

    def clear(self) -> None:
        for name in [n for n in vars(self) if n not in self._OWN]:
            object.__delattr__(self, name)


def share_property_tables() -> None:
    """Make paho decode incoming packets' MQTT 5 properties with shared tables (process-wide:
    the receiver process calls it once at start; in-process ingest does not)."""
    namespace = vars(_packet)  # the module whose decode_publish builds them
    if namespace.get("Properties") is Properties:
        namespace["Properties"] = _SharedTableProperties


class PassReceiver:
    """A persistent MQTT session read in bounded passes by the caller's thread.

    The caller loops: :meth:`connect` while not :attr:`connected` (at most once per backoff
    delay), :meth:`read_pass` to get a batch, stores it, :meth:`ack` it; or :meth:`idle` while
    it does not want messages. Not thread-safe: one thread does all of it.
    """

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.connection = 0  # bumped on every accepted connection: acks only go back on it
        self.connects = 0
        self.subscribed = False
        self.session_present = False
        self.received = 0  # deliveries read in passes handed to the caller
        self._pass: list[Delivery] = []
        self._pass_bytes = 0
        self._urgent = False
        self._delay = RECONNECT_FIRST_S
        self._next_attempt = 0.0
        self._last_keepalive = 0.0
        self._stopping = False
        client = make_client(config, _Client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A socket to the broker is open (the CONNACK may still be on its way)."""
        return self._client.socket() is not None

    def retry_in(self) -> float:
        """Seconds until :meth:`connect` may try again."""
        return max(0.0, self._next_attempt - time.monotonic())

    def connect(self) -> bool:
        """Open a connection unless the backoff delay has not passed (False: not connected;
        call again after :meth:`retry_in`). The CONNACK, and the subscription it triggers,
        arrive in the next passes."""
        if self.connected:
            return True
        if self.retry_in() > 0:
            return False
        c = self.config
        try:
            self._client.connect(c.host, c.port, **connect_options(c))
            self.flush()
        except OSError as exc:  # refused, unreachable, reset during the handshake
            self._close_socket()
            self._backoff(f"cannot connect to {c.host}:{c.port}: {exc}")
            return False
        self._last_keepalive = time.monotonic()
        return True

    def _backoff(self, why: str) -> None:
        delay = self._delay * random.uniform(0.5, 1.0)
        log.warning("receiver %s: %s; retrying in %.2fs", self.config.client_id, why, delay)
        self._next_attempt = time.monotonic() + delay
        self._delay = min(self._delay * 2, float(self.config.reconnect_max_s))

    def _lost(self, why: str) -> None:
        """The connection is gone: what this pass read is dropped (never acknowledged, the
        broker delivers it again) and the next connect waits for the backoff."""
        self.subscribed = False
        self.received -= len(self._pass)  # they come again (status: received == appended)
        self._pass, self._pass_bytes, self._urgent = [], 0, False
        self._close_socket()
        if not self._stopping:
            self._backoff(why)

    def _close_socket(self) -> None:
        sock = self._client.socket()
        if sock is not None:
            self._client._sock_close()  # paho's own close (sets its socket to None)

    def close(self) -> None:
        """Disconnect without acknowledging anything not yet acknowledged (the broker keeps it;
        the session stays)."""
        self._stopping = True
        sock = self._socket()
        if sock is None:
            return
        # paho's disconnect() closes the socket as soon as it has handed DISCONNECT to it,
        # which here is before it is sent, and a close with unread deliveries resets the
        # connection (the broker may drop our last PUBACKs unread). So: DISCONNECT written
        # here, our side shut, then wait until the broker hangs up (it has read everything, the
        # last PUBACKs included) or CLOSE_WAIT_S passed.
        deadline = time.monotonic() + CLOSE_WAIT_S
        with contextlib.suppress(OSError):
            if self._client.want_write():
                self._client.loop_write()
            sock.send(DISCONNECT)
            while not sock.flush() and time.monotonic() < deadline:
                select.select([], [sock], [], 0.05)
            sock.shutdown_write()
            while time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 0.05)
                if readable and not sock.discard():
                    break  # the broker closed its side
        self._pass = []
        self._close_socket()

    # -- passes -------------------------------------------------------------------------------

    def read_pass(self, max_messages: int, max_bytes: int, wait_s: float) -> list[Delivery]:
        """Wait up to ``wait_s`` for data, then read packets while they keep coming, until
        ``max_messages`` deliveries or ``max_bytes`` of payload (reached with the last message
        read: at most one message more), or an urgent (event/access) delivery, which ends the
        pass so it is appended at once. Returns the deliveries in arrival order (empty if none,
        or the connection was lost)."""
        sock = self._socket()
        if sock is None:
            return []
        if not sock.buffered:
            writers = [sock] if sock.unsent or self._client.want_write() else []
            readable, writable, _ = select.select([sock], writers, [], wait_s)
            if writable:
                self.flush_quietly()
            if not readable:
                self._misc()
                return []
        self._pass, self._pass_bytes, self._urgent = [], 0, False
        while len(self._pass) < max_messages and self._pass_bytes < max_bytes:
            sock.starved = False
            rc = self._client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._client.socket() is None:
                self._lost(f"connection lost ({paho.error_string(rc)})")
                return []
            if self._urgent or (sock.starved and not sock.buffered):
                break
        batch, self._pass = self._pass, []
        self._misc()
        return batch

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Queue PUBACKs for stored deliveries of the current connection (those of an earlier
        one are skipped: the broker delivers them again and dedup drops the copies) and send
        them in one write. Returns how many were acknowledged."""
        current = self.connection
        sent = 0
        for d in deliveries:
            if d.qos > 0 and d.connection == current:
                self._client.ack(d.mid, d.qos)
                sent += 1
        self.flush_quietly()
        return sent

    def idle(self) -> None:
        """Called regularly while the caller does not take messages (the raw log is over its
        budget): the socket is not read, so nothing more arrives and the broker keeps the rest,
        but a PINGREQ goes out every half keepalive so that the broker keeps the connection.
        paho's own keepalive check is not run meanwhile (it would give up waiting for a
        PINGRESP that sits unread behind deliveries); the PINGRESPs are read when passes
        resume, and paho's check is back from the next pass."""
        sock = self._socket()
        if sock is None:
            return
        # A PINGREQ paho sent just before the pause would be answered behind up to Receive
        # Maximum unread deliveries: paho forgets it (its PINGRESP is harmless when it comes),
        # so that its check does not give up on it in the first passes after the pause.
        self._client._ping_t = 0.0
        now = time.monotonic()
        if now - self._last_keepalive >= self.config.keepalive_s / 2:
            if self._client.want_write():
                self._client.loop_write()  # a whole paho packet first, never in between
            sock.send(PINGREQ)
            self._last_keepalive = now
        self.flush_quietly()

    def flush(self) -> None:
        """Send what paho queued and what the socket holds back (OSError: connection gone)."""
        if self._client.want_write():
            self._client.loop_write()
        sock = self._socket()
        if sock is not None:
            sock.flush()

    def flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError as exc:
            self._lost(f"connection lost ({exc})")

    def _socket(self) -> _BufferedSocket | None:
        sock = self._client.socket()
        return sock if isinstance(sock, _BufferedSocket) else None

    def _misc(self) -> None:
        """paho's keepalive (PINGREQ when due, give up on a silent broker) and our writes."""
        if self._client.socket() is None:
            return
        if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._lost("keepalive: the broker did not answer")
            return
        self._last_keepalive = time.monotonic()
        self.flush_quietly()

    # -- paho callbacks (called from read_pass, in this thread) --------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not accept_connection(client, self.config, flags, reason, "receiver"):
            return
        self.connection += 1
        self.connects += 1
        self._delay = RECONNECT_FIRST_S
        self.session_present = flags.session_present

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.subscribed = False
        if not self._stopping:
            log.warning("receiver disconnected from broker (%s)", reason)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        log_subscription(self.config, reasons, "receiver")
        self.subscribed = True

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        delivery = delivery_of(msg, self.connection)
        self._pass.append(delivery)
        self._pass_bytes += len(delivery.payload)
        self._urgent |= delivery.urgent
        self.received += 1
