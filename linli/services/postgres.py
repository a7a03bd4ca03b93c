"""A real PostgreSQL server (Debian's postgresql) on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from linli.services.base import ServiceError, chown_for, find_binary, free_port, tail

PG_BIN_DIRS = tuple(f"/usr/lib/postgresql/{v}/bin" for v in (17, 16, 15, 14, 13))


class Postgres:
    """A throwaway cluster with trust auth on 127.0.0.1; ``url`` is a SQLAlchemy URL.

    PostgreSQL refuses to run as root, so as root the cluster is owned by and run as the
    ``postgres`` user that Debian's package creates.
    """

    def __init__(self, port: int | None = None) -> None:
        self.initdb = find_binary("initdb", *PG_BIN_DIRS)
        self.pg_ctl = find_binary("pg_ctl", *PG_BIN_DIRS)
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="linli-pg-")
        self.dir = Path(self._tmp.name)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.user = "postgres"
        self._as_postgres = False

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: list[str]) -> None:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"{' '.join(argv)} failed ({result.returncode}): {result.stderr or result.stdout}"
                f"\n{tail(self.log)}"
            )

    def start(self) -> None:
        if os.geteuid() == 0:
            self.log.touch()
            self.data.mkdir(exist_ok=True)
            if not chown_for("postgres", self.dir, self.data, self.log):
                raise ServiceError("running as root but there is no 'postgres' user")
            self._as_postgres = True
        else:
            self.user = os.environ.get("USER", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                [
                    self.initdb,
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    self.user,
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c fsync=on -c max_connections=200 -c shared_buffers=128MB"
        )
        self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        """Create a database and return its SQLAlchemy URL (tests get one each)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is chosen by the caller's test
        return self.url(name)

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop("immediate")
        finally:
            self._tmp.cleanup()
