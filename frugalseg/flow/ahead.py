"""Flows computed ahead of use on a pool of threads, so that a propagation keeps every core busy.

`FlowsAhead` serves any work whose order is known ahead: a first click's crops too (`zoom.first_click`).

The flows a label propagation needs do not depend on the labels, only on the frames: all of them
are known before the first label is warped. `FlowsAhead` computes them on ``workers`` threads in
the order they will be asked for (OpenCV releases the GIL while DIS runs) while the caller works
on the labels, and hands each one out once. At most ``ahead`` flows wait to be taken, so memory
stays bounded when the caller is the slower side. While a pool runs, OpenCV's own threads are set
to one (`opencv_threads`): a pool of N threads each splitting its work N ways would oversubscribe
the cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Generic, TypeVar

import cv2

T = TypeVar("T")


def usable_cores() -> int:
    """The number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_opencv_lock = threading.Lock()
_opencv_saved: list[int] = []  # the count before the outermost block still open, per open block


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """Run the block with OpenCV's thread count set to ``count``, restored afterwards.

    OpenCV's count is one value for the process: blocks open at once in several threads (two
    propagations of the annotation page) restore the count from before the first of them when
    the last one ends, whatever order they end in.
    """
    with _opencv_lock:
        _opencv_saved.append(_opencv_saved[0] if _opencv_saved else cv2.getNumThreads())
        cv2.setNumThreads(count)
    try:
        yield
    finally:
        with _opencv_lock:
            before = _opencv_saved.pop()
            if not _opencv_saved:
                cv2.setNumThreads(before)


class FlowsAhead(Generic[T]):
    """``flows(key)``: ``compute(key)``, a flow or what is made of flows alone, computed ahead in ``order``.

    Several threads may ask at once (each key once in all); the keys are computed in ``order``.

    Args:
        compute: the flow of a key, or anything made from flows alone (called on the pool's
            threads; it must be safe to call from several at once, as `frugalseg.flow.DISFlow` is).
        order: every key, in the order they will be asked for; each is asked for once.
        workers: threads computing flows; 1 computes each flow when it is asked for, on the
            caller's thread.
        ahead: the most flows computed or under way that have not been asked for yet.
    """

    def __init__(
        self,
        compute: Callable[[Hashable], T],
        order: Sequence[Hashable],
        workers: int,
        ahead: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if len(set(order)) != len(order):
            raise ValueError("each flow may be asked for once; the order repeats a key")
        self.compute = compute
        self.order = list(order)
        self.workers = workers
        self.ahead = ahead if ahead is not None else 2 * workers
        self._next = 0  # index in order of the next key to submit
        self._pending: dict[Hashable, Future[T]] = {}
        self._lock = threading.Lock()  # callers on several threads (the chains of a propagation)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="flow") if workers > 1 else None

    def __call__(self, key: Hashable) -> T:
        """What ``compute`` gives for ``key``, waiting for it if it is still being computed."""
        if self._pool is None:
            return self.compute(key)
        with self._lock:
            if key not in self._pending:
                if key not in self.order[self._next :]:
                    raise KeyError(f"flow {key!r} was not planned, or was asked for already")
                while key not in self._pending:
                    self._submit()
            future = self._pending.pop(key)
            self._fill()
        return future.result()

    def _submit(self) -> None:
        assert self._pool is not None
        key = self.order[self._next]
        self._next += 1
        self._pending[key] = self._pool.submit(self.compute, key)

    def _fill(self) -> None:
        while self._next < len(self.order) and len(self._pending) < self.ahead:
            self._submit()

    def __enter__(self) -> FlowsAhead[T]:
        """Start computing the first flows."""
        if self._pool is not None:
            self._fill()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Drop the flows not asked for and stop the pool (after the flows under way end)."""
        if self._pool is not None:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True)
