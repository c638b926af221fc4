"""Contacts service: normalisation, CRUD, duplicates, search, keyset pages, activity and export."""

import pytest

from bulkapp.extensions import db
from bulkapp.models import Campaign, Contact, Conversation, Message
from bulkapp.services.contacts import book as contacts
from bulkapp.services.contacts.book import ContactError, DuplicateContact


@pytest.mark.parametrize(
    "raw",
    [
        "0712345678",
        "712345678",
        "254712345678",
        "+254 712 345 678",
        "+254-712-345-678",
        "(0712) 345678",
        "00254712345678",
    ],
)
def test_every_kenyan_form_is_stored_as_e164(tenant, raw):
    contact = contacts.create_contact(tenant.id, contact=raw, name="Wanjiru")
    assert contact.contact == "+254712345678"


def test_0110_numbers_and_emails(tenant):
    assert contacts.create_contact(tenant.id, contact="0110 000 333").contact == "+254110000333"
    assert contacts.create_contact(tenant.id, contact="Juma@Duka.CO.KE").contact == "juma@duka.co.ke"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("hello", "not a phone number"),
        ("0712", "not valid"),
        ("020 123 4567", "not a mobile number"),
        ("juma@", "not a valid email"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(tenant, raw, message):
    with pytest.raises(ContactError) as caught:
        contacts.create_contact(tenant.id, contact=raw)
    assert caught.value.field == "contact" and message in caught.value.message
    assert db.session.query(Contact).count() == 0


def test_duplicates_in_the_same_tenant_are_refused_but_not_across_tenants(tenant, other_tenant):
    first = contacts.create_contact(tenant.id, contact="0712345678")
    db.session.commit()
    with pytest.raises(DuplicateContact) as caught:
        contacts.create_contact(tenant.id, contact="+254712345678")
    assert caught.value.existing_id == first.id
    contacts.create_contact(other_tenant.id, contact="0712345678")
    db.session.commit()
    assert db.session.query(Contact).count() == 2


def test_name_and_department_are_cleaned_and_limited(tenant):
    contact = contacts.create_contact(tenant.id, contact="0712345678", name="  Mama   Mboga ", department=" ")
    assert contact.name == "Mama Mboga" and contact.department is None
    with pytest.raises(ContactError, match="longer than 120"):
        contacts.create_contact(tenant.id, contact="0722000111", name="x" * 121)
    with pytest.raises(ContactError, match="longer than 80"):
        contacts.create_contact(tenant.id, contact="0722000111", department="x" * 81)


def test_update_changes_fields_and_refuses_a_taken_number(tenant, other_tenant):
    a = contacts.create_contact(tenant.id, contact="0712345678", name="A", fields={"order_id": "1"})
    b = contacts.create_contact(tenant.id, contact="0722000111", name="B")
    theirs = contacts.create_contact(other_tenant.id, contact="0733000222")
    db.session.commit()
    contacts.update_contact(tenant.id, a.id, contact="0799000444", name="A2", department="VIP")
    db.session.commit()
    db.session.refresh(a)
    assert (a.contact, a.name, a.department, a.fields) == ("+254799000444", "A2", "VIP", {"order_id": "1"})
    with pytest.raises(DuplicateContact):
        contacts.update_contact(tenant.id, a.id, contact="0722000111")
    with pytest.raises(LookupError):
        contacts.update_contact(tenant.id, theirs.id, contact="0700000000")
    assert b.contact == "+254722000111"


def test_delete_only_touches_the_tenant_and_caps_the_batch(tenant, other_tenant):
    mine = [contacts.create_contact(tenant.id, contact=f"07120000{i:02d}") for i in range(3)]
    theirs = contacts.create_contact(other_tenant.id, contact="0712000000")
    db.session.commit()
    assert contacts.delete_contacts(tenant.id, [mine[0].id, mine[1].id, theirs.id]) == 2
    db.session.commit()
    assert db.session.get(Contact, theirs.id) is not None
    assert contacts.delete_contacts(tenant.id, []) == 0
    with pytest.raises(ContactError, match="at most 500"):
        contacts.delete_contacts(tenant.id, range(1, 502))


def test_deleting_a_contact_removes_its_conversations(tenant):
    contact = contacts.create_contact(tenant.id, contact="0712345678")
    db.session.flush()
    db.session.add(Conversation(client_id=tenant.id, contact_id=contact.id, contact_identifier=contact.contact))
    db.session.commit()
    contacts.delete_contacts(tenant.id, [contact.id])
    db.session.commit()
    assert db.session.query(Conversation).count() == 0


def _book(tenant):
    rows = [
        ("Wanjiru Kamau", "0712345678", "Customers"),
        ("Otieno Odhiambo", "0722000111", "Customers"),
        ("Akinyi 50% Achieng", "0733000222", None),
        ("Kiprop", "0110000333", "Suppliers"),
        (None, "juma@duka.co.ke", "Suppliers"),
    ]
    made = [contacts.create_contact(tenant.id, contact=c, name=n, department=d) for n, c, d in rows]
    db.session.commit()
    return made


@pytest.mark.parametrize(
    ("q", "department", "expected"),
    [
        ("wanjiru", None, ["Wanjiru Kamau"]),
        ("0712 345", None, ["Wanjiru Kamau"]),
        ("+254 722", None, ["Otieno Odhiambo"]),
        ("110000", None, ["Kiprop"]),
        ("DUKA", None, [None]),
        ("50%", None, ["Akinyi 50% Achieng"]),
        ("%", None, ["Akinyi 50% Achieng"]),
        ("", "Customers", ["Otieno Odhiambo", "Wanjiru Kamau"]),
        ("", contacts.NO_DEPARTMENT, ["Akinyi 50% Achieng"]),
        ("o", "Suppliers", [None, "Kiprop"]),  # "o" is in the email address too
        ("kiprop", "Customers", []),
        ("nobody", None, []),
    ],
)
def test_search_by_name_number_or_email_and_department(tenant, other_tenant, q, department, expected):
    _book(tenant)
    contacts.create_contact(other_tenant.id, contact="0712345679", name="Wanjiru Elsewhere")
    db.session.commit()
    page = contacts.page_of_contacts(tenant.id, q, department)
    assert [c.name for c in page.contacts] == expected
    assert contacts.count_contacts(tenant.id, q, department) == len(expected)


def test_keyset_pages_walk_forwards_and_back_without_gaps(tenant):
    made = [contacts.create_contact(tenant.id, contact=f"07120000{i:02d}", name=f"C{i}") for i in range(7)]
    db.session.commit()
    ids = [c.id for c in reversed(made)]  # newest first
    first = contacts.page_of_contacts(tenant.id, limit=3)
    assert [c.id for c in first.contacts] == ids[:3] and first.newer is None and first.older == ids[2]
    second = contacts.page_of_contacts(tenant.id, after=first.older, limit=3)
    assert [c.id for c in second.contacts] == ids[3:6] and second.newer == ids[3]
    last = contacts.page_of_contacts(tenant.id, after=second.older, limit=3)
    assert [c.id for c in last.contacts] == ids[6:] and last.older is None
    back = contacts.page_of_contacts(tenant.id, before=last.newer, limit=3)
    assert [c.id for c in back.contacts] == ids[3:6]
    back_to_start = contacts.page_of_contacts(tenant.id, before=back.newer, limit=3)
    assert [c.id for c in back_to_start.contacts] == ids[:3] and back_to_start.newer is None
    assert contacts.page_of_contacts(tenant.id, after=ids[-1]).contacts == []


def test_departments_are_distinct_and_sorted(tenant):
    _book(tenant)
    assert contacts.departments(tenant.id) == ["Customers", "Suppliers"]


def test_fields_text_round_trip_and_bad_lines():
    fields = contacts.parse_fields_text("Order ID: A-17\n\nbranch = Westlands\nnote: a: b\n")
    assert fields == {"order_id": "A-17", "branch": "Westlands", "note": "a: b"}
    assert contacts.parse_fields_text(contacts.fields_text(fields)) == fields
    with pytest.raises(ContactError, match="Line 2"):
        contacts.parse_fields_text("ok: 1\njust words")
    with pytest.raises(ContactError, match="Line 1"):
        contacts.parse_fields_text(": no key")


def test_activity_lists_conversations_messages_and_campaigns(tenant, other_tenant):
    contact = contacts.create_contact(tenant.id, contact="0712345678", name="Wanjiru")
    db.session.flush()
    conversation = Conversation(client_id=tenant.id, contact_id=contact.id, contact_identifier=contact.contact)
    campaign = Campaign(client_id=tenant.id, name="Weekly offer", message="Hi")
    theirs = Campaign(client_id=other_tenant.id, name="Not yours", message="Hi")
    db.session.add_all([conversation, campaign, theirs])
    db.session.flush()
    db.session.add_all(
        [
            Message(client_id=tenant.id, campaign_id=campaign.id, recipient=contact.contact, body="Offer 1"),
            Message(client_id=tenant.id, campaign_id=campaign.id, recipient=contact.contact, body="Offer 2"),
            Message(
                client_id=tenant.id,
                conversation_id=conversation.id,
                direction="inbound",
                sender=contact.contact,
                recipient="MAMAMBOGA",
                body="Asante",
            ),
            Message(client_id=other_tenant.id, campaign_id=theirs.id, recipient=contact.contact, body="Other tenant"),
        ]
    )
    db.session.commit()
    activity = contacts.contact_activity(tenant.id, contact)
    assert [c.id for c in activity.conversations] == [conversation.id]
    assert [m.body for m in activity.messages] == ["Asante", "Offer 2", "Offer 1"]
    assert [(c.name, n) for c, n in activity.campaigns] == [("Weekly offer", 2)]


def test_export_rows_have_every_field_and_guard_formulas(tenant, other_tenant):
    contacts.create_contact(tenant.id, contact="0712345678", name="=HYPERLINK()", fields={"order_id": "7"})
    contacts.create_contact(
        tenant.id, contact="0722000111", name="Otieno", department="-VIP", fields={"town": "Kisumu"}
    )
    contacts.create_contact(other_tenant.id, contact="0733000222", name="Theirs")
    db.session.commit()
    rows = list(contacts.export_rows(tenant.id))
    assert rows[0] == ["name", "phone", "department", "order_id", "town"]
    assert rows[1] == ["'=HYPERLINK()", "+254712345678", "", "7", ""]
    assert rows[2] == ["Otieno", "+254722000111", "'-VIP", "", "Kisumu"]
    assert len(rows) == 3
    filtered = list(contacts.export_rows(tenant.id, q="otieno"))  # only the fields the filtered contacts use
    assert filtered == [["name", "phone", "department", "town"], ["Otieno", "+254722000111", "'-VIP", "Kisumu"]]
