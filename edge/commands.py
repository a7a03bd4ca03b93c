"""Cloud commands: a registry of handlers, and the processor that makes them safe to repeat.

Every command gets exactly one :class:`~protocols.messages.CommandAck`:

``refused``    expired (``expires_at`` passed), unknown name (no handler registered), or the
               handler raised :class:`~edge.errors.CommandRefused` — never executed
``ok``         the handler returned; its result mapping goes into ``result``
``failed``     the handler raised :class:`~edge.errors.CommandFailed` or timed out
``duplicate``  this ``cmd_id`` was seen before: not executed again; reason and result repeat
               the first outcome

Seen command ids are stored (SQLite, table ``commands``) *before* the handler runs, so a
command is executed at most once even across a crash or ``kill -9`` mid-execution.

Handlers are pluggable: ``agent.commands.register("gallery.sync", handler)``; a handler is an
async callable ``(Command) -> Mapping[str, str | bool | float | None]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.errors import CommandFailed, CommandRefused
from protocols.messages import AckStatus, AttrValue, Command

log = logging.getLogger(__name__)

Result = Mapping[str, AttrValue]
CommandHandler = Callable[[Command], Awaitable[Result]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    cmd_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    result TEXT NOT NULL DEFAULT '{}',
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_received ON commands (received);
"""


class CommandRegistry:
    """Command name → handler. One handler per name; ``replace=True`` to override one."""

    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, name: str, handler: CommandHandler, *, replace: bool = False) -> None:
        if name in self._handlers and not replace:
            raise ValueError(f"a handler for {name!r} is registered already")
        self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)

    def get(self, name: str) -> CommandHandler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: AckStatus
    reason: str | None = None
    result: Mapping[str, AttrValue] | None = None


class CommandLog:
    """Persistent record of command ids and their outcome, pruned to the newest ``keep``."""

    def __init__(self, conn: sqlite3.Connection, keep: int = 10_000) -> None:
        self.conn = conn
        self.keep = keep
        conn.executescript(SCHEMA)

    def get(self, cmd_id: str) -> Outcome | None:
        row = self.conn.execute(
            "SELECT status, reason, result FROM commands WHERE cmd_id = ?", (cmd_id,)
        ).fetchone()
        if row is None:
            return None
        return Outcome(AckStatus(row[0]), row[1], json.loads(row[2]))

    def begin(self, command: Command, now: float) -> None:
        """Record the id before executing (status ``failed`` until the handler finishes)."""
        self.conn.execute(
            "INSERT INTO commands (cmd_id, name, status, reason, received) VALUES (?, ?, ?, ?, ?)",
            (command.cmd_id, command.name, AckStatus.FAILED.value, "interrupted", now),
        )

    def finish(self, cmd_id: str, outcome: Outcome) -> None:
        self.conn.execute(
            "UPDATE commands SET status = ?, reason = ?, result = ? WHERE cmd_id = ?",
            (outcome.status.value, outcome.reason, json.dumps(dict(outcome.result or {})), cmd_id),
        )

    def prune(self) -> None:
        self.conn.execute(
            "DELETE FROM commands WHERE cmd_id IN (SELECT cmd_id FROM commands"
            " ORDER BY received DESC LIMIT -1 OFFSET ?)",
            (self.keep,),
        )


class CommandProcessor:
    """Decides and executes one command; the caller turns the outcome into a CommandAck."""

    def __init__(
        self,
        registry: CommandRegistry,
        log_: CommandLog,
        *,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.log = log_
        self.timeout = timeout
        self.clock = clock
        self.executed = 0
        self._running: dict[str, asyncio.Future[Outcome]] = {}

    async def handle(self, command: Command) -> Outcome:
        running = self._running.get(command.cmd_id)
        if running is not None:  # a copy arrived while the first is executing: wait for it
            first = await asyncio.shield(running)
            return Outcome(AckStatus.DUPLICATE, first.reason or first.status.value, first.result)
        seen = self.log.get(command.cmd_id)
        if seen is not None:
            return Outcome(AckStatus.DUPLICATE, seen.reason or seen.status.value, seen.result)
        now = self.clock()
        if command.expired(now):
            outcome = Outcome(
                AckStatus.REFUSED, f"expired at {command.expires_at.isoformat()}", None
            )
            self._record(command, now, outcome)
            return outcome
        handler = self.registry.get(command.name)
        if handler is None:
            outcome = Outcome(AckStatus.REFUSED, f"unknown command {command.name!r}", None)
            self._record(command, now, outcome)
            return outcome
        self.log.begin(command, now.timestamp())
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._running[command.cmd_id] = future
        try:
            outcome = await self._execute(handler, command)
            self.log.finish(command.cmd_id, outcome)
            self.log.prune()
            future.set_result(outcome)
        finally:
            del self._running[command.cmd_id]
            if not future.done():
                future.cancel()
        return outcome

    def _record(self, command: Command, now: datetime, outcome: Outcome) -> None:
        self.log.begin(command, now.timestamp())
        self.log.finish(command.cmd_id, outcome)

    async def _execute(self, handler: CommandHandler, command: Command) -> Outcome:
        self.executed += 1
        try:
            result = await asyncio.wait_for(handler(command), self.timeout)
        except CommandRefused as exc:
            return Outcome(AckStatus.REFUSED, exc.reason)
        except CommandFailed as exc:
            return Outcome(AckStatus.FAILED, exc.reason)
        except TimeoutError:
            return Outcome(AckStatus.FAILED, f"timed out after {self.timeout:g}s")
        except Exception as exc:  # a plugged-in handler's bug must not kill the command loop
            log.exception("handler for %s failed", command.name)
            return Outcome(AckStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500])
        return Outcome(AckStatus.OK, None, dict(result))
