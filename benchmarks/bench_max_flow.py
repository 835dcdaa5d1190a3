"""The click models' maximum flow (`max_flow.source_side`, Boykov–Kolmogorov) against scipy's Dinic.

The graphs are the tools' own: the field's clicks from an empty mask (``--clicks`` of them) and a box with
``--clicks`` clicks on DAVIS frames 0, 10, 20 and 30 of each clip, every cut the default click model makes
recorded (its rounds, crops and fine passes). Each graph is then solved by both in turn in one process, so the
seconds compare on the same core, and the two source sides must be equal (the source side of a maximum flow's
residual graph is unique). Printed: graphs, nodes, seconds by each (total, median per cut) and the ratio.

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
from bench_interactive import BOX_PAD, davis_frames, padded_box  # the script's own folder
from provenance import provenance_line
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import graph_cut, max_flow
from frugalseg.active.objects.tools.click_models import StarCutClicks

#: (count, edges, to_object, to_background): one cut's graph as `max_flow.source_side` takes it.
Graph = tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], np.ndarray, np.ndarray]


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
    """Every graph the default click model cuts while answering the field's clicks and boxes."""
    graphs: list[Graph] = []
    solve = graph_cut.source_side

    def record(count: int, edges: list, to_object: np.ndarray, to_background: np.ndarray) -> np.ndarray:
        graphs.append((count, list(edges), to_object, to_background))
        return solve(count, edges, to_object, to_background)

    graph_cut.source_side = record
    try:
        frames = list(davis_frames(roots, [0, 10, 20, 30], still=False))
        for _, image, truth, ignored, known in frames[::every]:
            for box in (None, padded_box(truth, BOX_PAD)):
                model, found, given = StarCutClicks(), np.zeros_like(truth), []
                if box is not None:
                    found = model.box(image, box, known=known)
                for _ in range(clicks):
                    click = corrective_click(found, truth, ignore=ignored)
                    if click is None:
                        break
                    given.append(click)
                    if box is None:
                        found = model.correct(image, np.zeros_like(truth), given, known=known)
                    else:
                        found = model.box(image, box, given, known=known)
    finally:
        graph_cut.source_side = solve
    return graphs


def compare(graphs: list[Graph]) -> dict[str, list[float]]:
    """Seconds per graph by each solver, in turn on the same graph; raises if their sides differ."""
    max_flow.prepare()  # compiled (or loaded) before timing
    seconds: dict[str, list[float]] = {"Boykov–Kolmogorov": [], "scipy Dinic": []}
    for number, (count, edges, to_object, to_background) in enumerate(graphs):
        sides = []
        for name, solve in (("Boykov–Kolmogorov", max_flow.source_side), ("scipy Dinic", dinic_source_side)):
            began = time.perf_counter()
            sides.append(solve(count, edges, to_object, to_background))
            seconds[name].append(time.perf_counter() - began)
        if not np.array_equal(*sides):
            raise AssertionError(f"graph {number}: the solvers' source sides differ")
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
    print(
        f"{len(graphs)} graphs, {int(np.median(nodes)):,} nodes (median), {max(nodes):,} at most; equal sides"
    )
    for name, spent in seconds.items():
        print(f"{name}: {sum(spent):.2f} s in all, {1000 * np.median(spent):.1f} ms per cut (median)")
    ratio = sum(seconds["scipy Dinic"]) / sum(seconds["Boykov–Kolmogorov"])
    print(f"Boykov–Kolmogorov {ratio:.2f} times as fast")
    print(provenance_line())


if __name__ == "__main__":
    main()
