"""Kiswahili where it was missing: per-recipient delivery reasons, chart dates, the reply form's opt-out
confirmation in the customer's browser language, and the catalog's wording for SMS units and "Sent"."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Message
from tests.blueprints.test_reply_form import link, token  # noqa: F401 - `link` is a fixture used below
from tests.services.compliance.test_optouts import outbound
from tests.test_i18n import EN, SW, set_language

CATALOG = Path(__file__).parents[1] / "bulkapp/translations/sw/LC_MESSAGES/messages.po"


def test_per_recipient_reasons_are_in_the_readers_language(tenant, user, login):
    campaign = Campaign(client_id=tenant.id, name="Promo", message="Hi", status="sent", total_recipients=3)
    db.session.add(campaign)
    db.session.flush()
    for status, to in (("delivered", "+254711000001"), ("sent", "+254711000002"), ("pending", "+254711000003")):
        db.session.add(Message(client_id=tenant.id, campaign_id=campaign.id, recipient=to, body="Hi", status=status))
    db.session.commit()
    client = login(user)
    english = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Delivered to the phone." in english and "Waiting to be sent." in english

    set_language(user.id, "sw")
    swahili = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Imefika kwenye simu." in swahili
    assert "Imetumwa; inasubiri ripoti ya kufika." in swahili and "Inasubiri kutumwa." in swahili
    assert "Delivered to the phone." not in swahili


def test_chart_dates_use_the_readers_month_names(tenant, user, login):
    db.session.add(
        Message(client_id=tenant.id, recipient="+254711000001", body="x", status="delivered", created_at=utcnow())
    )
    db.session.commit()
    client = login(user)
    months_en = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    months_sw = {"Jan", "Feb", "Mac", "Apr", "Mei", "Jun", "Jul", "Ago", "Sep", "Okt", "Nov", "Des"}

    def labels() -> list[str]:
        page = client.get("/dashboard/charts?range=90", headers={"HX-Request": "true"}).get_data(as_text=True)
        return re.findall(r'<span class="tick" style="left: [\d.]+%">(\d\d \w+)</span>', page)

    english = labels()
    assert english and {label[3:] for label in english} <= months_en
    set_language(user.id, "sw")
    swahili = labels()
    assert len(swahili) == len(english) and {label[3:] for label in swahili} <= months_sw
    assert {label[3:] for label in swahili} & {"Mac", "Mei", "Ago", "Okt", "Des"}  # 90 days span one of these
    page = client.get("/dashboard/charts?range=7", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "imefika" in page  # a bar's title names its status in the reader's language


def reply(client, code: str, text: str, headers: dict):
    return client.post(
        f"/x/{code}", data={"message": text, "t": token(code), "website": ""}, headers=headers, csrf=False
    )


def test_a_reply_form_opt_out_is_confirmed_in_the_browsers_language(client, link, tenant):  # noqa: F811
    response = reply(client, link.code, "STOP", SW)  # an English keyword typed by a Swahili reader
    assert response.status_code == 303
    confirmation = outbound(tenant.id)[-1]
    assert confirmation.body.startswith("Hutapokea tena jumbe") and "ANZA" in confirmation.body, confirmation.body
    assert "You will not receive" not in confirmation.body


def test_a_reply_form_opt_out_follows_an_english_browser_too(client, link, tenant):  # noqa: F811
    reply(client, link.code, "TOKA", EN)
    confirmation = outbound(tenant.id)[-1]
    assert confirmation.body.startswith("You will not receive more messages"), confirmation.body


def test_an_sms_stop_still_answers_in_the_keywords_language(tenant):
    from tests.services.compliance.test_optouts import receive

    receive(tenant.id, "TOKA", "mo-1")
    assert "You will not receive" not in outbound(tenant.id)[-1].body


def test_the_catalog_says_uniti_for_sms_units_and_zimetumwa_for_sent():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="sw")
    strings = [m.string if isinstance(m.string, str) else " ".join(m.string) for m in catalog if m.id]
    assert not [s for s in strings if re.search(r"\b[kv]ipimo\b", s, re.I)]  # "a measure", not a billing unit
    assert catalog["Units"].string == "Uniti"
    assert "uniti" in catalog["%(units)s units"].string
    assert catalog["Sent"].string == "Zimetumwa"  # as "Zimefika" (Delivered) and "Zimeshindwa" (Failed)
    assert catalog["Delivered"].string == "Zimefika"
