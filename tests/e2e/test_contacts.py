"""Contacts in a real browser: add/search/edit/delete inline, and a CSV import with bad rows and its report."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.services.contacts import book as contacts
from tests.e2e.conftest import screenshot, sign_in

CSV = """Full name,Mobile,Group,Order ID,Town
Wanjiru Kamau,0712 345 678,Customers,A-100,Nyeri
Otieno Odhiambo,+254722000111,Customers,A-101,Kisumu
Akinyi Achieng,733000222,Suppliers,A-102,Kisumu
Broken Number,0712,Customers,A-103,Nairobi
Landline Person,020 123 4567,,A-104,Nairobi
,,Customers,A-105,Nakuru
Wanjiru K.,254712345678,VIP,A-106,Nyeri
Kiprop Kiptoo,0110 000 333,Suppliers,A-107,Eldoret
"""


def test_import_a_csv_with_bad_rows_and_download_the_report(page, user, tmp_path):
    contacts.create_contact(user.client_id, contact="0722000111", name="Otieno (old)", department="Old")
    db.session.commit()
    path = tmp_path / "wateja.csv"
    path.write_text(CSV)
    sign_in(page, user)
    page.get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()
    workbook = tmp_path / "wateja.xlsx"
    workbook.write_bytes(b"PK\x03\x04 an Excel workbook")
    page.get_by_label("CSV file").set_input_files(str(workbook))
    page.get_by_role("button", name="Upload and choose columns").click()
    expect(page.locator("#upload-form .error")).to_contain_text("This is an Excel workbook, not a CSV file.")
    screenshot(page, "contacts-import-upload-error")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and choose columns").click()

    expect(page.get_by_role("heading", name="What is in each column?")).to_be_visible()
    expect(page.get_by_label("Use Full name as")).to_have_value("name")
    expect(page.get_by_label("Use Mobile as")).to_have_value("phone")
    expect(page.get_by_label("Use Group as")).to_have_value("department")
    page.get_by_label("Use Town as").select_option("ignore")
    screenshot(page, "contacts-import-mapping")
    page.get_by_role("button", name="Import 8 rows").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Import finished: 3 added, 1 updated, 1 duplicate row merged, 3 failed."
    )
    report = page.locator("table.report")
    expect(report.locator("tr.outcome-failed")).to_have_count(3)
    expect(report).to_contain_text("This number is not valid (wrong length or prefix).")
    expect(report).to_contain_text("This is not a mobile number, so it cannot receive SMS.")
    expect(report).to_contain_text("No phone number.")
    expect(report).to_contain_text("Same number as line 2; merged into one contact named “Wanjiru K.”")
    screenshot(page, "contacts-import-report")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download report (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "wateja-report.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["line", "phone", "name", "outcome", "reason"]
    assert [(r[0], r[3]) for r in rows[1:]] == [
        ("3", "updated"),
        ("5", "failed"),
        ("6", "failed"),
        ("7", "failed"),
        ("8", "merged"),
    ]

    page.get_by_role("link", name="View contacts").click()
    table = page.locator("#contact-list")
    expect(table).to_contain_text("+254110000333")
    expect(table).to_contain_text("Wanjiru K.")
    expect(table).not_to_contain_text("Broken Number")
    expect(page.locator("#contact-list")).to_contain_text("4 contacts")


def test_add_search_edit_and_delete_inline(page, user):
    for name, number, department in (
        ("Wanjiru Kamau", "0712345678", "Customers"),
        ("Otieno Odhiambo", "0722000111", "Customers"),
        ("Kiprop Kiptoo", "0110000333", "Suppliers"),
    ):
        contacts.create_contact(user.client_id, contact=number, name=name, department=department)
    db.session.commit()
    sign_in(page, user)
    page.goto("/contacts/")
    add = page.locator("#contact-new")
    add.get_by_label("Name").fill("Akinyi Achieng")
    add.get_by_label("Phone or email").fill("0733 000 222")
    add.get_by_label("Department").fill("VIP")
    add.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Akinyi Achieng added.")).to_be_visible()
    expect(page.locator("#contact-list")).to_contain_text("+254733000222")

    add.get_by_label("Phone or email").fill("0712")
    add.get_by_role("button", name="Add").click()
    expect(page.locator("#contact-new .error")).to_have_text("This number is not valid (wrong length or prefix).")

    page.get_by_label("Search contacts").fill("0722 000")
    expect(page.locator("#contact-list tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=0722"))
    page.get_by_label("Search contacts").fill("")
    page.get_by_label("Department").last.select_option("Customers")
    expect(page.locator("#contact-list tbody tr")).to_have_count(2)
    page.get_by_label("Department").last.select_option("")
    expect(page.locator("#contact-list tbody tr")).to_have_count(4)

    row = page.locator("tr", has_text="Otieno Odhiambo")
    row.get_by_role("button", name="Edit").click()
    editing = page.locator("tr.editing")
    editing.get_by_label("Name").fill("Otieno O.")
    editing.get_by_label("Department").fill("VIP")
    screenshot(page, "contacts-inline-edit")
    editing.get_by_role("button", name="Save").click()
    expect(page.locator("tr", has_text="Otieno O.")).to_contain_text("VIP")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="Kiprop Kiptoo").get_by_role("button", name="Delete").click()
    expect(page.locator("#contact-list")).not_to_contain_text("Kiprop")
    expect(page.locator("#contact-count")).to_have_text("3 contacts")

    page.get_by_label("Select every contact on this page").check()
    expect(page.get_by_role("button", name="Delete selected (3)")).to_be_enabled()
    page.locator("tr", has_text="Wanjiru").get_by_role("checkbox").uncheck()
    screenshot(page, "contacts-list")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete selected (2)").click()
    expect(page.get_by_text("Deleted 2 contacts.")).to_be_visible()
    expect(page.locator("#contact-list tbody tr")).to_have_count(1)


def test_contact_page_on_a_phone(phone_page, user):
    contact = contacts.create_contact(
        user.client_id, contact="0712345678", name="Wanjiru Kamau", department="VIP", fields={"order_id": "A-17"}
    )
    db.session.commit()
    sign_in(phone_page, user)
    phone_page.goto(f"/contacts/{contact.id}")
    expect(phone_page.get_by_role("heading", name="Wanjiru Kamau")).to_be_visible()
    phone_page.get_by_role("button", name="Edit").click()
    phone_page.get_by_label("Template fields").fill("order_id: A-18\ntown: Nyeri")
    phone_page.get_by_role("button", name="Save").click()
    expect(phone_page.locator("#contact-details")).to_contain_text("Nyeri")
    expect(phone_page.get_by_text("Saved.")).to_be_visible()
    screenshot(phone_page, "contact-page-phone")


def test_an_oversize_upload_says_so(page, user, app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "CONTACT_IMPORT_MAX_BYTES", 20_000)
    path = tmp_path / "big.csv"
    path.write_text("Name,Phone\n" + "Wanjiru Kamau,0712345678\n" * 3_000)
    sign_in(page, user)
    page.goto("/contacts/import")
    expect(page.locator("#file-help")).to_contain_text("up to 20 KB")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and choose columns").click()
    error = page.locator("#upload-form .error")
    expect(error).to_have_text(re.compile(r"The file is about 7\d KB; the limit is 20 KB\. Split it"))
    screenshot(page, "contacts-import-too-large")
