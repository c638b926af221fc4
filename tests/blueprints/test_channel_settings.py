"""Settings > Channels pages: list, add (provider field swap), edit, secrets never echoed, 422s, enable/disable,
delete, test connection and balance sync against the Onfon simulator, webhook URLs, CSRF and foreign ids."""

from __future__ import annotations

import re
import socket
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Channel, Client
from bulkapp.services.channels import settings as channel_settings
from tests.simulators.onfon import OnfonSimulator

HX = {"HX-Request": "true"}
SECRET_API_KEY = "api-key-NEVER-SHOWN-7731"
SECRET_ACCESS_KEY = "access-key-NEVER-SHOWN-5120"


@pytest.fixture
def onfon():
    with OnfonSimulator(api_key=SECRET_API_KEY, access_key=SECRET_ACCESS_KEY) as sim:
        yield sim


@pytest.fixture
def private_urls(app, monkeypatch):
    """The simulators listen on loopback, which tenants may only use in development and tests."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)


@pytest.fixture
def strict_urls(app, work_app, monkeypatch):
    """Production rules: public https addresses on port 443 only."""
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)


def onfon_form(sim: OnfonSimulator, **extra) -> dict[str, str]:
    return {
        "provider": "onfon",
        "access_key": sim.access_key,
        "api_key": sim.api_key,
        "client_id": sim.client_id,
        "sender_id": "ACME",
        "transactional_sender_id": "ACME-OTP",
        "base_url": f"{sim.url}/v1/sms",
        "active": "y",
        **extra,
    }


def add_onfon(client, sim) -> Channel:
    response = client.post("/settings/channels", data=onfon_form(sim), headers=HX)
    assert response.status_code == 204, response.get_data(as_text=True)
    return db.session.scalar(sa.select(Channel).where(Channel.provider == "onfon"))


def sandbox_of(tenant) -> Channel:
    return db.session.scalar(sa.select(Channel).where(Channel.client_id == tenant.id, Channel.provider == "sandbox"))


def no_secrets(body: str) -> None:
    assert SECRET_API_KEY not in body and SECRET_ACCESS_KEY not in body


# ---------------------------------------------------------------------------------------------- pages


def test_channels_card_on_settings_and_the_list_page(login, user):
    client = login(user)
    settings = client.get("/settings/").get_data(as_text=True)
    assert 'href="/settings/channels"' in settings

    page = client.get("/settings/channels")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body
    assert "Sandbox (test mode)" in body and "In use: test mode" in body and "Test connection" in body
    fragment = client.get("/settings/channels", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="channel-list"')


def test_add_page_swaps_in_the_chosen_providers_fields(login, user):
    client = login(user)
    page = client.get("/settings/channels/new").get_data(as_text=True)
    assert 'hx-get="/settings/channels/new/fields"' in page and "Choose a provider to see" in page
    assert "Sandbox" not in re.search(r'<select id="provider".*?</select>', page, re.S).group(0)

    fields = client.get("/settings/channels/new/fields?provider=onfon", headers=HX)
    body = fields.get_data(as_text=True)
    assert fields.status_code == 200 and body.lstrip().startswith('<div id="channel-fields"')
    for label in ("Access key", "API key", "Client ID", "Sender ID (default, promotional)", "Transactional sender ID"):
        assert label in body
    assert 'type="password"' in body and "Advanced settings" in body and "API base URL" in body

    twilio = client.get("/settings/channels/new/fields?provider=twilio", headers=HX).get_data(as_text=True)
    assert "Account SID" in twilio and "Auth Token" in twilio and "Access key" not in twilio
    empty = client.get("/settings/channels/new/fields?provider=", headers=HX).get_data(as_text=True)
    assert "Choose a provider to see" in empty
    assert client.get("/settings/channels/new/fields?provider=sandbox", headers=HX).status_code == 404
    assert client.get("/settings/channels/new/fields?provider=evil", headers=HX).status_code == 404
    plain = client.get("/settings/channels/new/fields?provider=onfon")
    assert plain.status_code == 302 and plain.location.endswith("/settings/channels/new?provider=onfon")
    assert "Access key" in client.get("/settings/channels/new?provider=onfon").get_data(as_text=True)


@pytest.mark.filterwarnings("error::DeprecationWarning")  # wtforms deprecates tuple choices (gone in 3.4)
def test_a_provider_setting_with_choices_is_a_select(login, user):
    body = login(user).get("/settings/channels/new/fields?provider=smtp", headers=HX).get_data(as_text=True)
    select = re.search(r'<select[^>]*name="security".*?</select>', body, re.S).group(0)
    assert re.findall(r'<option[^>]*value="(\w+)"', select) == ["starttls", "ssl", "none"]
    assert re.search(r'<option[^>]*selected[^>]*value="starttls"|<option[^>]*value="starttls"[^>]*selected', select)


def test_add_an_onfon_channel_then_secrets_are_never_rendered(login, user, onfon, private_urls):
    client = login(user)
    response = client.post("/settings/channels", data=onfon_form(onfon), headers=HX)

    channel = db.session.scalar(sa.select(Channel).where(Channel.provider == "onfon"))
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/settings/channels#channel-{channel.id}"
    assert channel.client_id == user.client_id and channel.active and channel.credentials == onfon.credentials
    assert channel.config["transactional_sender_id"] == "ACME-OTP"
    raw = db.session.execute(sa.text("SELECT credentials FROM channels WHERE id = :id"), {"id": channel.id}).scalar()
    assert SECRET_API_KEY not in raw and SECRET_ACCESS_KEY not in raw

    page = client.get("/settings/channels").get_data(as_text=True)
    no_secrets(page)
    assert "Onfon Media channel added" in page and "Onfon Media" in page and "ACME-OTP" in page
    edit = client.get(f"/settings/channels/{channel.id}/edit").get_data(as_text=True)
    no_secrets(edit)
    assert edit.count("Saved - leave blank to keep") >= 2 and onfon.client_id in edit and 'value="ACME"' in edit


def test_invalid_form_is_422_with_field_errors_and_keeps_input_but_not_secrets(login, user, onfon, strict_urls):
    client = login(user)
    form = onfon_form(onfon, sender_id="THIS-IS-FAR-TOO-LONG", client_id="", base_url="http://10.0.0.8/v1/sms")
    response = client.post("/settings/channels", data=form, headers=HX)

    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="channel-form"')
    assert "Client ID is required." in body
    assert "sender ID is up to 11" in body
    assert "Use an https:// address." in body and '<details class="advanced" open>' in body
    assert 'value="THIS-IS-FAR-TOO-LONG"' in body and 'value="onfon" selected' in body
    no_secrets(body)
    assert db.session.scalar(sa.select(sa.func.count(Channel.id)).where(Channel.provider == "onfon")) == 0

    plain = client.post("/settings/channels", data=form)
    assert plain.status_code == 200 and "<html" in plain.get_data(as_text=True)


def test_missing_or_bad_provider_and_oversize_values(login, user):
    client = login(user)
    missing = client.post("/settings/channels", data={"active": "y"}, headers=HX)
    assert missing.status_code == 422 and "Choose a provider from the list." in missing.get_data(as_text=True)
    for provider in ("sandbox", "../etc"):
        response = client.post("/settings/channels", data={"provider": provider}, headers=HX)
        assert response.status_code == 422
    huge = client.post(
        "/settings/channels", data={"provider": "mobitech", "api_key": "k" * 600, "sender_name": "23107"}, headers=HX
    )
    assert huge.status_code == 422 and "500 characters" in huge.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Channel.id))) == 1  # only the sandbox


def test_double_submit_adds_the_channel_once(login, user, onfon, private_urls):
    client = login(user)
    assert client.post("/settings/channels", data=onfon_form(onfon), headers=HX).status_code == 204
    again = client.post("/settings/channels", data=onfon_form(onfon), headers=HX)
    assert again.status_code == 422 and "already set up" in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Channel.id)).where(Channel.provider == "onfon")) == 1


def test_edit_keeps_blank_secrets_and_saves_senders(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    form = onfon_form(onfon, access_key="", api_key="", sender_id="NEWSENDER", transactional_sender_id="")
    form.pop("provider")
    response = client.post(f"/settings/channels/{channel.id}", data=form, headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith(f"#channel-{channel.id}")
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert saved.credentials == onfon.credentials
    assert saved.config["sender_id"] == "NEWSENDER" and "transactional_sender_id" not in saved.config

    bad = client.post(f"/settings/channels/{channel.id}", data={**form, "batch_size": "many"}, headers=HX)
    assert bad.status_code == 422 and "whole number" in bad.get_data(as_text=True)
    no_secrets(bad.get_data(as_text=True))


def test_csrf_is_required(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    for url in (
        "/settings/channels",
        f"/settings/channels/{channel.id}",
        f"/settings/channels/{channel.id}/disable",
        f"/settings/channels/{channel.id}/delete",
        f"/settings/channels/{channel.id}/test",
        f"/settings/channels/{channel.id}/sync",
        f"/settings/channels/{channel.id}/rotate-token",
        "/settings/channels/auto-sync",
    ):
        response = client.post(url, data=onfon_form(onfon), headers=HX, csrf=False)
        assert response.status_code == 400, url
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).active is True


def test_signed_out_requests_go_to_login(client):
    assert client.get("/settings/channels").status_code == 302
    assert client.post("/settings/channels/1/test", headers=HX).status_code == 401


# ---------------------------------------------------------------------------------------------- actions


def test_test_connection_shows_the_vendors_message_and_stores_it(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)

    response = client.post(f"/settings/channels/{channel.id}/test", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith(f'<article id="channel-{channel.id}"')
    assert "Connected to Onfon. Balance: KSh1000.0000" in body and "result-ok" in body and "Tested " in body
    db.session.expire_all()
    stored = db.session.get(Channel, channel.id).config["last_test"]
    assert stored["ok"] is True and stored["at"]

    onfon.fault = "auth_fail"
    failed = client.post(f"/settings/channels/{channel.id}/test", headers=HX).get_data(as_text=True)
    assert "Onfon rejected the API credentials" in failed and "Invalid api credential" in failed
    assert "result-fail" in failed
    no_secrets(failed)


def test_test_connection_without_htmx_redirects_with_the_result(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    response = client.post(f"/settings/channels/{channel.id}/test")
    assert response.status_code == 302 and response.location.endswith(f"/settings/channels#channel-{channel.id}")
    page = client.get("/settings/channels").get_data(as_text=True)
    assert "Connection OK: Connected to Onfon." in page


def test_sync_now_updates_the_onfon_balance(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    onfon.balance = Decimal("4321.5000")

    body = client.post(f"/settings/channels/{channel.id}/sync", headers=HX).get_data(as_text=True)
    assert "KSh 4,321.50" in body and "as of" in body
    db.session.expire_all()
    assert db.session.get(Client, user.client_id).onfon_balance == Decimal("4321.5000")

    onfon.fault = "5xx"
    failed = client.post(f"/settings/channels/{channel.id}/sync", headers=HX).get_data(as_text=True)
    assert "Last sync failed" in failed and "HTTP 503" in failed and "KSh 4,321.50" in failed
    sandbox = sandbox_of(user.client)
    assert client.post(f"/settings/channels/{sandbox.id}/sync", headers=HX).status_code == 404  # no balance API


def test_auto_sync_toggle(login, user, onfon, private_urls):
    client = login(user)
    add_onfon(client, onfon)
    body = client.post("/settings/channels/auto-sync", data={"enabled": "1"}, headers=HX).get_data(as_text=True)
    assert body.lstrip().startswith('<section id="channel-list"') and "every 15 minutes" in body
    db.session.expire_all()
    assert db.session.get(Client, user.client_id).auto_sync_balance is True
    client.post("/settings/channels/auto-sync", data={"enabled": "0"}, headers=HX)
    db.session.expire_all()
    assert db.session.get(Client, user.client_id).auto_sync_balance is False


def test_webhook_urls_are_shown_with_the_channel_token(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    page = client.get("/settings/channels").get_data(as_text=True)
    token = channel.webhook_token
    assert f'value="http://localhost/webhooks/onfon/inbound?token={token}"' in page
    assert f'value="http://localhost/webhooks/onfon/dlr?token={token}"' in page
    assert f'data-copy-target="webhook-{channel.id}-1"' in page

    rotated = client.post(f"/settings/channels/{channel.id}/rotate-token", headers=HX).get_data(as_text=True)
    db.session.expire_all()
    new_token = db.session.get(Channel, channel.id).webhook_token
    assert new_token != token and f"token={new_token}" in rotated and f"token={token}" not in rotated
    assert "old ones no longer work" in rotated


def test_enable_disable_and_delete(login, user, onfon, private_urls):
    client = login(user)
    channel = add_onfon(client, onfon)
    off = client.post(f"/settings/channels/{channel.id}/disable", headers=HX)
    body = off.get_data(as_text=True)
    assert off.status_code == 200 and body.lstrip().startswith('<section id="channel-list"')
    assert "Onfon Media is switched off." in body
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).active is False

    on = client.post(f"/settings/channels/{channel.id}/enable", headers=HX).get_data(as_text=True)
    assert "Onfon Media is now your active SMS channel." in on

    channel_id = channel.id
    gone = client.post(f"/settings/channels/{channel_id}/delete", headers=HX)
    assert gone.status_code == 200 and "Onfon Media channel deleted." in gone.get_data(as_text=True)
    assert f'id="channel-{channel_id}"' not in gone.get_data(as_text=True)
    db.session.expunge_all()
    assert db.session.get(Channel, channel_id) is None
    assert client.post(f"/settings/channels/{channel_id}/delete", headers=HX).status_code == 404


def test_live_account_is_warned_when_no_sms_channel_is_active(login, user, onfon, private_urls):
    db.session.execute(sa.update(Client).where(Client.id == user.client_id).values(is_test_mode=False))
    db.session.commit()
    client = login(user)
    channel = add_onfon(client, onfon)
    assert "No active SMS channel" not in client.get("/settings/channels").get_data(as_text=True)
    body = client.post(f"/settings/channels/{channel.id}/disable", headers=HX).get_data(as_text=True)
    assert "No active SMS channel: SMS messages will fail until you enable one." in body


def test_the_sandbox_cannot_be_deleted_or_switched_off(login, user):
    client = login(user)
    sandbox = sandbox_of(user.client)
    for action in ("delete", "disable"):
        response = client.post(f"/settings/channels/{sandbox.id}/{action}", headers=HX)
        assert response.status_code == 409 and response.headers["HX-Retarget"] == "#flash"
        assert "test-mode channel" in response.get_data(as_text=True)
    plain = client.post(f"/settings/channels/{sandbox.id}/delete")
    assert plain.status_code == 302
    assert "cannot be switched off or deleted" in client.get("/settings/channels").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Channel, sandbox.id).active is True


def test_the_sandbox_sender_ids_can_be_edited(login, user):
    client = login(user)
    sandbox = sandbox_of(user.client)
    edit = client.get(f"/settings/channels/{sandbox.id}/edit").get_data(as_text=True)
    assert "Sender ID (default, promotional)" in edit and "Transactional sender ID" in edit
    data = {"sender_id": "MYSHOP", "transactional_sender_id": "MYSHOP-TX"}
    assert client.post(f"/settings/channels/{sandbox.id}", data=data, headers=HX).status_code == 204
    db.session.expire_all()
    assert db.session.get(Channel, sandbox.id).config["transactional_sender_id"] == "MYSHOP-TX"


def test_another_tenants_channel_answers_404_everywhere(login, user, other_tenant, onfon, private_urls):
    theirs = sandbox_of(other_tenant)
    client = login(user)
    for method, url in (
        ("GET", f"/settings/channels/{theirs.id}/edit"),
        ("POST", f"/settings/channels/{theirs.id}"),
        ("POST", f"/settings/channels/{theirs.id}/enable"),
        ("POST", f"/settings/channels/{theirs.id}/disable"),
        ("POST", f"/settings/channels/{theirs.id}/delete"),
        ("POST", f"/settings/channels/{theirs.id}/test"),
        ("POST", f"/settings/channels/{theirs.id}/sync"),
        ("POST", f"/settings/channels/{theirs.id}/rotate-token"),
    ):
        response = client.open(url, method=method, data={"sender_id": "HIJACK"}, headers=HX)
        assert response.status_code == 404, url
    page = client.get("/settings/channels").get_data(as_text=True)
    assert f'id="channel-{theirs.id}"' not in page
    db.session.expire_all()
    assert db.session.get(Channel, theirs.id).config.get("sender_id") != "HIJACK"


def test_channel_service_and_page_agree_on_the_urls(login, user, onfon, private_urls, app):
    client = login(user)
    channel = add_onfon(client, onfon)
    page = client.get("/settings/channels").get_data(as_text=True)
    for _label, url in channel_settings.webhook_urls(channel, app.config["BASE_URL"]):
        assert f'value="{url}"' in page


def test_the_urls_shown_are_accepted_by_the_webhook_endpoints_and_a_new_token_revokes_the_old(
    login, user, onfon, private_urls
):
    client = login(user)
    channel = add_onfon(client, onfon)
    _label, dlr_url = channel_settings.webhook_urls(channel, "http://localhost")[1]
    dlr = "&messageId=Smsc404&mobile=254712345678&status=DELIVRD&errorCode=000"
    assert client.get(dlr_url.removeprefix("http://localhost") + dlr).status_code == 200

    client.post(f"/settings/channels/{channel.id}/rotate-token", headers=HX)
    assert client.get(dlr_url.removeprefix("http://localhost") + dlr).status_code == 403


def test_the_whatsapp_verify_token_shown_completes_metas_handshake(login, user, private_urls):
    client = login(user)
    values = {"provider": "whatsapp_cloud", "access_token": "EAAG-x", "app_secret": "s3", "phone_number_id": "1148961"}
    assert client.post("/settings/channels", data=values, headers=HX).status_code == 204
    channel = db.session.scalar(sa.select(Channel).where(Channel.provider == "whatsapp_cloud"))
    (_, callback), (_, verify_token) = channel_settings.webhook_urls(channel, "http://localhost")
    page = client.get("/settings/channels").get_data(as_text=True)
    assert f'value="{callback}"' in page and f'value="{verify_token}"' in page

    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": verify_token}
    answer = client.get("/webhooks/whatsapp", query_string=query)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "1158201444"
    wrong = client.get("/webhooks/whatsapp", query_string={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403


def test_a_failed_test_connection_reads_as_a_sentence_in_the_owners_language(login, user, private_urls):
    """No "HTTPConnectionPool… NewConnectionError" on the page: a sentence, translated; the details are logged."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    values = {"access_key": "a", "api_key": "b", "client_id": "c", "sender_id": "ACME"}
    channel, _ = channel_settings.create_channel(
        user.client_id, "onfon", {**values, "base_url": f"http://127.0.0.1:{port}/v1/sms"}, allow_private_urls=True
    )
    db.session.commit()
    client = login(user)

    body = client.post(f"/settings/channels/{channel.id}/test", headers=HX).get_data(as_text=True)
    assert "We could not reach Onfon Media. Check the base URL and try again." in body and "result-fail" in body
    for raw in ("HTTPConnectionPool", "NewConnectionError", "Errno", "Connection refused", "Max retries"):
        assert raw not in body

    db.session.get(type(user), user.id).language = "sw"
    db.session.commit()
    body = client.post(f"/settings/channels/{channel.id}/test", headers=HX).get_data(as_text=True)
    assert "Hatukuweza kufikia Onfon Media. Kagua URL ya msingi kisha ujaribu tena." in body
    page = client.get("/settings/channels").get_data(as_text=True)  # the stored result, shown in Swahili too
    assert "Hatukuweza kufikia Onfon Media" in page and "We could not reach" not in page


def test_a_base_url_that_turned_private_is_refused_at_test_time(login, user, onfon, private_urls, app, monkeypatch):
    client = login(user)
    channel = add_onfon(client, onfon)  # saved while loopback addresses were allowed
    requests_before = onfon.stats()["requests"]
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)  # production rules from now on
    body = client.post(f"/settings/channels/{channel.id}/test", headers=HX).get_data(as_text=True)
    assert "The address of Onfon Media must start with https://." in body and "result-fail" in body
    assert onfon.stats()["requests"] == requests_before  # nothing reached the simulator
