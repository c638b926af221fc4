"""Errors and confirmations from services in the viewer's language; the REST API always in English; sentences
stored in English (import report reasons, top-up failures) shown translated without changing what is stored."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences, stored_text
from bulkapp.jobs.contacts import import_contacts
from bulkapp.models import Client, Contact, ContactImport, ContactImportReportRow, WalletTransaction, WebhookDelivery
from bulkapp.providers.base import ConfigurationError, DeliveryStatus
from bulkapp.providers.onfon import OnfonProvider
from bulkapp.services.billing import paybill, topups, wallet
from bulkapp.services.billing.topups import FAILURE_REASONS, describe_topup
from bulkapp.services.channels import routing as channels
from bulkapp.services.channels.validation import KIND_LABELS
from bulkapp.services.compliance import suppression as suppression_list
from bulkapp.services.contacts import importing as ci
from bulkapp.services.inbox.inbound import MAX_WEB_REPLY
from bulkapp.services.messaging.compose import send_message
from bulkapp.services.messaging.delivery import apply_delivery_report
from bulkapp.services.notifications.events import record_event
from bulkapp.services.tenant_webhooks.settings import configure_webhook
from tests.api.conftest import Api
from tests.blueprints.test_admin import form_reference
from tests.blueprints.test_campaigns_page import form_data, signed_in  # noqa: F401 - the fixture
from tests.blueprints.test_channel_settings import (  # noqa: F401 - the fixtures
    add_onfon,
    onfon,
    onfon_form,
    private_urls,
    sandbox_of,
    strict_urls,
)
from tests.blueprints.test_contacts_page import post_file
from tests.blueprints.test_reply_form import link  # noqa: F401 - the fixture
from tests.blueprints.test_reply_form import token as reply_token
from tests.services.billing.test_topups import c2b_payload
from tests.services.messaging.test_delivery import make_message, report
from tests.services.tenant_webhooks.test_webhooks_out import deliver_due, hook, subscribe  # noqa: F401 - the fixtures
from tests.simulators.webhook_receiver import Reply
from tests.test_i18n import SW, set_language

HX = {"HX-Request": "true"}


# -- the REST API answers in English ---------------------------------------------------------------------------------


def test_the_api_answers_in_english_even_to_a_swahili_session(client, login, user, tenant):
    set_language(user.id, "sw")
    login(user)  # the same test client: a browser session in Swahili sends its cookie along
    api = Api(client, tenant.test_api_key)
    body = {"url": None, "events": ["message.delivered"], "active": True}
    response = api.put("/webhook", json=body, headers=SW)
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == "Add a URL before turning webhooks on."
    # the same service error on the settings page reads in the user's language
    page = client.post(
        "/settings/webhooks", data={"url": "", "events": ["message.delivered"], "active": "y"}, headers=HX
    )
    assert page.status_code == 422 and "Weka URL kabla ya kuwasha webhooks." in page.get_data(as_text=True)


def test_api_errors_stay_english_for_a_swahili_browser_without_a_session(client, tenant):
    api = Api(client, tenant.test_api_key)
    missing = client.get("/api/v1/contacts", headers=SW)
    assert missing.status_code == 401 and "Send your API key" in missing.get_json()["error"]["message"]
    body = {"url": None, "events": [], "active": True}
    response = api.put("/webhook", json=body, headers={"Accept-Language": "sw"})
    assert response.get_json()["error"]["message"] == "Add a URL before turning webhooks on."


# -- signed-in pages -------------------------------------------------------------------------------------------------


def test_admin_flashes_and_errors_in_swahili(login, admin_user, tenant):
    set_language(admin_user.id, "sw")
    admin = login(admin_user)
    data = {"name": "Duka la Mama", "price_per_unit": "0.80", "owner_email": "Grace@Duka.example",
            "owner_password": "first-pass-1", "test_mode": "y"}  # fmt: skip
    created = admin.post("/admin/clients", data=data)
    account = db.session.scalar(sa.select(Client.account_number).where(Client.name == "Duka la Mama"))
    page = admin.get(created.location).get_data(as_text=True)
    assert f"Mteja Duka la Mama ameundwa na akaunti ya paybill {account}." in page
    assert "Mmiliki wake anaweza kuingia kama grace@duka.example." in page
    again = admin.post("/admin/clients", data={**data, "name": "Duka Jingine"}, headers=HX)
    assert again.status_code == 422 and "Tayari kuna akaunti yenye barua pepe hii." in again.get_data(as_text=True)

    adjust = {
        "direction": "debit",
        "amount": "100.01",
        "reason": "Chargeback",
        "reference": form_reference(admin, tenant.id),
    }
    refused = admin.post(f"/admin/clients/{tenant.id}/adjust", data=adjust, headers=HX).get_data(as_text=True)
    assert "Salio ni KSh 100.00 tu, kwa hiyo KSh 100.01 haziwezi kupunguzwa" in refused
    done = admin.post(f"/admin/clients/{tenant.id}/adjust", data={**adjust, "amount": "40"}, headers=HX)
    assert "Imepunguzwa KSh 40.00. Salio sasa ni KSh 60.00." in done.get_data(as_text=True)


def test_profile_wallet_and_api_key_errors_in_swahili(login, user, tenant):
    set_language(user.id, "sw")
    client = login(user)
    wrong = client.post(
        "/settings/profile/password",
        data={"current_password": "nope-nope", "new_password": "new-password-1", "confirm": "new-password-1"},
    )
    assert "Nenosiri lako la sasa si sahihi." in wrong.get_data(as_text=True)
    negative = client.post("/wallet/threshold", data={"threshold": "-5"}, headers=HX).get_data(as_text=True)
    assert "Kiwango cha tahadhari hakiwezi kuwa hasi. Tumia 0 kuzima tahadhari." in negative
    prefix = db.session.get(Client, tenant.id).api_key_prefix
    client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX)
    stale = client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX)
    assert stale.status_code == 409
    assert "Ufunguo umebadilika tangu ukurasa huu ufunguliwe" in stale.get_data(as_text=True)


def test_channel_settings_in_swahili(login, user, tenant, onfon, private_urls):  # noqa: F811
    set_language(user.id, "sw")
    client = login(user)
    bad = client.post("/settings/channels", data=onfon_form(onfon, api_key="", base_url="ftp://x"), headers=HX)
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Weka anwani kamili inayoanza na https://." in body and "inahitajika." in body
    channel = add_onfon(client, onfon)
    page = client.get("/settings/channels").get_data(as_text=True)
    assert "Bandika URL zote mbili kwenye portal ya Onfon." in page and "URL ya SMS zinazoingia" in page
    off = client.post(f"/settings/channels/{channel.id}/disable", headers=HX).get_data(as_text=True)
    assert "Onfon Media imezimwa." in off
    sandbox = client.post(f"/settings/channels/{sandbox_of(tenant).id}/delete", headers=HX)
    assert sandbox.status_code == 409 and "Sandbox ni chaneli yako ya hali ya majaribio" in sandbox.get_data(
        as_text=True
    )


def test_an_invitation_error_follows_the_browser(client):
    assert "Kiungo hiki cha mwaliko si sahihi." in client.get("/invite/not-a-real-token", headers=SW).get_data(
        as_text=True
    )


# -- stored English, shown translated ----------------------------------------------------------------------------------


def test_import_report_reasons_are_stored_in_english_and_shown_in_swahili(login, user, tenant):
    set_language(user.id, "sw")
    client = login(user)
    empty = post_file(client, b"Name,Phone\n", headers=HX)
    assert "Faili lina mstari wa vichwa lakini hakuna wateja chini yake." in empty.get_data(as_text=True)

    post_file(client, b"Name,Phone\nWanjiru,0712345678\nBad,12345\nAgain,+254712345678\nTupu,\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    client.post(f"/contacts/import/{imp.id}", data={"role_0": "name", "role_1": "phone"}, headers=HX)
    page = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "Namba hii si sahihi (urefu au mwanzo usio sahihi)." in page
    assert "Namba sawa na ya mstari 2; zimeunganishwa kuwa mteja mmoja aitwaye “Again”" in page
    assert "Hakuna namba ya simu." in page and "imeunganishwa" in page
    assert "1 wameongezwa, 0 wamesasishwa" in page
    stored = db.session.scalars(sa.select(ContactImportReportRow.reason).order_by(ContactImportReportRow.line)).all()
    assert stored == [
        "This number is not valid (wrong length or prefix).",
        "Same number as line 2; merged into one contact named “Again” (the later name wins).",
        "No phone number.",
    ]
    report = client.get(f"/contacts/import/{imp.id}/report.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert [row[4] for row in rows[1:]] == list(stored)


def test_a_failed_import_stores_english_and_shows_swahili(login, user, tenant, app):
    imp = ci.start_import(tenant.id, user.id, "wateja.csv", io.BytesIO(b"Name,Phone\nWanjiru,0712345678\n"))
    db.session.commit()
    imp, _started = ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    ci.stored_path(imp).unlink()
    with app.test_request_context("/", headers=SW):  # even inside a Swahili request, the stored text is English
        assert import_contacts(imp.id) == "failed"
    db.session.rollback()  # see what the job committed
    assert db.session.get(ContactImport, imp.id).error_message == ci.FILE_GONE
    set_language(user.id, "sw")
    page = login(user).get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "Faili lililopakiwa halipo tena kwenye seva. Lipakie tena." in page


def test_top_up_sentences_in_the_readers_language(app):
    failed = WalletTransaction(status="failed", amount=Decimal("400"), meta={"reason": FAILURE_REASONS[1032]})
    pending = WalletTransaction(status="pending", amount=Decimal("400"), meta={"phone": "0712 345 678"})
    done = WalletTransaction(status="completed", amount=Decimal("400"), mpesa_reference="QKX1234ABC", meta={})
    with app.test_request_context("/"), force_locale("sw"):
        assert describe_topup(failed) == (
            "failed",
            "Ulighairi ombi la M-Pesa. Hakuna kilichotozwa; anza tena ukiwa tayari.",
        )
        assert describe_topup(pending)[1].startswith("Angalia 0712 345 678 na uweke PIN yako ya M-Pesa kulipa KSh 400")
        assert describe_topup(done)[1] == "KSh 400.00 zimeongezwa kwenye pochi yako. Risiti ya M-Pesa QKX1234ABC."
    with app.test_request_context("/"):
        assert describe_topup(failed)[1] == FAILURE_REASONS[1032]
        assert describe_topup(done)[1] == "KSh 400.00 was added to your wallet. M-Pesa receipt QKX1234ABC."


def test_stored_text_reads_parameters_back_and_leaves_other_text_alone(app):
    (sentence,) = stored_sentences(N_("The %(column)s value is longer than %(limit)s characters."))
    english = sentence % {"column": "Order (2)", "limit": 500}
    with app.test_request_context("/"), force_locale("sw"):
        assert stored_text(english) == "Thamani ya Order (2) ina zaidi ya herufi 500."
        assert stored_text("Something a vendor said.") == "Something a vendor said."
        assert stored_text("") == "" and stored_text(None) == ""
    with app.test_request_context("/"):
        assert stored_text(english) == english


# -- webhook URLs, contacts, imports, channels, the ledger: Swahili on the page, English in the API and the DB -------


@pytest.mark.usefixtures("strict_urls")
def test_webhook_url_refusals_in_swahili_on_the_page_and_english_in_the_api(client, login, user, tenant):
    set_language(user.id, "sw")
    page = login(user)
    loopback = {"url": "https://127.0.0.1/hooks", "events": ["message.sent"]}
    refused = page.post("/settings/webhooks", data=loopback, headers=HX)
    assert refused.status_code == 422
    assert "127.0.0.1 ni anwani ya loopback; webhooks hutumwa kwa seva za umma tu." in refused.get_data(as_text=True)
    plain = page.post("/settings/webhooks", data={**loopback, "url": "http://example.com/hooks"}, headers=HX)
    assert "URL lazima ianze na https:// (matukio hubeba data ya wateja wako)." in plain.get_data(as_text=True)

    api = Api(client, tenant.test_api_key)
    answer = api.put("/webhook", json={**loopback, "active": True}, headers=SW)
    assert (
        answer.get_json()["error"]["message"] == "127.0.0.1 is a loopback address; webhooks only go to public servers."
    )


@pytest.mark.usefixtures("strict_urls")
def test_a_refused_delivery_is_stored_in_english_and_logged_in_swahili(login, user, tenant):
    # saved while private URLs were allowed; now deliveries refuse it
    configure_webhook(tenant.id, url="https://127.0.0.1/hooks", events=[], active=False, allow_private=True)
    db.session.commit()
    set_language(user.id, "sw")
    page = login(user)
    tested = page.post("/settings/webhooks/test", headers=HX).get_data(as_text=True)
    swahili = "127.0.0.1 ni anwani ya loopback; webhooks hutumwa kwa seva za umma tu."
    assert f"Imekataliwa</strong>: {swahili}" in tested
    assert page.get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True).count(swahili) == 1
    stored = db.session.scalar(sa.select(WebhookDelivery.error))
    assert stored == "127.0.0.1 is a loopback address; webhooks only go to public servers."


def test_contact_errors_in_swahili_on_the_page_and_english_in_the_api(client, login, user, tenant):
    signup = client.post("/signup", data={"phone": "020 123 4567"}, headers=SW).get_data(as_text=True)
    assert "Hii si namba ya simu ya mkononi, kwa hiyo haiwezi kupokea SMS." in signup
    set_language(user.id, "sw")
    page = login(user)
    bad = page.post("/contacts/", data={"new-contact": "0712"}, headers=HX).get_data(as_text=True)
    assert "Namba hii si sahihi (urefu au mwanzo usio sahihi)." in bad
    page.post("/contacts/", data={"new-contact": "0712345678"}, headers=HX)
    again = page.post("/contacts/", data={"new-contact": "+254 712 345 678"}, headers=HX).get_data(as_text=True)
    assert "+254712345678 yupo tayari kwenye wateja wako." in again
    contact = db.session.scalar(sa.select(Contact))
    fields = {"contact": "0712345678", "name": "Wanjiru", "fields": "order_id: A-18\nno separator"}
    details = page.post(f"/contacts/{contact.id}/details", data=fields, headers=HX).get_data(as_text=True)
    assert "Mstari 2: andika kama “jina: thamani”, k.m. “order_id: 1234”." in details

    api = Api(client, tenant.test_api_key)
    answer = api.post("/contacts", json={"contact": "0712"}, headers=SW).get_json()
    assert answer["error"]["message"] == "This number is not valid (wrong length or prefix)."


def test_phone_reasons_in_the_campaign_quote_are_in_swahili(signed_in, user):  # noqa: F811
    set_language(user.id, "sw")
    quote = signed_in.post("/campaigns/quote", data=form_data(), headers=HX).get_data(as_text=True)
    assert "Hii si namba ya simu." in quote and "This is not a phone number." not in quote


def test_import_mapping_and_size_errors_in_swahili(app, login, user, tenant, monkeypatch):
    set_language(user.id, "sw")
    page = login(user)
    post_file(page, b"Name,Phone,Town\nWanjiru,0712345678,Nyeri\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    roles = {"role_0": "phone", "role_1": "phone", "role_2": "department"}
    twice = page.post(f"/contacts/import/{imp.id}", data=roles, headers=HX).get_data(as_text=True)
    assert "Safu wima moja tu inaweza kuwa namba ya simu; umechagua Name na Phone." in twice
    none = page.post(f"/contacts/import/{imp.id}", data={**roles, "role_0": "name", "role_1": "name"}, headers=HX)
    assert "Chagua safu wima yenye namba za simu (au anwani za barua pepe)." in none.get_data(as_text=True)
    with pytest.raises(ci.MappingError) as english:  # no request: the service's words stay English
        ci.apply_mapping(tenant.id, imp.id, ["phone", "phone", "field"])
    assert str(english.value) == "Only one column can be the phone number; you chose Name and Phone."
    db.session.rollback()

    monkeypatch.setitem(app.config, "CONTACT_IMPORT_MAX_BYTES", 2_000)
    big = post_file(page, b"Name,Phone\n" + b"Wanjiru,0712345678\n" * 200, headers=HX).get_data(as_text=True)
    assert "Faili lina takriban 4 KB; kikomo ni 2 KB. Ligawe kuwa mafaili madogo" in big


def test_channel_results_and_provider_fields_in_swahili(login, user, onfon, private_urls):  # noqa: F811
    set_language(user.id, "sw")
    client = login(user)
    form = client.get("/settings/channels/new?provider=onfon").get_data(as_text=True)
    assert "Ufunguo wa ufikiaji" in form and "Lazima liidhinishwe kwenye akaunti ya Onfon." in form
    assert "Jina la mtumaji (chaguo-msingi, matangazo)" in form and "Jina la mtumaji la miamala" in form
    assert "Hutumika kwa kampeni na wakati wowote hakuna mtumaji mwingine aliyewekwa." in form
    assert "Access key" not in form and "Used for campaigns" not in form
    assert "Ifanye chaneli inayotumika ya aina yake" in form
    channel = add_onfon(client, onfon)
    assert "•••••••• (imehifadhiwa)" in client.get(f"/settings/channels/{channel.id}/edit").get_data(as_text=True)
    client.post(f"/settings/channels/{channel.id}/test")
    assert "Muunganisho uko sawa: Connected to Onfon." in client.get("/settings/channels").get_data(as_text=True)
    client.post(f"/settings/channels/{channel.id}/sync")
    assert "Salio limesawazishwa. Balance:" in client.get("/settings/channels").get_data(as_text=True)


def test_provider_settings_are_lazy_and_provider_errors_english(app):
    assert str(OnfonProvider.credential_fields[0].label) == "Access key"  # no app context: English
    with app.test_request_context("/"), force_locale("sw"):
        assert str(OnfonProvider.credential_fields[0].label) == "Ufunguo wa ufikiaji"
        assert str(KIND_LABELS["email"]) == "Barua pepe"
        with pytest.raises(ConfigurationError) as missing:
            OnfonProvider({}, {})
        assert str(missing.value) == "Onfon Media needs: Access key, API key, Client ID, Sender ID."


def test_the_opening_balance_is_stored_in_english_and_shown_in_swahili(login, user, tenant):
    set_language(user.id, "sw")
    assert "Salio la mwanzo" in login(user).get("/wallet/").get_data(as_text=True)
    stored = db.session.scalar(sa.select(WalletTransaction.description).where(WalletTransaction.client_id == tenant.id))
    assert stored == "Opening balance"


def test_the_admin_ledger_shows_the_opening_balance_in_swahili(login, admin_user, tenant):
    set_language(admin_user.id, "sw")
    assert "Salio la mwanzo" in login(admin_user).get(f"/admin/clients/{tenant.id}").get_data(as_text=True)


# -- webhook delivery errors, ledger descriptions, top-up and opt-out list errors --------------------------------------


@pytest.mark.parametrize(
    ("english", "swahili"),
    [
        ("The endpoint answered 503.", "Seva ilijibu 503."),
        ("The endpoint answered 410 Gone, so webhooks were turned off.", "Seva ilijibu 410 Gone, kwa hiyo webhooks"),
        (
            "The endpoint answered 302 (a redirect); redirects are not followed.",
            "Seva ilijibu 302 (kuelekezwa kwingine)",
        ),
        ("No answer within 0.3 s.", "Hakuna jibu ndani ya sekunde 0.3."),
        ("Could not connect to 127.0.0.1:9.", "Imeshindwa kuunganisha na 127.0.0.1:9."),
        ("There is no signing secret yet; save the webhook settings.", "Bado hakuna siri ya kusaini"),
        ("No longer subscribed to message.sent.", "Hujajisajili tena kwa message.sent."),
        ("Delivered by attempt 3.", "Imefikishwa na jaribio la 3."),
    ],
)
def test_each_webhook_delivery_error_reads_as_its_own_sentence(app, english, swahili):
    with app.test_request_context("/"), force_locale("sw"):
        assert stored_text(english).startswith(swahili)  # a 410 or a redirect is not read as "answered <code>"


def test_webhook_delivery_failures_are_stored_in_english_and_logged_in_swahili(login, user, tenant, hook):  # noqa: F811
    subscribe(tenant, hook, events=["message.sent"])
    hook.default = Reply(503, b"busy")
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    now = utcnow()
    deliver_due(now)
    hook.default = Reply(302, headers={"Location": "https://elsewhere.example/in"})
    record_event(tenant.id, "message.sent", {"id": 2})
    db.session.commit()
    deliver_due(now)
    errors = sa.select(WebhookDelivery.error).where(WebhookDelivery.error.is_not(None)).order_by(WebhookDelivery.id)
    assert db.session.scalars(errors).all() == [
        "The endpoint answered 503.",
        "The endpoint answered 302 (a redirect to https://elsewhere.example/in); redirects are not followed.",
    ]
    set_language(user.id, "sw")
    log = login(user).get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True)
    assert "Seva ilijibu 503." in log
    assert "Seva ilijibu 302 (kuelekezwa kwingine hadi https://elsewhere.example/in); maelekezo" in log
    assert "The endpoint answered" not in log


def test_ledger_descriptions_are_stored_in_english_and_shown_in_swahili(login, user, tenant):
    send_message(tenant.id, to="0712 345 678", body="Karibu!", user_id=user.id)
    send_message(tenant.id, to="0712345678", body="Habari", channel="whatsapp")
    paybill.confirm_c2b(c2b_payload(tenant.account_number, "250.00", trans_id="RKT1ABC2DE"))
    wallet.hold(tenant.id, "5", "hold:test")
    wallet.settle_hold(tenant.id, "hold:test", "2")
    db.session.get(Client, tenant.id).settings = {"refund_failed_delivery": True}
    db.session.commit()
    make_message(tenant.id, cost="0.80", recipient="+254722000111")
    apply_delivery_report("onfon", report(status=DeliveryStatus.FAILED))
    db.session.commit()
    stored = set(db.session.scalars(sa.select(WalletTransaction.description)))
    assert {
        "SMS to +254712345678 (1 unit)",
        "WhatsApp to +254712345678 (1 unit)",
        "M-Pesa paybill payment RKT1ABC2DE",
        "Unused part of hold hold:test",
        "Refund: message to +254722000111 was not delivered",
    } <= stored
    set_language(user.id, "sw")
    page = login(user).get("/wallet/").get_data(as_text=True)
    for swahili in (
        "SMS kwa +254712345678 (uniti 1)",
        "WhatsApp kwa +254712345678 (uniti 1)",
        "Malipo ya paybill ya M-Pesa RKT1ABC2DE",
        "Sehemu isiyotumika ya kiasi kilichozuiliwa hold:test",
        "Kurejeshewa pesa: ujumbe kwa +254722000111 haukufika",
    ):
        assert swahili in page


def test_campaign_and_unsent_refund_descriptions_read_in_swahili(app):
    from bulkapp.services.campaigns.launch import hold_description

    assert hold_description("Siku ya Wazazi", 1) == "Campaign “Siku ya Wazazi”: 1 recipient"
    assert hold_description("Siku ya Wazazi", 1250) == "Campaign “Siku ya Wazazi”: 1,250 recipients"
    # Written by services/campaigns/launch.py and services/messaging/dispatch.py with these exact words.
    with app.test_request_context("/"), force_locale("sw"):
        assert (
            stored_text("Campaign “Mwezi wa Pasaka”: 1,250 recipients") == "Kampeni “Mwezi wa Pasaka”: wapokeaji 1,250"
        )
        assert stored_text("Campaign “Mwezi wa Pasaka”: unused part") == "Kampeni “Mwezi wa Pasaka”: sehemu isiyotumika"
        assert stored_text(hold_description("Siku ya Wazazi", 1)) == "Kampeni “Siku ya Wazazi”: mpokeaji 1"
        assert stored_text("Refund: message to +254712345678 was not sent") == (
            "Kurejeshewa pesa: ujumbe kwa +254712345678 haukutumwa"
        )
        assert stored_text("email to jane@example.com (2 units)") == "Barua pepe kwa jane@example.com (uniti 2)"


def test_top_up_form_errors_in_swahili_and_english_in_the_service(app, login, user, tenant):
    set_language(user.id, "sw")
    page = login(user)
    bad_phone = page.post("/wallet/topup", data={"phone": "0712", "amount": "500"}, headers=HX)
    assert bad_phone.status_code == 422
    assert (
        "Namba hii si sahihi (urefu au mwanzo usio sahihi). Weka namba yako ya M-Pesa, kwa mfano 0712 345 678."
        in bad_phone.get_data(as_text=True)
    )
    small = page.post("/wallet/topup", data={"phone": "0712345678", "amount": "5"}, headers=HX)
    assert "Kiasi kidogo zaidi cha kuongeza ni KSh 10." in small.get_data(as_text=True)
    with pytest.raises(topups.TopupError) as english:  # no request: the service's words stay English
        topups.start_stk_topup(tenant.id, "0712", "500")
    assert str(english.value) == (
        "This number is not valid (wrong length or prefix). Enter your M-Pesa number, for example 0712 345 678."
    )


def test_opt_out_list_errors_in_swahili(login, user):
    set_language(user.id, "sw")
    page = login(user)
    bad = page.post("/settings/opt-outs", data={"contact": "0712"}, headers=HX)
    assert bad.status_code == 422
    assert "Namba hii si sahihi (urefu au mwanzo usio sahihi)." in bad.get_data(as_text=True)
    email = page.post("/settings/opt-outs", data={"contact": "jane@"}, headers=HX).get_data(as_text=True)
    assert "Hii si anwani sahihi ya barua pepe (" in email


def test_send_errors_in_swahili_on_the_page_and_english_in_the_api(client, login, user, tenant):
    suppression_list.add(tenant.id, "0712 345 678")
    db.session.commit()
    set_language(user.id, "sw")
    page = login(user)
    empty = page.post("/messages/", data={"to": "0722000111", "channel": "sms", "body": ""}, headers=HX)
    assert empty.status_code == 422 and "Andika ujumbe, au chagua kiolezo." in empty.get_data(as_text=True)
    stopped = page.post("/messages/", data={"to": "0712345678", "channel": "sms", "body": "Habari"}, headers=HX)
    assert "+254712345678 amejiondoa kwenye jumbe zako (alijibu STOP)" in stopped.get_data(as_text=True)

    api = Api(client, tenant.test_api_key)
    answer = api.post("/messages", json={"to": "0712345678", "body": "Habari"}, headers=SW).get_json()
    assert answer["error"]["message"] == (
        "+254712345678 has opted out of your messages (replied STOP), so nothing was sent. "
        "They can reply START to subscribe again."
    )


def test_a_missing_channel_reads_in_swahili(app):
    with app.test_request_context("/"), force_locale("sw"):
        assert stored_text(channels.NO_CHANNEL["email"]).startswith("Akaunti hii haina chaneli ya barua pepe.")
        long = "A message on SMS can be at most 1,600 characters including the reply link; this one has 1,700."
        assert (
            stored_text(long)
            == "Ujumbe wa SMS unaweza kuwa na herufi 1,600 tu pamoja na kiungo cha kujibu; huu una 1,700."
        )


def test_wallet_filter_errors_in_swahili(login, user):
    set_language(user.id, "sw")
    wallet_page = login(user)
    backwards = wallet_page.get("/wallet/?date_from=2026-03-05&date_to=2026-03-01", headers=HX)
    assert backwards.status_code == 422
    assert "Tarehe ya mwisho iko kabla ya tarehe ya kuanza." in backwards.get_data(as_text=True)
    assert "Tumia tarehe kama 2026-03-31." in wallet_page.get("/wallet/?date_to=jana", headers=HX).get_data(
        as_text=True
    )


def test_admin_client_form_errors_in_swahili(login, admin_user):
    set_language(admin_user.id, "sw")
    admin = login(admin_user)
    data = {"name": "Duka", "price_per_unit": "0.12345", "owner_email": "mama@duka.example", "owner_password": "x"}
    body = admin.post("/admin/clients", data=data, headers=HX).get_data(as_text=True)
    assert "Tumia nafasi za desimali zisizozidi 4." in body
    assert "Mpe mmiliki nenosiri la kwanza lenye angalau herufi 8." in body


def test_a_too_long_web_reply_is_refused_in_swahili(client, link):  # noqa: F811
    data = {"message": "x" * (MAX_WEB_REPLY + 1), "t": reply_token(link.code), "website": ""}
    refused = client.post(f"/x/{link.code}", data=data, headers=SW, csrf=False)
    assert refused.status_code == 422
    assert f"Ujumbe uwe na herufi chini ya {MAX_WEB_REPLY}." in refused.get_data(as_text=True)


def test_template_errors_in_swahili(login, user):
    set_language(user.id, "sw")
    page = login(user)
    data = {"name": "Karibu", "channel": "sms", "content": "Habari {{ jina la kwanza }}"}
    bad = page.post("/templates/", data=data, headers=HX).get_data(as_text=True)
    assert "“{{ jina la kwanza }}” si kigeugeu sahihi" in bad
    page.post("/templates/", data={**data, "content": "Habari {{name}}"}, headers=HX)
    again = page.post("/templates/", data={**data, "content": "Habari {{name}}"}, headers=HX).get_data(as_text=True)
    assert "Tayari una kiolezo kinachoitwa “Karibu” cha SMS." in again


def test_scheduling_in_the_past_is_refused_in_swahili(signed_in, user):  # noqa: F811
    set_language(user.id, "sw")
    past = form_data(action="schedule", scheduled_at="2001-01-01T10:00")
    assert "Chagua muda ujao." in signed_in.post("/campaigns/", data=past, headers=HX).get_data(as_text=True)


def test_campaign_errors_read_in_swahili_on_the_page_and_stay_english_where_stored(signed_in, user):  # noqa: F811
    from bulkapp.models import Campaign
    from bulkapp.services.campaigns import launch as campaign_launch

    set_language(user.id, "sw")
    signed_in.post("/campaigns/", data=form_data(), headers=HX)
    campaign = db.session.scalar(sa.select(Campaign))
    refused = signed_in.post(f"/campaigns/{campaign.id}/resume", headers=HX)
    assert refused.status_code == 409
    assert "Ni kampeni iliyositishwa tu inayoweza kuendelezwa." in refused.get_data(as_text=True)

    campaign.status = "failed"  # as a scheduled launch that found nobody to send to leaves it
    campaign.stats = {"error": campaign_launch.NO_RECIPIENTS}
    db.session.commit()
    page = signed_in.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Hakuna wa kutumiwa: kila mpokeaji alikuwa si sahihi, amerudiwa au amejiondoa." in page
    with pytest.raises(campaign_launch.CampaignError) as english:  # the API and the stored stats say it in English
        campaign_launch.resume_campaign(campaign.client_id, campaign.id)
    assert english.value.message == "Only a paused campaign can be resumed."
