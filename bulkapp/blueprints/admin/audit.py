"""Platform administration > Audit log: every tenant's log and the platform's own events (read-only)."""

from __future__ import annotations

from bulkapp import htmx
from bulkapp.blueprints.admin.blueprint import bp
from bulkapp.blueprints.audit_trail import csv_response, read_filters
from bulkapp.services.accounts import audit as audit_log
from bulkapp.tenancy import admin_required

PAGE = "admin/audit.html"
LIST = "settings/partials/audit_list.html"


@bp.get("/audit")
@admin_required
def audit():
    filters, before, shown = read_filters(platform=True)
    rows, next_before = audit_log.page(None, filters, before=before)
    return htmx.render(
        PAGE,
        LIST,
        rows=rows,
        next_before=next_before,
        before=before,
        shown=shown,
        actions=audit_log.actions(None),
        list_endpoint="admin.audit",
        export_endpoint="admin.audit_export",
        platform=True,
        tenant_names=audit_log.tenant_names({row.client_id for row in rows if row.client_id}),
    )


@bp.get("/audit/export.csv")
@admin_required
def audit_export():
    filters, _before, _shown = read_filters(platform=True)
    return csv_response(audit_log.export_csv(None, filters), "audit-log-all")
