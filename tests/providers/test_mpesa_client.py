"""The Daraja client against the local Daraja simulator: tokens, STK push/query, errors, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bulkapp.config import SANDBOX_PASSKEY
from bulkapp.providers import mpesa
from tests.simulators.daraja import DarajaSimulator

DEAD_URL = "http://127.0.0.1:9/callback"  # nothing listens on the discard port


@pytest.fixture
def sim():
    with DarajaSimulator() as simulator:
        yield simulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(sim: DarajaSimulator, **kwargs) -> mpesa.DarajaClient:
    options = {
        "consumer_key": sim.consumer_key,
        "consumer_secret": sim.consumer_secret,
        "shortcode": sim.shortcode,
        "passkey": sim.passkey,
        **kwargs,
    }
    return mpesa.DarajaClient(sim.url, **options)


def push(client: mpesa.DarajaClient, phone: str = "254708374100", amount: int = 100) -> mpesa.StkPushResult:
    return client.stk_push(
        phone=phone, amount=amount, account_reference="BKTEST12", description="Wallet top-up", callback_url=DEAD_URL
    )


def test_password_is_the_documented_base64_of_shortcode_passkey_timestamp():
    # The sample Password printed in Safaricom's Daraja docs for the public sandbox shortcode.
    documented = (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkx"
        "OTIwMTYwMjE2MTY1NjI3"
    )
    assert mpesa.stk_password("174379", SANDBOX_PASSKEY, "20160216165627") == documented


def test_timestamp_is_kenyan_local_time():
    assert mpesa.eat_timestamp(datetime(2026, 4, 8, 6, 30, tzinfo=UTC)) == "20260408093000"
    assert mpesa.eat_timestamp(datetime(2026, 12, 31, 22, 15, 5, tzinfo=UTC)) == "20270101011505"
    client = mpesa.DarajaClient("http://x", "k", "s", "174379", "pk", now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert client.timestamp() == "20260101030000"
    assert client.password("20260101030000") == mpesa.stk_password("174379", "pk", "20260101030000")


def test_the_simulator_refuses_a_utc_timestamp(sim):
    # A client that forgot EAT sends the UTC wall clock: three hours off, which Daraja refuses.
    utc_wall_clock = lambda: datetime.now(UTC) - timedelta(hours=3)  # noqa: E731
    with pytest.raises(mpesa.MpesaPermanentError, match="Timestamp"):
        push(make_client(sim, now=utc_wall_clock))


def test_stk_push_is_accepted_and_typed(sim):
    result = push(make_client(sim), amount=250)
    assert isinstance(result, mpesa.StkPushResult)
    assert result.checkout_request_id.startswith("ws_CO_") and result.merchant_request_id
    recorded = sim.pushes[result.checkout_request_id]
    assert (recorded.phone, recorded.amount, recorded.account_reference) == ("254708374100", 250, "BKTEST12")


def test_wrong_passkey_is_a_permanent_error(sim):
    with pytest.raises(mpesa.MpesaPermanentError, match="Wrong credentials") as caught:
        push(make_client(sim, passkey="not-the-passkey"))
    assert not caught.value.transient and caught.value.code == "500.001.1001"


def test_token_is_fetched_once_and_reused(sim):
    client = make_client(sim)
    push(client)
    push(client)
    client.stk_query(push(client).checkout_request_id)
    assert sim.token_requests == 1


def test_token_is_renewed_shortly_before_it_expires(sim):
    clock = FakeClock()
    client = make_client(sim, clock=clock)
    first = client.access_token()
    clock.now += 3000  # 50 minutes into a 3599 s token: still good
    assert client.access_token() == first
    clock.now += 300  # 55 minutes: within the renewal margin
    assert client.access_token() != first
    assert sim.token_requests == 2


def test_an_invalid_token_is_refreshed_and_the_call_retried_once(sim):
    client = make_client(sim)
    push(client)
    sim.revoke_tokens()
    assert push(client).checkout_request_id
    assert sim.token_requests == 2


def test_wrong_consumer_secret_is_an_auth_error(sim):
    with pytest.raises(mpesa.MpesaAuthError) as caught:
        push(make_client(sim, consumer_secret="wrong"))
    assert not caught.value.transient


def test_an_empty_token_answer_is_an_auth_error(sim):
    sim.empty_token_answer = True
    with pytest.raises(mpesa.MpesaAuthError, match="no access token"):
        make_client(sim).access_token()


def test_system_busy_is_transient(sim):
    with pytest.raises(mpesa.MpesaTransientError) as caught:
        push(make_client(sim), phone="254708374198")
    assert caught.value.transient and caught.value.code == "500.003.02"


def test_slow_daraja_times_out_as_a_transient_error(sim):
    client = make_client(sim, timeout=(1.0, 0.3))
    client.access_token()
    sim.slow_seconds = 1.0
    with pytest.raises(mpesa.MpesaTimeout) as caught:
        push(client)
    assert caught.value.transient


def test_unreachable_daraja_is_transient():
    client = mpesa.DarajaClient("http://127.0.0.1:9", "k", "s", "174379", "pk", timeout=(1.0, 1.0))
    with pytest.raises(mpesa.MpesaTransientError):
        client.access_token()


@pytest.mark.parametrize("phone", ["0712345678", "+255712345678", "25471234567", ""])
def test_phone_must_be_a_kenyan_msisdn(sim, phone):
    with pytest.raises(ValueError):
        push(make_client(sim), phone=phone)
    assert sim.pushes == {}


@pytest.mark.parametrize("amount", [0, 10.5, True])
def test_amount_must_be_whole_shillings(sim, amount):
    with pytest.raises(ValueError):
        push(make_client(sim), amount=amount)


def test_stk_query_reports_pending_while_the_customer_has_not_answered(sim):
    client = make_client(sim)
    answer = client.stk_query(push(client, phone="254708374188").checkout_request_id)
    assert answer == mpesa.StkQueryResult("pending", None, "The transaction is being processed")


@pytest.mark.parametrize(
    ("phone", "state", "code"),
    [("254708374199", "completed", 0), ("254708374132", "failed", 1032), ("254708374137", "failed", 1037)],
)
def test_stk_query_reports_the_final_result(sim, phone, state, code):
    client = make_client(sim)
    answer = client.stk_query(push(client, phone=phone).checkout_request_id)
    assert (answer.state, answer.result_code) == (state, code)
    assert answer.result_desc


def test_stk_query_of_an_unknown_request_is_a_permanent_error(sim):
    with pytest.raises(mpesa.MpesaPermanentError):
        make_client(sim).stk_query("ws_CO_nope")


def test_register_c2b_urls(sim):
    answer = make_client(sim).register_c2b_urls(
        confirmation_url="https://example.com/c", validation_url="https://example.com/v"
    )
    assert answer["ResponseCode"] == "0"
    assert sim.c2b_urls[sim.shortcode]["ValidationURL"] == "https://example.com/v"


def test_client_for_picks_simulation_only_when_chosen_and_never_in_production(app, monkeypatch):
    monkeypatch.setitem(app.config, "MPESA_CONSUMER_KEY", None)
    monkeypatch.setitem(app.config, "MPESA_ENV", "sandbox")
    assert mpesa.client_for(app) is None  # no credentials and no MPESA_ENV=simulated: not configured
    monkeypatch.setitem(app.config, "MPESA_ENV", "simulated")
    assert mpesa.client_for(app).simulated
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    assert mpesa.client_for(app) is None
    monkeypatch.setitem(app.config, "MPESA_ENV", "sandbox")
    monkeypatch.setitem(app.config, "MPESA_CONSUMER_KEY", "key")
    monkeypatch.setitem(app.config, "MPESA_CONSUMER_SECRET", "secret")
    client = mpesa.client_for(app)
    assert isinstance(client, mpesa.DarajaClient) and mpesa.client_for(app) is client
