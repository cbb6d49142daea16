"""The WebSocket protocol's contract, beside the REST one: docs/asyncapi.yaml as it is
(GET /api/asyncapi.yaml) and as a page rendered here from it (GET /api/ws-docs/), with no script
and nothing fetched from elsewhere."""

import json
import re
from functools import lru_cache
from typing import Any

import yaml
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import Context, Engine
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ASYNCAPI = settings.BASE_DIR / "docs" / "asyncapi.yaml"


@lru_cache(maxsize=1)
def asyncapi_text() -> str:
    return ASYNCAPI.read_text(encoding="utf-8")


def asyncapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(asyncapi_text())
    return document


def asyncapi_yaml(request: HttpRequest) -> HttpResponse:
    return HttpResponse(asyncapi_text(), content_type="application/yaml; charset=utf-8")


def _prose(text: Any) -> SafeString:
    """Escaped text, with `code` spans shown as code."""
    # Escaped first: only the <code> tags added here are markup.
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(str(text or ""))))


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow a local `$ref` ("#/a/b/c") to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _type_text(document: dict[str, Any], schema: Any) -> str:
    if isinstance(schema, dict) and "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[-1])
    if not isinstance(schema, dict):
        return ""
    if "const" in schema:
        return f'"{schema["const"]}"'
    if "enum" in schema:
        return " | ".join(f'"{value}"' for value in schema["enum"])
    if "oneOf" in schema:
        return " | ".join(_type_text(document, option) for option in schema["oneOf"])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = " | ".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {_type_text(document, schema.get('items', {}))}"
    return str(kind)


def _fields(document: dict[str, Any], schema: Any) -> list[dict[str, Any]]:
    schema = _resolve(document, schema)
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "type": _type_text(document, field),
            "required": name in required,
            "description": _prose(_resolve(document, field).get("description", "") if isinstance(field, dict) else ""),
        }
        for name, field in schema.get("properties", {}).items()
    ]


def _message(document: dict[str, Any], reference: Any) -> dict[str, Any]:
    message = _resolve(document, reference)
    return {
        "name": message.get("name", ""),
        "title": message.get("title", ""),
        "summary": _prose(message.get("summary", "")),
        "fields": _fields(document, message.get("payload", {})),
        "examples": [json.dumps(e.get("payload"), ensure_ascii=False) for e in message.get("examples", ())],
    }


def page_context(document: dict[str, Any]) -> dict[str, Any]:
    channels = []
    for key, channel in document.get("channels", {}).items():
        operations = [
            {
                "direction": "client → server" if operation["action"] == "receive" else "server → client",
                "messages": [_message(document, m) for m in operation.get("messages", ())],
            }
            for operation in document.get("operations", {}).values()
            if _resolve(document, operation["channel"]) is channel
        ]
        channels.append(
            {
                "key": key,
                "address": channel.get("address", ""),
                "title": channel.get("title", ""),
                "description": channel.get("description", ""),
                "close_codes": [
                    {"code": close["code"], "reason": _prose(close["reason"])}
                    for close in channel.get("x-close-codes", [])
                ],
                "operations": operations,
            }
        )
    schemas = [
        {
            "name": name,
            "description": s.get("description", ""),
            "fields": _fields(document, s),
            "type": _type_text(document, s),
        }
        for name, s in document.get("components", {}).get("schemas", {}).items()
    ]
    return {"info": document.get("info", {}), "channels": channels, "schemas": schemas}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ info.title }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
pre,code{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.6rem;white-space:pre-wrap}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
h2{border-bottom:2px solid #ddd;margin-top:2.5rem}h3{margin-top:1.8rem}.frame{margin:1rem 0 1.5rem}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<p>Machine-readable: <a href="/api/asyncapi.yaml">/api/asyncapi.yaml</a> (AsyncAPI).
REST: <a href="/api/docs/">/api/docs/</a>
(<a href="/api/schema/">OpenAPI schema</a>).</p>
<pre>{{ info.description }}</pre>
{% for channel in channels %}
<h2 id="{{ channel.key }}">{{ channel.title }}: <code>{{ channel.address }}</code></h2>
<pre>{{ channel.description }}</pre>
<h3>Close codes</h3>
<table><tr><th>code</th><th>when</th></tr>
{% for close in channel.close_codes %}<tr><td>{{ close.code }}</td><td>{{ close.reason }}</td></tr>{% endfor %}
</table>
{% for operation in channel.operations %}
<h3>{{ operation.direction }}</h3>
{% for message in operation.messages %}<div class="frame">
<h4><code>{{ message.name }}</code> — {{ message.title }}</h4>
{% if message.summary %}<p>{{ message.summary }}</p>{% endif %}
<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>
{% for field in message.fields %}<tr><td><code>{{ field.name }}</code></td><td>{{ field.type }}</td>
<td>{{ field.required|yesno:"yes," }}</td><td>{{ field.description }}</td></tr>{% endfor %}
</table>
{% for example in message.examples %}<pre>{{ example }}</pre>{% endfor %}
</div>{% endfor %}
{% endfor %}
{% endfor %}
<h2>Shapes</h2>
{% for schema in schemas %}<h3 id="{{ schema.name }}">{{ schema.name }}</h3>
{% if schema.description %}<pre>{{ schema.description }}</pre>{% endif %}
{% if schema.fields %}<table><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>
{% for field in schema.fields %}<tr><td><code>{{ field.name }}</code></td><td>{{ field.type }}</td>
<td>{{ field.required|yesno:"yes," }}</td><td>{{ field.description }}</td></tr>{% endfor %}
</table>{% else %}<p>{{ schema.type }}</p>{% endif %}
{% endfor %}
</body></html>
"""


def ws_docs(request: HttpRequest) -> HttpResponse:
    template = Engine.get_default().from_string(PAGE)
    return HttpResponse(template.render(Context(page_context(asyncapi_document()))))
