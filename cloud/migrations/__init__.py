"""Schema migrations (Alembic). The configuration lives here, not in an alembic.ini.

Everyone calls :func:`cloud.db.create_schema`, which runs :func:`upgrade` (``alembic upgrade
head``). To write a migration after changing tables::

    python -m cloud.migrations revision --autogenerate -m "what changed" --db sqlite:///x.db
    python -m cloud.migrations upgrade heads --db postgresql+psycopg://…

(``--db`` defaults to ``$LINLI_DB_URL``.)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def alembic_config(url: str | None = None, engine: Engine | None = None) -> Config:
    """An Alembic config pointing at this package; ``engine`` is reused if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def has_revisions() -> bool:
    return any((HERE / "versions").glob("*.py"))


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """``alembic upgrade heads`` on ``engine``.

    ``heads``, not ``head``: areas add their tables in revisions that branch from the same
    parent (governance, rules, …), and every branch must be applied.
    """
    command.upgrade(alembic_config(engine=engine), revision)


def migrate(engine: Engine) -> None:
    """Bring a database to the current schema (what :func:`cloud.db.create_schema` runs).

    * empty or migrated database: ``alembic upgrade head``, then ``create_all`` for tables
      registered after the newest migration (none once that table has its migration);
    * a database built by ``create_all`` before migrations existed: complete it and stamp it
      at head, so the next migration applies cleanly.
    """
    import cloud.tables  # noqa: F401  (registers every table module)
    from cloud.db import Base

    if not has_revisions():
        Base.metadata.create_all(engine)
        return
    tables = set(inspect(engine).get_table_names())
    if tables and "alembic_version" not in tables:
        Base.metadata.create_all(engine)
        command.stamp(alembic_config(engine=engine), "heads")
        return
    upgrade(engine)
    Base.metadata.create_all(engine)
