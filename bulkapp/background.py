"""Where jobs run: RQ when Redis is configured, else an in-process worker thread (or inline in tests)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "low")


class JobRunner:
    """Enqueue job functions by reference; the backend is chosen by ``JOBS_MODE``."""

    def __init__(self) -> None:
        self.app = None
        self.mode = "inline"
        self._redis = None
        self._queues: dict[str, Any] = {}
        self._local: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def init_app(self, app) -> None:
        self.app = app
        self.mode = app.config["JOBS_MODE"]
        if self.mode == "rq":
            from redis import Redis
            from rq import Queue

            self._redis = Redis.from_url(app.config["REDIS_URL"])
            self._queues = {name: Queue(name, connection=self._redis) for name in QUEUES}
        app.extensions["bulkapp_jobs"] = self

    @property
    def redis(self):
        return self._redis

    def queue(self, name: str = "default"):
        return self._queues[name]

    def enqueue(self, func: Callable[..., Any], *args: Any, queue: str = "default", **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)`` in the background. Arguments must be plain ids and values."""
        if self.mode == "rq":
            self._queues[queue].enqueue(func, *args, **kwargs)
        elif self.mode == "inline":
            func(*args, **kwargs)
        else:
            self._ensure_thread()
            self._local.put((func, args, kwargs))

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._local = self._local or queue.Queue()
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

    def join(self) -> None:
        """Wait until the in-process queue is empty (used by tests and the CLI)."""
        if self._local is not None:
            self._local.join()
