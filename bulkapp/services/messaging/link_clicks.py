"""Reply-link click counts, buffered: a view adds one to a counter (in Redis when ``REDIS_URL`` is set, else in
this process) and the periodic job ``flush_link_clicks`` adds the sums to ``short_links``. A busy link then costs
one write per flush interval instead of a write transaction per view."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, current_app

from bulkapp.extensions import db
from bulkapp.models import ShortLink

log = logging.getLogger(__name__)

EXTENSION = "bulkapp_link_clicks"
COUNTS_KEY = "bulkapp:link-clicks:counts"
LAST_KEY = "bulkapp:link-clicks:last"


@dataclass
class Clicks:
    """Clicks taken out of a buffer: how many per link id and when the latest was (unix seconds)."""

    counts: dict[int, int] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class MemoryBuffer:
    """This process's counters. A process that exits cleanly flushes them (see ``init_app``); a killed one loses
    at most the clicks since the last flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[int] = Counter()
        self._last: dict[int, float] = {}

    def add(self, link_id: int, at: float) -> None:
        with self._lock:
            self._counts[link_id] += 1
            self._last[link_id] = max(at, self._last.get(link_id, 0.0))

    def take(self) -> Clicks:
        with self._lock:
            clicks = Clicks(dict(self._counts), self._last)
            self._counts, self._last = Counter(), {}
        return clicks

    def put_back(self, clicks: Clicks) -> None:
        with self._lock:
            self._counts.update(clicks.counts)
            for link_id, at in clicks.last.items():
                self._last[link_id] = max(at, self._last.get(link_id, 0.0))


class RedisBuffer:
    """Counters in two Redis hashes shared by every web process; taking them is one MULTI/EXEC (read and delete),
    so concurrent flushes never take the same click twice.

    With ``push_seconds`` > 0 a view costs no Redis call: the process counts its views in memory and a thread of
    its own adds them to Redis that often, in one round trip (a process that stops cleanly pushes what it holds;
    one killed loses at most that interval; while Redis is unreachable the clicks wait in memory). With 0 each
    view is added at once."""

    def __init__(self, url: str, push_seconds: float = 0.0) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url)
        self.push_seconds = push_seconds
        self.pending = MemoryBuffer()
        self._pusher_pid: int | None = None
        self._lock = threading.Lock()
        if push_seconds > 0:
            os.register_at_fork(after_in_child=self._forget_parent)
            atexit.register(self._push_quietly)

    def add(self, link_id: int, at: float) -> None:
        if self.push_seconds <= 0:
            self._push(Clicks({link_id: 1}, {link_id: at}))
            return
        self.pending.add(link_id, at)
        if self._pusher_pid != os.getpid():
            self._start_pusher()

    def push(self) -> int:
        """Add the views this process has counted to Redis now; returns how many (kept for later on failure)."""
        clicks = self.pending.take()
        if clicks.counts:
            try:
                self._push(clicks)
            except BaseException:
                self.pending.put_back(clicks)
                raise
        return clicks.total

    def _push(self, clicks: Clicks) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for link_id, count in clicks.counts.items():
            pipe.hincrby(COUNTS_KEY, str(link_id), count)
        for link_id, at in clicks.last.items():
            pipe.hset(LAST_KEY, str(link_id), repr(at))
        pipe.execute()

    def _start_pusher(self) -> None:
        with self._lock:
            if self._pusher_pid != os.getpid():
                self._pusher_pid = os.getpid()
                threading.Thread(target=self._push_forever, name="link-click-pusher", daemon=True).start()

    def _push_forever(self) -> None:
        while True:
            time.sleep(self.push_seconds)
            self._push_quietly()

    def _push_quietly(self) -> None:
        try:
            self.push()
        except Exception as exc:  # redis.RedisError and socket errors alike: the clicks wait for the next push
            log.warning("link clicks could not reach Redis (%s); they wait in memory", exc)

    def _forget_parent(self) -> None:
        """A forked child starts without the parent's counted views (the parent pushes those) or pusher."""
        self.pending = MemoryBuffer()
        self._pusher_pid = None
        self._lock = threading.Lock()

    def take(self) -> Clicks:
        self._push_quietly()  # this process's own counted views too
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(COUNTS_KEY)
        pipe.hgetall(LAST_KEY)
        pipe.delete(COUNTS_KEY, LAST_KEY)
        counts, last, _ = pipe.execute()
        return Clicks({int(k): int(v) for k, v in counts.items()}, {int(k): float(v) for k, v in last.items()})

    def put_back(self, clicks: Clicks) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for link_id, count in clicks.counts.items():
            pipe.hincrby(COUNTS_KEY, str(link_id), count)
        for link_id, at in clicks.last.items():
            pipe.hsetnx(LAST_KEY, str(link_id), repr(at))  # a click since the take is newer: keep it
        pipe.execute()


def init_app(app: Flask) -> None:
    """Give the app its buffer: Redis when configured, else this process's memory."""
    url = app.config.get("REDIS_URL")
    push_seconds = app.config["LINK_CLICK_PUSH_SECONDS"]
    app.extensions[EXTENSION] = RedisBuffer(url, push_seconds) if url else MemoryBuffer()


def _buffer() -> MemoryBuffer | RedisBuffer:
    return current_app.extensions[EXTENSION]


def record_click(link_id: int, at: float | None = None) -> bool:
    """Count one view of a link's reply form in the buffer. If that fails (Redis unreachable, when views go to it
    at once) it is written to the database instead and True says the caller must commit: an outage costs speed,
    not clicks."""
    at = time.time() if at is None else at
    try:
        _buffer().add(link_id, at)
    except Exception as exc:  # redis.RedisError and socket errors alike: never lose the click or the page
        log.warning("link click buffer unavailable (%s); writing the click directly", exc)
        add_clicks(Clicks({link_id: 1}, {link_id: at}))
        return True
    return False


@contextmanager
def taken_clicks() -> Iterator[Clicks]:
    """Take every buffered click for writing. Taking is atomic, so concurrent flushes never share a click; if the
    block fails (the write or its commit) the clicks go back into the buffer for the next flush."""
    clicks = _buffer().take()
    try:
        yield clicks
    except BaseException:
        _buffer().put_back(clicks)
        raise


def add_clicks(clicks: Clicks) -> None:
    """Add ``clicks`` to their links' ``clicks`` and move ``last_clicked_at`` forward (one executemany; links
    deleted meanwhile are skipped). The caller commits."""
    if not clicks.counts:
        return
    links = ShortLink.__table__
    at = sa.bindparam("at", type_=links.c.last_clicked_at.type)
    # Core on the session's connection: an ORM update with many parameter sets would mean "by primary key".
    db.session.connection().execute(
        links.update()
        .where(links.c.id == sa.bindparam("link_id"))
        .values(
            clicks=links.c.clicks + sa.bindparam("n"),
            last_clicked_at=sa.case((links.c.last_clicked_at > at, links.c.last_clicked_at), else_=at),
        ),
        [
            {"link_id": link_id, "n": n, "at": datetime.fromtimestamp(clicks.last[link_id], UTC)}
            for link_id, n in sorted(clicks.counts.items())
        ],
    )
