"""Fair turns for SQLite writers: first come, first served; readers never wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from cloud.api.writegate import TicketLock, install
from cloud.db import make_engine


def test_ticket_lock_serves_in_arrival_order_and_skips_who_gave_up() -> None:
    lock = TicketLock()
    assert lock.acquire(1) == 0
    order: list[str] = []

    def waiter(name: str, timeout: float) -> None:
        if lock.acquire(timeout) is not None:
            order.append(name)
            lock.release()

    impatient = threading.Thread(target=waiter, args=("impatient", 0.05))
    impatient.start()
    time.sleep(0.02)
    threads = [threading.Thread(target=waiter, args=(n, 5)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
        time.sleep(0.02)  # arrive in this order
    impatient.join()
    lock.release()
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c"]  # the impatient one gave up and did not block the others


def test_sqlite_writers_take_turns_and_readers_do_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    lock = install(engine)
    assert lock is not None
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    writing = threading.Event()
    done = threading.Event()

    def slow_writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            writing.set()
            done.wait(5)

    holder = threading.Thread(target=slow_writer)
    holder.start()
    assert writing.wait(5)
    with engine.connect() as conn:  # a reader is not held up by the writer's turn
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    assert lock.acquire(0.1) is None  # a second writer would wait for its turn
    done.set()
    holder.join(5)
    with engine.begin() as conn:  # and gets it once the first one committed
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    engine.dispose()
    assert install(make_engine("postgresql+psycopg://u@127.0.0.1:1/x")) is None
