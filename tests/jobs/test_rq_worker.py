"""A real job through real Redis, run by a real ``rq worker --burst`` subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.extensions import db, rq
from bulkapp.jobs.accounts import send_welcome
from bulkapp.models import Notification
from tests.conftest import database_url, require, test_settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    require(bool(url), "REDIS_URL is not set")
    from redis import Redis

    try:
        Redis.from_url(url).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable Redis
        require(False, f"Redis at {url} does not answer: {exc}")
    return url


def run_worker(redis_url: str, *queues: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        SECRET_KEY=test_settings()["SECRET_KEY"],
        FERNET_KEYS=test_settings()["FERNET_KEYS"],
        PYTHONPATH=str(ROOT),
    )
    rq = Path(sys.executable).with_name("rq")
    return subprocess.run(
        [str(rq), "worker", "--burst", *options, "--url", redis_url, *queues],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_enqueued_job_runs_in_a_real_worker(redis_url, user):
    user_id = user.id
    db.session.commit()  # the worker is another process: leave nothing locked or unseen
    rq_app = create_app(test_settings(JOBS_MODE="rq", REDIS_URL=redis_url))
    with rq_app.app_context():
        queue = rq.queue("low")
        queue.empty()
        rq.enqueue(send_welcome, user_id, queue="low")
        (job,) = queue.jobs
    result = run_worker(redis_url, "low")
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == "finished"
    note = db.session.scalar(sa.select(Notification).where(Notification.user_id == user.id))
    assert note is not None and note.title == "Welcome to Bulkapp" and job.return_value() == note.id
