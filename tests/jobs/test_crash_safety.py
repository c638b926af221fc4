"""Crash safety: a real ``rq worker`` killed with SIGKILL in the middle of a 2,000-message Onfon batch.

The job runs again (RQ is at-least-once), a fresh worker finishes it, the sweeper settles what the dead worker
left in ``sending``: nobody got two messages, every message ended sent, failed or unknown, and the money adds up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.extensions import db, rq
from bulkapp.jobs.messaging import dispatch_messages
from bulkapp.models import Channel, Client, Message, WalletTransaction
from bulkapp.services.billing import wallet
from bulkapp.services.messaging import dispatch
from tests.conftest import database_url, ledger_balance, require, test_settings
from tests.simulators.base import SimRequest, SimResponse
from tests.simulators.onfon import OnfonSimulator

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 2000
PRICE = Decimal("0.80")
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


class OnfonThatHangs(OnfonSimulator):
    """The Onfon simulator, except that it answers its ``hang_on``-th send request late, after it has accepted
    the messages: the worker is killed while it waits for that answer."""

    def __init__(self, hang_on: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hang_on = hang_on
        self.sends = 0
        self.hanging = threading.Event()

    def handle(self, request: SimRequest) -> SimResponse:
        response = super().handle(request)
        if request.path.endswith("/SendBulkSMS"):
            with self.lock:
                self.sends += 1
                hang = self.sends == self.hang_on
            if hang:
                response.delay = 5.0
                self.hanging.set()
        return response


def worker_processes(worker_pid: int) -> list[int]:
    """The worker and its work-horses (RQ puts each horse in its own process group, so one killpg is not
    enough): the horses first."""
    horses = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == worker_pid:
            horses.append(int(stat.parent.name))
    return [*horses, worker_pid]


def start_worker(redis_url: str, log: Path, *, burst: bool) -> subprocess.Popen:
    """``rq worker`` as a subprocess, its output appended to ``log``."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        SECRET_KEY=test_settings()["SECRET_KEY"],
        FERNET_KEYS=test_settings()["FERNET_KEYS"],
        PYTHONPATH=str(ROOT),
        WEBHOOK_ALLOW_PRIVATE_URLS="1",  # the Onfon simulator listens on loopback
    )
    command = [str(Path(sys.executable).with_name("rq")), "worker", "--url", redis_url, "high"]
    if burst:
        command.insert(2, "--burst")
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def numbers() -> list[str]:
    """2,000 distinct numbers: most plain, every 40th one the simulator calls invalid (…99) and every 50th one
    opted out (…88); none of its whole-request failures (…55, …66, …77)."""
    out = []
    for i in range(TOTAL):
        base = 712_000_000 + i * 100
        ending = 99 if i % 40 == 7 else 88 if i % 50 == 9 else 10 + i % 40
        out.append(f"+254{base + ending}")
    assert len(set(out)) == TOTAL
    return out


def make_batch(client_id: int) -> list[int]:
    """What a campaign does: insert the messages, charge each one ``message:<id>``."""
    messages = [
        Message(
            client_id=client_id,
            recipient=number,
            body="Karibu! Offer ends Friday.",
            channel="sms",
            direction="outbound",
            status="pending",
            segments=1,
            cost=PRICE,
            meta={"units": 1},
            attempts=0,
        )
        for number in numbers()
    ]
    db.session.add_all(messages)
    db.session.flush()
    ids = [message.id for message in messages]
    for message_id in ids:
        wallet.debit(client_id, PRICE, reference=f"message:{message_id}")
    db.session.commit()
    return ids


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_worker_killed_mid_batch_sends_nobody_twice_and_the_money_adds_up(redis_url, tenant, tmp_path):
    client_id = tenant.id
    log = tmp_path / "workers.log"
    with OnfonThatHangs(hang_on=6, balance=Decimal(10**6)) as sim:
        sim.latency = 0.05
        client = db.session.get(Client, client_id)
        client.is_test_mode = False
        db.session.add(
            Channel(
                client_id=client_id,
                name="sms",
                provider="onfon",
                credentials=sim.credentials,
                config=sim.config(),
                active=True,
                webhook_token="crash-test",
            )
        )
        wallet.credit(client_id, "2000.00", reference="crash-test-topup")
        ids = make_batch(client_id)
        start_balance = Decimal("2100.00")

        rq_app = create_app(test_settings(JOBS_MODE="rq", REDIS_URL=redis_url))
        with rq_app.app_context():
            rq.queue("high").empty()
            rq.enqueue(dispatch_messages, client_id, ids, queue="high")
        first = start_worker(redis_url, log, burst=False)
        try:
            # Onfon has accepted the 6th batch of 100 and the worker waits for the answer: kill -9 now.
            assert sim.hanging.wait(timeout=90), log.read_text()[-4000:]
        finally:
            processes = worker_processes(first.pid)
            for pid in processes:
                os.kill(pid, signal.SIGKILL)
            first.wait(timeout=30)
        assert len(processes) == 2, "the work-horse was not found, so it was not killed"
        assert len(sim.submissions) == 600  # 1,400 messages not even tried yet

        # RQ runs an abandoned job again; so does this test, on a fresh worker.
        with rq_app.app_context():
            rq.enqueue(dispatch_messages, client_id, ids, queue="high")
        second = start_worker(redis_url, log, burst=True)
        assert second.wait(timeout=180) == 0, log.read_text()[-4000:]
        db.session.commit()  # a fresh snapshot, after the workers' commits
        left_in_sending = dispatch.sweep_stuck_messages(timedelta(0))
        db.session.commit()

    # Nobody got two messages; the unknown ones are exactly the batch whose answer was lost.
    assert sim.duplicate_recipients() == {}
    assert len(left_in_sending) == 100  # the batch whose answer never came back: unknown, not resent
    rows = db.session.execute(sa.select(Message.id, Message.recipient, Message.status, Message.cost)).all()
    by_status: dict[str, set[str]] = {}
    for _id, recipient, status, _cost in rows:
        by_status.setdefault(status, set()).add(recipient.lstrip("+"))
    assert set(by_status) <= {"sent", "failed", "unknown"}, by_status.keys()
    assert sum(len(v) for v in by_status.values()) == TOTAL
    accepted = {s.recipient for s in sim.accepted()}
    sent, unknown, failed = (by_status.get(s, set()) for s in ("sent", "unknown", "failed"))
    assert sent <= accepted <= sent | unknown
    refused = {n.lstrip("+") for n in numbers() if n.endswith(("99", "88"))}
    assert failed == refused - unknown  # refused numbers in the lost answer stay unknown (and charged)

    # Money: charged per message, refunded once per rejected one; what stays charged is the accepted units.
    ledger = db.session.execute(
        sa.select(WalletTransaction.type, sa.func.count(), sa.func.sum(WalletTransaction.amount))
        .where(WalletTransaction.client_id == client_id, WalletTransaction.reference.like("%message:%"))
        .group_by(WalletTransaction.type)
    ).all()
    totals = {kind: (n, total) for kind, n, total in ledger}
    assert totals["deduction"] == (TOTAL, -PRICE * TOTAL)
    assert totals["refund"] == (len(failed), PRICE * len(failed))
    kept = len(sent) + len(unknown)
    assert -(totals["deduction"][1] + totals["refund"][1]) == kept * PRICE
    db.session.expire_all()
    balance = db.session.get(Client, client_id).balance
    assert balance == start_balance - kept * PRICE == ledger_balance(client_id)
