"""Bulkapp: multi-tenant bulk messaging for East African businesses."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from bulkapp.config import Config


def create_app(config: dict | None = None, **overrides) -> Flask:
    """Build the app: settings from the environment, then ``config`` and ``overrides`` on top."""
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(Config().as_dict())
    app.config.update(config or {})
    app.config.update(overrides)

    if app.config.get("PROXY_HOPS"):
        # Behind Heroku's router or nginx: trust X-Forwarded-For/Proto from that many proxies, so rate
        # limits see the client's address and url_for builds https links.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    register_extensions(app)
    register_i18n(app)
    register_database(app)
    register_blueprints(app)
    register_web(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from bulkapp.columns import render_migration_type
    from bulkapp.database import include_in_migrations
    from bulkapp.extensions import csrf, db, htmx, limiter, login_manager, migrate, rq

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(app.root_path).parent / "migrations"),
        render_as_batch=True,
        compare_type=True,
        render_item=render_migration_type,
        include_object=include_in_migrations,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    htmx.init_app(app)
    rq.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"


def register_i18n(app: Flask) -> None:
    from bulkapp.i18n import init_i18n

    init_i18n(app)


def register_database(app: Flask) -> None:
    from bulkapp.database import configure_engine

    configure_engine(app)


# Blueprint packages under bulkapp/blueprints/, each exposing ``bp``.
BLUEPRINTS = (
    "auth",
    "dashboard",
    "notifications",
    "admin",
    "settings",
    "webhooks",
    "wallet",
    "messages",
    "contacts",
    "templates",
    "campaigns",
    "api",
    "inbox",
    "shortlinks",
)
# Machine endpoints: authenticated by a token or a signature instead of a CSRF token.
CSRF_EXEMPT = ("webhooks", "api")


def register_blueprints(app: Flask) -> None:
    from importlib import import_module

    from bulkapp.extensions import csrf
    from bulkapp.web import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any rule is added: every <int:...> is an id
    for name in BLUEPRINTS:
        bp = import_module(f"bulkapp.blueprints.{name}").bp
        app.register_blueprint(bp)
        if name in CSRF_EXEMPT:
            csrf.exempt(bp)


def register_web(app: Flask) -> None:
    from bulkapp.public_url import public_base_url
    from bulkapp.web import init_web

    init_web(app)
    app.jinja_env.globals["public_base_url"] = public_base_url


def register_cli(app: Flask) -> None:
    from bulkapp.cli import init_cli

    init_cli(app)
