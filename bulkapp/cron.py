"""RQ cron configuration (`rq cron bulkapp.cron`): registers every periodic job of bulkapp.jobs.periodic."""

from rq import cron

from bulkapp.jobs.periodic import PERIODIC

for task in PERIODIC:
    cron.register(task.function(), task.queue, interval=task.every_seconds)
