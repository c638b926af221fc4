"""The embedded in-process worker runs the same job functions as RQ, off the request thread."""

import threading

import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.extensions import db, rq
from bulkapp.jobs.accounts import send_welcome
from bulkapp.models import Notification
from tests.conftest import test_settings


def test_thread_mode_runs_jobs_in_the_background(user):
    user_id = user.id  # read through the test's own app, before another app's context is pushed
    db.session.commit()
    thread_app = create_app(test_settings(JOBS_MODE="thread"))
    with thread_app.app_context():
        rq.enqueue(send_welcome, user_id, queue="low")
        rq.join()
        worker = rq.backend()._thread
    db.session.rollback()  # a fresh read, after the worker's commit
    assert worker is not None and worker is not threading.current_thread()
    note = db.session.scalar(sa.select(Notification).where(Notification.user_id == user.id))
    assert note is not None and note.title == "Welcome to Bulkapp"


def test_a_failing_job_does_not_stop_the_worker(user):
    user_id = user.id
    db.session.commit()
    thread_app = create_app(test_settings(JOBS_MODE="thread"))
    with thread_app.app_context():
        rq.enqueue(send_welcome, "not-an-id")  # raises inside the job
        rq.enqueue(send_welcome, user_id)
        rq.join()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 1
