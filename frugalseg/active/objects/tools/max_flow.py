"""The minimum s–t cut of a pixel graph, by scipy's Dinic maximum flow: the solver of `graph_cut`'s cuts.

Costs in nats become integer capacities (× `SCALE`); a hard constraint is `HARD`. The pairwise terms join
8-neighbours (`neighbour_pairs`), weighted by their contrast (`contrast_weights`), and the object is the side
of the cut the source reaches (`source_side`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

#: Integer capacities: nats × this; hard constraints as `HARD`.
SCALE = 64
HARD = 1 << 24


def neighbour_pairs(lab: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]], float]:
    """Each 8-neighbour pair of a Lab image once (first, second flat index, ‖ΔLab‖², distance), and β.

    β = 1 / (2 · mean ‖ΔLab‖²), the contrast of the edges' exp(−β‖ΔLab‖²) (Rother et al. 2004).
    """
    height, width = lab.shape[:2]
    index = np.arange(height * width).reshape(height, width)
    pairs = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        first = (slice(0, height - dy), slice(max(0, -dx), width - max(0, dx)))
        second = (slice(dy, height), slice(max(0, dx), width + min(0, dx)))
        squared = ((lab[second] - lab[first]) ** 2).sum(axis=2).ravel()
        pairs.append((index[first].ravel(), index[second].ravel(), squared, float(np.hypot(dy, dx))))
    beta = 1.0 / (2 * max(float(np.mean(np.concatenate([p[2] for p in pairs]))), 1e-6))
    return pairs, beta


def contrast_weights(lab: np.ndarray, weight: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each 8-neighbour pair of a Lab image once (first, second flat index) and its edge's capacity (float).

    ``weight`` nats (× `SCALE`) times exp(−β‖ΔLab‖²) over the pair's distance (`neighbour_pairs`): an edge
    across a strong contrast is cheap to cut.
    """
    pairs, beta = neighbour_pairs(lab)
    return [(a, b, SCALE * weight * np.exp(-beta * squared) / distance) for a, b, squared, distance in pairs]


def source_side(
    count: int,
    edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    to_object: np.ndarray,
    to_background: np.ndarray,
) -> np.ndarray:
    """The source (object) side of the minimum s–t cut of ``count`` nodes (bool, flat).

    ``edges``: (from, to, capacity) between nodes; ``to_object`` the capacity from the source to each node
    (what labelling it background costs), ``to_background`` to the sink; integer-valued, capped at `HARD`.
    """
    source, sink = count, count + 1
    nodes = np.arange(count)
    sources = np.concatenate([e[0] for e in edges] + [np.full(count, source), nodes])
    targets = np.concatenate([e[1] for e in edges] + [nodes, np.full(count, sink)])
    capacities = np.minimum(
        np.concatenate([e[2] for e in edges] + [to_object, to_background]).astype(np.int64), HARD
    )
    keep = capacities > 0
    graph = sparse.csr_matrix(
        (capacities[keep].astype(np.int32), (sources[keep], targets[keep])), shape=(count + 2, count + 2)
    )
    graph.data = np.minimum(graph.data, HARD).astype(np.int32)
    flow = maximum_flow(graph, source, sink, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data = (residual.data > 0).astype(np.int8)
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, source, directed=True, return_predecessors=False)
    side = np.zeros(count + 2, bool)
    side[reached] = True
    result: np.ndarray = side[:count]
    return result
