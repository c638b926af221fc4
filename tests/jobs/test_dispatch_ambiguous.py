"""Dispatch when the vendor's answer is ambiguous, through real simulators on loopback: a message missing from
the vendor's results, a whole-batch error (unclear or busy), a per-message deferral. What may have reached the
vendor is ``unknown``: never sent again, never refunded. A deferral goes back to pending with its next attempt
time, and is sent once that time has come."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.messaging import dispatch_messages as dispatch_job
from bulkapp.jobs.messaging import retry_due_messages
from bulkapp.models import Channel, Client, Message
from tests.jobs.test_dispatch import IDLE, balanced, fresh, pending, refunds
from tests.simulators.base import SimResponse
from tests.simulators.onfon import OnfonSimulator

pytest_plugins = ["tests.simulators.twilio"]


class ForgetfulOnfon(OnfonSimulator):
    """Onfon that accepts every message but leaves the numbers in ``forget`` out of its ``Data`` answer."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.forget: set[str] = set()

    def handle(self, request) -> SimResponse:
        response = super().handle(request)
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("Data"), list) and self.forget:
            body["Data"] = [item for item in body["Data"] if item.get("MobileNumber") not in self.forget]
        return response


def live_tenant(tenant, provider: str, sim) -> Client:
    client = db.session.get(Client, tenant.id)
    client.is_test_mode = False
    db.session.add(
        Channel(
            client_id=tenant.id,
            name="sms",
            provider=provider,
            credentials=sim.credentials,
            config=sim.config(),
            active=True,
            webhook_token=f"{provider}-token",
        )
    )
    db.session.commit()
    return tenant


@pytest.fixture
def forgetful():
    with ForgetfulOnfon() as sim:
        yield sim


def test_a_message_missing_from_the_vendors_results_is_unknown_and_never_resent(tenant, forgetful):
    live = live_tenant(tenant, "onfon", forgetful)
    forgetful.forget = {"254712345611"}
    sent, missing = pending(live.id, "0712345600"), pending(live.id, "0712345611")
    assert dispatch_job(live.id, [sent, missing]) == {**IDLE, "sent": 1, "unknown": 1}
    message = fresh(missing)
    assert message.status == "unknown" and "not sent again" in message.error_message
    assert message.next_attempt_at is None
    assert len(forgetful.accepted()) == 2  # the vendor did take it: resending would send it twice

    forgetful.forget = set()
    dispatch_job(live.id, [sent, missing])
    db.session.execute(sa.update(Message).values(created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    retry_due_messages()
    assert len(forgetful.accepted()) == 2 and forgetful.duplicate_recipients() == {}
    assert fresh(missing).status == "unknown" and refunds(live.id) == [] and balanced(live.id)


def test_an_unclear_answer_for_a_whole_batch_leaves_every_message_unknown(tenant, forgetful):
    onfon_sim = forgetful  # forgets nothing unless told
    live = live_tenant(tenant, "onfon", onfon_sim)
    onfon_sim.fault = "malformed_json"
    ids = [pending(live.id, f"07123456{n}") for n in (10, 11, 12)]
    assert dispatch_job(live.id, ids) == {**IDLE, "unknown": 3}
    assert all(fresh(i).status == "unknown" and fresh(i).next_attempt_at is None for i in ids)
    onfon_sim.fault = None
    dispatch_job(live.id, ids)
    retry_due_messages()
    assert len(onfon_sim.accepted()) == 3 and onfon_sim.duplicate_recipients() == {}  # each went once
    assert refunds(live.id) == [] and balanced(live.id)


def test_a_busy_answer_for_a_whole_batch_defers_every_message_with_its_next_attempt(tenant, forgetful):
    onfon_sim = forgetful  # forgets nothing unless told
    live = live_tenant(tenant, "onfon", onfon_sim)
    onfon_sim.fault = "5xx"
    ids = [pending(live.id, f"07123456{n}") for n in (10, 11, 12)]
    before = utcnow()
    assert dispatch_job(live.id, ids) == {**IDLE, "deferred": 3}
    for message_id in ids:
        message = fresh(message_id)
        assert message.status == "pending" and message.attempts == 1
        assert before + timedelta(seconds=5) < message.next_attempt_at <= utcnow() + timedelta(seconds=10)
    assert refunds(live.id) == [] and onfon_sim.accepted() == []


def test_a_per_message_deferral_gets_its_next_attempt_time_and_is_sent_later(tenant, twilio_sim):
    """Twilio takes one message per request: the first goes, the second is rate limited (429 with
    Retry-After), so only that one is deferred, for as long as the vendor asked."""
    live = live_tenant(tenant, "twilio", twilio_sim)
    twilio_sim.retry_after, twilio_sim.transient_failures = 90, 1
    sent, limited = pending(live.id, "0712345600"), pending(live.id, "0712345677")
    assert dispatch_job(live.id, [sent, limited]) == {**IDLE, "sent": 1, "deferred": 1}
    message = fresh(limited)
    assert message.status == "pending" and message.attempts == 1 and message.error_message
    assert timedelta(seconds=88) < message.next_attempt_at - utcnow() <= timedelta(seconds=90)
    assert fresh(sent).status == "sent" and refunds(live.id) == []

    assert retry_due_messages() == 0  # not due yet
    db.session.execute(sa.update(Message).where(Message.id == limited).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert retry_due_messages() == 1
    assert fresh(limited).status == "sent" and fresh(limited).attempts == 2
    assert twilio_sim.duplicate_recipients() == {} and len(twilio_sim.accepted()) == 2 and balanced(live.id)
