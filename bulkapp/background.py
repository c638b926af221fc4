"""Where jobs run: RQ when Redis is configured, else an in-process worker thread (or inline in tests)."""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")


def resolve_job(func: Callable[..., Any] | str) -> Callable[..., Any]:
    """A job given by reference or by its dotted path (``"bulkapp.jobs.messaging.dispatch_messages"``).

    Services name jobs by path: imports run one way (jobs call services), so a service never imports jobs/.
    """
    if isinstance(func, str):
        module, _, name = func.rpartition(".")
        return getattr(importlib.import_module(module), name)
    return func


AFTER_COMMIT_JOBS = "bulkapp_after_commit_jobs"
AFTER_COMMIT_LISTENING = "bulkapp_after_commit_listening"


def enqueue_after_commit(session: Any, func: Callable[..., Any] | str, args: tuple, queue_name: str) -> None:
    """Queue ``func(*args)`` once ``session``'s transaction commits, so a worker never looks for rows it cannot
    see yet, and nothing is queued for a rolled-back transaction. Inline jobs (tests) run at once, in this
    transaction, as every inline job does. If the queue is down at commit the job is logged and dropped: the
    rows are committed, and the periodic work that sweeps what is due picks them up."""
    backend = JobRunner.backend()
    if backend.mode == "inline":
        backend.enqueue(func, args, {}, queue_name)
        return
    session.info.setdefault(AFTER_COMMIT_JOBS, []).append((backend, func, args, queue_name))
    if not session.info.get(AFTER_COMMIT_LISTENING):
        sa.event.listen(session, "after_commit", _enqueue_committed)
        sa.event.listen(session, "after_rollback", _forget_rolled_back)
        session.info[AFTER_COMMIT_LISTENING] = True


def _enqueue_committed(session: Any) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released: the work is not committed yet
        return
    jobs, session.info[AFTER_COMMIT_JOBS] = session.info.get(AFTER_COMMIT_JOBS, []), []
    for backend, func, args, queue_name in jobs:
        try:
            backend.enqueue(func, args, {}, queue_name)
        except Exception:  # Redis down: what the job would handle is committed; periodic work sweeps it up
            log.exception("could not queue %s%r; the periodic sweep will handle it", func, args)


def _forget_rolled_back(session: Any) -> None:
    if not session.in_nested_transaction():
        session.info[AFTER_COMMIT_JOBS] = []


class _Backend:
    """One app's job backend, chosen by its ``JOBS_MODE``: ``rq``, ``thread`` or ``inline``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.mode = app.config["JOBS_MODE"]
        self.redis = None
        self.queues: dict[str, Any] = {}
        self._local: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._lock = threading.Lock()
        if self.mode == "rq":
            from redis import Redis
            from rq import Queue

            self.redis = Redis.from_url(app.config["REDIS_URL"])
            self.queues = {name: Queue(name, connection=self.redis) for name in QUEUES}

    def enqueue(self, func: Callable[..., Any] | str, args: tuple, kwargs: dict, queue_name: str) -> None:
        func = resolve_job(func)
        if self.mode == "rq":
            self.queues[queue_name].enqueue(func, *args, **kwargs)
        elif self.mode == "inline":
            func(*args, **kwargs)
        else:
            self._ensure_thread()
            self._local.put((func, args, kwargs))

    def start_ticker(self) -> None:
        """Embedded mode: enqueue the periodic jobs on their intervals from a daemon thread."""
        with self._lock:
            if self._ticker is not None:
                return
            self._ticker = threading.Thread(target=self._tick, name="bulkapp-ticker", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        from bulkapp.jobs.periodic import PERIODIC

        next_run = {task.path: 0.0 for task in PERIODIC}
        while True:
            now = time.monotonic()
            for task in PERIODIC:
                if now >= next_run[task.path]:
                    next_run[task.path] = now + task.every_seconds
                    self.enqueue(task.function(), (), {}, task.queue)
            time.sleep(1)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="bulkapp-jobs", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            func, args, kwargs = self._local.get()
            try:
                with self.app.app_context():
                    func(*args, **kwargs)
            except Exception:  # a failed job must not stop the embedded worker
                log.exception("background job %s failed", getattr(func, "__name__", func))
            finally:
                self._local.task_done()


class JobRunner:
    """Enqueue job functions by reference on the current app's backend."""

    def init_app(self, app: Flask) -> None:
        backend = _Backend(app)
        app.extensions["bulkapp_jobs"] = backend
        if backend.mode == "thread" and app.config.get("EMBEDDED_SCHEDULER", True):
            # Periodic work starts with the first request served, not with CLI commands.
            app.before_request(backend.start_ticker)

    @staticmethod
    def backend(app: Flask | None = None) -> _Backend:
        return (app or current_app).extensions["bulkapp_jobs"]

    def queue(self, name: str = "default"):
        """The RQ queue of that name (RQ mode only)."""
        return self.backend().queues[name]

    def enqueue(self, func: Callable[..., Any] | str, *args: Any, queue: str = "default", **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` in the background (``func`` by reference, or by dotted path from a
        service). Arguments must be plain ids and values."""
        self.backend().enqueue(func, args, kwargs, queue)

    def join(self) -> None:
        """Wait until the in-process queue is empty (tests and the CLI)."""
        self.backend()._local.join()
