"""The minimum cut's solver: known cuts of tiny graphs, and the 8-neighbour pairs of a tiny image."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from tool_frames import slow_cut

from frugalseg.active.objects.tools import max_flow
from frugalseg.active.objects.tools.max_flow import (
    HARD,
    SCALE,
    CutStopped,
    StopFlag,
    contrast_weights,
    neighbour_pairs,
    source_side,
    stop_flag,
    stopped_by,
)


def test_each_node_alone_takes_its_cheaper_side() -> None:
    # Node 0 costs 10 as background and 1 as object; node 1 the other way round; no edge between them.
    side = source_side(2, [], np.array([10, 1]), np.array([1, 10]))
    assert side.tolist() == [True, False]


def test_a_strong_edge_pulls_a_node_to_its_neighbour_s_side_and_a_weak_one_does_not() -> None:
    # Node 0 is held as object. Node 1 would be background (3 as object, 2 as background), but as background
    # the cut also pays the edge to node 0: at 5 it joins node 0 (3 < 2 + 5); without the edge it stays.
    to_object, to_background = np.array([HARD, 2]), np.array([0, 3])
    for capacity, joined in ((5, True), (0, False)):
        edges = [(np.array([0]), np.array([1]), np.array([capacity]), np.array([capacity]))]
        assert source_side(2, edges, to_object, to_background).tolist() == [True, joined]


def test_the_neighbour_pairs_of_a_two_by_two_image_and_their_contrast() -> None:
    # Lightness 0 on the left column and 10 on the right: the two horizontal and the two diagonal pairs
    # differ by 100 (squared), the two vertical ones by 0; β = 1 / (2 · mean) = 1 / (2 · 400 / 6).
    lab = np.zeros((2, 2, 3), np.float32)
    lab[:, 1, 0] = 10
    pairs, beta = neighbour_pairs(lab)
    found = sorted(
        (int(a), int(b), float(d2), round(dist, 3))
        for first, second, squared, dist in pairs
        for a, b, d2 in zip(first, second, squared, strict=True)
    )
    assert found == [
        (0, 1, 100.0, 1.0),
        (0, 2, 0.0, 1.0),
        (0, 3, 100.0, 1.414),
        (1, 2, 100.0, 1.414),
        (1, 3, 0.0, 1.0),
        (2, 3, 100.0, 1.0),
    ]
    assert beta == pytest.approx(1.0 / (2 * 400 / 6))


def test_an_edge_across_contrast_is_cheaper_and_a_diagonal_one_longer() -> None:
    # The image above: a vertical pair (no contrast) costs `SCALE` · weight, a horizontal one across the step
    # exp(−β · 100) of that, a diagonal one across it that over √2.
    lab = np.zeros((2, 2, 3), np.float32)
    lab[:, 1, 0] = 10
    beta = 1.0 / (2 * 400 / 6)
    found = {
        (int(a), int(b)): float(w)
        for first, second, weights in contrast_weights(lab, 2.0)
        for a, b, w in zip(first, second, weights, strict=True)
    }
    assert found[(0, 2)] == pytest.approx(SCALE * 2.0)
    assert found[(0, 1)] == pytest.approx(SCALE * 2.0 * np.exp(-beta * 100))
    assert found[(0, 3)] == pytest.approx(SCALE * 2.0 * np.exp(-beta * 100) / np.sqrt(2))


def _cut_values(
    sides: np.ndarray, edges: list, to_object: np.ndarray, to_background: np.ndarray
) -> np.ndarray:
    """What each labelling in ``sides`` (L×N, True = source side) costs: cut terminal arcs and edges."""
    values = (to_object * ~sides).sum(1) + (to_background * sides).sum(1)
    for first, second, forward, backward in edges:
        leaving, entering = sides[:, first] & ~sides[:, second], sides[:, second] & ~sides[:, first]
        values += (forward * leaving).sum(1) + (backward * entering).sum(1)
    return values


def _random_grid(rng: np.random.Generator) -> list:
    """A 3 × 5 8-neighbour grid of random capacities and four one-way hard arcs (as star convexity's; loops
    may be among them)."""
    index = np.arange(15).reshape(3, 5)
    edges = []
    for first, second in (
        (index[:, :-1], index[:, 1:]),
        (index[:-1], index[1:]),
        (index[:-1, :-1], index[1:, 1:]),
    ):
        capacity = rng.integers(0, 40, first.size)
        edges.append((first.ravel(), second.ravel(), capacity, capacity))
    edges.append((rng.integers(0, 15, 4), rng.integers(0, 15, 4), np.full(4, HARD), np.zeros(4, np.int64)))
    return edges


def _random_terminals(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random terminal capacities of 15 nodes, about half of them 0 and a tenth hard."""
    hard_object, hard_background = rng.random(15) < 0.1, rng.random(15) < 0.1
    to_object = np.where(hard_object, HARD, rng.integers(0, 60, 15) * (rng.random(15) < 0.5))
    to_background = np.where(hard_background, HARD, rng.integers(0, 60, 15) * (rng.random(15) < 0.5))
    return to_object, to_background


def _assert_least_costing(
    side: np.ndarray, edges: list, to_object: np.ndarray, to_background: np.ndarray
) -> None:
    """``side`` costs the least of all 2^15 labellings and is the intersection of every least-costing side
    (the nodes the source reaches after a maximum flow)."""
    every = ((np.arange(1 << 15)[:, None] >> np.arange(15)) & 1).astype(bool)
    values = _cut_values(every, edges, to_object, to_background)
    assert _cut_values(side[None], edges, to_object, to_background)[0] == values.min()
    assert side.tolist() == every[values == values.min()].all(axis=0).tolist()


@pytest.mark.parametrize("seed", range(8))
def test_random_graphs_cut_as_every_labelling_says(seed: int) -> None:
    rng = np.random.default_rng(seed)
    edges = _random_grid(rng)
    to_object, to_background = _random_terminals(rng)
    _assert_least_costing(source_side(15, edges, to_object, to_background), edges, to_object, to_background)


@pytest.mark.parametrize("seed", range(8))
def test_a_graph_cut_again_with_new_terminal_capacities_cuts_as_every_labelling_says(seed: int) -> None:
    # One graph cut six times in turn, each from the flow and trees the cut before left, with new terminal
    # capacities: some nodes keep theirs, some turn to the other terminal or to none (nodes change trees).
    rng = np.random.default_rng(100 + seed)
    edges = _random_grid(rng)
    cuts = max_flow.MinCuts(15, edges)
    to_object, to_background = _random_terminals(rng)
    for _ in range(6):
        _assert_least_costing(cuts.source_side(to_object, to_background), edges, to_object, to_background)
        new_object, new_background = _random_terminals(rng)
        keep = rng.random(15) < 0.5
        to_object, to_background = (
            np.where(keep, to_object, new_object),
            np.where(keep, to_background, new_background),
        )


def test_prepare_compiles_the_solver_before_a_first_cut() -> None:
    # In a fresh process (this one's tests have compiled it already): nothing compiled on import, both after.
    check = (
        "from frugalseg.active.objects.tools import max_flow as m\n"
        "before = [len(f.signatures) for f in (m._arcs, m._boykov_kolmogorov)]\n"
        "m.prepare()\n"
        "print(before, [len(f.signatures) for f in (m._arcs, m._boykov_kolmogorov)])\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "[0, 0] [1, 1]"


def test_an_edge_to_a_node_outside_the_graph_is_refused_before_the_compiled_solver_sees_it() -> None:
    edges = [(np.array([0]), np.array([2]), np.array([1]), np.array([1]))]
    with pytest.raises(ValueError, match="a graph of 2 nodes"):
        source_side(2, edges, np.array([1, 0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="a graph of 2 nodes"):
        source_side(2, [], np.array([1, 0, 0]), np.array([0, 1, 0]))


def test_a_graph_over_the_solver_s_int32_nodes_is_refused() -> None:
    # Nodes and arcs are int32 in the compiled solver: one node more is refused before anything is allocated.
    with pytest.raises(ValueError, match=f"a graph of {max_flow.MOST_NODES + 1} nodes and 0 edges"):
        max_flow.MinCuts(max_flow.MOST_NODES + 1, [])


def test_a_cut_whose_flag_is_set_before_it_begins_is_stopped_and_others_are_not() -> None:
    cuts, to_object, to_background = slow_cut(8)
    flag = StopFlag()
    flag.set()
    with pytest.raises(CutStopped, match="before it began"), stopped_by(flag):
        cuts.source_side(to_object, to_background)
    with stopped_by(StopFlag()):  # a set flag within an unset one; then the unset one; then none
        with stopped_by(flag), pytest.raises(CutStopped):
            cuts.source_side(to_object, to_background)
        assert cuts.source_side(to_object, to_background).reshape(8, 8)[:, 0].all()
    side = cuts.source_side(to_object, to_background).reshape(8, 8)
    assert side[:, 0].all() and not side[:, -1].any()


def test_a_flag_sets_the_flags_made_below_it_and_a_thread_s_new_flag_is_below_its_own() -> None:
    outer = StopFlag()
    with stopped_by(outer):
        handed = stop_flag()  # work this thread hands to another
    alone = stop_flag()  # outside any flag: set by nothing but itself
    deeper = handed.below()
    outer.set()
    assert handed.array[0] and deeper.array[0] and not alone.array[0]
    assert outer.below().array[0]  # made below a set flag: set at once


def test_a_running_cut_gives_up_when_another_thread_sets_its_flag() -> None:
    # The flag above the cut's is set 0.2 s into a cut of about 2 s alone: the solver sees it between two
    # augmenting paths (a solver that ignored it would also raise after it, but only once the whole flow ran).
    cuts, to_object, to_background = slow_cut(500)
    outer = StopFlag()
    timer = threading.Timer(0.2, outer.set)
    began = time.perf_counter()
    timer.start()
    with pytest.raises(CutStopped, match="while it ran"), stopped_by(outer.below()):
        cuts.source_side(to_object, to_background)
    assert time.perf_counter() - began < 1.2
    timer.join()
