"""Schema migrations (Alembic). The configuration lives here, not in an alembic.ini.

Everyone calls :func:`cloud.db.create_schema`, which runs :func:`upgrade` (``alembic upgrade
head``). To write a migration after changing tables::

    python -m cloud.migrations revision --autogenerate -m "what changed" --db sqlite:///x.db
    python -m cloud.migrations upgrade head --db postgresql+psycopg://…

(``--db`` defaults to ``$LINLI_DB_URL``.)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """``alembic upgrade head`` on ``engine``."""
    command.upgrade(alembic_config(engine=engine), revision)
