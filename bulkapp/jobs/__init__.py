"""RQ entry points, one module per area: thin, ids-only arguments; each owns its transaction."""

from __future__ import annotations

from functools import wraps

from flask import Flask, has_app_context

from bulkapp.extensions import db

_worker_app: Flask | None = None


def _app() -> Flask:
    """The app of a worker process, built once from the environment."""
    global _worker_app
    if _worker_app is None:
        from bulkapp import create_app

        _worker_app = create_app()
    return _worker_app


def job(func):
    """Run ``func`` inside an app context and commit its work (roll back on error)."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return _run(func, args, kwargs)
        with _app().app_context():
            try:
                return _run(func, args, kwargs)
            finally:
                db.session.remove()

    return wrapper


def _run(func, args, kwargs):
    try:
        result = func(*args, **kwargs)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise
