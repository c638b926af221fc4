"""Every CSV export guards every cell: nothing a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import (
    Contact,
    ContactImport,
    ContactImportReportRow,
    Message,
    Suppression,
    WalletTransaction,
)
from bulkapp.spreadsheet import FORMULA_START, safe_cell
from tests.test_tenant_isolation import _objects_of

# A formula as typed, after a tab, after a carriage return; and the other characters that start one.
HOSTILE = ['=HYPERLINK("http://x")', "\t=1+1", "\r=1+1", "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3"]
NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
PACKAGE = Path(__file__).resolve().parents[2] / "bulkapp"


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status_code
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def _assert_guarded(rows: list[list[str]], expected: list[str]) -> None:
    cells = [cell for row in rows for cell in row]
    for cell in cells:
        assert not cell.startswith(FORMULA_START) or NUMBER.fullmatch(cell), repr(cell)
    for value in expected:
        assert "'" + value in cells, (value, cells)


@pytest.fixture
def signed_in(client, login, tenant):
    login(tenant.test_user)
    return client


def test_the_guard_follows_owasp_and_leaves_numbers_alone():
    for value in HOSTILE:
        assert safe_cell(value) == "'" + value
    for value in ("-5.00", "+254712345678", "12", "", None, "Wanjiru", " =1"):
        assert safe_cell(value) == ("" if value is None else value)
    assert safe_cell("'=1") == "'=1"  # already guarded: not quoted twice


def test_contacts_export_guards_the_phone_name_department_and_fields(signed_in, tenant):
    for index, value in enumerate(HOSTILE):
        db.session.add(
            Contact(
                client_id=tenant.id,
                name=value,
                contact=f"{value}{index}@example.com",  # the email check accepts a leading =
                department=value,
                fields={"note": value},
            )
        )
    db.session.commit()
    rows = _rows(signed_in.get("/contacts/export.csv"))
    _assert_guarded(rows, [*HOSTILE, *(f"{value}{i}@example.com" for i, value in enumerate(HOSTILE))])


def test_campaign_export_guards_the_recipient_and_reason(signed_in, tenant):
    ids = _objects_of(tenant)
    for value in HOSTILE:
        db.session.add(
            Message(
                client_id=tenant.id,
                campaign_id=ids["campaign_id"],
                recipient=value,
                body="Hi",
                status="failed",
                error_message=value,
            )
        )
    db.session.commit()
    rows = _rows(signed_in.get(f"/campaigns/{ids['campaign_id']}/export.csv"))
    _assert_guarded(rows, HOSTILE)


def test_wallet_history_guards_the_reference_and_description(signed_in, tenant):
    opening = db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.client_id == tenant.id))
    opening.reference = "\t=1+1"
    opening.description = "\r=1+1"
    db.session.commit()
    rows = _rows(signed_in.get("/wallet/history.csv"))
    _assert_guarded(rows, ["\t=1+1", "\r=1+1"])


def test_opt_out_export_guards_the_number_and_keyword(signed_in, tenant):
    for value in HOSTILE:
        db.session.add(Suppression(client_id=tenant.id, contact=value, source="keyword", keyword=value[:40]))
    db.session.add(Suppression(client_id=tenant.id, contact="+254712000302", source="manual"))
    db.session.commit()
    rows = _rows(signed_in.get("/settings/opt-outs/export.csv"))
    _assert_guarded(rows, HOSTILE)
    assert "+254712000302" in [row[0] for row in rows]  # a phone number stays a number


def test_import_report_guards_the_phone_name_and_reason(signed_in, tenant):
    upload = ContactImport(client_id=tenant.id, filename="list.csv", status="done", columns=["Phone"], mapping={})
    db.session.add(upload)
    db.session.flush()
    for line, value in enumerate(HOSTILE, start=2):
        db.session.add(
            ContactImportReportRow(
                client_id=tenant.id, import_id=upload.id, line=line, outcome="failed", value=value, name=value,
                reason=value,
            )
        )  # fmt: skip
    db.session.commit()
    rows = _rows(signed_in.get(f"/contacts/import/{upload.id}/report.csv"))
    _assert_guarded(rows, HOSTILE)


def test_every_csv_writer_is_the_guarded_one():
    """A new export cannot skip the guard: only bulkapp/spreadsheet.py may create a plain csv writer."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "spreadsheet.py" and re.search(r"csv\.(writer|DictWriter)\(", path.read_text())
    ]
    assert offenders == []
