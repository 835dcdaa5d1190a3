"""Flows kept in memory between propagations of one video, by the frames' pixels and the engine's settings.

An annotation session propagates its video again after every annotation: the segments beside the new
annotated frame are carried again, and a late object's pass runs beside the others'. Most of their
flows are between the same frame pairs as before (a link's check asks for the flow back, so a pair's
two flows serve both directions), and a DIS flow at 854×480 costs about 0.25 s on one core.
`FlowMemory` computes each flow once and keeps it, as computed (float32: the masks are those of a
propagation without it), up to a byte budget, the least recently used leaving first. Unlike
`frugalseg.flow.cache.FlowCache` (float16 files for training's epochs), nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

import numpy as np

FlowKey = tuple[str, bytes, bytes]  # (the engine's settings as JSON, the first frame's digest, the second's)


def frame_digest(frame: np.ndarray) -> bytes:
    """What tells a frame's pixels from another's: a SHA-1 of its shape and bytes."""
    digest = hashlib.sha1(str(frame.shape).encode())
    digest.update(np.ascontiguousarray(frame).data)
    return digest.digest()


def flow_key(settings: dict[str, Any], first: bytes, second: bytes) -> FlowKey:
    """The key of the flow from the frame of digest ``first`` to ``second`` under an engine's ``settings``."""
    return json.dumps(settings, sort_keys=True), first, second


class FlowMemory:
    """``memory.get(key, compute)``: the flow of ``key``, computed by ``compute`` at most once while kept.

    Safe to call from several threads: a flow another thread is computing is waited for, not computed
    twice. The flows it returns are read-only.

    Args:
        max_bytes: the most bytes of flows kept; the least recently used leave first (the newest
            stays even when it alone is over).
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.computed = 0  # flows computed (the work done, for tests and benchmarks)
        self.reused = 0
        self._flows: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._making: dict[Hashable, Future[np.ndarray]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The flow of ``key``: kept, being computed by another thread, or computed now and kept."""
        with self._lock:
            if key in self._flows:
                self._flows.move_to_end(key)
                self.reused += 1
                return self._flows[key]
            making = self._making.get(key)
            owned: Future[np.ndarray] = Future()
            if making is None:
                self._making[key] = owned
        if making is not None:
            return making.result()
        try:
            flow = compute()
        except BaseException as err:
            with self._lock:
                del self._making[key]
            owned.set_exception(err)
            raise
        flow.flags.writeable = False
        with self._lock:
            del self._making[key]
            self.computed += 1
            self._flows[key] = flow
            self.nbytes += flow.nbytes
            while self.nbytes > self.max_bytes and len(self._flows) > 1:
                self.nbytes -= self._flows.popitem(last=False)[1].nbytes
        owned.set_result(flow)
        return flow
