"""CSV import: file inspection, column mapping, chunked upserts, the per-row report, progress and resumption."""

from __future__ import annotations

import codecs
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.contacts import import_contacts, resume_stalled_imports
from bulkapp.models import Contact, ContactImport, ContactImportReportRow, Notification
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.services.contacts import book as contacts
from bulkapp.services.contacts import csv_files as csvs
from bulkapp.services.contacts import importing as ci


def upload(tenant, data: str | bytes, filename: str = "contacts.csv", **kwargs) -> ContactImport:
    raw = data.encode() if isinstance(data, str) else data
    imp = ci.start_import(tenant.id, tenant.test_user.id, filename, io.BytesIO(raw), **kwargs)
    db.session.commit()
    return imp


def run(tenant, imp: ContactImport, roles: list[str] | None = None, chunk_rows: int = ci.CHUNK_ROWS) -> ContactImport:
    roles = roles or csvs.roles_from_mapping(imp.mapping, len(imp.columns))
    imp, started = ci.apply_mapping(tenant.id, imp.id, roles)
    db.session.commit()
    assert started
    for _ in ci.run_import(imp.id, chunk_rows=chunk_rows):
        db.session.commit()
    db.session.refresh(imp)
    return imp


def report(imp: ContactImport) -> list[tuple[int, str, str, str]]:
    rows = ci.report_rows(imp.client_id, imp.id)
    return [(r.line, r.outcome, r.value, r.reason) for r in rows]


def book(tenant) -> dict[str, Contact]:
    return {c.contact: c for c in db.session.scalars(sa.select(Contact).where(Contact.client_id == tenant.id))}


# --- Numbers -------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789+ -()", min_size=0, max_size=16),
        st.builds(
            lambda prefix, rest: prefix + rest,
            st.sampled_from(["0", "+254", "254", "00254", "", "+254 ", "07", "01"]),
            st.text(alphabet="0123456789 -", min_size=6, max_size=11),
        ),
    )
)
def test_quick_msisdn_never_disagrees_with_phonenumbers(raw):
    quick = csvs.quick_msisdn(raw)
    if quick is None:
        return
    assert quick == normalise_msisdn(raw)


@pytest.mark.parametrize(
    "raw", ["0712345678", "712345678", "254712345678", "+254 712-345-678", "0110000333", "(0)712345678"]
)
def test_quick_msisdn_takes_the_common_forms(raw):
    assert csvs.quick_msisdn(raw) == normalise_msisdn(raw)


def test_quick_msisdn_leaves_the_rest_to_phonenumbers():
    assert csvs.quick_msisdn("٠٧١٢٣٤٥٦٧٨") is None  # non-ASCII digits
    assert csvs.quick_msisdn("+255 712 345 678") is None  # Tanzania: the slow path decides
    assert csvs.quick_msisdn("0201234567") is None  # a Nairobi landline
    with pytest.raises(InvalidNumber):
        normalise_msisdn("0201234567")


# --- Inspecting uploads ---------------------------------------------------------------------------------


def test_uploads_wait_in_the_folder_the_environment_names(tenant, work_app, monkeypatch, tmp_path):
    from bulkapp.config import Config

    monkeypatch.setenv("CONTACT_IMPORT_DIR", str(tmp_path / "shared"))
    monkeypatch.setitem(work_app.config, "CONTACT_IMPORT_DIR", Config().CONTACT_IMPORT_DIR)
    imp = upload(tenant, "Name,Phone\nWanjiru,0712345678\n")
    assert ci.stored_path(imp).parent == tmp_path / "shared" and ci.stored_path(imp).exists()


def test_upload_is_saved_under_the_instance_dir_and_inspected(tenant):
    imp = upload(tenant, "Name,Phone,Department,Order ID\nWanjiru,0712345678,VIP,A-1\nOtieno,0722000111,,A-2\n")
    path = ci.stored_path(imp)
    assert path is not None and path.exists() and path.parent == ci.imports_dir()
    assert (imp.status, imp.encoding, imp.delimiter, imp.has_header) == ("mapping", "utf-8", ",", True)
    assert imp.columns == ["Name", "Phone", "Department", "Order ID"] and imp.total_rows == 2
    assert csvs.roles_from_mapping(imp.mapping, 4) == ["name", "phone", "department", "field"]
    assert imp.mapping["fields"] == {"order_id": 3}
    assert ci.preview_rows(imp) == [["Wanjiru", "0712345678", "VIP", "A-1"], ["Otieno", "0722000111", "", "A-2"]]


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (codecs.BOM_UTF8 + "Jina;Simu\nWanjikū;0712345678\n".encode(), "utf-8-sig", ";"),
        ("Name\tMobile\nJosé\t0712345678\n".encode("utf-16"), "utf-16", "\t"),
        ("Name|Phone\nJosé|0712345678\n".encode("cp1252"), "cp1252", "|"),
    ],
)
def test_encodings_and_delimiters_are_detected(tenant, data, encoding, delimiter):
    imp = upload(tenant, data)
    assert (imp.encoding, imp.delimiter) == (encoding, delimiter)
    done = run(tenant, imp)
    assert done.created_count == 1
    (contact,) = book(tenant).values()
    assert contact.name in {"Wanjikū", "José"} and contact.contact == "+254712345678"


def test_a_file_without_a_header_imports_its_first_row_too(tenant):
    imp = upload(tenant, "0712345678,Wanjiru,VIP\n0722000111,Otieno,\n")
    assert imp.has_header is False and imp.total_rows == 2
    assert imp.columns == ["Column A", "Column B", "Column C"]
    assert csvs.roles_from_mapping(imp.mapping, 3) == ["phone", "name", "field"]
    done = run(tenant, imp)
    assert done.created_count == 2 and book(tenant)["+254712345678"].fields == {"column_c": "VIP"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n \n,,\n", "The file is empty."),
        (b"Name,Phone\n", "header row but no contacts"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel workbook"),
        ("Name,Phone\nWanjiru,0712345678\n".encode("utf-16-le"), "not a text file"),
        (b"Name,Phone\nA,0712345678\nB\x81\x8d,0722000111\n", "line 3"),
        (b"Name,Phone\nA,0712345678\nB\x07,0722000111\n", "control characters"),
        (('Name,Phone\n"' + "x" * 140_000 + "\n").encode(), "not valid CSV"),
        (",".join(f"c{i}" for i in range(51)).encode() + b"\n" + b"1," * 50 + b"1\n", "at most 50"),
    ],
)
def test_malformed_files_are_refused_with_a_reason_and_nothing_is_kept(tenant, data, message):
    files_before = set(ci.imports_dir().iterdir())
    with pytest.raises(csvs.ImportFileError) as caught:
        upload(tenant, data)
    assert message in caught.value.message
    assert db.session.query(ContactImport).count() == 0
    assert set(ci.imports_dir().iterdir()) == files_before


def test_an_oversize_stream_is_refused_without_keeping_a_file(tenant):
    files_before = set(ci.imports_dir().iterdir())
    with pytest.raises(csvs.ImportTooLarge, match="larger than the limit of 1,000 bytes"):
        upload(tenant, "Name,Phone\n" + "Wanjiru,0712345678\n" * 100, max_bytes=1000)
    assert set(ci.imports_dir().iterdir()) == files_before


def test_guessing_roles_from_headers_and_samples():
    guess = csvs.guess_roles
    assert guess(["First name", "Last name", "Simu", "Kikundi", "Town"], [], True) == [
        "name",
        "name",
        "phone",
        "department",
        "field",
    ]
    assert guess(["Customer", "Contact", "Email", "Group", "Branch"], [], True) == [
        "name",
        "phone",
        "field",
        "department",
        "field",
    ]
    assert guess(["A", "B"], [["x", "0712345678"], ["y", "0722000111"]], True) == ["field", "phone"]


def test_field_keys_are_unique_and_never_shadow_builtin_variables():
    mapping = csvs.mapping_from_roles(
        ["Phone", "Name", "Order ID", "order-id", "Contact", ""], ["phone"] + ["field"] * 5
    )
    assert mapping["fields"] == {"name_2": 1, "order_id": 2, "order_id_2": 3, "contact_2": 4, "column_f": 5}


# --- Mapping --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (["name", "field", "field"], "Choose the column that holds the phone numbers"),
        (["phone", "phone", "field"], "you chose Name and Phone"),
        (["department", "phone", "department"], "Only one column can be the department"),
        (["phone", "field"], "do not match the file's columns"),
        (["phone", "field", "boss"], "do not match the file's columns"),
    ],
)
def test_mapping_errors(tenant, roles, message):
    imp = upload(tenant, "Name,Phone,Town\nWanjiru,0712345678,Nyeri\n")
    with pytest.raises(ci.MappingError) as caught:
        ci.apply_mapping(tenant.id, imp.id, roles)
    assert any(message in m for m in caught.value.messages)
    db.session.rollback()
    assert db.session.get(ContactImport, imp.id).status == "mapping"


def test_a_second_mapping_submit_does_not_start_it_again(tenant, other_tenant):
    imp = upload(tenant, "Name,Phone\nWanjiru,0712345678\n")
    roles = ["name", "phone"]
    assert ci.apply_mapping(tenant.id, imp.id, roles)[1] is True
    db.session.commit()
    assert ci.apply_mapping(tenant.id, imp.id, roles)[1] is False
    with pytest.raises(LookupError):
        ci.apply_mapping(other_tenant.id, imp.id, roles)


# --- Running --------------------------------------------------------------------------------------------

MESSY = """Name,Phone,Department,Order ID
Wanjiru Kamau,0712 345 678,Customers,A-1

Otieno,+254-722-000-111,,A-2
No Number,,Customers,A-3
Landline,020 123 4567,,A-4
Wanjiru K.,712345678,VIP,A-5
"Multi
line",0733000222,Suppliers,A-6
Bad,hello,,A-7
{long_name},0799000444,,A-8
Email Person,Juma@Duka.co.ke,,A-9
"""


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(tenant):
    imp = upload(tenant, MESSY.format(long_name="x" * 121))
    stored_name = imp.stored_name
    done = run(tenant, imp)
    # Line numbers are spreadsheet rows: the header is line 1, a quoted cell over two lines is one row.
    assert (done.status, done.total_rows, done.processed_rows) == ("done", 9, 9)
    assert (done.created_count, done.updated_count, done.merged_count, done.failed_count) == (4, 0, 1, 4)
    assert report(done) == [
        (5, "failed", "", "No phone number."),
        (6, "failed", "020 123 4567", "This is not a mobile number, so it cannot receive SMS."),
        (
            7,
            "merged",
            "712345678",
            "Same number as line 2; merged into one contact named “Wanjiru K.” (the later name wins).",
        ),
        (9, "failed", "hello", "This is not a phone number."),
        (10, "failed", "0799000444", "The name is longer than 120 characters."),
    ]
    contacts_by_number = book(tenant)
    assert set(contacts_by_number) == {"+254712345678", "+254722000111", "+254733000222", "juma@duka.co.ke"}
    merged = contacts_by_number["+254712345678"]
    assert (merged.name, merged.department, merged.fields) == ("Wanjiru K.", "VIP", {"order_id": "A-5"})
    assert contacts_by_number["+254733000222"].name == "Multi line"
    assert contacts_by_number["+254722000111"].department is None
    assert ci.stored_path(done) is None and not (ci.imports_dir() / stored_name).exists()


def test_rows_already_in_the_book_are_merged_and_reported(tenant, other_tenant):
    contacts.create_contact(tenant.id, contact="0712345678", name="Old Name", department="Old", fields={"a": "1"})
    contacts.create_contact(tenant.id, contact="0722000111", name="Keep Me", department="Keep", fields={"b": "2"})
    contacts.create_contact(other_tenant.id, contact="0733000222", name="Other tenant")
    db.session.commit()
    imp = upload(
        tenant, "Name,Phone,Department,A,C\nNew Name,0712345678,New,9,\n,0722000111,,,3\nFresh,0733000222,,,\n"
    )
    done = run(tenant, imp)
    assert (done.created_count, done.updated_count, done.merged_count, done.failed_count) == (1, 2, 0, 0)
    assert [r[:2] for r in report(done)] == [(2, "updated"), (3, "updated")]
    assert "Already in your contacts" in report(done)[0][3]
    db.session.expire_all()
    mine = book(tenant)
    first, second = mine["+254712345678"], mine["+254722000111"]
    assert (first.name, first.department, first.fields) == ("New Name", "New", {"a": "9"})
    # Empty cells never erase what the book knows; new fields are added.
    assert (second.name, second.department, second.fields) == ("Keep Me", "Keep", {"b": "2", "c": "3"})
    assert mine["+254733000222"].name == "Fresh"
    others = book(other_tenant)
    assert others["+254733000222"].name == "Other tenant"


def test_the_report_csv_lists_every_reported_line(tenant):
    done = run(tenant, upload(tenant, MESSY.format(long_name="Fine")))
    rows = list(ci.report_csv_rows(tenant.id, done.id))
    assert rows[0] == ["line", "phone", "name", "outcome", "reason"]
    assert [r[0] for r in rows[1:]] == ["5", "6", "7", "9"]
    assert rows[3][1:4] == ["712345678", "Wanjiru K.", "merged"]


def test_chunks_commit_progress_and_catch_duplicates_across_chunks(tenant):
    lines = ["Name,Phone"] + [f"P{i},07120000{i:02d}" for i in range(7)] + ["Again,0712000001"]
    imp = upload(tenant, "\n".join(lines) + "\n")
    imp, _ = ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    seen = []
    for step in ci.run_import(imp.id, chunk_rows=3):
        db.session.commit()
        seen.append((step.status, step.processed_rows))
    assert seen == [("running", 0), ("running", 3), ("running", 6), ("running", 8), ("done", 8)]
    db.session.refresh(imp)
    assert (imp.created_count, imp.merged_count) == (7, 1)
    assert report(imp) == [
        (
            9,
            "merged",
            "0712000001",
            "Same number as line 3; merged into one contact named “Again” (the later name wins).",
        )
    ]
    assert book(tenant)["+254712000001"].name == "Again"


def test_a_stalled_import_resumes_after_its_last_chunk(tenant):
    lines = ["Name,Phone"] + [f"P{i},07120000{i:02d}" for i in range(6)] + ["Dup,0712000000", "Bad,xyz"]
    imp = upload(tenant, "\n".join(lines) + "\n")
    imp, _ = ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    steps = ci.run_import(imp.id, chunk_rows=3)
    next(steps), next(steps)  # claimed, first chunk written...
    db.session.commit()
    steps.close()  # ...then the worker dies
    assert list(ci.run_import(imp.id)) == []  # its heartbeat is fresh: nobody else may take it yet
    assert ci.stalled_imports() == []
    db.session.execute(sa.update(ContactImport).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    assert ci.stalled_imports() == [imp.id]
    assert import_contacts(imp.id) == "done"
    db.session.refresh(imp)
    assert (imp.processed_rows, imp.created_count, imp.merged_count, imp.failed_count) == (8, 6, 1, 1)
    # The duplicate still points at its first line, read again on resumption; nothing is reported twice.
    assert report(imp) == [
        (
            8,
            "merged",
            "0712000000",
            "Same number as line 2; merged into one contact named “Dup” (the later name wins).",
        ),
        (9, "failed", "xyz", "This is not a phone number."),
    ]


def test_a_run_that_falls_behind_another_stops_without_double_counting(tenant):
    imp = upload(tenant, "Name,Phone\nA,0712000001\nB,0712000002\nC,0712000003\n")
    imp, _ = ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    first = ci.run_import(imp.id, chunk_rows=1)
    next(first), next(first)  # claimed, and the first row written
    db.session.commit()
    # A second delivery of the job, after the heartbeat went stale, takes over and finishes.
    db.session.execute(sa.update(ContactImport).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    assert import_contacts(imp.id) == "done"
    with pytest.raises(ci.ImportSuperseded):
        next(first)  # the first run's counter update finds the row moved on
    db.session.rollback()
    db.session.refresh(imp)
    assert (imp.status, imp.processed_rows, imp.created_count, imp.merged_count) == ("done", 3, 3, 0)


def test_the_job_is_idempotent(tenant):
    imp = upload(tenant, "Name,Phone\nA,0712000001\n")
    ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    assert import_contacts(imp.id) == "done"
    assert import_contacts(imp.id) == "skipped"
    db.session.refresh(imp)
    assert imp.created_count == 1 and db.session.query(ContactImportReportRow).count() == 0


def test_a_missing_file_fails_the_import_with_a_reason(tenant):
    imp = upload(tenant, "Name,Phone\nA,0712000001\n")
    ci.apply_mapping(tenant.id, imp.id, ["name", "phone"])
    db.session.commit()
    ci.stored_path(imp).unlink()
    assert import_contacts(imp.id) == "failed"
    db.session.refresh(imp)
    assert imp.status == "failed" and "no longer on the server" in imp.error_message


def test_big_imports_notify_the_uploader(tenant, monkeypatch):
    monkeypatch.setattr(ci, "INLINE_ROWS", 2)
    done = run(tenant, upload(tenant, "Name,Phone\nA,0712000001\nB,0712000002\nC,bad\n"))
    note = db.session.scalar(sa.select(Notification).where(Notification.type == "contacts_imported"))
    assert note.user_id == tenant.test_user.id and note.data["import_id"] == done.id
    assert note.message == "2 added, 0 updated, 1 failed."


def test_abandoned_uploads_are_purged_and_stalled_ones_resumed(tenant):
    old = upload(tenant, "Name,Phone\nA,0712000001\n")
    fresh = upload(tenant, "Name,Phone\nB,0712000002\n")
    queued = upload(tenant, "Name,Phone\nC,0712000003\n")
    ci.apply_mapping(tenant.id, queued.id, ["name", "phone"])
    long_ago = utcnow() - timedelta(days=2)
    db.session.execute(
        sa.update(ContactImport)
        .where(ContactImport.id.in_([old.id, queued.id]))
        .values(created_at=long_ago, updated_at=long_ago)
    )
    db.session.commit()
    old_path = ci.stored_path(old)
    assert resume_stalled_imports() == 1
    db.session.expire_all()
    assert db.session.get(ContactImport, old.id) is None and not old_path.exists()
    assert db.session.get(ContactImport, fresh.id).status == "mapping"
    assert db.session.get(ContactImport, queued.id).status == "done"  # the re-enqueued job ran (inline in tests)
    assert "+254712000003" in book(tenant)


def test_discard_removes_an_unstarted_upload_only(tenant, other_tenant):
    imp = upload(tenant, "Name,Phone\nA,0712000001\n")
    path = ci.stored_path(imp)
    assert ci.discard_import(other_tenant.id, imp.id) is False
    assert ci.discard_import(tenant.id, imp.id) is True
    db.session.commit()
    assert not path.exists() and db.session.query(ContactImport).count() == 0


def test_export_then_import_round_trips(tenant, other_tenant):
    contacts.create_contact(
        tenant.id, contact="0712345678", name="=Wanjiru", department="VIP", fields={"order_id": "7"}
    )
    contacts.create_contact(tenant.id, contact="0722000111", name="Otieno", fields={"town": "Kisumu, West"})
    contacts.create_contact(tenant.id, contact="juma@duka.co.ke", name="Juma")
    db.session.commit()
    buffer = io.StringIO()
    import csv

    csv.writer(buffer).writerows(contacts.export_rows(tenant.id))
    imp = ci.start_import(other_tenant.id, None, "export.csv", io.BytesIO(("\ufeff" + buffer.getvalue()).encode()))
    db.session.commit()
    assert csvs.roles_from_mapping(imp.mapping, len(imp.columns)) == ["name", "phone", "department", "field", "field"]
    done = run(other_tenant, imp)
    assert done.created_count == 3 and done.failed_count == 0

    def snapshot(t):
        return sorted((c.name, c.contact, c.department, c.fields) for c in book(t).values())

    assert snapshot(other_tenant) == snapshot(tenant)


def test_blank_names_are_reported_and_a_merge_says_which_name_stays(tenant):
    """Issue 13 item 7: a new contact without a name is listed in the report; a repeated number without a name
    keeps the earlier name, and the report says so."""
    imp = upload(tenant, "Name,Phone\nAmina,0712000001\n,0712000002\n,0712000001\nBaraka,0712000003\n")
    done = run(tenant, imp)
    assert (done.created_count, done.merged_count) == (3, 1)
    assert report(done) == [
        (3, "added", "0712000002", "No name in this row: the contact is saved with its number only."),
        (
            4,
            "merged",
            "0712000001",
            "Same number as line 2; merged into one contact. This row has no name, so the earlier one is kept.",
        ),
    ]
    assert book(tenant)["+254712000001"].name == "Amina"


def test_without_a_name_column_blank_names_are_not_reported(tenant):
    imp = upload(tenant, "Phone\n0712000001\n0712000002\n")
    assert report(run(tenant, imp)) == []
