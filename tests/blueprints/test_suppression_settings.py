"""Settings > Opt-outs: list with keyset pages and search, add, remove, CSV export, keywords and footer; the
composer refusing an opted-out number."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Message, Suppression
from bulkapp.services.compliance import optouts
from bulkapp.services.compliance import suppression as suppression_list

HX = {"HX-Request": "true"}
URL = "/settings/opt-outs"


def rows(client_id: int) -> list[tuple[str, str]]:
    db.session.expire_all()
    found = db.session.execute(
        sa.select(Suppression.contact, Suppression.source)
        .where(Suppression.client_id == client_id)
        .order_by(Suppression.id)
    ).all()
    db.session.rollback()
    return [tuple(row) for row in found]


def suppress(client_id: int, *numbers: str, source: str = "keyword") -> list[int]:
    for number in numbers:
        optouts.opt_out(client_id, number, source=source, keyword="STOP" if source == "keyword" else None)
    db.session.commit()
    return list(
        db.session.scalars(sa.select(Suppression.id).where(Suppression.client_id == client_id).order_by(Suppression.id))
    )


def test_the_settings_card_links_to_the_page(login, user):
    client = login(user)
    assert 'href="/settings/opt-outs"' in client.get("/settings/").get_data(as_text=True)


def test_the_page_lists_the_tenants_numbers_only(login, user, tenant, other_tenant):
    suppress(tenant.id, "+254712345678")
    suppress(other_tenant.id, "+254799999999")
    body = login(user).get(URL).get_data(as_text=True)
    assert "<html" in body and "+254712345678" in body and "+254799999999" not in body
    assert "Replied" in body and "1 number" in body
    assert "STOP*456*9*5#" in body  # the current footer


def test_an_empty_list_says_so(login, user):
    body = login(user).get(URL, headers=HX).get_data(as_text=True)
    assert body.lstrip().startswith('<section id="optout-list"') and "Nobody has opted out yet" in body


def test_keyset_pages_walk_the_whole_list_newest_first(login, user, tenant):
    numbers = [f"+25471200{i:04d}" for i in range(suppression_list.PAGE_SIZE + 7)]
    suppress(tenant.id, *numbers)
    client = login(user)
    first = client.get(URL, headers=HX).get_data(as_text=True)
    assert numbers[-1] in first and numbers[6] not in first
    page = suppression_list.list_page(tenant.id)
    assert len(page.rows) == suppression_list.PAGE_SIZE and page.total == len(numbers)
    assert f"before={page.next_before}" in first
    second = client.get(f"{URL}?before={page.next_before}", headers=HX).get_data(as_text=True)
    assert all(n in second for n in numbers[:7]) and numbers[7] not in second
    assert "Older" not in second and "Newest" in second


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("0712 345", ["+254712345678"]),
        ("+254733", ["+254733000111"]),
        ("678", ["+254712345678"]),
        ("SHOP.EXAMPLE", ["buyer@shop.example"]),
        ("nobody", []),
        ("%", []),
        ("_", []),
    ],
)
def test_search_by_any_part_of_a_number_or_address(login, user, tenant, query, found):
    suppress(tenant.id, "+254712345678", "+254733000111", "buyer@shop.example")
    body = login(user).get(URL, query_string={"q": query}, headers=HX).get_data(as_text=True)
    for contact in ("+254712345678", "+254733000111", "buyer@shop.example"):
        assert (f'<span class="optout-contact">{contact}</span>' in body) is (contact in found)
    if not found:
        assert "No opted-out number matches" in body


def test_an_oversize_or_odd_search_is_harmless(login, user, tenant):
    suppress(tenant.id, "+254712345678")
    client = login(user)
    assert client.get(URL, query_string={"q": "7" * 5000}, headers=HX).status_code == 200
    assert client.get(f"{URL}?before=abc", headers=HX).status_code == 200


def test_add_a_number_by_hand(login, user, tenant):
    client = login(user)
    response = client.post(URL, data={"contact": "0722 000 111"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="optout-add"')
    assert "+254722000111 is now opted out." in body
    assert "optouts-changed" in response.headers["HX-Trigger"]
    assert rows(tenant.id) == [("+254722000111", "manual")]
    again = client.post(URL, data={"contact": "+254722000111"}, headers=HX)
    assert "was already on the list" in again.get_data(as_text=True)
    assert rows(tenant.id) == [("+254722000111", "manual")]


def test_add_marks_an_existing_contact_opted_out(login, user, tenant):
    db.session.add(Contact(client_id=tenant.id, contact="+254722000111", name="Wanjiku", fields={}))
    db.session.commit()
    login(user).post(URL, data={"contact": "0722000111"}, headers=HX)
    db.session.expire_all()
    contact = db.session.scalar(sa.select(Contact).where(Contact.client_id == tenant.id))
    assert contact.opted_out_at is not None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", "Enter a phone number or an email address."),
        ("hello", ""),
        ("0202 123456", ""),
        ("12", ""),
        ("not@an@address", "not a valid email address"),
        ("7" * 300, "too long"),
    ],
)
def test_adding_something_that_is_not_a_number_is_a_422(login, user, tenant, value, error):
    response = login(user).post(URL, data={"contact": value}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and 'class="error"' in body and error in body
    assert rows(tenant.id) == []


def test_add_without_csrf_is_refused(login, user, tenant):
    response = login(user).post(URL, data={"contact": "0722000111"}, csrf=False)
    assert response.status_code == 400 and rows(tenant.id) == []


def test_a_plain_form_post_renders_the_whole_page(login, user, tenant):
    response = login(user).post(URL, data={"contact": "0722000111"})
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)


def test_remove_a_number(login, user, tenant):
    ids = suppress(tenant.id, "+254712345678", "+254733000111")
    db.session.add(Contact(client_id=tenant.id, contact="+254712345678", fields={}))
    db.session.commit()
    optouts.opt_out(tenant.id, "+254712345678", source="keyword")  # marks the new contact
    db.session.commit()
    client = login(user)
    response = client.post(f"{URL}/{ids[0]}/remove", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="optout-list"')
    assert "+254712345678 was removed" in body
    assert rows(tenant.id) == [("+254733000111", "keyword")]
    db.session.expire_all()
    assert db.session.scalar(sa.select(Contact.opted_out_at).where(Contact.client_id == tenant.id)) is None
    assert client.post(f"{URL}/{ids[0]}/remove", headers=HX).status_code == 404  # a double click


def test_another_tenants_number_cannot_be_removed(login, user, tenant, other_tenant):
    (foreign,) = suppress(other_tenant.id, "+254799999999")
    client = login(user)
    assert client.post(f"{URL}/{foreign}/remove", headers=HX).status_code == 404
    assert client.post(f"{URL}/999999/remove", headers=HX).status_code == 404
    assert rows(other_tenant.id) == [("+254799999999", "keyword")]


def test_export_is_a_csv_of_the_tenants_list(login, user, tenant, other_tenant, monkeypatch):
    monkeypatch.setattr(suppression_list, "EXPORT_CHUNK", 2)  # several chunks
    suppress(tenant.id, "+254712345678", "+254733000111")
    suppress(tenant.id, "=cmd@evil.example", "+254700000001", source="manual")
    optouts.opt_out(tenant.id, "+254700000002", source="provider", keyword="onfon 406", channel="sms")
    db.session.commit()
    suppress(other_tenant.id, "+254799999999")

    response = login(user).get(f"{URL}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["contact", "source", "keyword", "channel", "opted_out_at"]
    assert [r[:4] for r in table[1:]] == [
        ["+254712345678", "keyword", "STOP", ""],
        ["+254733000111", "keyword", "STOP", ""],
        ["'=cmd@evil.example", "manual", "", ""],
        ["+254700000001", "manual", "", ""],
        ["+254700000002", "provider", "onfon 406", "sms"],
    ]
    assert all(r[4] for r in table[1:])


def test_export_of_an_empty_list_is_just_the_header(login, user):
    body = login(user).get(f"{URL}/export.csv").get_data(as_text=True)
    assert body.strip() == "contact,source,keyword,channel,opted_out_at"


def test_edit_keywords_and_footer(login, user, tenant):
    response = login(user).post(
        f"{URL}/keywords",
        data={
            "optout_keywords": "stop\nAcha, sitaki tena\n",
            "optin_keywords": "start, rudi",
            "optout_footer": "STOP 22384",
        },
        headers=HX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="optout-keywords"')
    assert "Saved." in body
    db.session.expire_all()
    client = db.session.get(Client, tenant.id)
    assert optouts.keywords(client) == (["ACHA", "SITAKI TENA", "STOP"], ["RUDI", "START"])
    assert optouts.footer(client) == "STOP 22384"
    assert optouts.classify(client, "Sitaki tena!") == "opt_out"
    assert optouts.classify(client, "ONDOKA") is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"optout_keywords": "", "optin_keywords": "START"}, "at least one opt-out"),
        ({"optout_keywords": "STOP", "optin_keywords": "stop"}, "both opt out and opt in"),
        ({"optout_keywords": "STOP", "optin_keywords": "START", "optout_footer": "x" * 60}, "under 41 characters"),
        ({"optout_keywords": "Z" * 50, "optin_keywords": "START"}, "at most 40 characters"),
    ],
)
def test_bad_keyword_settings_are_a_422_and_change_nothing(login, user, tenant, data, error):
    response = login(user).post(f"{URL}/keywords", data=data, headers=HX)
    assert response.status_code == 422 and error in response.get_data(as_text=True)
    db.session.expire_all()
    client = db.session.get(Client, tenant.id)
    assert "optout_keywords" not in (client.settings or {}) and "optout_footer" not in (client.settings or {})


def test_signed_out_visitors_are_sent_to_login(client):
    assert client.get(URL).status_code == 302
    assert client.get(URL, headers=HX).status_code == 401


def test_the_composer_refuses_an_opted_out_number(login, user, tenant):
    suppress(tenant.id, "+254712345678")
    client = login(user)
    response = client.post("/messages/", data={"to": "0712345678", "body": "Hello", "channel": "sms"}, headers=HX)
    assert response.status_code == 422
    assert "has opted out of your messages" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
