"""The cut's geodesic search from a mask's edge against the search from its every pixel, side by side.

`graph_cut.geodesic` starts scikit-image's search (`MCP_Geometric`) from the seeds' edge alone, since every
path out of the seeds leaves through it; the search from every seed pays for each start. A box's click and a
correction search from their prior mask, tens of thousands of working pixels. On each image (its mask at
the working scale, as a prior, with one click) both searches run in turn in one process, so the seconds
compare on the same core, and must give the same distances and parents. Then the answers a user waits for:
a box + ``--clicks`` clicks of the field's simulator, once with each search (each run with its own model),
their answers compared and timed. Printed: milliseconds per search and seconds per answer (mean, 90th
percentile, share over the tools' 0.3 s).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_geodesic.py \\
        --images ../shared/data/interactive_dev/images --masks ../shared/data/interactive_dev/masks --every 4
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from bench_interactive import ANSWER_BUDGET, BOX_PAD, paired  # benchmarks/ is the script's own folder
from provenance import provenance_line
from skimage.graph import MCP_Geometric

from frugalseg.active.objects.simulation.annotation_types import padded_box
from frugalseg.active.objects.simulation.simulated_annotator import corrective_click
from frugalseg.active.objects.tools import graph_cut
from frugalseg.active.objects.tools.click_models import StarCutClicks

Search = Callable[[graph_cut.ImageFeatures, np.ndarray], tuple[np.ndarray, np.ndarray]]


def from_every_seed(features: graph_cut.ImageFeatures, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The geodesic search started from every seed: `graph_cut.geodesic`'s answer, the slow way."""
    mcp = MCP_Geometric(features.cost, fully_connected=True)
    distance, trace = mcp.find_costs(np.argwhere(seeds))
    return np.asarray(distance), graph_cut.parents(trace, np.asarray(mcp.offsets))


def timed_answers(
    search: Search, image: np.ndarray, truth: np.ndarray, ignored: np.ndarray, clicks: int
) -> tuple[list[np.ndarray], list[float]]:
    """A box + ``clicks`` simulated clicks, the cut's geodesic ``search``: the answers and their seconds."""
    graph_cut.geodesic = search
    model, box, made = StarCutClicks(), padded_box(truth, BOX_PAD), []
    answers, seconds = [], []
    found = model.box(image, box)
    for _ in range(clicks):
        made.append(corrective_click(found, truth, ignore=ignored))
        began = time.perf_counter()
        found = model.box(image, box, made)
        seconds.append(time.perf_counter() - began)
        answers.append(found)
    return answers, seconds


def summary(seconds: list[float]) -> str:
    """Mean, 90th percentile and the share over `ANSWER_BUDGET` of ``seconds``."""
    values = np.asarray(seconds)
    over = 100 * float(np.mean(values > ANSWER_BUDGET))
    return f"{values.mean():.3f} s (90th percentile {np.quantile(values, 0.9):.3f}; {over:.1f}% over)"


def main() -> None:
    """Time both searches and the answers built on each over the images the arguments name."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of images")
    parser.add_argument("--masks", type=Path, required=True, help="folder of 0/255 masks named as the images")
    parser.add_argument("--every", type=int, default=1, help="every Nth image (sorted by name)")
    parser.add_argument("--clicks", type=int, default=5, help="clicks after each box")
    args = parser.parse_args()
    edge_search = graph_cut.geodesic
    searches: dict[str, Search] = {"every seed": from_every_seed, "the seeds' edge": edge_search}
    search_ms: dict[str, list[float]] = {name: [] for name in searches}
    answer_s: dict[str, list[float]] = {name: [] for name in searches}
    seeds_count, differing, answers_count = [], 0, 0
    for _, image, truth, ignored, _ in list(paired(args.images, args.masks))[:: args.every]:
        features = graph_cut.image_features(image)
        size = features.shape[::-1]
        seeds = cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        seeds[features.shape[0] // 2, features.shape[1] // 2] = True  # a click, as a correction's seeds
        seeds_count.append(int(seeds.sum()))
        found = {}
        for name, search in searches.items():
            began = time.perf_counter()
            found[name] = search(features, seeds)
            search_ms[name].append(1000 * (time.perf_counter() - began))
        (distance, parent), (edge_distance, edge_parent) = found.values()
        if not (np.array_equal(distance, edge_distance) and np.array_equal(parent, edge_parent)):
            raise SystemExit("the searches differ: the edge search is wrong")
        answers = {}
        for name, search in searches.items():
            answers[name], seconds = timed_answers(search, image, truth, ignored, args.clicks)
            answer_s[name] += seconds
        differing += sum(not np.array_equal(a, b) for a, b in zip(*answers.values(), strict=True))
        answers_count += args.clicks
    graph_cut.geodesic = edge_search
    print(f"{len(seeds_count)} images; seeds (working px) median {int(np.median(seeds_count))}")
    for name in searches:
        values = np.asarray(search_ms[name])
        print(
            f"from {name}: search {values.mean():.1f} ms (90th percentile {np.quantile(values, 0.9):.1f}); "
            f"a box's click answered in {summary(answer_s[name])}"
        )
    print(f"answers that differ: {differing} of {answers_count}")
    print(provenance_line())


if __name__ == "__main__":
    main()
