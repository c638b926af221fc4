"""The API's description: the OpenAPI document as JSON, and a readable page rendered from it."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, jsonify, render_template
from markupsafe import Markup, escape

from bulkapp.blueprints.api.blueprint import bp
from bulkapp.public_url import public_base_url
from bulkapp.services.api.openapi import openapi_document

METHODS = ("get", "post", "put", "patch", "delete")


def _document() -> dict[str, Any]:
    return openapi_document(public_base_url(), with_campaigns="api.create_campaign" in current_app.view_functions)


@bp.app_template_filter("inline_code")
def inline_code(text: str) -> Markup:
    """Escape a description and show its `backticked` parts as code (the document's only markup)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text or ""))))


@bp.get("/openapi.json")
def openapi():
    return jsonify(_document())


def _resolve(schema: dict[str, Any] | None, components: dict[str, Any]) -> dict[str, Any]:
    if schema and "$ref" in schema:
        return components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema or {}


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return f"{kind}: " + " | ".join(str(v) for v in schema["enum"])
    return kind


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "type": _type(prop), "required": name in required, "description": prop.get("description", "")}
        for name, prop in schema.get("properties", {}).items()
    ]


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the document, flattened for the docs page."""
    components = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            responses = []
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                responses.append({"status": status, "description": answer["description"], "schema": schema})
            success = next((r for r in responses if r["status"].startswith("2") and r["schema"]), None)
            found.append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "public": op.get("security") == [],
                    "parameters": op.get("parameters", []),
                    "body_fields": _fields(_resolve(body.get("schema"), components)),
                    "example": body.get("example"),
                    "responses": responses,
                    "result_fields": _fields(_resolve(success["schema"], components)) if success else [],
                }
            )
    return found


@bp.get("/docs")
def docs():
    document = _document()
    return render_template(
        "api/docs.html",
        document=document,
        operations=operations(document),
        base=document["servers"][0]["url"],
    )
