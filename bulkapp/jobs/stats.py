"""The periodic refresh of the dashboard's hourly roll-ups (on the "low" queue)."""

from __future__ import annotations

from bulkapp.extensions import db
from bulkapp.jobs import job


@job
def refresh_stats() -> dict[str, int]:
    """Periodic: recompute the roll-up hours whose messages or ledger rows changed since the last run (every
    hour on the first run). Each roll-up commits on its own; a missed tick leaves the dashboard exact, only
    with a longer live tail."""
    from bulkapp.services.insights import hourly_stats as message_stats

    recomputed = {}
    for rollup in message_stats.ROLLUPS:
        recomputed[rollup.name] = message_stats.refresh(rollup)
        db.session.commit()
    return recomputed
