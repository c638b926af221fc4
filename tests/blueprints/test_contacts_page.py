"""Contacts pages over HTTP: list, search, pages, inline add/edit/delete, bulk delete, contact page, export, import."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Contact, ContactImport, Conversation, Message
from bulkapp.services.contacts import book as contacts
from bulkapp.services.contacts import csv_files as csvs
from bulkapp.services.contacts import importing as ci

HX = {"HX-Request": "true"}


def add(tenant, number, name=None, department=None, **fields):
    contact = contacts.create_contact(tenant.id, contact=number, name=name, department=department, fields=fields)
    db.session.commit()
    return contact


def names_in(body: str) -> list[str]:
    return re.findall(r'<a href="/contacts/\d+">([^<]+)</a>', body)


def test_the_page_lists_contacts_and_fragments_are_bare(login, tenant):
    add(tenant, "0712345678", "Wanjiru Kamau", "Customers")
    client = login(tenant.test_user)
    page = client.get("/contacts/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'id="contact-new"' in body
    assert "Wanjiru Kamau" in body and "+254712345678" in body and '<option value="Customers"' in body
    fragment = client.get("/contacts/?q=wanj", headers=HX)
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="contact-list"') and "<html" not in text
    assert "HX-Request" in fragment.headers["Vary"]


def test_signed_out_users_go_to_login(client):
    assert client.get("/contacts/").status_code == 302
    assert client.get("/templates/", headers=HX).status_code == 401


def test_search_and_department_filter(login, tenant):
    add(tenant, "0712345678", "Wanjiru Kamau", "Customers")
    add(tenant, "0722000111", "Otieno Odhiambo", "Suppliers")
    add(tenant, "0733000222", "Akinyi", None)
    client = login(tenant.test_user)
    assert names_in(client.get("/contacts/?q=0722 000", headers=HX).get_data(as_text=True)) == ["Otieno Odhiambo"]
    assert names_in(client.get("/contacts/?department=Customers", headers=HX).get_data(as_text=True)) == [
        "Wanjiru Kamau"
    ]
    none = client.get(f"/contacts/?department={contacts.NO_DEPARTMENT}", headers=HX).get_data(as_text=True)
    assert names_in(none) == ["Akinyi"]
    empty = client.get("/contacts/?q=zzz", headers=HX).get_data(as_text=True)
    assert "No contacts match" in empty and "0 contacts match your search" in empty


def test_keyset_pages_over_http(login, tenant):
    for i in range(contacts.PAGE_SIZE + 5):
        contacts.create_contact(tenant.id, contact=f"0712{i:06d}", name=f"Person {i:02d}")
    db.session.commit()
    client = login(tenant.test_user)
    first = client.get("/contacts/", headers=HX).get_data(as_text=True)
    assert len(names_in(first)) == contacts.PAGE_SIZE and "Person 54" in first and "Newer" not in first
    older = re.search(r'href="(/contacts/\?after=\d+)"', first).group(1)
    second = client.get(older, headers=HX).get_data(as_text=True)
    assert names_in(second) == [f"Person {i:02d}" for i in range(4, -1, -1)] and "Older" not in second
    newer = re.search(r'href="(/contacts/\?before=\d+)"', second).group(1)
    assert names_in(client.get(newer, headers=HX).get_data(as_text=True)) == names_in(first)
    # Junk cursors are ignored rather than failing.
    assert client.get("/contacts/?after=abc&before=-1", headers=HX).status_code == 200


def test_add_a_contact_inline(login, tenant):
    client = login(tenant.test_user)
    response = client.post(
        "/contacts/", data={"new-name": "Wanjiru", "new-contact": "0712 345 678", "new-department": "VIP"}, headers=HX
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<form id="contact-new"')
    assert "Wanjiru added." in body and '"contacts-changed"' in response.headers["HX-Trigger"]
    contact = db.session.scalar(sa.select(Contact))
    assert (contact.client_id, contact.contact, contact.department) == (tenant.id, "+254712345678", "VIP")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"new-contact": ""}, "Enter a phone number or an email address."),
        ({"new-contact": "0712"}, "not valid"),
        ({"new-contact": "020 123 4567"}, "not a mobile number"),
        ({"new-contact": "0712345678", "new-name": "x" * 121}, "Field cannot be longer than 120 characters."),
        ({"new-contact": "+254 712 345 678"}, "+254712345678 is already in your contacts."),
    ],
)
def test_add_errors_re_render_the_form_with_422(login, tenant, data, error):
    add(tenant, "0712345678", "Existing")
    client = login(tenant.test_user)
    response = client.post("/contacts/", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="contact-new"')
    assert error in body
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 1


def test_add_without_htmx_redirects_or_shows_the_page(login, tenant):
    client = login(tenant.test_user)
    ok = client.post("/contacts/", data={"new-contact": "0712345678", "new-name": "Wanjiru"})
    assert ok.status_code == 302 and ok.location.endswith("/contacts/")
    bad = client.post("/contacts/", data={"new-contact": "nope"})
    assert (
        bad.status_code == 200
        and "<html" in bad.get_data(as_text=True)
        and "not a phone number" in bad.get_data(as_text=True)
    )


def test_csrf_is_required(login, tenant):
    client = login(tenant.test_user)
    response = client.post("/contacts/", data={"new-contact": "0712345678"}, headers=HX, csrf=False)
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_inline_edit_row_save_and_cancel(login, tenant):
    contact = add(tenant, "0712345678", "Wanjiru")
    other = add(tenant, "0722000111", "Otieno")
    client = login(tenant.test_user)
    row_id = f'<tr id="contact-row-{contact.id}"'
    edit = client.get(f"/contacts/{contact.id}/edit", headers=HX).get_data(as_text=True)
    assert edit.lstrip().startswith(row_id) and f'name="edit-{contact.id}-contact"' in edit
    prefix = f"edit-{contact.id}-"
    taken = client.post(f"/contacts/{contact.id}", data={prefix + "contact": other.contact}, headers=HX)
    assert taken.status_code == 422 and "already in your contacts" in taken.get_data(as_text=True)
    saved = client.post(
        f"/contacts/{contact.id}",
        data={prefix + "name": "Wanjiru K", prefix + "contact": "0799000444", prefix + "department": "VIP"},
        headers=HX,
    )
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200 and body.lstrip().startswith(row_id) and "+254799000444" in body
    db.session.expire_all()
    assert (db.session.get(Contact, contact.id).name, db.session.get(Contact, contact.id).department) == (
        "Wanjiru K",
        "VIP",
    )
    cancel = client.get(f"/contacts/{contact.id}/row", headers=HX).get_data(as_text=True)
    assert cancel.lstrip().startswith(row_id) and '<input type="text"' not in cancel


def test_delete_from_the_row_and_from_the_contact_page(login, tenant):
    first = add(tenant, "0712345678", "Wanjiru").id
    second = add(tenant, "0722000111", "Otieno").id
    client = login(tenant.test_user)
    row = client.delete(f"/contacts/{first}?q=otieno", headers={**HX, "HX-Target": f"contact-row-{first}"})
    body = row.get_data(as_text=True)
    # Nothing replaces the row; the count above the list updates out of band (with the search still applied).
    assert row.status_code == 200 and body.lstrip().startswith(
        '<p id="contact-count" class="muted" hx-swap-oob="true">'
    )
    assert "1 contact matches your search" in body
    page = client.delete(f"/contacts/{second}", headers={**HX, "HX-Target": "contact-details"})
    assert page.status_code == 204 and page.headers["HX-Redirect"] == "/contacts/"
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0
    assert client.delete(f"/contacts/{first}", headers=HX).status_code == 404


def test_bulk_delete_selected(login, tenant, other_tenant):
    mine = [add(tenant, f"07120000{i:02d}", f"P{i}").id for i in range(4)]
    theirs = add(other_tenant, "0712000000", "Theirs").id
    client = login(tenant.test_user)
    ids = [mine[0], mine[2], theirs]
    response = client.post("/contacts/bulk-delete", data={"ids": [str(i) for i in ids] + ["junk"]}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="contact-list"')
    assert "Deleted 2 contacts." in body and names_in(body) == ["P3", "P1"]
    assert db.session.get(Contact, theirs) is not None
    nothing = client.post("/contacts/bulk-delete", data={}, headers=HX).get_data(as_text=True)
    assert "Select contacts first." in nothing
    again = client.post("/contacts/bulk-delete", data={"ids": [str(mine[0])]}, headers=HX)
    assert "Select contacts first." in again.get_data(as_text=True)  # a double submit deletes nothing more


def test_contact_page_shows_details_activity_and_edits_fields(login, tenant):
    contact = add(tenant, "0712345678", "Wanjiru", "VIP", order_id="A-17")
    db.session.add(Conversation(client_id=tenant.id, contact_id=contact.id, contact_identifier=contact.contact))
    db.session.add(Message(client_id=tenant.id, recipient=contact.contact, body="Your order is ready", status="sent"))
    db.session.commit()
    client = login(tenant.test_user)
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Your order is ready" in page and "{{order_id}}" in page and "A-17" in page and "Conversations" in page
    edit = client.get(f"/contacts/{contact.id}/details/edit", headers=HX).get_data(as_text=True)
    assert edit.lstrip().startswith('<section id="contact-details"') and "order_id: A-17" in edit
    bad = client.post(
        f"/contacts/{contact.id}/details",
        data={"contact": "0712345678", "name": "Wanjiru", "fields": "order_id: A-18\nno separator"},
        headers=HX,
    )
    assert bad.status_code == 422 and "Line 2" in bad.get_data(as_text=True)
    ok = client.post(
        f"/contacts/{contact.id}/details",
        data={
            "contact": "0712345678",
            "name": "Wanjiru Kamau",
            "department": "",
            "fields": "order_id: A-18\ntown: Nyeri",
        },
        headers=HX,
    )
    assert ok.status_code == 200 and "Saved." in ok.get_data(as_text=True)
    db.session.expire_all()
    saved = db.session.get(Contact, contact.id)
    assert (saved.name, saved.department, saved.fields) == (
        "Wanjiru Kamau",
        None,
        {"order_id": "A-18", "town": "Nyeri"},
    )


def test_export_downloads_the_filtered_list(login, tenant, other_tenant):
    add(tenant, "0712345678", "Wanjiru", "VIP", order_id="7")
    add(tenant, "0722000111", "Otieno", "Customers")
    add(other_tenant, "0733000222", "Not mine", "VIP")
    client = login(tenant.test_user)
    response = client.get("/contacts/export.csv?department=VIP")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [["name", "phone", "department", "order_id"], ["Wanjiru", "+254712345678", "VIP", "7"]]


# --- Import ---------------------------------------------------------------------------------------------


def post_file(client, data: bytes, filename="contacts.csv", **kwargs):
    return client.post(
        "/contacts/import", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data", **kwargs
    )


def test_import_upload_map_and_report_over_http(login, tenant):
    client = login(tenant.test_user)
    assert "Upload a CSV file" in client.get("/contacts/import").get_data(as_text=True)
    data = b"Jina,Simu,Kikundi,Order ID\nWanjiru,0712345678,VIP,A-1\nBad,12345,,A-2\nAgain,+254712345678,,A-3\n"
    uploaded = post_file(client, data, headers=HX)
    assert uploaded.status_code == 204
    imp = db.session.scalar(sa.select(ContactImport))
    assert uploaded.headers["HX-Redirect"] == f"/contacts/import/{imp.id}"
    mapping = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "What is in each column?" in mapping and "Wanjiru" in mapping and "{{order_id}}" in mapping
    assert '<option selected value="phone">' in mapping
    started = client.post(
        f"/contacts/import/{imp.id}",
        data={"role_0": "name", "role_1": "phone", "role_2": "department", "role_3": "field"},
        headers=HX,
    )
    assert started.status_code == 204 and started.headers["HX-Redirect"] == f"/contacts/import/{imp.id}"
    done = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "Import finished: 1 added, 0 updated, 1 duplicate row merged, 1 failed." in done
    assert "every 2s" not in done and "This number is not valid" in done
    again = client.post(f"/contacts/import/{imp.id}", data={"role_0": "phone"}, headers=HX)
    assert again.status_code == 204  # a double submit just shows the import again
    report = client.get(f"/contacts/import/{imp.id}/report.csv")
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["line", "phone", "name", "outcome", "reason"]
    assert [r[:4] for r in rows[1:]] == [["3", "12345", "Bad", "failed"], ["4", "+254712345678", "Again", "merged"]]
    assert 'filename="contacts-report.csv"' in report.headers["Content-Disposition"]
    contact = db.session.scalar(sa.select(Contact))
    assert (contact.name, contact.department, contact.fields) == ("Again", "VIP", {"order_id": "A-3"})


def test_mapping_errors_re_render_with_422(login, tenant):
    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nWanjiru,0712345678\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    none = client.post(f"/contacts/import/{imp.id}", data={"role_0": "name", "role_1": "field"}, headers=HX)
    body = none.get_data(as_text=True)
    assert none.status_code == 422 and body.lstrip().startswith('<form id="import-mapping"')
    assert "Choose the column that holds the phone numbers" in body
    junk = client.post(f"/contacts/import/{imp.id}", data={"role_0": "boss", "role_1": "phone"}, headers=HX)
    assert junk.status_code == 422 and "Not a valid choice" in junk.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ContactImport, imp.id).status == "mapping"


def test_a_csv_without_a_phone_column_is_refused_at_the_mapping_step(login, tenant):
    """Issue 13 item 7: said on the mapping page, with no Import button, not after every row has failed."""
    client = login(tenant.test_user)
    post_file(client, b"Name,Town\nAmina,Nairobi\nBaraka,Mombasa\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    mapping = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert 'data-testid="no-contact-column"' in mapping and "No column of this file holds phone numbers" in mapping
    assert "Import 2 rows" not in mapping
    forced = client.post(f"/contacts/import/{imp.id}", data={"role_0": "phone", "role_1": "field"}, headers=HX)
    assert forced.status_code == 422 and "No column of this file holds phone numbers" in forced.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ContactImport, imp.id).status == "mapping"
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_choosing_a_column_without_numbers_as_the_phone_is_refused_before_import(login, tenant):
    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nAmina,0712345678\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    wrong = client.post(f"/contacts/import/{imp.id}", data={"role_0": "phone", "role_1": "field"}, headers=HX)
    body = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and "The column Name holds no phone numbers or email addresses" in body
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_the_import_page_counts_new_contacts_without_a_name(login, tenant):
    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nAmina,0712345678\n,0722000111\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    client.post(f"/contacts/import/{imp.id}", data={"role_0": "name", "role_1": "phone"}, headers=HX)
    done = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "1 new contact has no name; the report lists it." in done
    assert "No name in this row: the contact is saved with its number only." in done


@pytest.mark.parametrize(
    ("data", "filename", "error"),
    [
        (b"", "empty.csv", "The file is empty."),
        (b"PK\x03\x04rest-of-a-zip", "contacts.xlsx", "Excel workbook"),
        (b"Name,Phone\nA,0712345678\nB\xff\xfe\x81,0722000111\n", "latin.csv", "not readable text"),
        (b"Name,Phone\n", "header.csv", "no contacts under it"),
    ],
)
def test_bad_uploads_say_why(login, tenant, data, filename, error):
    client = login(tenant.test_user)
    response = post_file(client, data, filename, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="upload-form"') and error in body
    assert db.session.scalar(sa.select(sa.func.count(ContactImport.id))) == 0


def test_missing_file_is_a_form_error(login, tenant):
    client = login(tenant.test_user)
    response = client.post("/contacts/import", data={}, content_type="multipart/form-data", headers=HX)
    assert response.status_code == 422 and "Choose a CSV file to upload." in response.get_data(as_text=True)


def test_oversize_upload_gets_a_clear_413(app, login, tenant, monkeypatch):
    monkeypatch.setitem(app.config, "CONTACT_IMPORT_MAX_BYTES", 2_000)
    client = login(tenant.test_user)
    response = post_file(client, b"Name,Phone\n" + b"Wanjiru,0712345678\n" * 200, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 413 and body.lstrip().startswith('<form id="upload-form"')
    assert "The file is about 4 KB; the limit is 2 KB. Split it into smaller files" in body
    plain = post_file(client, b"Name,Phone\n" + b"Wanjiru,0712345678\n" * 200)
    assert plain.status_code == 413 and "<html" in plain.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ContactImport.id))) == 0


def test_progress_polls_every_2s_while_running_and_stops_when_done(login, tenant):
    imp = ContactImport(
        client_id=tenant.id, filename="big.csv", status="running", columns=["Phone"], total_rows=40_000,
        processed_rows=10_000, created_count=9_000, failed_count=1_000,
    )  # fmt: skip
    db.session.add(imp)
    db.session.commit()
    client = login(tenant.test_user)
    running = client.get(f"/contacts/import/{imp.id}/progress", headers=HX).get_data(as_text=True)
    assert running.lstrip().startswith('<section id="import-progress"') and 'hx-trigger="every 2s"' in running
    assert "10,000</strong> of 40,000 rows" in running and "(25%)" in running
    imp.status, imp.processed_rows = "done", 40_000
    db.session.commit()
    done = client.get(f"/contacts/import/{imp.id}/progress", headers=HX).get_data(as_text=True)
    assert "every 2s" not in done and "Import finished" in done


def test_big_files_go_to_the_default_queue(app, login, tenant, monkeypatch):
    from bulkapp.blueprints.contacts import imports

    queued = []
    monkeypatch.setattr(ci, "INLINE_ROWS", 1)
    monkeypatch.setattr(imports.rq, "enqueue", lambda func, *args, queue: queued.append((func.__name__, args, queue)))
    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nA,0712000001\nB,0712000002\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    client.post(f"/contacts/import/{imp.id}", data={"role_0": "name", "role_1": "phone"}, headers=HX)
    assert queued == [("import_contacts", (imp.id,), "default")]
    page = client.get(f"/contacts/import/{imp.id}").get_data(as_text=True)
    assert "Waiting to start" in page and 'hx-trigger="every 2s"' in page


def test_discard_an_upload(login, tenant):
    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nA,0712000001\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    path = ci.stored_path(imp)
    response = client.delete(f"/contacts/import/{imp.id}", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/contacts/import"
    assert not path.exists() and db.session.scalar(sa.select(sa.func.count(ContactImport.id))) == 0


def test_export_then_import_round_trip_over_http(login, tenant):
    add(tenant, "0712345678", "Wanjiru", "VIP", order_id="7")
    add(tenant, "0722000111", "=SUM(A1)", None, town="Kisumu")
    client = login(tenant.test_user)
    exported = client.get("/contacts/export.csv").get_data()
    db.session.execute(sa.delete(Contact))
    db.session.commit()
    post_file(client, exported, "contacts-export.csv", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    roles = csvs.roles_from_mapping(imp.mapping, len(imp.columns))
    client.post(f"/contacts/import/{imp.id}", data={f"role_{i}": r for i, r in enumerate(roles)}, headers=HX)
    rows = sorted((c.name, c.contact, c.department, c.fields) for c in db.session.scalars(sa.select(Contact)))
    assert rows == [
        ("=SUM(A1)", "+254722000111", None, {"town": "Kisumu"}),
        ("Wanjiru", "+254712345678", "VIP", {"order_id": "7"}),
    ]


def test_another_tenants_import_is_404(app, login, tenant, other_tenant):
    from tests.conftest import PASSWORD

    client = login(tenant.test_user)
    post_file(client, b"Name,Phone\nA,0712000001\n", headers=HX)
    imp = db.session.scalar(sa.select(ContactImport))
    intruder = app.test_client()
    intruder.post("/login", data={"email": other_tenant.test_user.email, "password": PASSWORD})
    for method, url in [
        ("GET", f"/contacts/import/{imp.id}"),
        ("POST", f"/contacts/import/{imp.id}"),
        ("GET", f"/contacts/import/{imp.id}/progress"),
        ("GET", f"/contacts/import/{imp.id}/report.csv"),
        ("DELETE", f"/contacts/import/{imp.id}"),
    ]:
        assert intruder.open(url, method=method).status_code == 404
