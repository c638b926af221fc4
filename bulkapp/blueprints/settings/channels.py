"""Settings > Channels: list, add, edit, enable/disable, delete, test connection, balance sync, webhook URLs."""

from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings import channel_forms as forms
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.extensions import db
from bulkapp.i18n import stored_text
from bulkapp.models import Channel, Client
from bulkapp.public_url import public_base_url
from bulkapp.services.channels import checks
from bulkapp.services.channels import settings as svc
from bulkapp.services.channels.validation import KIND_LABELS, ChannelSettingsError, provider_label, supports_balance
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

LIST_PAGE = "settings/channels.html"
FORM_PAGE = "settings/channels_form.html"
LIST = "settings/partials/channel_list.html"
CARD = "settings/partials/channel.html"
FORM = "settings/partials/channel_form.html"
FIELDS = "settings/partials/channel_fields.html"


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_URLS"))


def _base_url() -> str:
    return public_base_url()


def _list_context(notes: list[str] | None = None) -> dict:
    client_id = current_client_id()
    return {
        "views": svc.channel_views(client_id, _base_url()),
        "client": db.session.get(Client, client_id),
        "missing_kinds": svc.kinds_without_active(client_id),
        "notes": notes or [],
    }


def _card_context(channel_id: int, notes: list[str] | None = None) -> dict:
    channel = get_owned_or_404(Channel, channel_id)
    return {
        "view": svc.channel_view(channel, _base_url()),
        "client": db.session.get(Client, current_client_id()),
        "card_notes": notes or [],
    }


def _partial(template: str, **context):
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def _after_action(partial: str, context: dict, flash_notes: list[str], anchor: str = ""):
    """HTMX: the updated partial. Plain form post: ``flash_notes`` as flash messages and back to the list."""
    if htmx.is_htmx():
        return _partial(partial, **context)
    for note in flash_notes:
        flash(note, "info")
    response = redirect(url_for("settings.channels") + anchor)
    response.vary.add("HX-Request")
    return response


def _refused(message: str):
    if htmx.is_htmx():
        response = make_response(render_template("partials/alert.html", kind="error", message=message), 409)
        return htmx.retarget(response, "#flash")
    flash(message, "error")
    return redirect(url_for("settings.channels"))


def _render_form(form: forms.ChannelForm, provider: str | None, channel: Channel | None, *, failed: bool = False):
    main, advanced = forms.field_groups(form, provider)
    context = {
        "form": form,
        "provider": provider,
        "channel": channel,
        "label": provider_label(provider) if provider else None,
        "kind_label": KIND_LABELS.get(channel.name, channel.name) if channel else None,
        "main": main,
        "advanced": advanced,
        "advanced_open": any(field.errors for field, _spec in advanced),
        "saved_secrets": {k for k, v in (channel.credentials or {}).items() if v} if channel else set(),
        "provider_groups": forms.provider_groups(),
    }
    if failed:
        return htmx.render_form_errors(FORM_PAGE, FORM, **context)
    return htmx.render(FORM_PAGE, FORM, **context)


# ------------------------------------------------------------------------------------------- list and forms


@bp.get("/channels")
@tenant_required
def channels():
    return htmx.render(LIST_PAGE, LIST, **_list_context())


@bp.get("/channels/new")
@tenant_required
def channel_new():
    provider = forms.valid_provider(request.args.get("provider"))
    return _render_form(forms.new_form(provider), provider, None)


@bp.get("/channels/new/fields")
@tenant_required
def channel_fields():
    """The chosen provider's field set, swapped into the add form when the provider select changes."""
    provider = forms.valid_provider(request.args.get("provider"))
    if not htmx.is_htmx():
        return redirect(url_for("settings.channel_new", provider=provider))
    form = forms.new_form(provider)
    main, advanced = forms.field_groups(form, provider)
    return _partial(FIELDS, form=form, provider=provider, main=main, advanced=advanced)


@bp.post("/channels")
@tenant_required
def channel_create():
    provider = request.form.get("provider") or None
    if provider is not None and provider not in {info.name for info in svc.addable_providers()}:
        provider = None
    form = forms.new_form(provider)
    if not form.validate_on_submit() or provider is None:
        if provider is None:
            form.provider.errors = [*form.provider.errors, _("Choose a provider from the list.")]
        return _render_form(form, provider, None, failed=True)
    try:
        channel, switched_off = svc.create_channel(
            current_client_id(),
            provider,
            forms.form_values(form, provider),
            active=form.active.data,
            allow_private_urls=_allow_private(),
        )
    except ChannelSettingsError as exc:
        db.session.rollback()
        forms.apply_errors(form, exc)
        return _render_form(form, provider, None, failed=True)
    audit("channel.created", target=channel, details={"provider": provider, "active": channel.active})
    db.session.commit()
    message = _(
        "%(provider)s channel added. Test the connection, then paste the webhook URLs.",
        provider=provider_label(provider),
    )
    if switched_off:
        message += " " + _("Switched off: %(channels)s.", channels=", ".join(switched_off))
    flash(message, "success")
    return htmx.redirect(url_for("settings.channels") + f"#channel-{channel.id}")


@bp.get("/channels/<int:channel_id>/edit")
@tenant_required
def channel_edit(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    return _render_form(forms.edit_form(channel), channel.provider, channel)


@bp.post("/channels/<int:channel_id>")
@tenant_required
def channel_update(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    form = forms.edit_form(channel)
    if not form.validate_on_submit():
        return _render_form(form, channel.provider, channel, failed=True)
    before = {"config": dict(channel.config or {}), "credentials": dict(channel.credentials or {})}
    try:
        svc.update_channel(
            current_client_id(),
            channel.id,
            forms.form_values(form, channel.provider),
            allow_private_urls=_allow_private(),
        )
    except ChannelSettingsError as exc:
        db.session.rollback()
        channel = get_owned_or_404(Channel, channel_id)
        forms.apply_errors(form, exc)
        return _render_form(form, channel.provider, channel, failed=True)
    changed = dict(channel.credentials or {}) != before["credentials"]  # whether, never what: they are secrets
    after = {"config": dict(channel.config or {}), "credentials_changed": changed}
    audit("channel.updated", target=channel, details={"before": {"config": before["config"]}, "after": after})
    db.session.commit()
    flash(_("%(provider)s settings saved.", provider=provider_label(channel.provider)), "success")
    return htmx.redirect(url_for("settings.channels") + f"#channel-{channel.id}")


# ------------------------------------------------------------------------------------------------ actions


@bp.post("/channels/<int:channel_id>/enable")
@tenant_required
def channel_enable(channel_id: int):
    return _switch(channel_id, True)


@bp.post("/channels/<int:channel_id>/disable")
@tenant_required
def channel_disable(channel_id: int):
    return _switch(channel_id, False)


def _switch(channel_id: int, active: bool):
    channel = get_owned_or_404(Channel, channel_id)
    try:
        notes = svc.set_active(current_client_id(), channel.id, active)
    except svc.ChannelActionRefused as exc:
        db.session.rollback()
        return _refused(str(exc))
    audit("channel.enabled" if active else "channel.disabled", target=("channels", channel_id))
    db.session.commit()
    return _after_action(LIST, _list_context(notes), notes, f"#channel-{channel_id}")


@bp.post("/channels/<int:channel_id>/delete")
@tenant_required
def channel_delete(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    try:
        details = {"provider": channel.provider, "name": channel.name}
        notes = svc.delete_channel(current_client_id(), channel.id)
    except svc.ChannelActionRefused as exc:
        db.session.rollback()
        return _refused(str(exc))
    audit("channel.deleted", target=("channels", channel_id), details=details)
    db.session.commit()
    return _after_action(LIST, _list_context(notes), notes)


@bp.post("/channels/<int:channel_id>/test")
@tenant_required
def channel_test(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    client_id = current_client_id()
    snap = checks.snapshot(client_id, channel.id)
    db.session.commit()  # no transaction stays open while the vendor is asked
    check = checks.check_connection(snap)
    checks.record_test_result(client_id, snap.id, check)
    db.session.commit()
    note = (
        _("Connection OK: %(message)s", message=stored_text(check.message))
        if check.ok
        else _("Connection failed: %(message)s", message=stored_text(check.message))
    )
    return _after_action(CARD, _card_context(snap.id), [note], f"#channel-{snap.id}")


@bp.post("/channels/<int:channel_id>/sync")
@tenant_required
def channel_sync(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    if not supports_balance(channel.provider):
        abort(404)
    client_id = current_client_id()
    snap = checks.snapshot(client_id, channel.id)
    db.session.commit()  # no transaction stays open while the vendor is asked
    result = checks.fetch_channel_balance(snap, timeout=checks.TEST_TIMEOUT)
    checks.record_balance_result(client_id, snap.id, result)
    db.session.commit()
    note = (
        _("Balance synced. %(message)s", message=stored_text(result.message))
        if result.ok
        else _("Balance sync failed: %(message)s", message=stored_text(result.message))
    )
    return _after_action(CARD, _card_context(snap.id), [note], f"#channel-{snap.id}")


@bp.post("/channels/<int:channel_id>/rotate-token")
@tenant_required
def channel_rotate_token(channel_id: int):
    channel = get_owned_or_404(Channel, channel_id)
    svc.rotate_webhook_token(current_client_id(), channel.id)
    db.session.commit()
    note = _("New webhook URLs: paste them in the vendor's portal now; the old ones no longer work.")
    return _after_action(CARD, _card_context(channel.id, [note]), [note], f"#channel-{channel.id}")


@bp.post("/channels/auto-sync")
@tenant_required
def channel_auto_sync():
    enabled = request.form.get("enabled") == "1"
    svc.set_auto_sync(current_client_id(), enabled)
    db.session.commit()
    note = _("The Onfon balance now syncs every 15 minutes.") if enabled else _("Automatic balance sync is off.")
    return _after_action(LIST, _list_context([note]), [note])
