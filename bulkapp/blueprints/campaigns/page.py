"""The campaign page: progress across runs, per-recipient results, pause / resume / cancel / retry failed (with
its quote, confirmed before it charges) and the CSV export."""

from __future__ import annotations

import io

from flask import Response, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from bulkapp import htmx, spreadsheet
from bulkapp.blueprints.campaigns.blueprint import bp
from bulkapp.blueprints.campaigns.routes import _launch, _owned
from bulkapp.extensions import db
from bulkapp.formatting import format_ksh, local_time
from bulkapp.i18n import stored_text
from bulkapp.jobs.campaigns import enqueue_chunks
from bulkapp.parsing import parse_id
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns import message_rows
from bulkapp.services.campaigns import progress as figures
from bulkapp.services.campaigns.launch import CampaignError
from bulkapp.tenancy import current_client_id, tenant_required

SHOW_PAGE = "campaigns/show.html"
PROGRESS = "campaigns/partials/progress.html"
RECIPIENTS = "campaigns/partials/recipients.html"


def _progress_context(campaign) -> dict:
    """What the progress card shows (polled every 2 seconds while the campaign runs)."""
    return {
        "campaign": campaign,
        "progress": figures.campaign_progress(campaign.client_id, campaign.id),
        "retryable": figures.failed_count_of_run(campaign)
        if campaign.status in ("sent", "cancelled", "failed") and campaign.settled_run >= campaign.run
        else 0,
    }


def _recipients_context(campaign, run_progress: figures.Progress | None = None) -> dict:
    """What the recipient table shows; it polls too (every 4 seconds) while the progress card does."""
    status = request.args.get("status", "")
    status = status if status in campaigns.STATUS_FILTERS else ""
    return {
        "campaign": campaign,
        "progress": run_progress or figures.campaign_progress(campaign.client_id, campaign.id),
        "rows": campaigns.recipient_page(
            campaign.client_id, campaign.id, status=status, after=parse_id(request.args.get("after"))
        ),
        "status_filter": status,
        "filters": campaigns.STATUS_FILTERS,
        "reason": lambda message: stored_text(campaigns.plain_reason(message)),
        "is_charged": campaigns.is_charged,
    }


def _page_context(campaign) -> dict:
    """The whole page's figures, or for an HTMX request (which gets the progress card alone) the card's."""
    card = _progress_context(campaign)
    if htmx.is_htmx():
        return card
    return {**card, **_recipients_context(campaign, card["progress"]), "text": message_rows.campaign_content(campaign)}


@bp.get("/<int:campaign_id>")
@tenant_required
def show(campaign_id: int):
    campaign = _owned(campaign_id)
    return htmx.render(SHOW_PAGE, PROGRESS, **_page_context(campaign))


@bp.get("/<int:campaign_id>/progress")
@tenant_required
def progress(campaign_id: int):
    campaign = _owned(campaign_id)
    if not htmx.is_htmx():  # the polled fragment alone is no page
        return htmx.redirect(url_for(".show", campaign_id=campaign.id))
    context = _progress_context(campaign)
    # Each poll refreshes the header balance (a settled hold gives money back) and, once the run is over,
    # clears the launch note that no longer describes it.
    clear_flash = not context["progress"].running
    response = Response(render_template(PROGRESS, oob_balance=True, clear_flash=clear_flash, **context))
    if not context["progress"].polling:  # the last poll: let the recipient table catch up
        htmx.trigger(response, "campaign-changed")
    return response


@bp.get("/<int:campaign_id>/recipients")
@tenant_required
def recipients(campaign_id: int):
    campaign = _owned(campaign_id)
    if not htmx.is_htmx():  # the table alone is no page: the campaign's page with the same filter
        kept = {name: request.args[name] for name in ("status", "after") if request.args.get(name)}
        return htmx.redirect(url_for(".show", campaign_id=campaign.id, **kept))
    return render_template(RECIPIENTS, **_recipients_context(campaign))


def _control(campaign_id: int, action):
    campaign = _owned(campaign_id)
    client_id = current_client_id()
    try:
        note = action(client_id, campaign)
    except CampaignError as exc:
        db.session.rollback()
        db.session.expire_all()
        campaign = _owned(campaign_id)
        return htmx.render(
            SHOW_PAGE, PROGRESS, status=409, control_error=stored_text(exc.message), **_page_context(campaign)
        )
    db.session.expire_all()
    campaign = _owned(campaign_id)
    response = htmx.render(
        SHOW_PAGE,
        PROGRESS,
        control_note=note,
        oob_balance=htmx.is_htmx(),
        clear_flash=htmx.is_htmx(),
        **_page_context(campaign),
    )
    return htmx.trigger(response, "campaign-changed")


@bp.post("/<int:campaign_id>/launch")
@tenant_required
def launch(campaign_id: int):
    return _control(campaign_id, lambda client_id, c: _launch(client_id, c.id))


@bp.post("/<int:campaign_id>/pause")
@tenant_required
def pause(campaign_id: int):
    def act(client_id, campaign):
        changed = campaign_launch.pause_campaign(client_id, campaign.id)
        db.session.commit()
        return (
            _("Paused. Messages already handed to the provider still go out.") if changed else _("It was not sending.")
        )

    return _control(campaign_id, act)


@bp.post("/<int:campaign_id>/resume")
@tenant_required
def resume(campaign_id: int):
    def act(client_id, campaign):
        launch = campaign_launch.resume_campaign(client_id, campaign.id)
        db.session.commit()
        enqueue_chunks(client_id, campaign.id, launch.ranges)
        if launch.status == "paused":
            when = local_time(launch.waiting_until, "%d %b, %H:%M")
            return _("Outside sending hours: it resumes by itself at %(when)s.", when=when)
        return _("Resumed.")

    return _control(campaign_id, act)


@bp.post("/<int:campaign_id>/cancel")
@tenant_required
def cancel(campaign_id: int):
    def act(client_id, campaign):
        outcome = campaigns.cancel(client_id, campaign.id)
        db.session.commit()
        if not outcome.changed:
            return _("Nothing to cancel.")
        if not outcome.held:
            return _("Cancelled.")
        if outcome.released is None:
            return _(
                "Cancelled. Of the %(held)s reserved, what was not spent comes back to your balance once the "
                "messages already with the provider are done.",
                held=format_ksh(outcome.held),
            )
        if not outcome.released:
            held = format_ksh(outcome.held)
            return _("Cancelled. All of the %(held)s reserved was spent on messages already sent.", held=held)
        return _(
            "Cancelled. %(released)s of the %(held)s reserved is back in your balance.",
            released=format_ksh(outcome.released),
            held=format_ksh(outcome.held),
        )

    return _control(campaign_id, act)


@bp.get("/<int:campaign_id>/retry")
@tenant_required
def retry_quote(campaign_id: int):
    """The retry's quote with a confirm button: nothing is charged until the owner confirms."""
    campaign = _owned(campaign_id)
    context = _page_context(campaign)
    if not context["retryable"]:
        return htmx.render(SHOW_PAGE, PROGRESS, status=409, control_error=_("There is nothing to retry."), **context)
    quote = figures.quote_retry(campaign.client_id, campaign.id)
    return htmx.render(SHOW_PAGE, PROGRESS, retry_quote=quote, **context)


@bp.post("/<int:campaign_id>/retry")
@tenant_required
def retry(campaign_id: int):
    def act(client_id, campaign):
        launch = campaign_launch.retry_failed(client_id, campaign.id)
        db.session.commit()
        enqueue_chunks(client_id, campaign.id, launch.ranges)
        if launch.status == "scheduled":
            when = local_time(launch.waiting_until, "%d %b, %H:%M")
            return _("Outside sending hours: the retry starts at %(when)s.", when=when)
        return ngettext(
            "Retrying %(count)s recipient; %(cost)s is reserved.",
            "Retrying %(count)s recipients; %(cost)s is reserved.",
            launch.recipients,
            count=f"{launch.recipients:,}",
            cost=format_ksh(launch.cost),
        )

    return _control(campaign_id, act)


@bp.get("/<int:campaign_id>/export.csv")
@tenant_required
def export(campaign_id: int):
    campaign = _owned(campaign_id)
    client_id = current_client_id()

    def generate():
        buffer = io.StringIO()
        writer = spreadsheet.writer(buffer)  # every cell guarded against formulas
        for row in campaigns.export_rows(client_id, campaign.id):
            writer.writerow(row)
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"campaign-{campaign.id}-results.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
