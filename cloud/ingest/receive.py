"""The receiver process of split ingest: deliveries → raw log (one commit per batch) → PUBACK.

``python -m cloud.ingest.receive`` is started and supervised by :class:`cloud.ingest.Ingest`
in ``mode="split"``; it is not meant to be run by hand. It reads its :class:`IngestConfig` as
one JSON line on stdin and then keeps stdin open: end of file means the parent died (even by
SIGKILL), and the receiver stops, so a restarted cloud never finds an orphan holding its MQTT
session. SIGTERM/SIGINT stop it too. Logs go to stderr, which the parent re-logs.

The MQTT side is :class:`cloud.ingest.receiver.Receiver` (paho, manual acks, persistent
session) feeding a :class:`BoundedBuffer`, as in-process ingest. The loop takes whatever the
buffer holds (group commit: a batch is what arrived during the previous commit, at most
``batch_size`` / ``batch_bytes``; urgent channels first), appends it to the raw log in one
transaction, and acknowledges exactly that batch. When the log's backlog (appended, not yet
stored by ingest) reaches ``rawlog_budget_rows`` or ``rawlog_budget_bytes``, it stops taking
from the buffer: the buffer fills, paho's callback blocks, nothing more is acknowledged and the
broker holds the rest — memory and disk stay bounded, nothing is dropped.
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

from cloud.ingest.buffer import MAX_BUFFER_BYTES, BoundedBuffer, Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.rawlog import RawLog, ReceiverStatus, poke
from cloud.ingest.receiver import Receiver
from cloud.runtime import tune_gc

log = logging.getLogger("cloud.ingest.receive")  # not __main__ when run with -m

IDLE_WAIT_S = 0.05  # an idle loop writes the status this often (if it changed)
BUDGET_POLL_S = 0.05  # while over budget: how often to look at the mark again


class ReceiverProcess:
    """The loop of the receiver process (also usable in a thread, for tests)."""

    def __init__(self, config: IngestConfig, wake_fd: int | None = None) -> None:
        self.config = config
        self._wake_fd = wake_fd  # written after each append: wakes ingest's idle reader
        self.buffer = BoundedBuffer(config.queue_bound, MAX_BUFFER_BYTES)
        self._dirty = threading.Event()
        self.receiver = Receiver(config, self.buffer, self._dirty.set)
        self.appended = self.acked = self.batches = self.paused = 0
        self.first_received = self.last_acked = 0.0

    def _status(self, pending: int = 0) -> ReceiverStatus:
        return ReceiverStatus(
            pid=os.getpid(),
            connects=self.receiver.connects,
            subscribed=self.receiver.subscribed.is_set(),
            received=self.appended + pending + len(self.buffer),
            appended=self.appended + pending,
            acked=self.acked,
            batches=self.batches,
            paused=self.paused,
            first_received=self.first_received,
            last_acked=self.last_acked,
        )

    def run(self, stop: threading.Event) -> None:
        c = self.config
        rawlog = RawLog(c.rawlog_file(), c.rawlog_synchronous)
        rawlog.reset_status(os.getpid())
        self.receiver.start()
        over = False
        try:
            while not stop.is_set():
                backlog = rawlog.backlog()
                if backlog.rows >= c.rawlog_budget_rows or backlog.bytes >= c.rawlog_budget_bytes:
                    if not over:
                        self.paused += 1
                        log.warning(
                            "raw log backlog %d messages / %d bytes reached the budget: "
                            "not taking messages until ingest catches up",
                            backlog.rows,
                            backlog.bytes,
                        )
                        rawlog.write_status(self._status())
                    over = True
                    stop.wait(BUDGET_POLL_S)
                    continue
                if over:
                    log.info("raw log backlog under budget again: taking messages")
                    over = False
                batch = self.buffer.take(c.batch_size, 0.0, IDLE_WAIT_S, None, c.batch_bytes)
                if batch:
                    self._append(rawlog, batch, stop)
                elif self._dirty.is_set():
                    self._dirty.clear()
                    rawlog.write_status(self._status())
                    self._wake()
        finally:
            self.receiver.stop()  # what is buffered stays unacknowledged: the broker keeps it
            rawlog.write_status(self._status())
            rawlog.close()

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
        self._dirty.set()

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
    process = ReceiverProcess(config, args.wake_fd)
    tune_gc()
    log.info("receiver %s logging to %s", config.client_id, config.rawlog_file())
    process.run(stop)
    log.info("receiver stopped: %d appended, %d acknowledged", process.appended, process.acked)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
