"""Roles inside a tenant (owner, manager, agent) and the one permission map that says who opens what.

``users.role`` stays the platform's (``admin``/``user``); ``users.tenant_role`` is the role inside the tenant.
Every signed-in tenant request is checked against :data:`PERMISSIONS` once, centrally (``web.py`` calls
:func:`required_role` before the view runs): a page the role may not open answers 403, before the view reads or
changes anything.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

OWNER, MANAGER, AGENT = "owner", "manager", "agent"
ROLES = (OWNER, MANAGER, AGENT)
RANK = {AGENT: 1, MANAGER: 2, OWNER: 3}
ROLE_LABELS = {OWNER: _l("Owner"), MANAGER: _l("Manager"), AGENT: _l("Agent")}

# Blueprints that are not the tenant's signed-in pages: the REST API (keys), vendors' webhooks, public short
# links, sign-in, and the platform admin area (users.role decides there).
NOT_TENANT = frozenset({"api", "webhooks", "shortlinks", "auth", "admin", "static"})

# endpoint, endpoint prefix (``settings.profile`` covers ``settings.profile_sessions``) or blueprint -> the
# least role that may open it. The most specific key wins; a tenant endpoint that matches none needs an agent.
PERMISSIONS: dict[str, str] = {
    # Settings are for managers, but the overview and the user's own profile (password, picture, sessions, 2FA).
    "settings": MANAGER,
    "settings.index": AGENT,
    "settings.profile": AGENT,
    "settings.update_profile": AGENT,
    "settings.change_password": AGENT,
    "settings.upload_avatar": AGENT,
    "settings.avatar": AGENT,
    "settings.end_session": AGENT,  # one's own sessions, listed on the profile page
    "settings.end_other_sessions": AGENT,
    "settings.end_all_sessions": AGENT,
    # Ownership and the account itself are the owner's.
    "settings.transfer_ownership": OWNER,
    "settings.close_account": OWNER,
    "settings.audit": MANAGER,  # the audit log: owners and managers read it (export included)
    # The wallet: everyone tops up; the statement export and the low-balance alert are managers'.
    "wallet.export": MANAGER,
    "wallet.threshold": MANAGER,
}


def required_role(endpoint: str | None) -> str | None:
    """The least tenant role for ``endpoint``; None when the endpoint is not a tenant page (no role check)."""
    if not endpoint:
        return None
    blueprint = endpoint.split(".", 1)[0] if "." in endpoint else "static"
    if blueprint in NOT_TENANT:
        return None
    if endpoint in PERMISSIONS:
        return PERMISSIONS[endpoint]
    prefixes = [key for key in PERMISSIONS if "." in key and endpoint.startswith(key)]
    if prefixes:
        return PERMISSIONS[max(prefixes, key=len)]
    return PERMISSIONS.get(blueprint, AGENT)


def has_role(user, role: str) -> bool:
    """True when ``user`` holds ``role`` or a higher one in their tenant."""
    return RANK.get(getattr(user, "tenant_role", None) or "", 0) >= RANK[role]


def may_open(user, endpoint: str) -> bool:
    """Whether ``user`` (a tenant user) may open ``endpoint``: for hiding links the role cannot follow."""
    role = required_role(endpoint)
    return role is None or has_role(user, role)
