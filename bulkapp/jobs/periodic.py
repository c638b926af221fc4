"""Periodic work, declared once: RQ's cron (bulkapp/cron.py) and the embedded ticker both read it.

The database, not Redis, says what is due: each job looks for due rows, so a missed or doubled tick
only means the next one finds less to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Periodic:
    path: str  # "module:function" of a @job function taking no arguments
    queue: str
    every_seconds: int

    def function(self) -> Callable[[], object]:
        module, name = self.path.split(":")
        return getattr(import_module(module), name)


PERIODIC: tuple[Periodic, ...] = (
    Periodic("bulkapp.jobs.topups:reconcile_pending_topups", "low", 120),
    Periodic("bulkapp.jobs.notifications:email_notifications", "low", 60),
    Periodic("bulkapp.jobs.contacts:resume_stalled_imports", "low", 300),
    Periodic("bulkapp.jobs.messaging:retry_due_messages", "high", 15),
    Periodic("bulkapp.jobs.messaging:sweep_stuck_messages", "low", 120),
    Periodic("bulkapp.jobs.channels:sync_provider_balances", "low", 900),
    Periodic("bulkapp.jobs.webhooks:dispatch_webhooks", "low", 10),
    Periodic("bulkapp.jobs.campaigns:campaign_clock", "default", 20),
    Periodic("bulkapp.jobs.stats:refresh_stats", "low", 60),
    Periodic("bulkapp.jobs.shortlinks:flush_link_clicks", "low", 10),
)
