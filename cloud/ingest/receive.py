"""The receiver process of split ingest: deliveries → raw log (one commit per pass) → PUBACK.

``python -m cloud.ingest.receive`` is started and supervised by :class:`cloud.ingest.Ingest`
in ``mode="split"``; it is not meant to be run by hand. It reads its :class:`IngestConfig` as
one JSON line on stdin and then keeps stdin open: end of file means the parent died (even by
SIGKILL), and the receiver stops, so a restarted cloud never finds an orphan holding its MQTT
session. SIGTERM/SIGINT stop it too. Logs go to stderr, which the parent re-logs.

One thread does everything (:class:`cloud.ingest.passes.PassReceiver`: paho driven by this
loop, no network thread of its own): read a pass of deliveries from the socket (what arrived,
at most ``batch_size`` / ``batch_bytes``; an urgent event/access delivery ends the pass at
once), append it to the raw log in one transaction, acknowledge exactly that pass, repeat.
When the log's backlog (appended, not yet stored by ingest) reaches ``rawlog_budget_rows`` or
``rawlog_budget_bytes``, it stops reading the socket: nothing more is acknowledged, the broker
holds the rest (TCP back-pressure, Receive Maximum), and pings keep the connection — memory and
disk stay bounded, nothing is dropped. It reconnects by itself with a capped backoff.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from types import FrameType

from pydantic import ValidationError

from cloud.ingest.buffer import Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.passes import PassReceiver, share_property_tables
from cloud.ingest.rawlog import RECEIVER_AUTOCHECKPOINT, RawLog, ReceiverStatus, poke
from cloud.runtime import tune_gc

log = logging.getLogger("cloud.ingest.receive")  # not __main__ when run with -m

IDLE_WAIT_S = 0.05  # a pass waits this long for a first packet (then the status, the stop flag)
BUDGET_POLL_S = 0.05  # while over budget: how often to look at the mark again


class ReceiverProcess:
    """The loop of the receiver process (also usable in a thread, for tests)."""

    def __init__(self, config: IngestConfig, wake_fd: int | None = None) -> None:
        self.config = config
        self._wake_fd = wake_fd  # written after each append: wakes ingest's idle reader
        self.receiver = PassReceiver(config)
        self.appended = self.acked = self.batches = self.paused = 0
        self.first_received = self.last_acked = 0.0
        self._written: tuple[int, ...] = ()  # what the status row last said

    def _status(self, pending: int = 0) -> ReceiverStatus:
        r = self.receiver
        self._written = self._counters(pending)
        return ReceiverStatus(
            pid=os.getpid(),
            connects=r.connects,
            subscribed=r.subscribed,
            received=max(r.received, self.appended + pending),
            appended=self.appended + pending,
            acked=self.acked,
            batches=self.batches,
            paused=self.paused,
            first_received=self.first_received,
            last_acked=self.last_acked,
        )

    def run(self, stop: threading.Event) -> None:
        c = self.config
        rawlog = RawLog(c.rawlog_file(), c.rawlog_synchronous, RECEIVER_AUTOCHECKPOINT)
        rawlog.reset_status(os.getpid())
        receiver = self.receiver
        over = False
        try:
            while not stop.is_set():
                if not receiver.connect():
                    stop.wait(min(receiver.retry_in(), IDLE_WAIT_S))
                    self._report(rawlog)
                    continue
                backlog = rawlog.backlog()
                if backlog.rows >= c.rawlog_budget_rows or backlog.bytes >= c.rawlog_budget_bytes:
                    if not over:
                        self.paused += 1
                        log.warning(
                            "raw log backlog %d messages / %d bytes reached the budget: "
                            "not reading from the broker until ingest catches up",
                            backlog.rows,
                            backlog.bytes,
                        )
                        rawlog.write_status(self._status())
                    over = True
                    receiver.idle()
                    stop.wait(BUDGET_POLL_S)
                    continue
                if over:
                    log.info("raw log backlog under budget again: reading from the broker")
                    over = False
                batch = receiver.read_pass(c.batch_size, c.batch_bytes, IDLE_WAIT_S)
                if batch:
                    self._append(rawlog, batch, stop)
                else:
                    self._report(rawlog)
        finally:
            receiver.close()  # nothing unappended was acknowledged: the broker keeps it
            rawlog.write_status(self._status())
            rawlog.close()

    def _counters(self, pending: int = 0) -> tuple[int, ...]:
        r = self.receiver
        return (r.connects, r.subscribed, r.received, self.appended + pending, self.acked)

    def _report(self, rawlog: RawLog) -> None:
        """Between passes: write the status (and wake ingest) if it changed since it was last
        written (the acks of the last append, a connection, the subscription)."""
        if self._written != self._counters():
            rawlog.write_status(self._status())
            self._wake()

    def _append(self, rawlog: RawLog, batch: list[Delivery], stop: threading.Event) -> None:
        if not self.first_received:
            self.first_received = batch[0].received_at.timestamp()
        delay = 0.1
        while True:
            try:
                rawlog.append(batch, self._status(len(batch)))
                break
            except sqlite3.OperationalError as exc:  # disk full, locked too long: keep it
                log.warning("raw log append failed (%s); retrying in %.1fs", exc, delay)
                if stop.wait(delay):
                    return  # not appended, not acknowledged: the broker redelivers
                delay = min(delay * 2, 10.0)
        self.appended += len(batch)
        self.batches += 1
        self._wake()
        self.acked += self.receiver.ack(batch)
        self.last_acked = time.time()

    def _wake(self) -> None:
        if self._wake_fd is not None:
            poke(self._wake_fd)


def _watch_parent(stop: threading.Event) -> None:
    """Block on stdin; end of file means the parent is gone. (os.read, not sys.stdin: a
    daemon thread blocked in a buffered reader aborts the interpreter's shutdown.)"""
    fd = sys.stdin.fileno()
    while os.read(fd, 4096):
        pass
    stop.set()


def set_niceness(nice: int | None) -> None:
    """Run this process at niceness ``nice`` (None: as inherited). Not permitted (a negative
    value without root or CAP_SYS_NICE) is said and the receiver runs as it is: acknowledging
    at a lower priority beats not receiving at all."""
    if nice is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError as exc:
        now = os.getpriority(os.PRIO_PROCESS, 0)
        log.error(
            "receiver_nice %d not set (%s): it needs root or CAP_SYS_NICE; running at niceness %d",
            nice,
            exc.strerror,
            now,
        )
        return
    log.info("receiver running at niceness %d", nice)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cloud.ingest.receive", description=__doc__)
    p.add_argument("--wake-fd", type=int, help="a pipe to write a byte to after each append")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    line = sys.stdin.readline()
    try:
        config = IngestConfig.model_validate_json(line)
    except ValidationError as exc:
        log.error("bad receiver config on stdin: %s", exc)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    threading.Thread(target=_watch_parent, args=(stop,), name="parent-watch", daemon=True).start()
    set_niceness(config.receiver_nice)
    share_property_tables()
    process = ReceiverProcess(config, args.wake_fd)
    tune_gc()
    log.info("receiver %s logging to %s", config.client_id, config.rawlog_file())
    process.run(stop)
    log.info("receiver stopped: %d appended, %d acknowledged", process.appended, process.acked)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
