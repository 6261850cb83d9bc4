"""The pages' routes: thin handlers that gather the data (gateway.pages.data) and render a template."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import redis.asyncio as aioredis
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from contracts.api_keys import ApiKeyStore
from contracts.messages import ItemError, PredictItem, SignalDecided
from gateway.broker import BrokerUnavailable, DeadlineExceeded, NoLiveWorkers
from gateway.pages import data
from gateway.routes import broker_of
from gateway.routes.watchlists import owner_of, stored_watchlists

router = APIRouter(include_in_schema=False)

KEY_COOKIE = "pokewatch_key"
PAGE_SIZE = 50
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
UNAVAILABLE = (BrokerUnavailable, NoLiveWorkers, DeadlineExceeded, aioredis.RedisError, OSError)

env = Environment(loader=PackageLoader("gateway.pages", "templates"), autoescape=select_autoescape(default=True))
env.filters["when"] = lambda ts: dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"
env.filters["pct"] = lambda v: "-" if v is None else f"{v:+.1f}%"
env.filters["share"] = lambda v: "-" if v is None else f"{v:.0%}" if v >= 0.1 else f"{v:.1%}"
env.filters["money"] = lambda v: "-" if v is None else f"{v:,.2f}"


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    set_name: Annotated[str, Query(max_length=100)] = "",
    sort: Annotated[str, Query(pattern="^(name|deviation|-deviation)$")] = "name",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Search the tracked cards; each with its last price, signal and deviation."""
    redis = broker_of(request).redis
    try:
        cards = await request.app.state.catalog.all()
        if q:
            needle = q.lower()
            cards = [c for c in cards if needle in (c.card_name or "").lower() or needle in c.card_id.lower()]
        if set_name:
            cards = [c for c in cards if set_name.lower() in (c.set_name or "").lower()]
        by_deviation = sort != "name"
        signals = await data.last_signals(redis, None if by_deviation else [])
        if by_deviation:
            reverse = sort == "-deviation"
            known = [c for c in cards if c.card_id in signals and signals[c.card_id].deviation_pct is not None]
            known.sort(key=lambda c: signals[c.card_id].deviation_pct or 0.0, reverse=reverse)
            ranked = {c.card_id for c in known}
            cards = known + [c for c in cards if c.card_id not in ranked]
        start = (page_no - 1) * PAGE_SIZE
        shown = cards[start : start + PAGE_SIZE]
        if not by_deviation:
            signals = await data.last_signals(redis, [c.card_id for c in shown])
    except UNAVAILABLE as exc:
        return page("error.html", 503, title="Unavailable", message=f"the broker is unavailable: {exc}")
    pages = max(1, -(-len(cards) // PAGE_SIZE))
    return page(
        "search.html",
        title="PokeWatch: cards",
        q=q,
        set_name=set_name,
        sort=sort,
        page_no=page_no,
        pages=pages,
        total=len(cards),
        rows=[(c, signals.get(c.card_id)) for c in shown],
        link=lambda **kw: (
            "/ui?"
            + "&".join(f"{k}={quote(str(v))}" for k, v in {"q": q, "set_name": set_name, "sort": sort, **kw}.items())
        ),
    )


@router.get("/ui/cards/{card_id}")
async def card(
    card_id: str, request: Request, date: Annotated[str | None, Query(max_length=10)] = None
) -> HTMLResponse:
    """One card: its price history with the fair price, the band and the signals; a quote for any date."""
    broker = broker_of(request)
    picked: dt.date | None = None
    if date:
        try:
            picked = dt.date.fromisoformat(date)
        except ValueError:
            return page("error.html", 422, title="Bad date", message=f"not a date (YYYY-MM-DD): {date!r}")
    try:
        cards = {c.card_id: c for c in await request.app.state.catalog.all()}
        summary = cards.get(card_id)
        points = await data.history(broker.redis, card_id)
        if summary is None or points is None:
            return page("error.html", 404, title="Unknown card", message=f"no tracked card {card_id!r}")
        results = await data.quotes(broker, card_id, [p["date"] for p in points])
        quote_for = None
        if picked is not None:
            reply = await broker.ask([PredictItem(card_id=card_id, date=picked)])
            quote_for = reply.results[0]
        events = await data.published(broker.redis)
        runs = await data.runs(broker.redis)
    except UNAVAILABLE as exc:
        return page("error.html", 503, title="Unavailable", message=f"pricing is unavailable: {exc}")
    decided = [r for r in results if isinstance(r, SignalDecided)]
    current = decided[-1] if decided else None
    version = current.model_version if current else None
    event = next((e for e in events if e.version == version), None)
    run = next((r for r in runs if r.model_version == version), None)
    chart = {
        "market": [[p["date"], p["market_price"]] for p in points],
        "fair": [[str(r.date), r.fair_price] for r in decided],
        "low": [[str(r.date), r.fair_price_low] for r in decided],
        "high": [[str(r.date), r.fair_price_high] for r in decided],
        "markers": [[str(r.date), r.signal] for r in decided if r.signal != "HOLD"],
    }
    return page(
        "card.html",
        title=f"{summary.card_name or card_id}: PokeWatch",
        card=summary,
        current=current,
        chart_json=json.dumps(chart, separators=(",", ":")),
        latest=list(reversed(decided[-10:])),
        signals=sum(1 for r in decided if r.signal != "HOLD"),
        picked=picked,
        quote_for=quote_for,
        quote_error=quote_for.error if isinstance(quote_for, ItemError) else None,
        event=event,
        run=run,
        first_date=points[0]["date"],
        last_date=points[-1]["date"],
    )


@router.get("/ui/watchlists")
async def watchlists(request: Request) -> HTMLResponse:
    """The calling key's watchlists and its recent alerts."""
    try:
        lists = list((await stored_watchlists(request)).values())
        recent = await data.alerts(broker_of(request).redis, owner_of(request))
    except UNAVAILABLE as exc:
        return page("error.html", 503, title="Unavailable", message=f"the broker is unavailable: {exc}")
    return page("watchlists.html", title="PokeWatch: watchlists", lists=lists, alerts=recent)


@router.get("/ui/model")
async def model(request: Request) -> HTMLResponse:
    """Which replicas serve which version; champion and challenger on realized prices; recent
    versions with their evaluation."""
    broker = broker_of(request)
    try:
        beats = await broker.replicas()
        events = await data.published(broker.redis)
        runs = await data.runs(broker.redis)
        lifecycle = await data.lifecycle(broker.redis)
    except UNAVAILABLE as exc:
        return page("error.html", 503, title="Unavailable", message=f"the broker is unavailable: {exc}")
    now = time.time()
    live = sorted((b for b in beats if broker.is_live(b, now)), key=lambda b: (b.role, b.replica_id))
    served = sorted({b.model_version for b in live if b.role == "model" and b.model_version})
    roles = {v: s.get("role", "") for v, s in ((lifecycle or {}).get("versions") or {}).items()}
    versions = sorted(
        ({"version": v, **s} for v, s in ((lifecycle or {}).get("versions") or {}).items()),
        key=lambda s: data.ROLE_ORDER.get(s.get("role", ""), 9),
    )
    chart = data.realized_chart((lifecycle or {}).get("history") or [], roles)
    return page(
        "model.html",
        lifecycle=lifecycle,
        versions=versions,
        chart=chart,
        title="PokeWatch: model",
        replicas=live,
        served=served,
        events=events[:20],
        runs=runs[:20],
        now=now,
    )


@router.get("/ui/login")
async def login_form(request: Request, next: Annotated[str, Query(max_length=200)] = "/ui") -> HTMLResponse:
    return page("login.html", title="PokeWatch: sign in", next=_safe_next(next), error=None)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Keep the API key in a session cookie (HttpOnly, SameSite=Strict) once it is checked."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/ui"])[0])
    try:
        record = await ApiKeyStore(broker_of(request).redis).verify(key) if key else None
    except UNAVAILABLE as exc:
        return page("error.html", 503, title="Unavailable", message=f"cannot check the key: {exc}")
    if record is None:
        return page("login.html", 401, title="PokeWatch: sign in", next=target, error="invalid or revoked API key")
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/")
    return response


@router.post("/ui/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/")
    return response


def _safe_next(target: str) -> str:
    """Only a path of the pages: never another site (no open redirect)."""
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui"
