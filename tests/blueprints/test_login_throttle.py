"""Failed sign-ins slow an account down per address without locking its owner out (issue 12, item 4)."""

import pytest

from bulkapp.blueprints.auth import throttle
from tests.conftest import PASSWORD


def post_login(client, email: str, password: str, address: str):
    return client.post("/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_ten_wrong_passwords_from_ten_addresses_do_not_lock_the_owner_out(client, user):
    for i in range(10):
        assert post_login(client, user.email, "wrong-password", f"203.0.113.{i}").status_code == 422
    owner = post_login(client, user.email, PASSWORD, "198.51.100.7")  # a fresh address
    assert owner.status_code == 302 and owner.location.endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200


def test_an_address_that_keeps_failing_waits_longer_each_time(client, user):
    address = "203.0.113.50"
    for _ in range(throttle.FREE_FAILURES - 1):
        assert post_login(client, user.email, "wrong-password", address).status_code == 422
    assert post_login(client, user.email, "wrong-password", address).status_code == 422  # the 5th: now it waits
    waited = post_login(client, user.email, PASSWORD, address)  # even the right password waits here
    assert waited.status_code == 429 and int(waited.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins for this account. Try again in" in waited.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302
    assert [throttle.delay_for(n) for n in (4, 5, 6, 7, 10)] == [0, 1, 2, 4, 32]
    assert throttle.delay_for(100) == throttle.MAX_DELAY
    assert post_login(client, user.email, PASSWORD, "198.51.100.8").status_code == 302  # the owner elsewhere


@pytest.mark.parametrize("spelling", ["A1@X.COM ", " a1@x.com", "Ａ１@ｘ.ｃｏｍ", "a1@X.com\t"])
def test_spellings_of_one_email_are_one_key(client, spelling):
    address = "203.0.113.60"
    for _ in range(throttle.FREE_FAILURES):
        assert post_login(client, "a1@x.com", "wrong-password", address).status_code == 422
    assert post_login(client, spelling, "wrong-password", address).status_code == 429
    assert post_login(client, "other@x.com", "wrong-password", address).status_code == 422  # another account


def test_unknown_and_real_accounts_are_throttled_alike(client, user):
    answers = {}
    for n, email in enumerate((user.email, "nobody@nowhere.example")):
        codes = [post_login(client, email, "wrong-password", f"203.0.113.7{n}").status_code for _ in range(6)]
        answers[email] = codes
    assert answers[user.email] == answers["nobody@nowhere.example"] == [422] * 5 + [429]


def test_the_per_address_limit_still_stops_a_brute_forcer_spreading_over_accounts(app, client, user):
    address = "203.0.113.80"
    codes = [post_login(client, f"user{i}@x.example", "guess-password", address).status_code for i in range(12)]
    assert codes.count(429) >= 2 and codes[:10] == [422] * 10
    assert post_login(client, user.email, PASSWORD, address).status_code == 429
    assert post_login(client, user.email, PASSWORD, "203.0.113.81").status_code == 302
