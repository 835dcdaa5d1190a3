"""FlowMemory computes each flow once, across threads, and keeps the newest up to its byte budget."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from frugalseg.flow.memory import FlowMemory, flow_key, frame_digest


def flow(value: float, size: int = 4) -> np.ndarray:
    return np.full((size, size, 2), value, np.float32)  # 4×4×2 float32: 128 bytes


def test_a_kept_flow_is_not_computed_again_and_cannot_be_changed() -> None:
    memory, calls = FlowMemory(1024), []
    first = memory.get("a", lambda: calls.append("a") or flow(1))
    again = memory.get("a", lambda: calls.append("a") or flow(2))
    assert calls == ["a"] and again is first and float(again[0, 0, 0]) == 1.0
    assert (memory.computed, memory.reused, memory.nbytes) == (1, 1, 128)
    with pytest.raises(ValueError, match="read-only"):
        again[0, 0, 0] = 5


def test_the_least_recently_used_flows_leave_beyond_the_budget() -> None:
    memory = FlowMemory(3 * 128)
    for key in "abc":
        memory.get(key, lambda: flow(0))
    memory.get("a", lambda: flow(9))  # a is used again: b is now the oldest
    memory.get("d", lambda: flow(0))
    assert memory.nbytes == 3 * 128
    calls: list[str] = []
    for key in "acd":
        memory.get(key, lambda key=key: calls.append(key) or flow(0))
    assert calls == []
    memory.get("b", lambda: calls.append("b") or flow(0))
    assert calls == ["b"]  # it had left


def test_two_threads_asking_for_one_flow_compute_it_once() -> None:
    memory, calls, started = FlowMemory(1024), [], threading.Event()

    def slow() -> np.ndarray:
        calls.append(threading.current_thread().name)
        started.set()
        time.sleep(0.2)
        return flow(3)

    got: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: got.append(memory.get("k", slow))) for _ in range(2)]
    threads[0].start()
    started.wait(5)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(got) == 2 and got[0] is got[1]


def test_a_failed_computation_keeps_nothing_and_is_tried_again() -> None:
    memory = FlowMemory(1024)

    def fails() -> np.ndarray:
        raise RuntimeError("no flow")

    with pytest.raises(RuntimeError, match="no flow"):
        memory.get("k", fails)
    assert float(memory.get("k", lambda: flow(4))[0, 0, 0]) == 4.0 and memory.nbytes == 128


def test_keys_tell_frames_by_their_pixels_and_engines_by_their_settings() -> None:
    a, b = np.zeros((4, 6, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)
    assert frame_digest(a) != frame_digest(b)  # the same bytes, another shape
    assert frame_digest(a) == frame_digest(a.copy())
    dis = {"engine": "dis", "preset": "medium", "downscale": 1}
    assert flow_key(dis, b"1", b"2") == flow_key(dict(reversed(dis.items())), b"1", b"2")
    assert flow_key(dis, b"1", b"2") != flow_key({**dis, "downscale": 2}, b"1", b"2")
    assert flow_key(dis, b"1", b"2") != flow_key(dis, b"2", b"1")
