"""The only module that reads HX-* request headers or writes HX-* response headers."""

from __future__ import annotations

import json

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    return bool(getattr(request, "htmx", False))


def target() -> str | None:
    return request.headers.get("HX-Target")


def render(page: str, partial: str, status: int = 200, **context) -> Response:
    """A full page normally; only ``partial`` for an HTMX request. The page includes the same partial."""
    template = partial if is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def render_form_errors(page: str, partial: str, **context) -> Response:
    """Re-render a form with its errors: 422 for HTMX (swapped in place), 200 for a plain form post."""
    return render(page, partial, status=422 if is_htmx() else 200, **context)


def redirect(url: str) -> Response:
    """Client-side redirect for HTMX (never a 302 to an HTMX request), plain 302 otherwise."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    from flask import redirect as flask_redirect

    return flask_redirect(url)


def trigger(response: Response, event: str, detail=None) -> Response:
    """Add an HX-Trigger event (merged with any already set)."""
    events = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    events[event] = detail if detail is not None else True
    response.headers["HX-Trigger"] = json.dumps(events)
    return response


def retarget(response: Response, selector: str, swap: str = "innerHTML") -> Response:
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response


def unauthorized_response(login_url: str) -> Response:
    response = make_response("", 401)
    response.headers["HX-Redirect"] = login_url
    return response
