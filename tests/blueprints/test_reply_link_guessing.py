"""Guessing reply-link codes: a global budget on unknown codes slows enumeration spread over many addresses while
the codes people were sent keep opening, and once codes are long a guessed code cannot opt anyone out."""

from __future__ import annotations

import secrets
import time

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Message, ShortLink
from bulkapp.services.compliance import optouts
from bulkapp.services.messaging import reply_form, shortlinks
from bulkapp.services.messaging.compose import send_message
from tests.services.messaging.test_reply_code_length import FOUR_CHARACTER_LIMIT, add_links

BUDGET = 20


@pytest.fixture(autouse=True)
def small_budget(app, work_app, monkeypatch):
    monkeypatch.setitem(app.config, "SHORTLINK_UNKNOWN_RATE_LIMIT", f"{BUDGET} per minute")
    for application in (app, work_app):
        monkeypatch.setitem(application.config, "SHORTLINK_COUNT_SECONDS", 0)
    yield
    for application in (app, work_app):
        application.extensions.pop(shortlinks._COUNT, None)


def sent_link(tenant, to="0712000302") -> ShortLink:
    message = send_message(tenant.id, to=to, body="Your order is ready", channel="sms")
    db.session.commit()
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))


def guess(length: int = 5) -> str:
    return "".join(secrets.choice(shortlinks.ALPHABET) for _ in range(length))


def view(client, code: str, address: str):
    return client.get(f"/x/{code}", environ_base={"REMOTE_ADDR": address}).status_code


def test_the_global_budget_throttles_unknown_codes_from_many_addresses_but_known_codes_open(client, tenant):
    link = sent_link(tenant)
    addresses = [f"10.7.{n // 250}.{n % 250 + 1}" for n in range(60)]
    answered = refused = 0
    for _round in range(5):  # every address guesses once per round, as a botnet would
        for address in addresses:
            status = view(client, guess(), address)
            assert status in (404, 429)
            answered += status == 404
            refused += status == 429
    # Without the budget all 300 guesses would have been answered (each address stays under its own limit).
    assert answered == len(addresses) and refused == 4 * len(addresses)
    # The recipient (an address that guessed nothing) still opens the code they were sent...
    assert view(client, link.code, "192.0.2.10") == 200
    # ...while an address that guessed is refused for every code, so the refusal reveals nothing.
    assert view(client, link.code, addresses[0]) == 429
    refusal = client.get(f"/x/{link.code}", environ_base={"REMOTE_ADDR": addresses[2]}).get_data(as_text=True)
    assert "Too many attempts" in refusal and "x-card" in refusal  # the reply page's own look, no app menu
    assert client.get(f"/x/{link.code}/sent", environ_base={"REMOTE_ADDR": addresses[1]}).status_code == 429


def test_below_the_budget_unknown_codes_are_a_plain_404(client, tenant):
    link = sent_link(tenant)
    statuses = [view(client, guess(), "10.8.0.1") for _ in range(BUDGET - 1)]
    assert statuses == [404] * (BUDGET - 1)
    assert view(client, link.code, "10.8.0.1") == 200  # one unknown lookup is left in the budget
    assert view(client, guess(), "10.8.0.1") == 404  # which this spends
    assert view(client, link.code, "10.8.0.1") == 429  # now this address, which guessed, waits


def test_a_guessed_code_cannot_opt_anyone_out_once_codes_are_long(client, tenant):
    add_links(tenant, FOUR_CHARACTER_LIMIT + 1)
    link = sent_link(tenant)
    assert len(link.code) == 5
    live = shortlinks.live_link_count()
    assert live / 62 ** len(link.code) < 1e-4  # a single guess hits any live link less than once in 10,000
    token_age = time.time() - 10
    statuses = []
    for n in range(150):
        code = guess(len(link.code))
        address = f"10.9.{n // 250}.{n % 250 + 1}"
        page = view(client, code, address)
        data = {"message": "STOP", "t": reply_form.issue_token("test-secret", code, token_age), "website": ""}
        statuses.append((page, client.post(f"/x/{code}", data=data, csrf=False, environ_base={"REMOTE_ADDR": address})))
    assert all(page in (404, 429) for page, _ in statuses)
    assert all(reply.status_code in (404, 429) for _, reply in statuses)
    assert not optouts.is_suppressed(tenant.id, "+254712000302")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "inbound")) == 0
    # The real link still takes the recipient's STOP.
    data = {"message": "STOP", "t": reply_form.issue_token("test-secret", link.code, token_age), "website": ""}
    assert client.post(f"/x/{link.code}", data=data, csrf=False).status_code == 303
    assert optouts.is_suppressed(tenant.id, "+254712000302")


@pytest.mark.redis
def test_with_redis_the_budget_is_shared_by_every_web_process(app, monkeypatch):
    """Two web processes (two limiter strategies on one Redis) spend one budget between them."""
    import os
    from types import SimpleNamespace

    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    from bulkapp.blueprints.shortlinks import guard
    from tests.conftest import require

    url = os.environ.get("REDIS_URL")
    require(bool(url), "REDIS_URL is not set")
    processes = [FixedWindowRateLimiter(storage_from_string(url)) for _ in "ab"]
    processes[0].storage.reset()
    answered = []
    for n in range(BUDGET + 10):
        process = processes[n % 2]
        monkeypatch.setattr(guard, "limiter", SimpleNamespace(enabled=True, limiter=process))
        with app.test_request_context(environ_base={"REMOTE_ADDR": f"10.10.0.{n % 5 + 1}"}):
            if not guard.refused():
                guard.count_miss()
                answered.append(n)
    # Five addresses, each refused once the shared budget is spent: nobody got past BUDGET lookups in all.
    assert len(answered) == BUDGET
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.44"}):
        assert not guard.refused()  # a fresh address (a recipient) is still let through
    processes[0].storage.reset()
