"""The click flush runs periodically, and a web server that stops cleanly writes the clicks only it holds."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.jobs.periodic import PERIODIC
from bulkapp.models import ShortLink
from bulkapp.services.messaging.compose import send_message
from tests.conftest import database_url, test_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_flush_is_a_periodic_job():
    task = next(t for t in PERIODIC if t.path == "bulkapp.jobs.shortlinks:flush_link_clicks")
    assert task.every_seconds <= 10 and callable(task.function())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_gunicorn_writes_its_buffered_clicks_when_stopped(tenant):
    message = send_message(tenant.id, to="0712345678", body="Your order is ready", channel="sms")
    db.session.commit()
    link = db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))
    settings = test_settings()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # clicks in the server's memory
    env.update(
        DATABASE_URL=database_url(),
        SECRET_KEY=settings["SECRET_KEY"],
        FERNET_KEYS=settings["FERNET_KEYS"],
        JOBS_MODE="inline",  # no ticker: only the exit can write the clicks
        RATELIMIT_STORAGE_URI="memory://",
    )
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "wsgi:app", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(port, "/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert [_get(port, f"/x/{link.code}") for _ in range(4)] == [200] * 4
        db.session.rollback()
        assert db.session.get(ShortLink, link.id).clicks == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(ShortLink, link.id).clicks == 4
