"""The one place that decides the public base URL every link is built on: reply links, webhook and callback URLs,
API examples, invitation and email links.

``BASE_URL`` wins whenever it is set (production refuses to start without it). In development with ``BASE_URL``
unset, links follow the address the app is served on: the first request's ``host_url`` is remembered for the
life of the process, so pages, the quote (whose price counts the link's length) and the links background jobs
make later all use one value, even when the app is reached under two names. ``make run`` exports
``BASE_URL=http://HOST:PORT`` as well, so jobs that run before any request (or in ``make worker``) agree too.
"""

from __future__ import annotations

import threading

from flask import current_app, has_request_context, request

DEFAULT_BASE_URL = "http://127.0.0.1:5000"
_REMEMBERED = "bulkapp_public_base_url"
_lock = threading.Lock()


def public_base_url() -> str:
    """The scheme, host and port links start with, without a trailing slash."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    configured = (app.config.get("BASE_URL") or "").rstrip("/")
    if configured:
        return configured
    remembered = app.extensions.get(_REMEMBERED)
    if remembered:
        return remembered
    if not has_request_context():
        return DEFAULT_BASE_URL
    with _lock:
        return app.extensions.setdefault(_REMEMBERED, request.host_url.rstrip("/"))


def public_url(path: str) -> str:
    """``path`` (from ``url_for`` without ``_external``) on the public base URL."""
    return public_base_url() + "/" + path.lstrip("/")
