"""FlowsAhead: flows computed ahead on a thread pool, handed out once each, memory bounded."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from frugalseg.flow.ahead import FlowsAhead, opencv_threads


def test_flows_come_back_by_key_whatever_the_pool() -> None:
    order = [("chain", 1, 0), ("chain", 0, 1), ("direct", 2, 0)]
    for workers in (1, 2, 3):
        with FlowsAhead(
            lambda key: np.full((2, 2, 2), key[1] * 10 + key[2], np.float32), order, workers
        ) as flows:
            assert [float(flows(key)[0, 0, 0]) for key in order] == [10.0, 1.0, 20.0]


def test_two_workers_compute_two_flows_at_once() -> None:
    """Each compute waits for a second one to start: only a pool running two at once gets through."""
    both = threading.Barrier(2, timeout=10)

    def compute(key: int) -> np.ndarray:
        both.wait()
        return np.zeros((1, 1, 2), np.float32)

    with FlowsAhead(compute, [0, 1, 2, 3], workers=2) as flows:
        assert all(flows(key).shape == (1, 1, 2) for key in range(4))


def test_two_callers_on_two_threads_each_get_their_flows_once() -> None:
    """The chains of a propagation ask at once, each for its own keys (interleaved in the order)."""
    computed: list[int] = []
    lock = threading.Lock()

    def compute(key: int) -> np.ndarray:
        with lock:
            computed.append(key)
        return np.full((1, 1, 2), key, np.float32)

    got: dict[int, list[float]] = {0: [], 1: []}
    with FlowsAhead(compute, list(range(400)), workers=2) as flows:

        def take(parity: int) -> None:
            got[parity] = [float(flows(key)[0, 0, 0]) for key in range(parity, 400, 2)]

        callers = [threading.Thread(target=take, args=(parity,)) for parity in (0, 1)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    assert got[0] == list(range(0, 400, 2)) and got[1] == list(range(1, 400, 2))
    assert sorted(computed) == list(range(400))


def test_at_most_ahead_flows_wait_to_be_taken() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def compute(key: int) -> np.ndarray:
        with lock:
            started.append(key)
        return np.zeros((1, 1, 2), np.float32)

    with FlowsAhead(compute, list(range(10)), workers=2, ahead=3) as flows:
        for key in range(10):
            flows(key)
            # the taken keys plus at most three more were started
            assert max(started) <= key + 3
    assert sorted(started) == list(range(10))


def test_a_flow_not_planned_or_taken_twice_is_an_error() -> None:
    zero = np.zeros((1, 1, 2), np.float32)
    with FlowsAhead(lambda key: zero, ["a", "b"], workers=2) as flows:
        flows("a")
        with pytest.raises(KeyError, match="'a' was not planned, or was asked for already"):
            flows("a")
        with pytest.raises(KeyError, match="'c'"):
            flows("c")
    with pytest.raises(ValueError, match="repeats a key"):
        FlowsAhead(lambda key: zero, ["a", "a"], workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        FlowsAhead(lambda key: zero, ["a"], workers=0)


def test_a_failing_flow_raises_in_the_caller() -> None:
    def compute(key: str) -> np.ndarray:
        raise RuntimeError(f"bad frame {key}")

    with (
        FlowsAhead(compute, ["x", "y"], workers=2) as flows,
        pytest.raises(RuntimeError, match="bad frame x"),
    ):
        flows("x")


def test_opencv_threads_are_restored() -> None:
    before = cv2.getNumThreads()
    with opencv_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before


def test_opencv_threads_opened_in_two_threads_restore_the_count_from_before_both() -> None:
    """One block opens, a second opens in another thread, the first closes, then the second: the
    count before the first comes back (a plain save/restore would leave the blocks' count)."""
    saved = cv2.getNumThreads()
    cv2.setNumThreads(3)  # a count no block sets
    first_open, second_open, first_closed = threading.Event(), threading.Event(), threading.Event()
    inside: list[int] = []

    def first() -> None:
        with opencv_threads(1):
            first_open.set()
            second_open.wait(10)
        first_closed.set()

    def second() -> None:
        first_open.wait(10)
        with opencv_threads(1):
            second_open.set()
            first_closed.wait(10)
            inside.append(cv2.getNumThreads())  # still inside a block

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    after = cv2.getNumThreads()
    cv2.setNumThreads(saved)
    assert inside == [1] and after == 3
