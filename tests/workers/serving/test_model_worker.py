"""Model events as a replica sees them: which versions it loads, and what a failed load leaves behind."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from contracts import keys
from contracts.messages import ModelPublished
from workers.config import WorkerSettings
from workers.model_events import is_newer
from workers.pipeline.models import NaiveModel
from workers.serving.model_worker import ModelWorker
from workers.serving.reload import smoke_test
from workers.serving.state import ServingState


@pytest.mark.parametrize(
    ("version", "current", "newer"),
    [("2", "1", True), ("10", "9", True), ("1", "2", False), ("3", "3", False), ("1", None, True)],
)
def test_versions_compare_as_numbers(version: str, current: str | None, newer: bool) -> None:
    assert is_newer(version, current) is newer


@pytest.fixture
async def worker(redis_server, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    w = ModelWorker(WorkerSettings(redis_url=url, data_dir=tmp_path / "data"), "model-t")
    w.reloader.state = ServingState.build("3", _tiny_state(), NaiveModel())
    yield w
    await client.flushdb()
    await client.aclose()
    await w.redis.aclose()


def _tiny_state():

    from workers.pipeline.features import build_features
    from workers.pipeline.serving_state import build_serving_state
    from workers.pipeline.sources.demo import generate

    return build_serving_state(build_features(generate(n_cards=3, n_days=30, seed=1)))


def _event(version: str, **kw) -> ModelPublished:
    return ModelPublished(
        model_name="pokewatch-fair-price", version=version, model_uri=f"models:/pokewatch-fair-price/{version}", **kw
    )


async def test_older_same_and_foreign_versions_are_ignored(worker: ModelWorker) -> None:
    worker.reloader.on_published(_event("2"))
    worker.reloader.on_published(_event("3"))
    worker.reloader.on_published(ModelPublished(model_name="other", version="9", model_uri="models:/other/9"))
    assert worker.reloader._task is None and worker.model_version() == "3"


async def test_a_version_that_cannot_load_leaves_the_old_one_serving(worker: ModelWorker) -> None:
    worker.reloader.on_published(_event("4"))
    assert worker.reloader._task is not None
    await asyncio.wait_for(worker.reloader._task, 60)
    assert worker.model_version() == "3"
    assert worker.last_error and "loading version 4 failed" in worker.last_error
    events = [json.loads(f[b"payload"]) for _, f in await worker.redis.xrange(keys.MODEL_EVENTS_STREAM)]
    assert [(e["kind"], e["version"], e["serving_version"]) for e in events] == [("load_failed", "4", "3")]
    beat = json.loads(await worker.redis.hget(keys.REPLICAS_HASH, "model-t"))
    assert beat["model_version"] == "3" and "loading version 4 failed" in beat["last_error"]


async def test_a_rollback_event_may_go_back_a_version(worker: ModelWorker) -> None:
    worker.reloader.on_published(_event("2", rollback=True))
    assert worker.reloader._task is not None  # scheduled: the load itself fails here (no registry)
    await asyncio.wait_for(worker.reloader._task, 60)
    assert worker.model_version() == "3"


async def test_malformed_model_events_are_dead_lettered(worker: ModelWorker) -> None:
    await worker.on_model_events([(b"1-1", {b"payload": b"{nope"}), (b"1-2", {b"x": b"y"})])
    letters = [json.loads(f[b"payload"]) for _, f in await worker.redis.xrange(keys.DEAD_LETTER_STREAM)]
    assert [d["source_stream"] for d in letters] == [keys.MODEL_EVENTS_STREAM] * 2
    assert "json" in letters[0]["reason"].lower() and "missing field" in letters[1]["reason"]
    assert worker.model_version() == "3"


def test_smoke_test_accepts_a_sane_state_and_rejects_an_empty_one() -> None:
    state = ServingState.build("1", _tiny_state(), NaiveModel())
    smoke_test(state)
    empty = ServingState.build("1", _tiny_state().iloc[:0], NaiveModel())
    with pytest.raises(ValueError, match="no cards"):
        smoke_test(empty)


async def test_events_added_before_the_first_read_are_not_missed(worker: ModelWorker) -> None:
    """The broadcast starts after the stream's last entry when the app is built, not at "$"
    when the first read happens: an event published while the replica is still starting (or
    busy between two reads) is read; one published before is not."""
    await worker.redis.xadd(keys.MODEL_EVENTS_STREAM, {keys.PAYLOAD_FIELD: b"old"})
    await worker.before_build()
    await worker.redis.xadd(keys.MODEL_EVENTS_STREAM, {keys.PAYLOAD_FIELD: b"new"})
    app = worker.build_app()
    await app.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not await worker.redis.xlen(keys.DEAD_LETTER_STREAM):
            assert asyncio.get_running_loop().time() < deadline, "the event added before the first read was missed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # one more poll period: nothing else arrives
    finally:
        await app.stop()
    letters = [json.loads(f[b"payload"]) for _, f in await worker.redis.xrange(keys.DEAD_LETTER_STREAM)]
    assert [d["payload"] for d in letters if d["source_stream"] == keys.MODEL_EVENTS_STREAM] == ["new"]


def test_an_event_is_loaded_only_if_it_names_what_the_registry_has() -> None:
    from workers.registry import VersionRef
    from workers.serving.reload import StaleEvent, check_event

    ref = VersionRef("4", "run-a", "models:/pokewatch-fair-price/4")
    check_event(_event("4", run_id="run-a"), ref)
    check_event(_event("4"), ref)  # an event without a run id names only the version
    with pytest.raises(StaleEvent, match="run"):
        check_event(_event("4", run_id="run-b"), ref)
    forged = ModelPublished(
        model_name="pokewatch-fair-price", version="4", model_uri="file:///tmp/evil", run_id="run-a"
    )
    with pytest.raises(StaleEvent, match="registry has"):
        check_event(forged, ref)
