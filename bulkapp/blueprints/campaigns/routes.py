"""Campaign views: the list, the composer (live quote, CSV upload, save / test / schedule / send), the campaign
page (progress, per-recipient results, pause / resume / cancel / retry failed) and the CSV export."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.campaigns.blueprint import bp
from bulkapp.blueprints.campaigns.forms import CampaignForm
from bulkapp.extensions import db
from bulkapp.formatting import local_time
from bulkapp.i18n import stored_text
from bulkapp.jobs.campaigns import enqueue_chunks
from bulkapp.models import CAMPAIGN_STATUSES, Client, Contact, Template
from bulkapp.parsing import INT_MAX, parse_int
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns import message_rows
from bulkapp.services.campaigns import progress as figures
from bulkapp.services.campaigns import recipients as campaign_recipients
from bulkapp.services.campaigns.launch import CampaignError
from bulkapp.services.channels import routing as channels
from bulkapp.services.contacts import book as contact_service
from bulkapp.services.contacts.csv_files import ImportFileError
from bulkapp.services.messaging import compose as messaging
from bulkapp.tenancy import current_client_id, tenant_required

LIST_PAGE = "campaigns/page.html"
LIST = "campaigns/partials/list.html"
COMPOSE_PAGE = "campaigns/compose.html"
FORM = "campaigns/partials/form.html"
QUOTE = "campaigns/partials/quote.html"
CSV_FIELD = "campaigns/partials/csv_field.html"
CONTACT_CHOICES = 500


# ------------------------------------------------------------------------------------------ list


@bp.get("/")
@tenant_required
def index():
    args = request.args
    try:
        page = campaigns.list_campaigns(
            current_client_id(),
            search=args.get("q", ""),
            status=args.get("status", "") if args.get("status") in CAMPAIGN_STATUSES else "",
            channel=args.get("channel", "") if args.get("channel") in channels.KIND_LABELS else "",
            cursor=args.get("cursor") or None,
        )
    except campaigns.InvalidCursor:
        abort(404)
    return htmx.render(
        LIST_PAGE,
        LIST,
        listing=page,
        statuses=CAMPAIGN_STATUSES,
        kinds=channels.KIND_LABELS,
        delivered_percent=figures.delivered_percent,
        filters={k: args.get(k, "") for k in ("q", "status", "channel")},
    )


# ------------------------------------------------------------------------------------------ composer


def _form(**kwargs) -> CampaignForm:
    client_id = current_client_id()
    form = CampaignForm(**kwargs)
    templates = db.session.execute(
        sa.select(Template.id, Template.name, Template.content)
        .where(Template.client_id == client_id)
        .order_by(Template.name)
    ).all()
    people = db.session.execute(
        sa.select(Contact.id, Contact.name, Contact.contact)
        .where(Contact.client_id == client_id)
        .order_by(Contact.name, Contact.id)
        .limit(CONTACT_CHOICES)
    ).all()
    form.template_texts = {str(tid): content or "" for tid, _name, content in templates}
    form.set_choices(
        channels.usable_kinds(client_id),
        [(tid, name) for tid, name, _content in templates],
        contact_service.departments(client_id),
        [(cid, f"{name} ({number})" if name else number) for cid, name, number in people],
    )
    return form


def _selection(form: CampaignForm) -> dict:
    csv_record = None
    if form.csv_token.data:
        csv_record = {"token": form.csv_token.data, "filename": form.csv_filename.data or "upload.csv"}
        rows = parse_int(form.csv_rows.data, 0, INT_MAX)
        if rows is not None:
            csv_record["rows"] = rows
    return campaign_recipients.clean_selection(
        all_contacts=bool(form.all_contacts.data),
        departments=form.departments.data or [],
        contact_ids=[i for i in (form.contact_ids.data or []) if isinstance(i, int)],
        numbers=form.numbers.data or "",
        csv=csv_record,
    )


def _draft(form: CampaignForm) -> campaigns.DraftInput:
    channel = form.channel.data if form.channel.data in channels.KIND_LABELS else "sms"
    return campaigns.DraftInput(
        name=form.name.data or "",
        channel=channel,
        kind=form.kind.data if form.kind.data in campaigns.KINDS else "promotional",
        sender_id=form.sender_id.data or None,
        message=form.message.data or "",
        template_id=form.template_id.data if isinstance(form.template_id.data, int) else None,
        selection=_selection(form),
    )


def _fill(form: CampaignForm, campaign) -> None:
    selection = campaign.recipients or {}
    form.name.data = campaign.name
    form.channel.data = campaign.channel
    form.kind.data = campaign.kind
    form.sender_id.data = campaign.sender_id
    form.message.data = campaign.message or getattr(form, "template_texts", {}).get(str(campaign.template_id), "")
    form.template_id.data = campaign.template_id
    form.all_contacts.data = bool(selection.get("all"))
    form.departments.data = selection.get("departments") or []
    form.contact_ids.data = selection.get("contact_ids") or []
    form.numbers.data = selection.get("numbers") or ""
    csv_record = selection.get("csv") or {}
    form.csv_token.data = csv_record.get("token")
    form.csv_filename.data = csv_record.get("filename")
    form.csv_rows.data = str(csv_record.get("rows") or "")
    if campaign.scheduled_at:
        form.scheduled_at.data = campaign.scheduled_at.astimezone(_user_zone()).replace(tzinfo=None)


def _user_zone() -> ZoneInfo:
    try:
        return ZoneInfo(current_user.timezone or "Africa/Nairobi")
    except (KeyError, ValueError):
        return ZoneInfo("Africa/Nairobi")


def _compose(form: CampaignForm, campaign=None, status: int = 200, error: str | None = None):
    context = {
        "form": form,
        "campaign": campaign,
        "preview": campaigns.quote_campaign(current_client_id(), _draft(form)),
        "form_error": error,
        "zone": _user_zone().key,
    }
    if status == 422:
        return htmx.render_form_errors(COMPOSE_PAGE, FORM, **context)
    return htmx.render(COMPOSE_PAGE, FORM, status=status, **context)


@bp.get("/new")
@tenant_required
def new():
    form = _form()
    return _compose(form)


@bp.get("/<int:campaign_id>/edit")
@tenant_required
def edit(campaign_id: int):
    campaign = _owned(campaign_id)
    if campaign.status not in campaigns.EDITABLE:
        return htmx.redirect(url_for("campaigns.show", campaign_id=campaign.id))
    form = _form(formdata=None)
    _fill(form, campaign)
    return _compose(form, campaign)


@bp.post("/quote")
@tenant_required
def quote():
    """The live panel: the composer posts its fields here (debounced) and gets the panel back."""
    form = _form()
    return render_template(QUOTE, preview=campaigns.quote_campaign(current_client_id(), _draft(form)))


@bp.post("/upload")
@tenant_required
def upload():
    """Store an uploaded CSV of recipients and answer with the field holding its token."""
    form = _form()
    file = request.files.get("csv_file")
    error, record = None, None
    if file is None or not file.filename:
        error = _("Choose a CSV file to upload.")
    else:
        try:
            record = campaign_recipients.save_upload(current_client_id(), file.stream, file.filename)
        except ImportFileError as exc:
            error = str(exc)
    if record:
        form.csv_token.data, form.csv_filename.data, form.csv_rows.data = (
            record["token"],
            record["filename"],
            str(record["rows"]),
        )
    response = Response(
        render_template(CSV_FIELD, form=form, csv_error=error), 422 if error and htmx.is_htmx() else 200
    )
    return htmx.trigger(response, "campaign-recipients-changed")


@bp.post("/")
@tenant_required
def create():
    return _submit(None)


@bp.post("/<int:campaign_id>")
@tenant_required
def update(campaign_id: int):
    return _submit(_owned(campaign_id))


def _submit(campaign):
    form = _form()
    action = request.form.get("action", "save")
    if not form.validate_on_submit():
        return _compose(form, campaign, 422)
    client_id = current_client_id()
    original = campaign
    try:
        campaign = campaigns.save_draft(
            client_id,
            _draft(form),
            campaign_id=campaign.id if campaign else None,
            actor_id=current_user.id,
            form_key=form.form_key.data or None,
        )
        # Send and Schedule save the campaign only when they succeed: one transaction, committed by them.
        note = _act(client_id, campaign, action, form) if action in ("send", "schedule") else None
    except campaigns.AlreadySubmitted as exc:
        db.session.rollback()
        return htmx.redirect(url_for("campaigns.show", campaign_id=exc.campaign_id))
    except CampaignError as exc:
        db.session.rollback()
        if exc.code == "not_found" and exc.field is None:
            abort(404)
        _attach(form, exc)
        return _compose(form, original, 422, _not_saved(action))
    if note is None:
        db.session.commit()
        try:
            note = _send_test(client_id, campaign) if action == "test" else _("Draft saved.")
        except CampaignError as exc:
            db.session.rollback()
            _attach(form, exc)
            return _compose(form, campaign, 422)
        except messaging.SendError as exc:
            db.session.rollback()
            return _compose(form, campaign, 422, stored_text(exc.message))
    if action == "test":
        return _tested(form, campaign, note)
    flash(note, "success")
    return htmx.redirect(url_for("campaigns.show", campaign_id=campaign.id))


def _not_saved(action: str) -> str | None:
    if action == "send":
        return _("Not sent, and nothing was saved. Fix what is marked below, or choose Save draft to keep it.")
    if action == "schedule":
        return _("Not scheduled, and nothing was saved. Fix what is marked below, or choose Save draft to keep it.")
    return None


def _act(client_id: int, campaign, action: str, form: CampaignForm) -> str:
    if action == "schedule":
        if form.scheduled_at.data is None:
            raise CampaignError("invalid_schedule", _("Choose the date and time to send."), "scheduled_at")
        when = form.scheduled_at.data.replace(tzinfo=_user_zone()).astimezone(UTC)
        campaigns.schedule_campaign(client_id, campaign.id, when)
        db.session.commit()
        return _(
            "Scheduled for %(when)s (%(zone)s).",
            when=local_time(when, "%d %b %Y, %H:%M"),
            zone=_user_zone().key,
        )
    if campaign.status == "scheduled":
        campaigns.unschedule_campaign(client_id, campaign.id)
    return _launch(client_id, campaign.id)


def _launch(client_id: int, campaign_id: int) -> str:
    launch = campaign_launch.launch_campaign(client_id, campaign_id)
    db.session.commit()
    enqueue_chunks(client_id, campaign_id, launch.ranges)
    if launch.status == "scheduled":
        return _(
            "Promotional messages go out only in sending hours, so this campaign starts at %(when)s.",
            when=local_time(launch.waiting_until, "%d %b, %H:%M"),
        )
    # The amount reserved shows on the campaign's card while it sends, not in a note that outlives the run.
    return ngettext(
        "Sending to %(count)s recipient.",
        "Sending to %(count)s recipients.",
        launch.recipients,
        count=f"{launch.recipients:,}",
    )


def _send_test(client_id: int, campaign) -> str:
    phone = (current_user.phone or "").strip()
    if not phone:
        raise CampaignError("no_phone", _("Add your phone number in Settings › Your profile to get a test message."))
    client = db.session.get(Client, client_id)
    builder = message_rows.TextBuilder(client, "sms", campaign.kind, message_rows.campaign_content(campaign))
    if not builder.content:
        raise CampaignError("empty_body", _("Write a message or choose a template."), "message")
    values = {"name": current_user.name, "first_name": (current_user.name or "").split(" ")[0], "phone": phone}
    message = messaging.send_message(
        client_id, to=phone, body="[TEST] " + builder.text(values), channel="sms", user_id=current_user.id
    )
    db.session.commit()
    return _("Test sent to %(to)s (%(cost)s).", to=message.recipient, cost=f"KSh {message.cost:,.2f}")


def _tested(form: CampaignForm, campaign, note: str):
    context = {
        "form": form,
        "campaign": campaign,
        "preview": campaigns.quote_campaign(current_client_id(), _draft(form)),
        "form_note": note,
        "zone": _user_zone().key,
    }
    if htmx.is_htmx():
        return htmx.render(COMPOSE_PAGE, FORM, **context)
    flash(note, "success")
    return htmx.redirect(url_for("campaigns.edit", campaign_id=campaign.id))


def _attach(form: CampaignForm, error: CampaignError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, stored_text(error.message)]
    else:
        form.form_errors.append(stored_text(error.message))


def _owned(campaign_id: int):
    try:
        return campaign_launch.get_campaign(current_client_id(), campaign_id)
    except CampaignError:
        abort(404)
