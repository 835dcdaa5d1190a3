"""The maximum-flow benchmark (`benchmarks/bench_max_flow.py`): its scipy reference, its side-by-side run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalseg.active.objects.tools.max_flow import HARD

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def test_the_scipy_reference_cuts_a_known_graph() -> None:
    # Node 0 is held as object; node 1 costs 3 as object and 2 as background, and 5 more as background for
    # the edge to node 0: it joins node 0. Without the edge it stays background.
    bench = __import__("bench_max_flow")
    to_object, to_background = np.array([HARD, 2]), np.array([0, 3])
    for capacity, joined in ((5, True), (0, False)):
        edges = [(np.array([0]), np.array([1]), np.array([capacity]), np.array([capacity]))]
        assert bench.dinic_source_side(2, edges, to_object, to_background).tolist() == [True, joined]


def test_compare_times_each_way_on_each_graph_and_refuses_differing_sides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = __import__("bench_max_flow")
    rng = np.random.default_rng(0)
    index = np.arange(48).reshape(6, 8)
    capacity = rng.integers(1, 30, 42)
    edges = [(index[:, :-1].ravel(), index[:, 1:].ravel(), capacity, capacity)]
    cuts = [(rng.integers(0, 40, 48), rng.integers(0, 40, 48)) for _ in range(3)]
    seconds = bench.compare([(48, edges, cuts), (48, edges, cuts[:1])])
    assert list(seconds) == list(bench.WAYS) and all(spent > 0 for spent in seconds.values())
    monkeypatch.setattr(bench, "dinic_source_side", lambda count, *_: np.zeros(count, bool))
    with pytest.raises(AssertionError, match="graph 0: Boykov–Kolmogorov and scipy Dinic cut differently"):
        bench.compare([(2, [], [(np.array([5, 0]), np.array([0, 5]))])])
