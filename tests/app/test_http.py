"""`frugalseg.app.http`: `LatestWins`, a frame's newer preview stops the one before it, or waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from tool_frames import slow_cut

from frugalseg.app.http import LatestWins, RequestError


def run_in_thread(work: Callable[[], str]) -> tuple[threading.Thread, list[str]]:
    """``work`` started in a thread; what it returned, or its error's status, once it ends."""
    ended: list[str] = []

    def run() -> None:
        try:
            ended.append(work())
        except RequestError as err:
            ended.append(str(err.status))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, ended


def tiny_cut() -> None:
    """A cut of 64 nodes: stopped at once if its flag is set."""
    cuts, to_object, to_background = slow_cut(8)
    cuts.source_side(to_object, to_background)


def test_a_newer_work_stops_the_one_it_does_not_go_on_from_and_what_that_one_waited_for() -> None:
    # A (click 1) cuts for about 2 s; B (clicks 1, 2) goes on from A and waits for it; C (click 3: an undo and
    # another click) goes on from neither: both stop (409), A within one augmenting path, and C answers.
    latest = LatestWins()
    cuts, to_object, to_background = slow_cut(500)
    started = threading.Event()
    entered: list[str] = []

    def preview(name: str, steps: tuple[int, ...]) -> str:
        with latest.latest("frame 3", "preview of this frame", "base", steps):
            entered.append(name)
            if name == "A":
                started.set()
                cuts.source_side(to_object, to_background)
            else:
                tiny_cut()
            return "200"

    began = time.perf_counter()
    a, a_ended = run_in_thread(lambda: preview("A", (1,)))
    assert started.wait(30)
    b, b_ended = run_in_thread(lambda: preview("B", (1, 2)))
    deadline = time.monotonic() + 10
    while latest._running["frame 3"].steps != (1, 2):  # B registered: it is the one C finds under way
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert entered == ["A"]  # B waits for A
    assert preview("C", (3,)) == "200"
    for thread in (a, b):
        thread.join()
    assert (a_ended, b_ended) == (["409"], ["409"])  # B, stopped while it waited, gives up at its first cut
    assert time.perf_counter() - began < 1.5


def test_a_newer_work_that_goes_on_from_the_one_under_way_waits_for_it() -> None:
    latest = LatestWins()
    cuts, to_object, to_background = slow_cut(300)
    started = threading.Event()
    order: list[str] = []

    def first() -> str:
        with latest.latest("frame 3", "preview", "base", (1,)):
            started.set()
            cuts.source_side(to_object, to_background)
            order.append("first")
            return "200"

    thread, ended = run_in_thread(first)
    assert started.wait(30)
    with latest.latest("frame 3", "preview", "base", (1, 2)):
        order.append("second")
    thread.join()
    assert ended == ["200"] and order == ["first", "second"]
    with pytest.raises(RequestError, match="a later preview replaced this one"):  # a newer one stopped it
        with latest.latest("frame 3", "preview", "base", (1,)):
            with latest.latest("frame 3", "preview", "other base", (1,)):
                pass
            tiny_cut()
