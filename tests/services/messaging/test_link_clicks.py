"""Buffered reply-link clicks: counted in memory or Redis, written to short_links by a flush, each click once."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.extensions import db
from bulkapp.jobs.shortlinks import flush_link_clicks
from bulkapp.models import ShortLink
from bulkapp.services.messaging import link_clicks
from bulkapp.services.messaging.compose import send_message
from bulkapp.services.messaging.link_clicks import Clicks, MemoryBuffer, RedisBuffer
from tests.conftest import require, test_settings


@pytest.fixture
def link(tenant) -> ShortLink:
    message = send_message(tenant.id, to="0712345678", body="Your order is ready", channel="sms")
    db.session.commit()
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))


@pytest.fixture
def memory_app():
    """An app of its own, so its in-memory buffer holds only this test's clicks."""
    return create_app(test_settings(REDIS_URL=None))


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    require(bool(url), "REDIS_URL is not set")
    from redis import Redis

    try:
        Redis.from_url(url).delete(link_clicks.COUNTS_KEY, link_clicks.LAST_KEY)
    except Exception as exc:  # noqa: BLE001 - any failure means no usable Redis
        require(False, f"Redis at {url} does not answer: {exc}")
    return url


def stored(link_id: int) -> tuple[int, datetime | None]:
    db.session.rollback()  # a new snapshot: see what the other app committed
    row = db.session.get(ShortLink, link_id)
    return row.clicks, row.last_clicked_at


def test_views_are_counted_in_the_buffer_and_flushed_exactly_once(memory_app, link):
    memory_app.test_client().get(f"/x/{link.code}")
    with memory_app.app_context():
        link_clicks.record_click(link.id, at=1_800_000_000.0)
        link_clicks.record_click(link.id, at=1_700_000_000.0)
    assert stored(link.id) == (0, None)  # a view writes nothing
    with memory_app.app_context():
        assert flush_link_clicks() == 3
        assert flush_link_clicks() == 0
    clicks, last = stored(link.id)
    assert clicks == 3 and last >= datetime.fromtimestamp(1_800_000_000, UTC)


def test_last_clicked_at_never_moves_back(memory_app, link):
    with memory_app.app_context():
        link_clicks.record_click(link.id, at=2_000_000_000.0)
        flush_link_clicks()
        link_clicks.record_click(link.id, at=1_000_000_000.0)  # a late flush of an older click
        flush_link_clicks()
    assert stored(link.id) == (2, datetime.fromtimestamp(2_000_000_000, UTC))


def test_a_failed_flush_puts_its_clicks_back_for_the_next(memory_app, link):
    with memory_app.app_context():
        link_clicks.record_click(link.id)
        link_clicks.record_click(link.id)
        with pytest.raises(RuntimeError), link_clicks.taken_clicks() as clicks:
            link_clicks.add_clicks(clicks)
            raise RuntimeError("the commit failed")
        db.session.rollback()
        link_clicks.record_click(link.id)
        assert flush_link_clicks() == 3
    assert stored(link.id)[0] == 3


def test_clicks_on_a_deleted_link_are_dropped(memory_app, link):
    with memory_app.app_context():
        link_clicks.record_click(link.id)
        link_clicks.record_click(link.id + 1000)
        assert flush_link_clicks() == 2
    assert stored(link.id)[0] == 1


def _hammer(buffer: MemoryBuffer | RedisBuffer, adders: int = 4, each: int = 250) -> int:
    """Add clicks from several threads while another takes them; returns how many were taken in total."""
    taken: list[Clicks] = []
    done = threading.Event()

    def add() -> None:
        for i in range(each):
            buffer.add(1 + i % 3, time.time())

    def take() -> None:
        while not done.is_set():
            taken.append(buffer.take())
        taken.append(buffer.take())

    taker = threading.Thread(target=take)
    taker.start()
    threads = [threading.Thread(target=add) for _ in range(adders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    taker.join()
    return sum(clicks.total for clicks in taken)


def test_the_memory_buffer_counts_every_click_once_under_concurrency():
    assert _hammer(MemoryBuffer()) == 1000


@pytest.mark.redis
def test_the_redis_buffer_counts_every_click_once_under_concurrency(redis_url):
    assert _hammer(RedisBuffer(redis_url), adders=2, each=200) == 400


@pytest.mark.redis
def test_with_redis_views_are_counted_there_and_any_process_flushes_them(redis_url, link):
    web = create_app(test_settings(REDIS_URL=redis_url))
    worker = create_app(test_settings(REDIS_URL=redis_url))
    for _ in range(3):
        assert web.test_client().get(f"/x/{link.code}").status_code == 200
    assert stored(link.id)[0] == 0
    with worker.app_context():
        assert flush_link_clicks() == 3
        assert flush_link_clicks() == 0
    assert stored(link.id)[0] == 3


@pytest.mark.redis
def test_with_batched_pushes_a_view_costs_no_redis_call_and_every_click_arrives(redis_url, link):
    web = create_app(test_settings(REDIS_URL=redis_url, LINK_CLICK_PUSH_SECONDS=2))
    buffer = web.extensions[link_clicks.EXTENSION]
    for _ in range(4):
        assert web.test_client().get(f"/x/{link.code}").status_code == 200
    assert buffer.redis.hget(link_clicks.COUNTS_KEY, str(link.id)) is None  # counted in memory, not yet pushed
    deadline = time.monotonic() + 6
    while buffer.redis.hget(link_clicks.COUNTS_KEY, str(link.id)) != b"4" and time.monotonic() < deadline:
        time.sleep(0.02)  # the web process's own thread adds its counted views to Redis
    assert buffer.redis.hget(link_clicks.COUNTS_KEY, str(link.id)) == b"4"
    with web.app_context():
        assert flush_link_clicks() == 4
    assert stored(link.id)[0] == 4


@pytest.mark.redis
def test_batched_clicks_wait_in_memory_while_redis_is_unreachable(redis_url, link):
    from redis import Redis

    buffer = RedisBuffer("redis://127.0.0.1:9/0", push_seconds=3600)  # nothing listens; the pusher sleeps
    buffer.add(link.id, 1_800_000_000.0)
    buffer.add(link.id, 1_800_000_001.0)
    with pytest.raises(Exception):  # noqa: B017 - redis.ConnectionError
        buffer.push()
    buffer.redis = Redis.from_url(redis_url)  # Redis is back
    assert buffer.push() == 2 and buffer.push() == 0
    assert buffer.take().counts == {link.id: 2}


def test_an_unreachable_redis_costs_speed_not_clicks(link):
    app = create_app(test_settings(REDIS_URL="redis://127.0.0.1:9/0"))  # the discard port: nothing listens
    assert app.test_client().get(f"/x/{link.code}").status_code == 200
    assert stored(link.id)[0] == 1
