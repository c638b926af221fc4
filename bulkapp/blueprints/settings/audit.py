"""Settings > Audit log: who did what in this tenant (read-only; filters, keyset pages, CSV)."""

from __future__ import annotations

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import csv_response, read_filters
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.services.accounts import audit as audit_log
from bulkapp.tenancy import current_client_id, tenant_required

PAGE = "settings/audit.html"
LIST = "settings/partials/audit_list.html"


@bp.get("/audit")
@tenant_required
def audit():
    client_id = current_client_id()
    filters, before, shown = read_filters()
    rows, next_before = audit_log.page(client_id, filters, before=before)
    return htmx.render(
        PAGE,
        LIST,
        rows=rows,
        next_before=next_before,
        before=before,
        shown=shown,
        actions=audit_log.actions(client_id),
        list_endpoint="settings.audit",
        export_endpoint="settings.audit_export",
        platform=False,
    )


@bp.get("/audit/export.csv")
@tenant_required
def audit_export():
    filters, _before, _shown = read_filters()
    return csv_response(audit_log.export_csv(current_client_id(), filters), "audit-log")
