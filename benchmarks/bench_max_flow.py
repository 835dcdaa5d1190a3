"""The click models' maximum flow (`max_flow`, Boykov–Kolmogorov) against scipy's Dinic.

The graphs are the tools' own: the field's clicks from an empty mask (``--clicks`` of them, fewer once IoU
reaches 0.9) and a box with as many, on DAVIS frames 0, 10, 20 and 30 of each clip (`bench_interactive`'s
`run_clicks`), every cut the default click model makes recorded (its rounds, crops and fine passes): a cut's
rounds are one graph cut again with new terminal capacities. Each graph's cuts are solved three ways in turn
in one process, so the seconds compare on the same core: by scipy's Dinic, by Boykov–Kolmogorov from scratch
(`max_flow.source_side`) and by Boykov–Kolmogorov from the flow and trees of the round before
(`max_flow.MinCuts`, as the tools cut); the source sides must be equal (the source side of a maximum flow's
residual graph is unique). Printed: graphs, cuts, nodes, seconds by each way and the ratios.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_max_flow.py --davis ../shared/data/davis_dev \\
        --davis ../shared/data/davis_hard
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
from bench_interactive import BOX_PAD, davis_frames, padded_box, run_clicks  # the script's own folder
from provenance import provenance_line
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from frugalseg.active.objects.tools import graph_cut, max_flow
from frugalseg.active.objects.tools.click_models import StarCutClicks

#: (count, edges, [(to_object, to_background) of each cut in turn]): one graph's cuts, as `max_flow` cuts.
Graph = tuple[int, list, list[tuple[np.ndarray, np.ndarray]]]
#: The three ways of `compare`.
WAYS = ("scipy Dinic", "Boykov–Kolmogorov", "Boykov–Kolmogorov, rounds from the round before")


def dinic_source_side(
    count: int, edges: Sequence[tuple[np.ndarray, ...]], to_object: np.ndarray, to_background: np.ndarray
) -> np.ndarray:
    """`max_flow.source_side` by scipy's Dinic: a flow, then the nodes the source reaches in its residual."""
    source, sink = count, count + 1
    nodes = np.arange(count)
    tails = np.concatenate([e[0] for e in edges] + [e[1] for e in edges] + [np.full(count, source), nodes])
    heads = np.concatenate([e[1] for e in edges] + [e[0] for e in edges] + [nodes, np.full(count, sink)])
    capacity = np.concatenate([e[2] for e in edges] + [e[3] for e in edges] + [to_object, to_background])
    capacity = np.minimum(capacity, max_flow.HARD).astype(np.int64)
    keep = capacity > 0
    graph = sparse.csr_matrix(
        (capacity[keep].astype(np.int32), (tails[keep], heads[keep])), shape=(count + 2, count + 2)
    )
    graph.data = np.minimum(graph.data, max_flow.HARD).astype(np.int32)  # parallel arcs summed
    residual = (graph - maximum_flow(graph, source, sink, method="dinic").flow).tocsr()
    residual.data = (residual.data > 0).astype(np.int8)
    residual.eliminate_zeros()
    side = np.zeros(count + 2, bool)
    side[breadth_first_order(residual, source, directed=True, return_predecessors=False)] = True
    result: np.ndarray = side[:count]
    return result


def recorded_graphs(roots: list[Path], clicks: int, every: int) -> list[Graph]:
    """Every graph the default click model cuts, with each cut's terminals, answering the clicks and boxes."""
    graphs: list[Graph] = []
    solve, made = graph_cut.source_side, graph_cut.MinCuts

    class Recorded(max_flow.MinCuts):
        """`MinCuts` that records its graph and each cut's terminal capacities."""

        def __init__(self, count: int, edges: list) -> None:
            super().__init__(count, edges)
            self.cuts: list[tuple[np.ndarray, np.ndarray]] = []
            graphs.append((count, list(edges), self.cuts))

        def source_side(self, to_object: np.ndarray, to_background: np.ndarray) -> np.ndarray:
            self.cuts.append((to_object, to_background))
            return super().source_side(to_object, to_background)

    def record(count: int, edges: list, to_object: np.ndarray, to_background: np.ndarray) -> np.ndarray:
        graphs.append((count, list(edges), [(to_object, to_background)]))
        return solve(count, edges, to_object, to_background)

    graph_cut.source_side, graph_cut.MinCuts = record, Recorded
    try:
        frames = list(davis_frames(roots, [0, 10, 20, 30], still=False))
        for _, image, truth, ignored, known in frames[::every]:
            for start in (np.zeros_like(truth), padded_box(truth, BOX_PAD)):
                run_clicks(
                    StarCutClicks(), image, truth, ignored, start=start, max_clicks=clicks, known=known
                )
    finally:
        graph_cut.source_side, graph_cut.MinCuts = solve, made
    return [graph for graph in graphs if graph[2]]


def compare(graphs: list[Graph]) -> dict[str, float]:
    """Seconds over all the cuts by each of `WAYS`, in turn on each graph; raises if their sides differ."""
    max_flow.prepare()  # compiled (or loaded) before timing
    seconds = dict.fromkeys(WAYS, 0.0)
    for number, (count, edges, cuts) in enumerate(graphs):
        sides: dict[str, list[np.ndarray]] = {}
        began = time.perf_counter()
        sides[WAYS[0]] = [dinic_source_side(count, edges, *terminals) for terminals in cuts]
        seconds[WAYS[0]] += time.perf_counter() - began
        began = time.perf_counter()
        sides[WAYS[1]] = [max_flow.source_side(count, edges, *terminals) for terminals in cuts]
        seconds[WAYS[1]] += time.perf_counter() - began
        began = time.perf_counter()
        reused = max_flow.MinCuts(count, edges)
        sides[WAYS[2]] = [reused.source_side(*terminals) for terminals in cuts]
        seconds[WAYS[2]] += time.perf_counter() - began
        for way in WAYS[1:]:
            if not all(np.array_equal(a, b) for a, b in zip(sides[WAYS[0]], sides[way], strict=True)):
                raise AssertionError(f"graph {number}: {way} and {WAYS[0]} cut differently")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis", type=Path, action="append", required=True, help="DAVIS-layout roots")
    parser.add_argument("--clicks", type=int, default=3, help="clicks per object, from empty and in a box")
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame")
    args = parser.parse_args()
    graphs = recorded_graphs(args.davis, args.clicks, args.every)
    seconds = compare(graphs)
    nodes = [count for count, *_ in graphs]
    cuts = sum(len(graph[2]) for graph in graphs)
    print(
        f"{len(graphs)} graphs, {cuts} cuts, {int(np.median(nodes)):,} nodes (median), {max(nodes):,} at most"
    )
    for way, spent in seconds.items():
        print(
            f"{way}: {spent:.2f} s, {1000 * spent / cuts:.1f} ms a cut, {seconds[WAYS[0]] / spent:.2f}× Dinic"
        )
    print(provenance_line())


if __name__ == "__main__":
    main()
