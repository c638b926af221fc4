"""Migrations build the models' exact schema from empty, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bulkapp import create_app
from bulkapp.database import applies_to
from bulkapp.extensions import db
from tests.conftest import test_settings

ROOT = Path(__file__).resolve().parent.parent


def _upgrade_and_compare(url: str) -> list:
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="x", FERNET_KEYS=test_settings()["FERNET_KEYS"])
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    app = create_app(test_settings(SQLALCHEMY_DATABASE_URI=url))
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, *_: applies_to(obj, type_, conn.dialect.name),
            },
        )
        diff = compare_metadata(context, db.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert {"clients", "users", "messages", "wallet_transactions", "alembic_version"} <= tables
    return diff


def test_upgrade_from_empty_on_sqlite_matches_the_models(tmp_path):
    assert _upgrade_and_compare(f"sqlite:///{tmp_path / 'migrated.db'}") == []


def test_upgrade_from_empty_on_postgresql_matches_the_models():
    base = os.environ.get("TEST_POSTGRES_URL") or os.environ.get("TEST_DATABASE_URL") or ""
    if not base.startswith(("postgresql", "postgres:")):
        from tests.conftest import require

        require(False, "TEST_DATABASE_URL does not point at PostgreSQL")
    from bulkapp.config import normalise_database_url

    base = normalise_database_url(base)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"bulkapp_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
        assert _upgrade_and_compare(url) == []
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.parametrize("given", ["postgres://u:p@h:5432/d", "postgresql://u:p@h:5432/d"])
def test_heroku_style_urls_are_accepted(given):
    from bulkapp.config import normalise_database_url

    assert normalise_database_url(given) == "postgresql+psycopg://u:p@h:5432/d"
