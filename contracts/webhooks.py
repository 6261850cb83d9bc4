"""Webhook URLs are user input: check where they point before anything calls them.

A user who could register `http://169.254.169.254/...` or `http://10.0.0.5/admin`
would make the notifier call internal services for them (server-side request
forgery). A URL is accepted only if it is http(s), has no credentials, and every
address its host resolves to is public, unless the address or host is in
the allow-list (`POKEWATCH_WEBHOOK_ALLOW`: comma-separated networks or host
names, e.g. `127.0.0.1/32,hooks.internal`). The notifier checks again right
before each delivery, since a name can resolve elsewhere later.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeWebhook(ValueError):
    """A webhook URL that must not be called, with the reason."""


class Unresolved(UnsafeWebhook):
    """A host that does not resolve now: nothing to call, so nothing unsafe yet; a delivery checks again."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise Unresolved(f"webhook host {host!r} does not resolve: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


def parse_allow(
    value: str | Iterable[str] | None,
) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], set[str]]:
    """The allow-list as networks and host names."""
    entries = value.split(",") if isinstance(value, str) else list(value or [])
    networks: list[Network] = []
    hosts: set[str] = set()
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return networks, hosts


def check_webhook_url(url: str, allow: str | Iterable[str] | None = None, resolver: Resolver = resolve) -> str:
    """The URL if it may be called; else UnsafeWebhook saying why.

    Args:
        url: the user's webhook URL.
        allow: the allow-list (see the module docstring).
        resolver: host, port -> addresses (the system resolver by default).
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise UnsafeWebhook(f"webhook URL cannot be parsed: {exc}") from exc
    if parts.scheme not in ("https", "http"):
        raise UnsafeWebhook(f"webhook URL must be http(s), got {parts.scheme or 'no'} scheme")
    if parts.username or parts.password:
        raise UnsafeWebhook("webhook URL must not carry credentials; the signature authenticates the sender")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeWebhook("webhook URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhook(f"webhook URL has a bad port: {exc}") from exc
    networks, hosts = parse_allow(allow)
    if host in hosts:
        return url
    for address in resolver(host, port):
        ip = ipaddress.ip_address(address.split("%")[0])
        if any(ip in net for net in networks):
            continue
        if not ip.is_global or ip.is_multicast:
            raise UnsafeWebhook(
                f"webhook host {host!r} resolves to {ip}, a private, loopback, link-local or reserved address; "
                "allow-list it with POKEWATCH_WEBHOOK_ALLOW if it is meant to be called"
            )
    return url
