"""Reply-link click counts, buffered: a view adds one to a counter (in Redis when ``REDIS_URL`` is set, else in
this process) and the periodic job ``flush_link_clicks`` adds the sums to ``short_links``. A busy link then costs
one write per flush interval instead of a write transaction per view."""

from __future__ import annotations

import logging
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
    so concurrent flushes never take the same click twice."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.redis = Redis.from_url(url)

    def add(self, link_id: int, at: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(COUNTS_KEY, str(link_id), 1)
        pipe.hset(LAST_KEY, str(link_id), repr(at))
        pipe.execute()

    def take(self) -> Clicks:
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
    app.extensions[EXTENSION] = RedisBuffer(url) if url else MemoryBuffer()


def _buffer() -> MemoryBuffer | RedisBuffer:
    return current_app.extensions[EXTENSION]


def record_click(link_id: int, at: float | None = None) -> bool:
    """Count one view of a link's reply form in the buffer. With Redis unreachable it is written at once instead
    (an atomic increment) and True says the caller must commit: an outage costs speed, not clicks."""
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
