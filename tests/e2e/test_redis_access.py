"""Redis access per role: ACL users that can do their job and nothing else, and TLS (rediss://).

The whole stack runs with one ACL user per role (gateway, worker) on its own
server, with API keys and the rate-limit script on: if a role lacked a
command it needs, requests would fail. The TLS test puts a TLS terminator in
front of the server (the embedded server is built without TLS) and runs the
gateway and workers on `rediss://` URLs that verify the certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import secrets
import ssl
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis
from redis.exceptions import NoPermissionError

from contracts import acl, keys
from contracts.messages import SignalDecided
from contracts.watchlists import Alert
from tests.e2e.receiver import Receiver
from workers.local.embedded import EmbeddedRedis, free_port
from workers.local.stack import LocalStack

pytestmark = pytest.mark.slow


def _url(server: EmbeddedRedis, user: str, password: str, scheme: str = "redis", port: int | None = None) -> str:
    return f"{scheme}://{user}:{quote(password)}@127.0.0.1:{port or server.port}/0"


def _stack(data_dir: Path, admin_url: str, role_urls: dict[str, str], **env: str) -> LocalStack:
    return LocalStack(
        data_dir,
        port=free_port(),
        redis_url=admin_url,
        model_replicas=1,
        role_urls=role_urls,
        extra_env={
            "POKEWATCH_HEARTBEAT_S": "0.5",
            "MLFLOW_TRACKING_URI": f"sqlite:///{(data_dir / 'mlflow.db').resolve()}",
            **env,
        },
    )


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory):
    """A server started with the rendered ACL file (the file Kubernetes mounts), random passwords."""
    directory = tmp_path_factory.mktemp("acl-redis")
    passwords = {role: secrets.token_urlsafe(16) for role in acl.ROLE_RULES}
    (directory / "users.acl").write_text(acl.acl_file(passwords))
    server = EmbeddedRedis(
        directory, extra_args=["--aclfile", str(directory / "users.acl")], auth=("admin", passwords["admin"])
    ).start()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=server.port).ping()  # the default user is off
    yield server, {role: _url(server, role, pw) for role, pw in passwords.items()}
    server.stop()


def test_each_role_is_refused_what_it_does_not_need(acl_server) -> None:
    _, urls = acl_server
    gateway, worker, pipeline, scaler, notifier, challenger = (
        redis.Redis.from_url(urls[r]) for r in ("gateway", "worker", "pipeline", "scaler", "notifier", "challenger")
    )
    refused = {
        "gateway FLUSHALL": lambda: gateway.flushall(),
        "gateway CONFIG SET": lambda: gateway.config_set("appendonly", "no"),
        "gateway KEYS": lambda: gateway.keys("*"),
        "gateway XADD model-events": lambda: gateway.xadd(keys.MODEL_EVENTS_STREAM, {"payload": "{}"}),
        "gateway XADD signals": lambda: gateway.xadd(keys.SIGNALS_STREAM, {"payload": "{}"}),
        "gateway XREADGROUP": lambda: gateway.xreadgroup("model", "x", {keys.PREDICT_STREAM: ">"}),
        "gateway HSET api-keys": lambda: gateway.hset(keys.API_KEYS_HASH, "k", "v"),
        "gateway PUBLISH reply": lambda: gateway.publish(keys.reply_channel("g"), "forged"),
        "worker FLUSHALL": lambda: worker.flushall(),
        "worker XADD model-events": lambda: worker.xadd(keys.MODEL_EVENTS_STREAM, {"payload": "{}"}),
        "worker read api-keys": lambda: worker.hgetall(keys.API_KEYS_HASH),
        "pipeline XADD predict": lambda: pipeline.xadd(keys.PREDICT_STREAM, {"payload": "{}"}),
        "pipeline FLUSHDB": lambda: pipeline.flushdb(),
        "scaler XADD predict": lambda: scaler.xadd(keys.PREDICT_STREAM, {"payload": "{}"}),
        "scaler XREADGROUP": lambda: scaler.xreadgroup("model", "x", {keys.PREDICT_STREAM: ">"}),
        "scaler read catalog": lambda: scaler.hgetall(keys.CATALOG_HASH),
        "notifier FLUSHALL": lambda: notifier.flushall(),
        "notifier XADD signal-changes": lambda: notifier.xadd(keys.SIGNAL_CHANGES_STREAM, {"payload": "{}"}),
        "notifier XADD price-updates": lambda: notifier.xadd(keys.PRICE_UPDATES_STREAM, {"payload": "{}"}),
        "notifier XADD predict": lambda: notifier.xadd(keys.PREDICT_STREAM, {"payload": "{}"}),
        "notifier HSET watchlists": lambda: notifier.hset(keys.watchlists_key("someone"), "w", "{}"),
        "notifier read api-keys": lambda: notifier.hgetall(keys.API_KEYS_HASH),
        "challenger XADD predict": lambda: challenger.xadd(keys.PREDICT_STREAM, {"payload": "{}"}),
        "challenger XADD quotes": lambda: challenger.xadd(keys.QUOTES_STREAM, {"payload": "{}"}),
        "challenger XADD signals": lambda: challenger.xadd(keys.SIGNALS_STREAM, {"payload": "{}"}),
        "challenger XADD model-events": lambda: challenger.xadd(keys.MODEL_EVENTS_STREAM, {"payload": "{}"}),
        "challenger XADD dead-letter": lambda: challenger.xadd(keys.DEAD_LETTER_STREAM, {"payload": "{}"}),
        "challenger PUBLISH reply": lambda: challenger.publish(keys.reply_channel("g"), "forged"),
        "challenger XTRIM predict": lambda: challenger.xtrim(keys.PREDICT_STREAM, maxlen=0),
        "challenger read api-keys": lambda: challenger.hgetall(keys.API_KEYS_HASH),
        "challenger SET lifecycle": lambda: challenger.set(keys.LIFECYCLE_KEY, "{}"),
    }
    allowed = []
    for name, call in refused.items():
        try:
            call()
            allowed.append(name)
        except NoPermissionError:
            pass
    assert allowed == [], f"allowed but should not be: {allowed}"
    assert pipeline.xadd(keys.MODEL_EVENTS_STREAM, {"payload": "{}"})  # its one job
    assert gateway.ping() and worker.ping()
    assert notifier.xadd(keys.ALERTS_STREAM, {"payload": "{}"})  # its output
    assert scaler.xlen(keys.PREDICT_STREAM) >= 0  # what KEDA reads
    # The challenger's job: read requests in its group, append to the shadow stream, heartbeat.
    admin = redis.Redis.from_url(urls["admin"])
    admin.xadd(keys.PREDICT_STREAM, {"payload": "{}"})
    pipeline.xgroup_create(keys.PREDICT_STREAM, keys.SHADOW_GROUP, id="0")  # setting a challenger does this
    got = challenger.xreadgroup(keys.SHADOW_GROUP, "c1", {keys.PREDICT_STREAM: ">"}, count=1)
    assert got and challenger.xack(keys.PREDICT_STREAM, keys.SHADOW_GROUP, got[0][1][0][0]) == 1
    assert challenger.xadd(keys.SHADOW_STREAM, {"payload": "{}"}, maxlen=100, approximate=True)
    assert challenger.hset(keys.REPLICAS_HASH, "c1", "{}") == 1
    assert pipeline.xrange(keys.SHADOW_STREAM) and pipeline.set(keys.LIFECYCLE_KEY, "{}")
    assert pipeline.exists(keys.PREDICT_STREAM)
    assert pipeline.xgroup_destroy(keys.PREDICT_STREAM, keys.SHADOW_GROUP) == 1  # clearing it does this


def test_the_stack_serves_with_one_acl_user_per_role(acl_server, champion_data_dir) -> None:
    _, urls = acl_server
    stack = _stack(
        champion_data_dir,
        urls["admin"],
        {"gateway": urls["gateway"], "model": urls["worker"], "decision": urls["worker"], "notifier": urls["notifier"]},
        POKEWATCH_AUTH_REQUIRED="true",
        POKEWATCH_WEBHOOK_ALLOW="127.0.0.1/32",
    )
    stack.notifiers = 1
    hook = Receiver(free_port()).start()
    stack.start(timeout=180)
    try:
        key = asyncio.run(_create_key(urls["admin"]))
        headers = {"X-API-Key": key}
        with httpx.Client(base_url=stack.url, headers=headers, timeout=15) as c:
            assert c.get("/health").json()["status"] == "ok"
            cards = [x["card_id"] for x in c.get("/cards", params={"page_size": 3}).json()["items"]]
            assert c.post("/fair_price", json={"card_id": cards[0]}).status_code == 200
            batch = c.post("/fair_price/batch", json={"items": [{"card_id": x} for x in cards]})
            assert batch.status_code == 200 and batch.json()["priced"] == 3
            assert c.get(f"/cards/{cards[0]}/history").status_code == 200
            item = {"card_id": cards[0], "rule": "signal", "signal": "ANY"}
            created = c.post("/watchlists", json={"name": "acl", "items": [item], "webhook_url": f"{hook.url}/h"})
            assert created.status_code == 201, created.text
        admin = redis.Redis.from_url(urls["admin"])
        # The notifier user delivers an alert of that watchlist (reads it, acks, and its XADDs pass the ACL).
        decision = admin.xrevrange(keys.SIGNALS_STREAM, count=1)[0][1][b"payload"]
        alert = Alert(
            alert_id="alert_acl",
            owner=_owner(admin),
            watchlist_id=created.json()["id"],
            watchlist_name="acl",
            item=item,
            card_id=cards[0],
            trigger="test",
            decision=SignalDecided.model_validate_json(decision),
            source="test",
        )
        admin.xadd(keys.ALERTS_STREAM, {"payload": alert.model_dump_json()})
        for _ in range(100):
            if hook.received:
                break
            threading.Event().wait(0.1)
        assert [h.headers["webhook-id"] for h in hook.received] == ["alert_acl"]
        users = {c["user"] for c in admin.client_list()}
        assert {"gateway", "worker"} <= users, users
        before = admin.xlen(keys.DEAD_LETTER_STREAM) if admin.exists(keys.DEAD_LETTER_STREAM) else 0
        admin.xadd(keys.PREDICT_STREAM, {"payload": "not json"})
        for _ in range(50):
            if admin.exists(keys.DEAD_LETTER_STREAM) and admin.xlen(keys.DEAD_LETTER_STREAM) > before:
                break
            threading.Event().wait(0.1)
        assert admin.xlen(keys.DEAD_LETTER_STREAM) == before + 1, "the worker user can dead-letter"
        logs = "".join(child.log.read_text(errors="replace") for child in stack.children)
        assert "NOPERM" not in logs and "NoPermission" not in logs
    finally:
        stack.stop()
        hook.stop()


def _owner(admin: redis.Redis) -> str:
    """The key id that owns the one watchlist."""
    (owner,) = admin.smembers(keys.WATCHLIST_OWNERS)
    return str(owner.decode())


async def _create_key(url: str) -> str:
    import redis.asyncio as aioredis

    from contracts.api_keys import ApiKeyStore

    client = aioredis.Redis.from_url(url)
    try:
        key, _ = await ApiKeyStore(client).create("acl-test")
        return key
    finally:
        await client.aclose()


# ---------------------------------------------------------------- TLS


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pokewatch-test-redis")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TlsTerminator:
    """A TLS front for a plain server on loopback, run in a thread (what stunnel or a cloud proxy does)."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.backend_port = backend_port
        self.port = free_port()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.connections = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.context)
        )
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def __enter__(self) -> TlsTerminator:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self.thread.join(5)


def test_rediss_urls_verify_the_certificate_and_serve(acl_server, champion_data_dir, tmp_path) -> None:
    server, urls = acl_server
    cert, key = _self_signed(tmp_path)
    with TlsTerminator(server.port, cert, key) as tls:
        passwords = {r: redis.connection.parse_url(u)["password"] for r, u in urls.items()}

        def tls_url(role: str) -> str:
            base = _url(server, role, passwords[role], scheme="rediss", port=tls.port)
            return f"{base}?ssl_cert_reqs=required&ssl_ca_certs={cert}"

        assert redis.Redis.from_url(tls_url("gateway")).ping()
        untrusted = _url(server, "gateway", passwords["gateway"], scheme="rediss", port=tls.port)
        with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
            redis.Redis.from_url(untrusted, socket_connect_timeout=3).ping()

        stack = _stack(
            champion_data_dir,
            tls_url("admin"),
            {"gateway": tls_url("gateway"), "model": tls_url("worker"), "decision": tls_url("worker")},
        )
        stack.start(timeout=180)
        try:
            with httpx.Client(base_url=stack.url, timeout=15) as c:
                card = c.get("/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
                resp = c.post("/fair_price", json={"card_id": card})
                assert resp.status_code == 200, resp.text
            # Every role reached the server through the TLS front only.
            admin = redis.Redis.from_url(tls_url("admin"))
            assert {c["user"] for c in admin.client_list()} >= {"gateway", "worker"}
            print(f"\nTLS connections accepted: {tls.connections}")
            assert tls.connections >= 4
        finally:
            stack.stop()
