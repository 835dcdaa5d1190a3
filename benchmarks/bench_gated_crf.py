"""Gated CRF loss, forward + backward: offset by offset (frugalseg) vs the full-window unfold.

Both run on the same softmax prediction (default 1×19×256×512, i.e. Cityscapes at stride 4) and
RGB image (2× the prediction's size), radius 5, σ_xy = 6, σ_rgb = 0.1. Each measurement runs in
a fresh subprocess so that peak memory is that process's own: the peak resident set size
(``ru_maxrss``) during the first forward + backward minus the resident size just before it, with
the inputs already allocated. (``tracemalloc`` cannot see tensor memory: torch allocates outside
Python's allocator.) Times are the median of the steps after that first one; the subprocesses
of the two formulations alternate, so load changes on a shared machine hit both. Values and
gradients are checked equal before anything is reported.

The two formulations are timed under three CPU thread settings: 1 thread, the default threads,
and the default threads with ``OMP_WAIT_POLICY=PASSIVE``. The offset loop runs some 600 small
parallel operations per step where the unfold runs a few large ones; on a machine whose cores
are busy with other work, OpenMP's default busy-waiting at the end of every parallel region
then dominates, which the passive policy removes.

    .venv/bin/python benchmarks/bench_gated_crf.py [--size 256 512] [--rounds 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from provenance import provenance_line  # benchmarks/, the script's folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from losses.test_gated_crf import full_window_gated_crf  # noqa: E402  (the tested reference formulation)

from frugalseg.losses import gated_crf_loss  # noqa: E402

SIGMA_XY, SIGMA_RGB, RADIUS = 6.0, 0.1, 5
VARIANTS = ("full-window (unfold)", "offset by offset")


def _current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux)."""
    pages = int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1])
    return pages * resource.getpagesize()


def _child(variant: str, batch: int, classes: int, height: int, width: int, repeats: int, out: Path) -> None:
    """Measure one formulation in this (fresh) process and write its figures and result to ``out``."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, classes, height, width, generator=generator).mul_(2).requires_grad_(True)
    image = torch.rand(batch, 3, 2 * height, 2 * width, generator=generator)

    def step() -> torch.Tensor:
        logits.grad = None
        probs = logits.softmax(1)
        if variant == VARIANTS[0]:
            loss = full_window_gated_crf(probs, image, SIGMA_XY, SIGMA_RGB, RADIUS)
        else:
            loss = gated_crf_loss(probs, image, sigma_xy=SIGMA_XY, sigma_rgb=SIGMA_RGB, radius=RADIUS)
        loss.backward()
        return loss.detach()

    before = _current_rss()
    start = time.perf_counter()
    loss = step()
    first = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    torch.save({"loss": loss, "grad": logits.grad}, out.with_suffix(".pt"))
    figures = {"peak": peak, "first": first, "times": times, "threads": torch.get_num_threads()}
    out.write_text(json.dumps(figures), encoding="utf-8")


def _measure(args: argparse.Namespace, tmp: Path, name: str, threads: int | None, passive: bool) -> dict:
    """Run the two formulations alternately in subprocesses; their figures and last results."""
    height, width = args.size
    env = dict(os.environ)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for round_index in range(args.rounds):
        for index, variant in enumerate(VARIANTS):
            out = tmp / f"{name}_{index}_{round_index}.json"
            command = [sys.executable, __file__, "--child", variant, "--out", str(out)]
            command += ["--batch", str(args.batch), "--classes", str(args.classes)]
            command += ["--size", str(height), str(width), "--repeats", str(args.repeats)]
            if threads is not None:
                command += ["--threads", str(threads)]
            subprocess.run(command, check=True, env=env)
            results[variant].append(
                json.loads(out.read_text(encoding="utf-8")) | {"result": out.with_suffix(".pt")}
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--rounds", type=int, default=1, help="subprocesses per formulation and setting")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per subprocess")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = args.size
    if args.child:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        _child(args.child, args.batch, args.classes, height, width, args.repeats, args.out)
        return
    prediction_bytes = args.batch * args.classes * height * width * 4
    default_threads = torch.get_num_threads()
    settings = {
        "1 thread": (1, False),
        f"{default_threads} threads": (None, False),
        f"{default_threads} threads, OMP_WAIT_POLICY=PASSIVE": (None, True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        measured = {
            name: _measure(args, Path(tmp), f"s{i}", threads, passive)
            for i, (name, (threads, passive)) in enumerate(settings.items())
        }
        first = next(iter(measured.values()))
        reference = torch.load(first[VARIANTS[0]][0]["result"])
        ours = torch.load(first[VARIANTS[1]][0]["result"])
    value_error = abs(float(ours["loss"] - reference["loss"])) / abs(float(reference["loss"]))
    grad_error = float((ours["grad"] - reference["grad"]).norm() / reference["grad"].norm())
    if value_error > 1e-5 or grad_error > 1e-5:
        raise SystemExit(f"formulations disagree: value {value_error:.2e}, gradient {grad_error:.2e}")
    print(
        f"prediction {args.batch}x{args.classes}x{height}x{width} ({prediction_bytes / 2**20:.1f} MiB), "
        f"image {2 * height}x{2 * width}, radius {RADIUS}; "
        f"relative error: value {value_error:.1e}, gradient {grad_error:.1e}"
    )
    for name, results in measured.items():
        print(f"-- {name}")
        summary = {}
        for variant in VARIANTS:
            peak = max(run["peak"] for run in results[variant])
            step = statistics.median(t for run in results[variant] for t in run["times"])
            summary[variant] = (peak, step)
            print(
                f"{variant:<22} peak +{peak / 2**20:8.1f} MiB ({peak / prediction_bytes:6.1f}x prediction)   "
                f"forward+backward {step * 1000:8.1f} ms"
            )
        (ref_peak, ref_step), (our_peak, our_step) = summary[VARIANTS[0]], summary[VARIANTS[1]]
        print(
            f"offset by offset: {ref_peak / our_peak:.1f}x less memory, {ref_step / our_step:.2f}x the speed"
        )


if __name__ == "__main__":
    main()
    if "--child" not in sys.argv:  # a measuring child process prints nothing more
        print(provenance_line(), flush=True)
