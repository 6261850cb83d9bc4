"""Load a registered model version with its serving state, priced and ready to serve."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging

from workers import registry
from workers.config import RegistrySettings
from workers.serving.state import ServingState

logger = logging.getLogger(__name__)


def load_state(settings: RegistrySettings, ref: registry.VersionRef) -> ServingState:
    """The serving state of `ref`, every row priced: the pipeline's priced state, memory-mapped;
    for a version from before it, the model run over the logged feature rows."""
    directory = registry.priced_dir(settings, ref)
    if directory is not None:
        built = ServingState.open(ref.version, directory)
    else:
        model, rows = registry.load_version(settings, ref)
        built = ServingState.build(ref.version, rows, model)
        del rows
        release_memory()
    logger.info("loaded model version %s with %d cards, %d state rows", ref.version, len(built.cards), len(built))
    return built


def release_memory() -> None:
    """Hand the feature frame's memory back to the OS once the state is priced.

    pyarrow keeps freed buffers in its pool and glibc keeps freed heap pages;
    without this a replica serving 10,000 cards keeps its load peak as RSS.
    """
    gc.collect()
    with contextlib.suppress(ImportError, AttributeError):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
