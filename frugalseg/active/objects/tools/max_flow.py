"""The minimum s–t cut of a pixel graph: the solver of `graph_cut`'s cuts.

Costs in nats become integer capacities (× `SCALE`); a hard constraint is `HARD`. The pairwise terms join
8-neighbours (`neighbour_pairs`), weighted by their contrast (`contrast_weights`), and the object is the side
of the cut the source reaches (`source_side`). The maximum flow is Boykov & Kolmogorov's (2004): two search
trees grown from the terminals, an augmenting path wherever they meet, and the trees repaired by adopting
their orphans, which reuses the trees from path to path where Dinic's algorithm searches the graph again for
each phase; a cut's colour rounds start from the flow and trees of the round before (`MinCuts`). On the cuts
of clicks and boxes on the DAVIS frames that is 3.3 times as fast as scipy's Dinic, 2.8 times from scratch
(`benchmarks/bench_max_flow.py`). numba compiles it once per installation (cached beside this file).
A cut whose answer is no longer wanted gives up between two augmenting paths (`stopped_by`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from numba import njit

#: Integer capacities: nats × this; hard constraints as `HARD`.
SCALE = 64
HARD = 1 << 24
#: The most nodes, and arcs (two an edge), of a graph: the solver holds them as int32.
MOST_NODES = np.iinfo(np.int32).max


class CutStopped(Exception):
    """A cut given up because its flag was set while it ran (`stopped_by`)."""


class StopFlag:
    """Stops the cuts run under it (`stopped_by`) once set, from any thread.

    The flags made under it (`below`) are set with it: the work a cut's caller hands to other threads stops
    with the caller's.
    """

    def __init__(self) -> None:
        self.array = np.zeros(1, np.bool_)  # what the solver reads between two augmenting paths
        self._below: list[StopFlag] = []
        self._lock = threading.Lock()

    def set(self) -> None:
        """Stop the cuts run under this flag and under the flags made below it."""
        with self._lock:
            self.array[0] = True
            below, self._below = self._below, []
        for flag in below:
            flag.set()

    def below(self) -> StopFlag:
        """A new flag, set when this one is (at once if it already is)."""
        flag = StopFlag()
        with self._lock:
            if self.array[0]:
                flag.array[0] = True
            else:
                self._below.append(flag)
        return flag


_stopping = threading.local()  # this thread's flag (`stopped_by`)
_NEVER = np.zeros(1, np.bool_)  # what a cut outside `stopped_by` reads: never set


def stop_flag() -> StopFlag:
    """A new flag for work this thread hands to others: set with this thread's own (`stopped_by`), if any."""
    outer: StopFlag | None = getattr(_stopping, "flag", None)
    return StopFlag() if outer is None else outer.below()


@contextmanager
def stopped_by(flag: StopFlag) -> Iterator[None]:
    """Within the block, this thread's cuts raise `CutStopped` once ``flag`` is set (by any thread).

    The solver reads it between two augmenting paths, so a cut gives up within one path of the flag being
    set: the answers a first click's crops race for and no longer need, a preview a later one replaced.
    """
    outer = getattr(_stopping, "flag", None)
    _stopping.flag = flag
    try:
        yield
    finally:
        _stopping.flag = outer


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
    edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    to_object: np.ndarray,
    to_background: np.ndarray,
) -> np.ndarray:
    """The source (object) side of the minimum s–t cut of ``count`` nodes (bool, flat).

    ``edges``: (first, second, capacity from first to second, from second to first) between nodes;
    ``to_object`` the capacity from the source to each node (what labelling it background costs),
    ``to_background`` to the sink; integer-valued, at least 0, capped at `HARD`. The side is the nodes the
    source reaches in the residual graph of a maximum flow: the smallest source side of a minimum cut.
    """
    return MinCuts(count, edges).source_side(to_object, to_background)


class MinCuts:
    """Minimum cuts of one graph whose terminal capacities change from cut to cut (a cut's colour rounds).

    Each cut starts from the flow and the search trees the one before left, its terminal capacities
    reparametrised (Kohli & Torr 2005: what changed is added to each node's residual terminal capacity)
    and the trees repaired at the nodes whose capacities changed; the first cut starts from none.
    """

    def __init__(self, count: int, edges: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
        """``edges`` as `source_side`'s."""
        if edges:
            first, second, forward, backward = (np.concatenate([e[i] for e in edges]) for i in range(4))
        else:
            first = second = forward = backward = np.zeros(0, np.int64)
        # the compiled code trusts them, and holds nodes, arcs and capacities (capped below) as int32
        if first.size and not 0 <= min(first.min(), second.min()) <= max(first.max(), second.max()) < count:
            raise ValueError(f"a graph of {count} nodes: its edges name other nodes")
        if max(count, 2 * first.size) > MOST_NODES:
            raise ValueError(
                f"a graph of {count} nodes and {first.size} edges: over {MOST_NODES} nodes or arcs"
            )
        self.count = count
        self.arcs = _arcs(
            count,
            first.astype(np.int64, copy=False),
            second.astype(np.int64, copy=False),
            _capped(forward),
            _capped(backward),
        )
        # the terminal capacities cut last (to the source − to the sink), and what the flow left of them
        self.given = np.zeros(count, np.int64)
        self.terminal = np.zeros(count, np.int64)
        self.tree = np.zeros(count, np.int8)
        self.parent = np.full(count, _NO_PARENT, np.int32)
        self.stamp = np.zeros(count, np.int64)
        self.distance = np.zeros(count, np.int32)
        self.time = 0

    def source_side(self, to_object: np.ndarray, to_background: np.ndarray) -> np.ndarray:
        """The source side of the minimum cut with these terminal capacities (`source_side`'s)."""
        if len(to_object) != self.count or len(to_background) != self.count:
            raise ValueError(f"a graph of {self.count} nodes: terminal capacities for {len(to_object)} nodes")
        wanted = _capped(to_object) - _capped(to_background)
        flag: StopFlag | None = getattr(_stopping, "flag", None)
        stop = _NEVER if flag is None else flag.array
        if stop[0]:
            raise CutStopped("the cut was stopped before it began")
        changed = np.flatnonzero(wanted != self.given)
        self.terminal += wanted - self.given
        self.given = wanted
        state = self.terminal, self.tree, self.parent, self.stamp, self.distance
        side, self.time = _boykov_kolmogorov(*self.arcs, *state, changed, self.time, stop)
        if stop[0]:  # the flow may be unfinished: this graph's state is not to be cut again
            raise CutStopped("the cut was stopped while it ran")
        result: np.ndarray = side
        return result


def prepare() -> None:
    """Compile the solver now, or load it from numba's cache: about 2 s once per installation, 0.1 s after.

    The annotation servers call it as they start, so a person's first click does not wait for the compiler.
    """
    source_side(2, [], np.array([1, 0]), np.array([0, 1]))


def _capped(capacity: np.ndarray) -> np.ndarray:
    """Capacities as int64, capped at `HARD` (rounded ones may come as floats)."""
    capacity = np.asarray(capacity)
    if capacity.dtype.kind != "i":
        capacity = np.minimum(capacity.astype(np.float64), HARD)
    result: np.ndarray = np.minimum(capacity, HARD).astype(np.int64, copy=False)
    return result


@njit(cache=True, nogil=True)
def _arcs(
    count: int, first: np.ndarray, second: np.ndarray, forward: np.ndarray, backward: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each node's arcs (CSR: ``start``, ``head``, ``residual`` capacity) and each arc's ``sister``.

    Edge i gives the arc first→second with ``forward[i]`` and its sister second→first with ``backward[i]``.
    """
    start = np.zeros(count + 1, np.int32)
    for i in range(first.size):
        start[first[i] + 1] += 1
        start[second[i] + 1] += 1
    for node in range(count):
        start[node + 1] += start[node]
    fill = start[:-1].copy()
    head = np.empty(2 * first.size, np.int32)
    residual = np.empty(2 * first.size, np.int32)  # at most twice `HARD`
    sister = np.empty(2 * first.size, np.int32)
    for i in range(first.size):
        there = fill[first[i]]
        fill[first[i]] += 1
        back = fill[second[i]]  # after the increment: a loop's two arcs take two slots
        fill[second[i]] += 1
        head[there], residual[there], sister[there] = second[i], forward[i], back
        head[back], residual[back], sister[back] = first[i], backward[i], there
    return start, head, residual, sister


_FREE, _SOURCE_TREE, _SINK_TREE = 0, 1, 2
_NO_PARENT, _TERMINAL = -1, -2


@njit(cache=True, nogil=True)
def _boykov_kolmogorov(
    start: np.ndarray,
    head: np.ndarray,
    residual: np.ndarray,
    sister: np.ndarray,
    terminal: np.ndarray,
    tree: np.ndarray,
    parent: np.ndarray,
    stamp: np.ndarray,
    distance: np.ndarray,
    changed: np.ndarray,
    time: int,
    stop: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The nodes on the source's side after a maximum flow (bool), and the last stamp; the state is updated.

    ``terminal[v]`` > 0 is the residual capacity from the source to v, < 0 that from v to the sink. Each node
    of a tree (``tree``: free, the source's or the sink's) keeps the arc to its parent (`_TERMINAL` at a
    root); a node's stamp and distance to its root (valid at that stamp) let an orphan choose a parent near
    its terminal without walking far. The nodes ``changed`` (their terminal capacity) become roots of the
    tree their capacity points to, or orphans where it is now 0; a node that changes trees orphans its
    children. A fresh state (every node free) with every node changed is a cut from scratch. Once ``stop[0]``
    is set (by another thread) it returns before the next augmenting path, the flow unfinished.
    """
    count = terminal.size
    active = np.zeros(count, np.bool_)
    queue = np.empty(count + 1, np.int32)  # a ring of active nodes: each at most once
    first_in, next_free = 0, 0
    orphans = np.empty(count, np.int32)
    orphan_count = 0
    tail = np.empty(head.size, np.int32)
    for node in range(count):
        tail[start[node] : start[node + 1]] = node
    time += 1  # the stamps of the cut before are no longer trusted
    for node in changed:  # the trees repaired where the terminal capacities changed
        own = _FREE if terminal[node] == 0 else _SOURCE_TREE if terminal[node] > 0 else _SINK_TREE
        moves = tree[node] != _FREE and own != _FREE and own != tree[node]
        for arc in range(start[node], start[node + 1]):
            other = head[arc]
            if moves and tree[other] == tree[node] and parent[other] >= 0 and head[parent[other]] == node:
                parent[other] = _NO_PARENT  # it changes trees: its children lose their parent
                orphans[orphan_count] = other
                orphan_count += 1
        if own == _FREE:  # a root loses its terminal: an orphan; a node held by its parent stays
            if parent[node] == _TERMINAL:
                parent[node] = _NO_PARENT
                orphans[orphan_count] = node
                orphan_count += 1
            continue
        tree[node], parent[node], stamp[node], distance[node] = own, _TERMINAL, time, 1
        if not active[node]:
            active[node] = True
            queue[next_free] = node
            next_free = (next_free + 1) % (count + 1)
    for node in range(count):  # every tree node scans its arcs again: what it meets may have changed
        if tree[node] != _FREE and not active[node]:
            active[node] = True
            queue[next_free] = node
            next_free = (next_free + 1) % (count + 1)
    while not stop[0]:
        # adoption: each orphan takes the neighbour nearest its terminal as parent, or leaves its tree
        while orphan_count > 0:
            orphan_count -= 1
            node = orphans[orphan_count]
            if parent[node] != _NO_PARENT:  # a root again since it was orphaned
                continue
            own = tree[node]
            best, best_distance = _NO_PARENT, np.int64(1) << 60
            for arc in range(start[node], start[node + 1]):
                other = head[arc]
                inward = sister[arc] if own == _SOURCE_TREE else arc  # the arc the tree would hold it by
                if tree[other] != own or residual[inward] <= 0:
                    continue
                steps, walker, rooted = 0, other, False
                while True:
                    if stamp[walker] == time:
                        steps += distance[walker]
                        rooted = True
                        break
                    steps += 1
                    if parent[walker] == _TERMINAL:
                        stamp[walker], distance[walker] = time, 1
                        rooted = True
                        break
                    if parent[walker] == _NO_PARENT:
                        break
                    walker = head[parent[walker]]
                if not rooted:
                    continue
                if steps < best_distance:
                    best, best_distance = arc, steps
                walker, left = other, steps
                while stamp[walker] != time:
                    stamp[walker], distance[walker] = time, left
                    left -= 1
                    walker = head[parent[walker]]
            if best != _NO_PARENT:
                parent[node], stamp[node], distance[node] = best, time, best_distance + 1
                continue
            for arc in range(start[node], start[node + 1]):
                other = head[arc]
                if tree[other] != own:
                    continue
                inward = sister[arc] if own == _SOURCE_TREE else arc
                if residual[inward] > 0 and not active[other]:
                    active[other] = True
                    queue[next_free] = other
                    next_free = (next_free + 1) % (count + 1)
                if parent[other] >= 0 and head[parent[other]] == node:
                    parent[other] = _NO_PARENT
                    orphans[orphan_count] = other
                    orphan_count += 1
            tree[node] = _FREE
        joint = -1  # growth: an arc from the source's tree to the sink's
        while first_in != next_free:
            node = queue[first_in]
            if tree[node] == _FREE:
                active[node] = False
                first_in = (first_in + 1) % (count + 1)
                continue
            own = tree[node]
            for arc in range(start[node], start[node + 1]):
                outward = arc if own == _SOURCE_TREE else sister[arc]  # the arc the tree would grow along
                if residual[outward] <= 0:
                    continue
                other = head[arc]
                if tree[other] == _FREE:
                    tree[other], parent[other] = own, sister[arc]
                    stamp[other], distance[other] = stamp[node], distance[node] + 1
                    if not active[other]:
                        active[other] = True
                        queue[next_free] = other
                        next_free = (next_free + 1) % (count + 1)
                elif tree[other] != own:
                    joint = outward
                    break
                elif stamp[other] <= stamp[node] and distance[other] > distance[node]:
                    parent[other] = sister[arc]
                    stamp[other], distance[other] = stamp[node], distance[node] + 1
            if joint >= 0:
                break
            active[node] = False
            first_in = (first_in + 1) % (count + 1)
        if joint < 0:
            break
        time += 1
        # augmentation along the source's root → tail[joint] → head[joint] → the sink's root
        bottleneck = residual[joint]
        for end, towards_root in ((tail[joint], False), (head[joint], True)):
            node = end
            while parent[node] != _TERMINAL:
                along = parent[node] if towards_root else sister[parent[node]]
                bottleneck = min(bottleneck, residual[along])
                node = head[parent[node]]
            bottleneck = min(bottleneck, -terminal[node] if towards_root else terminal[node])
        residual[joint] -= bottleneck
        residual[sister[joint]] += bottleneck
        for end, towards_root in ((tail[joint], False), (head[joint], True)):
            node = end
            while parent[node] != _TERMINAL:
                along = parent[node] if towards_root else sister[parent[node]]
                residual[along] -= bottleneck
                residual[sister[along]] += bottleneck
                above = head[parent[node]]
                if residual[along] == 0:
                    parent[node] = _NO_PARENT
                    orphans[orphan_count] = node
                    orphan_count += 1
                node = above
            terminal[node] += bottleneck if towards_root else -bottleneck
            if terminal[node] == 0:
                parent[node] = _NO_PARENT
                orphans[orphan_count] = node
                orphan_count += 1
    return tree == _SOURCE_TREE, time
