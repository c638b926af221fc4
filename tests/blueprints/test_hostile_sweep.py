"""Sweeps every route of the URL map with hostile values in each parameter it reads: nothing answers 5xx.

Each route is requested plain and as HTMX, signed in as a tenant owner (platform admin for ``/admin``;
signed out for the public pages), with every query parameter and form field it can read set to one
hostile value at a time (and its URL arguments to a real id). The parameter names come from the route's
blueprint source (``request.args/form/values``, WTForms fields, API ``payload`` fields) plus a fixed list
of common names, so a new parameter is swept without editing this file.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from bulkapp.extensions import db as _db
from bulkapp.extensions import limiter
from tests.conftest import PASSWORD
from tests.test_tenant_isolation import _objects_of

# Already percent-encoded, so the lone surrogate (UTF-8 bytes ED A0 80) reaches the app as a browser sends it.
HOSTILE = [
    "",
    quote("²"),
    "-1",
    "0",
    "99999999999999999999",  # beyond BIGINT
    "999999999999999999",  # fits BIGINT, not INTEGER (PostgreSQL refused it with a 500)
    "1_999999999999999999",  # int() accepts underscores
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00%3A00",
    "9999-12-31T23%3A59",
    "a%00b",
    "%ED%A0%80",
    "9" * 5000,
]
HTMX = {"HX-Request": "true"}
# HTMX requests take the same parsers as plain ones; a few values check the partials' own paths.
HTMX_VALUES = [quote("²"), "99999999999999999999", "1_999999999999999999", "0001-01-01"]
COMMON_NAMES = {
    "after", "before", "cursor", "limit", "page", "q", "date_from", "date_to", "id", "ids", "contact_ids",
    "template_id", "status", "type", "range", "active", "since", "csv_rows", "scheduled_at", "amount", "phone",
    "channel", "unread", "department", "direction", "campaign_id", "awaiting", "message", "email", "name", "to",
    "body", "contact", "t",
}  # fmt: skip
# Never swept with hostile values: the CSRF token (a wrong one is simply 400) and the HTMX marker.
SKIP_NAMES = {"csrf_token"}
# Run last, in this order: they end the session or the API key the rest of the sweep relies on. A signed-in sweep
# fails if any other route sends it to the sign-in page (a route that ends the session belongs here).
LAST = (
    "settings.api_rotate",
    "settings.api_revoke",
    "settings.change_password",
    "settings.end_all_sessions",
    "auth.login",
    "auth.logout",
)
PUBLIC = ("auth.", "shortlinks.", "webhooks.", "static", "dashboard.healthz")
ROOT = Path(__file__).resolve().parents[2] / "bulkapp" / "blueprints"
# JSON values for the API: wrong types, impossible numbers, a lone surrogate, deep nesting.
JSON_HOSTILE = [
    "²",
    99999999999999999999,
    "99999999999999999999",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "a\ud800b",
    [[[[[[]]]]]],
]
DEEP_JSON = "[" * 100_000 + "]" * 100_000

_NAME_PATTERNS = (
    re.compile(r"(?:args|form|values|files|payload)\.get(?:list)?\(\s*\"(\w+)\""),
    re.compile(r"^\s+(\w+)\s*=\s*\w*Field\(", re.MULTILINE),
    re.compile(r"payload\.get\(\s*\"(\w+)\""),
    re.compile(r"params\.\w+\((?:payload|args),\s*\"(\w+)\""),
)

_PREFIX = re.compile(r"prefix=f?\"([a-z]+)(-\{[^}]*\})?\"")


def _names_of(rule, app, ids: dict[str, int]) -> list[str]:
    """Every parameter name the route's source reads (its blueprint package; for the API its own module),
    plus the common ones; WTForms prefixes (``prefix=f"edit-{contact.id}"``) are filled with the route's ids."""
    view = inspect.getmodule(app.view_functions[rule.endpoint])
    blueprint = ROOT / rule.endpoint.split(".")[0]
    api = rule.endpoint.startswith("api.")
    sources = [Path(view.__file__)] if api else sorted(blueprint.glob("*.py")) if blueprint.is_dir() else []
    names = set() if api else set(COMMON_NAMES)
    prefixes: set[str] = set()
    for source in sources:
        text = source.read_text()
        for pattern in _NAME_PATTERNS:
            names.update(pattern.findall(text))
        for word, templated in _PREFIX.findall(text):
            prefixes.update({f"{word}-{ids.get(arg, 1)}" for arg in rule.arguments} if templated else {word})
    if api:
        return sorted(names | {"limit", "cursor"})
    prefixed = {f"{prefix}-{name}" for name in names for prefix in prefixes}
    return sorted((names | prefixed) - SKIP_NAMES)


def _url(rule, ids: dict[str, int]) -> str:
    url = rule.rule
    for arg in rule.arguments:
        value = {"code": "Ab3k", "token": "not-a-token", "filename": "css/app.css"}.get(arg, ids.get(arg, 1))
        url = re.sub(rf"<(?:\w+:)?{arg}>", str(value), url)
    return url


def _order(rule) -> tuple:
    """Reads first, then writes, then deletes (a discarded import or deleted contact hides later pages)."""
    last = LAST.index(rule.endpoint) if rule.endpoint in LAST else -1
    writes = 2 if "DELETE" in rule.methods else 0 if "GET" in rule.methods else 1
    return (last, writes, rule.rule)


class Sweep:
    def __init__(self, app, client, headers=None, *, signed_in: bool = False):
        self.app = app
        self.client = client
        self.headers = dict(headers or {})
        self.signed_in = signed_in
        self.endpoint = ""
        self.failures: list[str] = []
        self.signed_out: set[str] = set()  # routes a signed-in sweep reached only as a signed-out visitor
        self.count = 0
        self.statuses: Counter[int] = Counter()
        self.seconds: dict[str, float] = {}
        self.token = client.csrf_token()

    def request(self, method: str, url: str, *, query: str = "", body=None, json_body=None, headers=None):
        headers = {**self.headers, "X-CSRFToken": self.token, **(headers or {})}
        target = f"{url}?{query}" if query else url
        if json_body is not None:
            data, content_type = json_body, "application/json"
        else:
            data, content_type = body, "application/x-www-form-urlencoded"
        self.count += 1
        limiter.reset()  # every request reaches the view, not a 429 from the ones before it
        label = f"{method} {target[:160]} {'HTMX ' if 'HX-Request' in headers else ''}{(data or '')[:120]!r}"
        try:
            response = self.client.open(
                target, method=method, data=data, content_type=content_type, headers=headers, csrf=False
            )
        except Exception as exc:  # TESTING propagates a view's exception instead of answering 500
            self.failures.append(f"{label} -> {type(exc).__name__}: {str(exc)[:200]}")
            _db.session.rollback()
            return None
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{label} -> {response.status_code}")
        sent_to = response.headers.get("Location") or response.headers.get("HX-Redirect") or ""
        if self.signed_in and self.endpoint not in LAST and sent_to.split("?")[0].endswith("/login"):
            self.signed_out.add(self.endpoint)
        return response

    def route(self, rule, ids):
        url = _url(rule, ids)
        api = rule.endpoint.startswith("api.")
        names = _names_of(rule, self.app, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for headers, values in ((HTMX, HTMX_VALUES), ({}, HOSTILE)) if not api else (({}, HOSTILE),):
                self.request(method, url, headers=headers)
                for value in values:
                    query = "&".join(f"{name}={value}" for name in names)
                    if method == "GET":
                        self.request(method, url, query=query, headers=headers)
                    elif api:
                        self.request(method, url, query=query, json_body="{}")
                    else:  # the same names in the query string and the form body
                        self.request(method, url, query=query, body=query, headers=headers)
            if api and method != "GET":
                self.api_bodies(method, url, names)

    def api_bodies(self, method: str, url: str, names: list[str]):
        for value in JSON_HOSTILE:
            for name in names:  # one field at a time: a route stops at the first bad field
                self.request(method, url, json_body=json.dumps({name: value}))
        self.request(method, url, json_body=DEEP_JSON)
        self.request(method, url, json_body=b'{"name": "\xff\xfe"}')

    def url_arguments(self, rule, ids):
        for bad in ("0", "2147483648", "99999999999999999999", "%C2%B2", "%ED%A0%80"):
            url = rule.rule
            for arg in rule.arguments:
                url = re.sub(rf"<(?:\w+:)?{arg}>", bad, url)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                self.request(method, url)


def _sweep(app, client, rules, ids, headers=None, *, signed_in: bool = True) -> Sweep:
    sweep = Sweep(app, client, headers, signed_in=signed_in)
    for rule in sorted(rules, key=_order):
        started = time.monotonic()
        sweep.endpoint = rule.endpoint
        if rule.arguments:
            sweep.url_arguments(rule, ids)
        sweep.route(rule, ids)
        sweep.seconds[rule.rule] = sweep.seconds.get(rule.rule, 0) + time.monotonic() - started
    return sweep


def _check(sweep: Sweep) -> None:
    assert not sweep.failures, f"{len(sweep.failures)} requests failed:\n" + "\n".join(sweep.failures[:40])
    assert not sweep.signed_out, f"swept signed out (the session ended before them): {sorted(sweep.signed_out)}"


@pytest.fixture
def ids(tenant):
    return _objects_of(tenant)


def test_every_tenant_route_survives_hostile_input(app, client, tenant, ids, login):
    started = time.monotonic()
    login(tenant.test_user)
    rules = [
        r for r in app.url_map.iter_rules() if not r.endpoint.startswith(PUBLIC) and not r.endpoint.startswith("admin.")
    ]
    sweep = _sweep(app, client, rules, ids, headers={"Authorization": f"Bearer {tenant.test_api_key}"})
    _check(sweep)
    assert sweep.count > 1000
    # The walk really reached the views as the owner: most answers are pages, not redirects to the login.
    assert sweep.statuses[200] > sweep.count / 3, sweep.statuses
    slowest = sorted(sweep.seconds.items(), key=lambda item: -item[1])[:8]
    took = f"{time.monotonic() - started:.1f} s ({time.process_time():.1f} s CPU)"
    print(f"{sweep.count} requests in {took}; {sweep.statuses}; slowest: {slowest}")


def test_every_admin_route_survives_hostile_input(app, client, admin_user, tenant, ids):
    client.post("/login", data={"email": admin_user.email, "password": PASSWORD})
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]
    sweep = _sweep(app, client, rules, {**ids, "client_id": tenant.id})
    _check(sweep)


def test_every_public_route_survives_hostile_input(app, client, tenant, ids):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith(PUBLIC)]
    sweep = _sweep(app, client, rules, ids, signed_in=False)
    _check(sweep)


def test_hostile_reply_form_text_reaches_the_reply(app, client, tenant, ids):
    """The sweep's posts to ``/x/<code>`` stop at the form token (its ``t`` is hostile too): here each hostile
    value is the reply itself, posted with a valid token, so it reaches the code that records it."""
    from bulkapp.models import Message
    from bulkapp.services.messaging import reply_form

    statuses = Counter()
    for value in HOSTILE:
        limiter.reset()
        token = quote(reply_form.issue_token(app.config["SECRET_KEY"], "Ab3k", time.time() - 60))
        body = f"message={value}&t={token}&website="
        response = client.post("/x/Ab3k", data=body, content_type="application/x-www-form-urlencoded", csrf=False)
        statuses[response.status_code] += 1
    recorded = _db.session.scalar(
        _db.select(_db.func.count())
        .select_from(Message)
        .where(Message.client_id == tenant.id, Message.provider == "web")
    )
    # Recorded (303), refused as empty or too long (422), or refused before any view for its NUL (400).
    assert set(statuses) == {303, 400, 422} and statuses[303] == recorded > 0, statuses
