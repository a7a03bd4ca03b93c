"""Calling into the event loop from sync route handlers (FastAPI runs them in threads)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class LoopBound:
    """Remembers the loop it was made on; :meth:`_in_loop` runs a callable there.

    asyncio queues are not thread-safe: a call from a worker thread is handed to the loop with
    ``call_soon_threadsafe``; a call from the loop thread runs at once.
    """

    def __init__(self) -> None:
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.get_ident()

    def bind_loop(self) -> None:
        """Belong to the running loop (for objects built in another thread)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def _in_loop(self, fn: Callable[[], None]) -> None:
        if self._loop is None or threading.get_ident() == self._thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)
