"""Jobs of the reply links: writing the buffered click counts into the database."""

from __future__ import annotations

from flask import Flask

from bulkapp.extensions import db
from bulkapp.jobs import job
from bulkapp.services.messaging import link_clicks


@job
def flush_link_clicks() -> int:
    """Periodic: add the clicks buffered since the last run to ``short_links``; returns how many. They go back
    to the buffer if the write fails, for the next run."""
    with link_clicks.taken_clicks() as clicks:
        if clicks.counts:
            link_clicks.add_clicks(clicks)
            db.session.commit()
    return clicks.total


def flush_link_clicks_at_exit(app: Flask) -> None:
    """A web process that stops cleanly writes the clicks only its memory holds (no Redis configured)."""
    with app.app_context():
        flush_link_clicks()
