"""Flows computed once: a cache keyed by the two frames' pixels and the engine's settings.

Training reads the same frame pairs every epoch (validation TC, temporal pairs, distillation
neighbours), and a DIS flow at 2048×1024 costs about 170 ms on one core. `FlowCache` computes each
flow once and keeps it as float16 (half the bytes; a flow's error is far above float16's step), which
it returns from the first call too (a run's figures are the same with a cold cache or a warm one), in a
folder of its own, under a key made from the frames' pixels, their size and the engine's settings:
a frame that changes gets new flows, whatever its file's time stamps say, and a flow is reused
across epochs, runs and processes (files are written atomically, so workers can share the folder).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from frugalseg.data.io import write_bytes_atomic


class FlowEngine(Protocol):
    """What the cache needs from a flow engine: ``engine(first, second) -> H×W×2`` and its settings."""

    @property
    def settings(self) -> dict[str, Any]:
        """The engine's settings; flows computed under other settings are not reused."""
        ...

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The H×W×2 flow from ``first`` to ``second``."""
        ...


class FlowCache:
    """``cache(first, second)``: the engine's flow first → second, computed at most once.

    Args:
        engine: the flow engine (e.g. `frugalseg.flow.DISFlow`).
        root: the folder of the cached flows (e.g. ``$FRUGALSEG_CACHE/flows``).
    """

    def __init__(self, engine: FlowEngine, root: str | Path) -> None:
        self.engine = engine
        self.root = Path(root)
        self.computed = 0  # flows computed by this object (the rest were read from the cache)
        self._settings = json.dumps(engine.settings, sort_keys=True).encode()

    def key(self, first: np.ndarray, second: np.ndarray) -> str:
        """The cache key of a frame pair: a hash of both frames' pixels and shapes and the settings."""
        digest = hashlib.blake2b(digest_size=20)
        for frame in (first, second):
            digest.update(repr((frame.shape, frame.dtype.str)).encode())
            digest.update(np.ascontiguousarray(frame).data)
        digest.update(self._settings)
        return digest.hexdigest()

    def path(self, first: np.ndarray, second: np.ndarray) -> Path:
        """Where the flow of a frame pair is (or will be) kept."""
        key = self.key(first, second)
        return self.root / key[:2] / f"{key}.npy"

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The H×W×2 float32 flow first → second, read from the cache or computed and stored."""
        path = self.path(first, second)
        try:
            cached: np.ndarray = np.load(path, allow_pickle=False).astype(np.float32)
            return cached
        except (FileNotFoundError, ValueError, OSError):
            pass  # not there yet (or left damaged): compute it
        kept = self.engine(first, second).astype(np.float16)
        self.computed += 1
        buffer = io.BytesIO()
        np.save(buffer, kept, allow_pickle=False)
        write_bytes_atomic(path, buffer.getvalue())
        flow: np.ndarray = kept.astype(np.float32)  # what a later read gives: a run is the same cold or warm
        return flow
