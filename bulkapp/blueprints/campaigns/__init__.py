"""Campaigns: compose with a live quote, schedule or send, watch progress, retry the failed recipients."""

from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

from bulkapp.blueprints.campaigns import page, routes  # noqa: E402,F401
