"""Settings > Webhooks: endpoint URL, events, on/off, signing secret, test event, delivery log and resend."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, current_app, render_template, request
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.columns import utcnow
from bulkapp.extensions import db, rq
from bulkapp.jobs.webhooks import deliver_webhook
from bulkapp.models import Client, Event, WebhookDelivery
from bulkapp.parsing import parse_id
from bulkapp.services.notifications.events import EVENT_TYPES
from bulkapp.services.tenant_webhooks import delivery as webhooks_out
from bulkapp.services.tenant_webhooks.settings import (
    WebhookSettingsError,
    configure_webhook,
    current_secret,
    rotate_secret,
)
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

PAGE = "settings/webhooks.html"
FORM = "settings/partials/webhooks_form.html"
SECRET = "settings/partials/webhooks_secret.html"
TEST = "settings/partials/webhooks_test.html"
LOG = "settings/partials/webhooks_log.html"
LOG_CHANGED = "webhook-log-changed"
POLL_WINDOW = timedelta(seconds=10)  # the log polls while an attempt is this close to being made

EVENT_HELP = {
    "message.sent": "a message was handed to the provider",
    "message.delivered": "the provider confirmed delivery to the phone",
    "message.failed": "a message could not be sent or delivered",
    "message.received": "a customer replied (SMS, WhatsApp or the reply link)",
    "campaign.completed": "a campaign finished sending",
    "wallet.topup": "money reached your wallet",
    "wallet.low_balance": "your balance fell below your alert level",
}


class WebhookForm(FlaskForm):
    url = StringField(
        "Endpoint URL",
        validators=[Length(max=500, message="The URL is too long (at most 500 characters).")],
        render_kw={"placeholder": "https://example.com/bulkapp/webhooks", "autocomplete": "off", "inputmode": "url"},
    )
    events = SelectMultipleField(
        "Events to send", choices=[SelectChoice(name, EVENT_HELP[name]) for name in EVENT_TYPES]
    )
    active = BooleanField("Webhooks on")


def _saved_form(client: Client) -> WebhookForm:
    data = {"url": client.webhook_url or "", "events": client.webhook_events or [], "active": client.webhook_active}
    return WebhookForm(formdata=None, data=data)


def _log_context(client_id: int, before: int | None) -> dict:
    rows, next_before = webhooks_out.delivery_log(client_id, before)
    soon = utcnow() + POLL_WINDOW
    in_flight = any(
        row.status == "sending" or (row.status == "pending" and row.next_attempt_at and row.next_attempt_at <= soon)
        for row in rows
    )
    resend_on, seen = set(), set()
    for row in rows:  # newest first: the button goes on the latest attempt of each event
        if row.event_id not in seen:
            seen.add(row.event_id)
            resend_on.add(row.id)
    return {
        "log_rows": rows,
        "log_before": before,
        "log_next": next_before,
        "log_in_flight": in_flight,
        "resend_on": resend_on,
    }


def _context(form: WebhookForm | None = None, before: int | None = None, **extra) -> dict:
    client = db.session.get(Client, current_client_id())
    context = {
        "client": client,
        "form": form or _saved_form(client),
        "has_secret": bool(client.webhook_secret),
        "test_delivery": None,
        **_log_context(client.id, before),
    }
    context.update(extra)
    return context


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_URLS"))


@bp.get("/webhooks")
@tenant_required
def webhooks():
    return render_template(PAGE, **_context())


def _webhook_settings(client_id: int) -> dict:
    """The settings as the audit log keeps them: the URL without credentials or query (either may hold a token)."""
    client = db.session.get(Client, client_id)
    parts = urlsplit(client.webhook_url or "")
    url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.scheme else ""
    return {"url": url, "events": list(client.webhook_events or []), "active": client.webhook_active}


@bp.post("/webhooks")
@tenant_required
def webhooks_save():
    form = WebhookForm()
    if form.validate_on_submit():
        before = _webhook_settings(current_client_id())
        try:
            configure_webhook(
                current_client_id(),
                url=form.url.data,
                events=form.events.data,
                active=form.active.data,
                allow_private=_allow_private(),
            )
        except WebhookSettingsError as exc:
            form[exc.field or "url"].errors.append(exc.message)
        else:
            audit("webhook.updated", details={"before": before, "after": _webhook_settings(current_client_id())})
            db.session.commit()
            return htmx.render(PAGE, FORM, **_context(saved=True, oob=True))
    return htmx.render_form_errors(PAGE, FORM, **_context(form=form))


@bp.get("/webhooks/secret")
@tenant_required
def webhook_secret():
    client = db.session.get(Client, current_client_id())
    return _no_store(htmx.render(PAGE, SECRET, **_context(revealed_secret=current_secret(client))))


@bp.post("/webhooks/secret/rotate")
@tenant_required
def webhook_secret_rotate():
    secret = rotate_secret(current_client_id())
    audit("webhook.secret_rotated")
    db.session.commit()
    return _no_store(htmx.render(PAGE, SECRET, **_context(revealed_secret=secret, rotated=True)))


@bp.post("/webhooks/test")
@tenant_required
def webhook_test():
    client = db.session.get(Client, current_client_id())
    if not client.webhook_url:
        return htmx.render_form_errors(PAGE, TEST, **_context(test_error="Save a URL first, then send a test event."))
    delivery = webhooks_out.create_test_event(client.id)
    db.session.commit()
    rq.enqueue(deliver_webhook, delivery.id, queue="low")
    delivery = db.session.get(WebhookDelivery, delivery.id, populate_existing=True)
    return htmx.trigger(htmx.render(PAGE, TEST, **_context(test_delivery=delivery)), LOG_CHANGED)


@bp.get("/webhooks/deliveries/<int:delivery_id>")
@tenant_required
def webhook_delivery(delivery_id: int):
    delivery = get_owned_or_404(WebhookDelivery, delivery_id)
    response = htmx.render(PAGE, TEST, **_context(test_delivery=delivery))
    if delivery.status not in webhooks_out.IN_FLIGHT:
        htmx.trigger(response, LOG_CHANGED)
    return response


@bp.get("/webhooks/deliveries")
@tenant_required
def webhook_deliveries():
    before = parse_id(request.args.get("before"))
    return htmx.render(PAGE, LOG, **_context(before=before))


@bp.post("/webhooks/events/<int:event_id>/resend")
@tenant_required
def webhook_resend(event_id: int):
    event = get_owned_or_404(Event, event_id)
    client = db.session.get(Client, event.client_id)
    if not client.webhook_url:
        return htmx.render_form_errors(PAGE, LOG, **_context(log_error="Save a URL first, then resend."))
    delivery = webhooks_out.resend_event(client.id, event.id)
    if delivery is None:
        abort(404)
    db.session.commit()
    rq.enqueue(deliver_webhook, delivery.id, queue="low")
    return htmx.render(PAGE, LOG, **_context(resent=delivery.attempt))
