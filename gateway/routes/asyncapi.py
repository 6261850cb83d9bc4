"""`/asyncapi.json` and `/asyncapi`: the stream contracts (AsyncAPI 3.0), next to `/docs`, offline.

The document is generated from the code by FastStream (`pokewatch asyncapi`,
workers.asyncapi) and shipped in the package (contracts/asyncapi.json); the
page renders it on the server, with no script and nothing fetched from
elsewhere, so it works where the deployment has no internet.
"""

from __future__ import annotations

import functools
import html
import json
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["docs"])


@functools.cache
def document_text() -> str:
    return resources.files("contracts").joinpath("asyncapi.json").read_text(encoding="utf-8")


@router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi_json() -> Response:
    return Response(document_text(), media_type="application/json")


@router.get("/asyncapi", include_in_schema=False)
async def asyncapi_page() -> HTMLResponse:
    return HTMLResponse(page_html())


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1].replace("%20", " ")


@functools.cache
def page_html() -> str:
    """The page, rendered once: the document is fixed for the life of the process."""
    return _render(json.loads(document_text()))


def _render(doc: dict[str, Any]) -> str:
    e = html.escape
    info = doc.get("info", {})
    messages = doc.get("components", {}).get("messages", {})
    rows = []
    by_address: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, channel in doc.get("channels", {}).items():
        by_address.setdefault(channel["address"], []).append((name, channel))
    operations = {
        op["channel"]["$ref"].rsplit("/", 1)[-1].replace("%20", " "): op for op in doc.get("operations", {}).values()
    }
    for address in sorted(by_address):
        for name, channel in by_address[address]:
            op = operations.get(name, {})
            binding = channel.get("bindings", {}).get("redis", {})
            payloads = [
                _ref_name(messages.get(_ref_name(m["$ref"]), {}).get("payload", {}).get("$ref", ""))
                for m in channel.get("messages", {}).values()
            ]
            schema_links = ", ".join(f'<a href="#schema-{e(p)}">{e(p)}</a>' for p in payloads if p)
            group = f" / group {e(binding['groupName'])}" if binding.get("groupName") else ""
            rows.append(
                f"<tr><td><code>{e(address)}</code></td><td>{e(op.get('action', ''))}</td>"
                f"<td>{e(binding.get('method', ''))}{group}</td>"
                f"<td>{schema_links}</td><td>{e(channel.get('description', ''))}</td></tr>"
            )
    schemas = doc.get("components", {}).get("schemas", {})
    blocks = [
        f'<h3 id="schema-{e(name)}">{e(name)}</h3><p>{e(str(schema.get("description", "")))}</p>'
        f"<pre>{e(json.dumps(schema, indent=2))}</pre>"
        for name, schema in sorted(schemas.items())
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(info.get('title', 'AsyncAPI'))}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;"
        "vertical-align:top}pre{background:#f6f6f6;overflow:auto;padding:.5rem;font-size:.8rem}</style></head><body>"
        f"<h1>{e(info.get('title', ''))} <small>v{e(info.get('version', ''))}, "
        f"AsyncAPI {e(doc.get('asyncapi', ''))}</small></h1><p>{e(info.get('description', ''))}</p>"
        "<p><a href=/asyncapi.json>asyncapi.json</a> · <a href=/docs>REST API</a></p>"
        "<h2>Channels</h2><table><tr><th>address</th><th>action</th><th>Redis</th><th>message</th><th>who</th></tr>"
        + "".join(rows)
        + "</table><h2>Messages</h2>"
        + "".join(blocks)
        + "</body></html>"
    )
