"""Engine set-up per backend: SQLite gets WAL, foreign keys and BEGIN IMMEDIATE write transactions."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from bulkapp.extensions import db


def configure_engine(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine, immediate=app.config.get("SQLITE_BEGIN_IMMEDIATE", True))


def _configure_sqlite(engine: sa.Engine, immediate: bool) -> None:
    """SQLite has one writer: every transaction takes the write lock up front so writers queue on
    busy_timeout instead of failing with SQLITE_BUSY when a read lock cannot be upgraded."""

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def applies_to(obj, type_: str, dialect: str) -> bool:
    """False for an index declared for another dialect only (``ddl_if``), e.g. PostgreSQL's trigram indexes."""
    condition = getattr(obj, "_ddl_if", None)
    return not (type_ == "index" and condition is not None and condition.dialect and condition.dialect != dialect)


def include_in_migrations(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic ``include_object`` hook: autogenerate compares each object only on the dialects it exists on."""
    from alembic import context

    return applies_to(obj, type_, context.get_bind().dialect.name)
