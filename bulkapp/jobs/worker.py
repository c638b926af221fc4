"""The RQ worker class of the Procfile: it builds the app once, before forking a work horse per job."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from rq.worker import Worker

from bulkapp.extensions import db
from bulkapp.jobs import _app


class PreloadedWorker(Worker):
    """RQ's forking worker, started with the app already imported and configured, so that each work horse
    inherits it instead of importing and building it again (seconds per job, more than a chunk's sending)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = _app()
        os.register_at_fork(after_in_child=lambda: _drop_inherited_connections(app))


def _drop_inherited_connections(app: Flask) -> None:
    """A work horse opens its own database connections; any the parent had stay the parent's."""
    with app.app_context():
        db.engine.dispose(close=False)
