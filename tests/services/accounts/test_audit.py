"""The audit log service: what a row holds, and that the database refuses to change or delete one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from bulkapp.models import AuditEvent
from bulkapp.services.accounts import audit


def test_record_holds_actor_target_address_and_details(db, tenant, user):
    event = audit.record(
        "channel.updated",
        client_id=tenant.id,
        actor=user,
        target=("channel", 7),
        details={"before": {"enabled": True}, "after": {"enabled": False}},
        ip="203.0.113.9",
    )
    db.session.commit()
    row = db.session.get(AuditEvent, event.id)
    assert (row.client_id, row.actor_user_id, row.actor_label) == (tenant.id, user.id, "owner@a.example")
    assert (row.action, row.target_type, row.target_id, row.ip) == ("channel.updated", "channel", "7", "203.0.113.9")
    assert row.details == {"before": {"enabled": True}, "after": {"enabled": False}}
    assert row.created_at is not None


def test_record_never_stores_a_secret_and_labels_the_system(db, tenant):
    event = audit.record(
        "api_key.rotated",
        client_id=tenant.id,
        actor="API key bk_live_…abcd",
        details={"api_key": "bk_live_secret", "password": "p", "nested": {"token": "t", "last4": "abcd"}},
    )
    system = audit.record("wallet.adjusted", client_id=None, actor=None, target=tenant)
    db.session.commit()
    assert event.details == {"nested": {"last4": "abcd"}}
    assert (event.actor_user_id, event.actor_label) == (None, "API key bk_live_…abcd")
    assert (system.actor_label, system.target_type, system.target_id) == ("system", "clients", str(tenant.id))


def _one_row(db, tenant):
    event = audit.record("auth.sign_in", client_id=tenant.id, actor="x@a.example")
    db.session.commit()
    return event.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'forged' WHERE id = :id",
        "UPDATE audit_events SET details = '{}' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "DELETE FROM audit_events",
    ],
)
def test_the_database_refuses_to_update_or_delete_a_row(db, tenant, statement):
    """Append-only is enforced by the database itself (a trigger on PostgreSQL and on SQLite), not by habit."""
    event_id = _one_row(db, tenant)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(sa.text(statement), {"id": event_id})
        db.session.flush()
    db.session.rollback()
    row = db.session.get(AuditEvent, event_id)
    assert row is not None and row.action == "auth.sign_in"


def test_the_orm_cannot_edit_a_row_either(db, tenant):
    event_id = _one_row(db, tenant)
    row = db.session.get(AuditEvent, event_id)
    row.actor_label = "someone else"
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event_id))
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(AuditEvent, event_id).actor_label == "x@a.example"


def test_pages_are_tenant_scoped_newest_first_and_keyset(db, tenant, other_tenant):
    for n in range(5):
        audit.record("contacts.exported", client_id=tenant.id, actor=f"user{n}@a.example")
    audit.record("contacts.exported", client_id=other_tenant.id, actor="b@b.example")
    audit.record("wallet.adjusted", client_id=tenant.id, actor="root@platform.example")
    db.session.commit()
    rows, after = audit.page(tenant.id, audit.Filters(action="contacts.exported"), size=3)
    assert [r.actor_label for r in rows] == ["user4@a.example", "user3@a.example", "user2@a.example"]
    rows2, after2 = audit.page(tenant.id, audit.Filters(action="contacts.exported"), before=after, size=3)
    assert [r.actor_label for r in rows2] == ["user1@a.example", "user0@a.example"] and after2 is None
    assert {r.client_id for r in audit.page(tenant.id, audit.Filters())[0]} == {tenant.id}
    assert len(audit.page(None, audit.Filters())[0]) == 7  # the platform reads every tenant
    assert [r.actor_label for r in audit.page(tenant.id, audit.Filters(actor="ROOT@"))[0]] == ["root@platform.example"]
    # LIKE wildcards in the actor filter are literal characters
    assert audit.page(tenant.id, audit.Filters(actor="%"))[0] == []
    assert audit.page(tenant.id, audit.Filters(actor="_"))[0] == []
    today = datetime.now(UTC).date()
    assert len(audit.page(tenant.id, audit.Filters(since=today, until=today))[0]) == 6
    assert audit.page(tenant.id, audit.Filters(until=date(2001, 1, 1)))[0] == []


def test_csv_export_guards_formulas(db, tenant):
    audit.record("auth.sign_in_failed", client_id=tenant.id, actor="=HYPERLINK(evil)", details={"email": "+1"})
    db.session.commit()
    text = "".join(audit.export_csv(tenant.id, audit.Filters()))
    lines = text.splitlines()
    assert lines[0].startswith("time_utc,tenant_id,actor,action")
    assert "'=HYPERLINK(evil)" in lines[1] and "auth.sign_in_failed" in lines[1]
