"""The gateway serves the stream contracts (AsyncAPI) offline, public like the REST docs."""

from __future__ import annotations

import re


def test_the_gateway_serves_the_asyncapi_document_and_page(gateway) -> None:
    client = gateway(auth_required=True)
    raw = client.get("/asyncapi.json")
    assert raw.status_code == 200 and raw.json()["asyncapi"] == "3.0.0"
    page = client.get("/asyncapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "pokewatch:signal-changes" in page.text and "group notifier" in page.text
    assert 'id="schema-SignalChanged"' in page.text
    assert "<script" not in page.text, "nothing to run"
    assert not re.search(r'(src|href)="?https?://', page.text), "nothing fetched from elsewhere"
