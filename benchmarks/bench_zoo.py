"""Zoo students at full width on the CPU: parameters, GFLOPs and ms per frame, and streaming cost.

For every registered semantic student (``list_models(task="semantic")``; STM takes object masks):
parameters and GFLOPs of one ``forward`` on a clip of ``num_frames`` frames of 512×1024
(``torch.utils.flop_counter`` on the meta device: exact counts from shapes, no compute; a
multiply-add counts 2), then wall time: one warm-up forward and ``--repeats`` timed ones (median).
For the video students (``model_config(name).video``: TMANet, TDNet)
``step()`` is counted and timed too, in steady state (memory / FIFO filled first, which is also
its warm-up), so a streamed frame's cost stands next to the clip forward's in the same run.
Random weights, eval mode, inference mode.

    .venv/bin/python benchmarks/bench_zoo.py [--size 512 1024] [--repeats 1] [--models NAME …] [--no-time]
        [--threads N]

On a CPU shared with other jobs, ``--threads 1`` avoids OpenMP threads spinning against each
other (on the loaded 2-core box one thread ran a forward 3–4× faster than two).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from provenance import provenance_line  # benchmarks/, the script's folder
from torch.utils.flop_counter import FlopCounterMode

from frugalseg.zoo import Student, get_model, list_models, model_config

NUM_CLASSES = 19


def gflops(fn: Callable[[], object]) -> float:
    """GFLOPs of one call of ``fn`` (run on meta tensors: the counter needs shapes only)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def build(name: str, device: str) -> Student:
    torch.manual_seed(0)
    with torch.device(device):
        return get_model(name, num_classes=NUM_CLASSES).eval()


@torch.inference_mode()
def count(name: str, h: int, w: int) -> tuple[int, float, float, float | None]:
    """(frames per clip, M params, GFLOPs of the clip forward, GFLOPs of a steady-state step or None)."""
    model = build(name, "meta")
    t = model.num_frames
    params = sum(p.numel() for p in model.parameters()) / 1e6
    clip_gflops = gflops(lambda: model(torch.empty(1, t, 3, h, w, device="meta")))
    if not model_config(name).video:
        return t, params, clip_gflops, None
    model.reset()
    for _ in range(t - 1):
        model.step(torch.empty(1, 3, h, w, device="meta"))
    return t, params, clip_gflops, gflops(lambda: model.step(torch.empty(1, 3, h, w, device="meta")))


@torch.inference_mode()
def timed(name: str, h: int, w: int, repeats: int) -> tuple[float, float | None]:
    """(ms of a clip forward, ms of a steady-state step or None), each after a warm-up."""
    model = build(name, "cpu")
    t = model.num_frames
    clip = torch.randn(1, t, 3, h, w)
    model(clip)
    clip_ms = median_ms(lambda: model(clip), repeats)
    if not model_config(name).video:
        return clip_ms, None
    video = iter(torch.randn(t - 1 + repeats, 1, 3, h, w))
    model.reset()
    for _ in range(t - 1):
        model.step(next(video))
    return clip_ms, median_ms(lambda: model.step(next(video)), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=1, help="timed calls after the warm-up")
    parser.add_argument("--models", nargs="*", default=None, help="default: every semantic student")
    parser.add_argument("--no-time", action="store_true", help="parameters and GFLOPs only (seconds)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = args.models or list_models(task="semantic")
    h, w = args.size
    timing = "" if args.no_time else f", ms: median of {args.repeats} timed call(s) after a warm-up"
    print(f"frames {h}×{w}, {NUM_CLASSES} classes, CPU, torch threads {torch.get_num_threads()}{timing}")
    print()
    print("| model | frames/clip | params (M) | GFLOPs/clip | ms per output frame (clip forward) |")
    print("|---|---|---|---|---|")
    streaming = []
    for name in names:
        t, params, clip_gflops, step_gflops = count(name, h, w)
        clip_ms, step_ms = (None, None) if args.no_time else timed(name, h, w, args.repeats)
        shown = "–" if clip_ms is None else f"{clip_ms:.0f}"
        print(f"| {name} | {t} | {params:.1f} | {clip_gflops:.1f} | {shown} |", flush=True)
        if step_gflops is not None:
            streaming.append((name, t, clip_gflops, step_gflops, clip_ms, step_ms))
    if streaming:
        print()
        print(
            "| model | frames/clip | GFLOPs clip forward | GFLOPs step | ms clip forward | ms step "
            "| step / clip time |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, t, clip_gflops, step_gflops, clip_ms, step_ms in streaming:
            times = (
                "– | – | –" if clip_ms is None else f"{clip_ms:.0f} | {step_ms:.0f} | {step_ms / clip_ms:.2f}"
            )
            print(f"| {name} | {t} | {clip_gflops:.1f} | {step_gflops:.1f} | {times} |")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
