"""`pokewatch watch add|list|remove`: your watchlists, through the gateway's REST API.

The gateway is POKEWATCH_GATEWAY_URL (default http://127.0.0.1:8000); with
auth on, the key is POKEWATCH_API_KEY. The watchlists are that key's.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from workers.cli.common import console

app = typer.Typer(help="Watchlists of your API key (POKEWATCH_GATEWAY_URL, POKEWATCH_API_KEY).")


def _call(method: str, path: str, body: Any = None) -> Any:
    """One request to the gateway; its error message, and exit 1, on a 4xx/5xx."""
    import httpx

    url = os.environ.get("POKEWATCH_GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
    key = os.environ.get("POKEWATCH_API_KEY")
    headers = {"x-api-key": key} if key else {}
    try:
        resp = httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the gateway at {url}: {exc}[/red] (set POKEWATCH_GATEWAY_URL)")
        raise typer.Exit(2) from None
    if resp.status_code >= 400:
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        console.print(f"[red]{resp.status_code}: {message}[/red]")
        raise typer.Exit(1)
    return resp.json() if resp.content else None


def _item(card: str, rule: str, signal: str | None, target: float | None, pct: float | None) -> dict[str, Any]:
    item: dict[str, Any] = {"card_id": card, "rule": rule}
    if rule == "signal":
        item["signal"] = signal or "ANY"
    elif rule in ("price_above", "price_below"):
        if target is None:
            raise typer.BadParameter(f"--rule {rule} needs --target")
        item["target"] = target
    elif pct is not None:
        item["deviation_pct"] = pct
    else:
        raise typer.BadParameter("--rule deviation needs --pct")
    return item


@app.command("add")
def add(
    cards: Annotated[list[str], typer.Argument(help="card ids to watch")],
    rule: Annotated[str, typer.Option(help="signal | price_above | price_below | deviation")] = "signal",
    signal: Annotated[str | None, typer.Option(help="rule signal: BUY, SELL or ANY (default)")] = None,
    target: Annotated[float | None, typer.Option(help="rules price_above / price_below: the price")] = None,
    pct: Annotated[float | None, typer.Option(help="rule deviation: percent from fair")] = None,
    name: Annotated[str, typer.Option(help="the watchlist's name")] = "watchlist",
    webhook: Annotated[str | None, typer.Option(help="URL that receives each alert as a signed POST")] = None,
) -> None:
    """Create a watchlist of CARDS with one rule; prints it (with the webhook secret, shown once)."""
    body = {"name": name, "items": [_item(c, rule, signal, target, pct) for c in cards], "webhook_url": webhook}
    typer.echo(json.dumps(_call("POST", "/watchlists", body), indent=2))


@app.command("list")
def list_watchlists(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Your watchlists."""
    found = _call("GET", "/watchlists")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("id", "name", "cards", "rules", "webhook")
    for w in found:
        rules = sorted({i["rule"] for i in w["items"]})
        table.add_row(w["id"], w["name"], str(len(w["items"])), ", ".join(rules), w.get("webhook_url") or "-")
    Console().print(table)  # data goes to stdout, messages to stderr


@app.command("remove")
def remove(watchlist_id: Annotated[str, typer.Argument(help="its id (see `pokewatch watch list`)")]) -> None:
    """Delete one of your watchlists."""
    _call("DELETE", f"/watchlists/{watchlist_id}")
    typer.echo(f"removed {watchlist_id}")
