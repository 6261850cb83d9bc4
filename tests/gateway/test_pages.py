"""The pages in-process: escaping, security headers, and signing in with a key when auth is on.

The browser tests (tests/e2e/test_pages.py) render them in Chromium against real workers.
"""

from __future__ import annotations

import re

from tests.gateway.test_edge import _key


def test_pages_ask_for_a_key_once_and_keep_it_for_the_session(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True, rate_limit_per_s=1000, rate_limit_burst=1000)
    first = client.get("/ui/model", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=/ui/model"
    assert client.get("/cards").status_code == 401, "the API still answers 401 in JSON"
    assert client.get("/static/pages.css").status_code == 200, "assets are public"
    assert client.get("/vendor/lightweight-charts.js").status_code == 200

    refused = client.post("/ui/login", data={"key": "pk_wrong", "next": "/ui/model"}, follow_redirects=False)
    assert refused.status_code == 401 and "invalid or revoked" in refused.text
    key = _key(broker_url)
    signed = client.post("/ui/login", data={"key": key, "next": "/ui/model"}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/model"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "expires" not in cookie.lower(), "a session cookie"
    assert client.get("/ui/model").status_code == 200, "the cookie is sent back and accepted"
    assert client.get("/cards").status_code == 200, "reads with the cookie"
    write = client.post(
        "/watchlists", json={"name": "x", "items": [{"card_id": "a", "rule": "signal", "signal": "ANY"}]}
    )
    assert write.status_code == 401, "the cookie never authorizes a change"
    assert client.post("/ui/logout", follow_redirects=False).status_code == 303


def test_a_sign_in_never_redirects_to_another_site(gateway, broker_url: str) -> None:
    client = gateway(auth_required=True)
    key = _key(broker_url)
    for target in ("https://evil.example/", "//evil.example/ui", "/cards"):
        resp = client.post("/ui/login", data={"key": key, "next": target}, follow_redirects=False)
        assert resp.headers["location"] == "/ui", target


def test_pages_carry_a_strict_csp_and_escape_what_they_echo(gateway) -> None:
    client = gateway()
    resp = client.get("/ui", params={"q": '"><script>alert(1)</script>'})
    assert resp.status_code == 200
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>alert(1)</script>" not in resp.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in resp.text
    assert not re.search(r"<script(?![^>]*src=\"/)", resp.text), "no inline script"
    assert client.get("/ui/cards/nope").status_code == 404
    for sort in ("name", "deviation", "-deviation"):
        assert client.get("/ui", params={"sort": sort}).status_code == 200, sort
    assert client.get("/ui/cards/x", params={"date": "yesterday"}).status_code == 422
