"""Attention reads of TMANet, STM and TDNet: the materialised softmax (before) against SDPA (after).

Before, each read built the whole query×memory weight matrix (``torch.bmm`` + ``softmax``); now
each runs through ``torch.nn.functional.scaled_dot_product_attention`` (see ``_attention`` in
``frugalseg/zoo/tmanet.py``). The materialised reads are kept here only, written as they were.
Workloads, batch 1, random inputs:

- ``tmanet read``: TMANet-R50's memory read at its official 769×769 crop: 97×97 query pixels
  against 2 memory frames of 97×97, keys 64, values 256, unscaled (177 M weights, 675 MiB fp32);
  forward, and forward + backward (training).
- ``tmanet read, SDPA unpadded``: the same read through SDPA without the padding of the keys to
  the values' width that ``_attention`` does on the CPU: PyTorch's fused CPU kernel refuses
  unequal widths and falls back to its math path, which materialises the weights.
- ``stm read``: STM-R50's read on a DAVIS 480p frame (padded 480×864, 1/16: 30×54) with 3 objects
  and 11 memory frames (frame 0, every 5th, the previous: frame ≈ 51 of a video), keys 128,
  values 512, scaled by 1/sqrt(128).
- ``tdnet read``: one TD2-PSP50 propagation step (eval) at its official 769×1537 input: 97×193
  query pixels against a past frame subsampled by 3 (33×65), keys 64, values 512, with the 1×1
  output conv.
- ``tmanet_r50 forward``: one whole clip forward of ``tmanet_r50`` (19 classes, random weights,
  eval, no grad) on 1×3×3×769×769.

Each (workload, variant) runs in a fresh subprocess, the variants alternating. Peak memory is the
peak resident set size (``ru_maxrss``) during the first call minus the resident size just before
it, with model and inputs already allocated (``tracemalloc`` cannot see torch's allocations). Times
are the median of ``--repeats`` calls after that first one. The outputs (and, for training, the
gradients) of the two variants are checked equal before anything is printed.

    .venv/bin/python benchmarks/bench_attention.py [--threads 1] [--repeats 2] [--skip-forward]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from provenance import provenance_line  # benchmarks/, the script's folder
from torch import Tensor

from frugalseg.zoo import get_model, stm, tdnet, tmanet

VARIANTS = ("materialised", "SDPA")
WORKLOADS = (
    "tmanet read",
    "tmanet read, fwd+bwd",
    "tmanet read, SDPA unpadded",
    "stm read",
    "tdnet read",
    "tmanet_r50 forward",
)


def materialised_tmanet_read(query_key: Tensor, memory_key: Tensor, memory_value: Tensor) -> Tensor:
    """TMANet's read before SDPA: the whole HW×(M·H'·W') softmax, unscaled."""
    b, ck, h, w = query_key.shape
    cv = memory_value.shape[2]
    q = query_key.flatten(2).transpose(1, 2)  # B×HW×Ck
    k = memory_key.transpose(1, 2).flatten(2)  # B×Ck×(M·H'·W')
    v = memory_value.transpose(1, 2).flatten(2)  # B×Cv×(M·H'·W')
    attention = torch.softmax(torch.bmm(q, k), dim=-1)  # B×HW×(M·H'·W')
    return torch.bmm(attention, v.transpose(1, 2)).transpose(1, 2).reshape(b, cv, h, w)


def materialised_stm_read(memory_key: Tensor, memory_value: Tensor, query_key: Tensor) -> Tensor:
    """STM's read before SDPA: the whole M×hw affinity, softmaxed over the memory pixels."""
    n, ck, h, w = query_key.shape
    affinity = torch.bmm(memory_key.transpose(1, 2), query_key.flatten(2)) / math.sqrt(ck)  # N×M×hw
    weights = torch.softmax(affinity, dim=1)
    return torch.bmm(memory_value, weights).view(n, memory_value.shape[1], h, w)


def materialised_propagation(step: tdnet.Propagation, key: Tensor, value: Tensor, query: Tensor) -> Tensor:
    """TDNet's ``Propagation.forward`` before SDPA: the whole HW×hw attention."""
    b, _, h, w = query.shape
    scores = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2)) * step.scale  # B×HW×hw
    attention = F.dropout(torch.softmax(scores, dim=-1), step.attention_dropout, step.training)
    read = torch.bmm(value.flatten(2), attention.transpose(1, 2)).reshape(b, -1, h, w)
    return step.dropout(step.proj(read))


def unpadded_tmanet_read(query_key: Tensor, memory_key: Tensor, memory_value: Tensor) -> Tensor:
    """TMANet's read through SDPA as is: keys 64 wide, values 256 (what the CPU padding avoids)."""
    b, ck, h, w = query_key.shape
    cv = memory_value.shape[2]
    q = query_key.flatten(2).transpose(1, 2).contiguous()
    k = memory_key.permute(0, 1, 3, 4, 2).reshape(b, -1, ck)
    v = memory_value.permute(0, 1, 3, 4, 2).reshape(b, -1, cv)
    return F.scaled_dot_product_attention(q, k, v, scale=1.0).transpose(1, 2).reshape(b, cv, h, w)


def _current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux)."""
    pages = int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1])
    return pages * resource.getpagesize()


def _setup(workload: str, old: bool) -> tuple[Callable[[], dict[str, Tensor]], int]:
    """The call to measure (returning what to compare) and the size in bytes of its fp32 weights."""
    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int, relu: bool = False, grad: bool = False) -> Tensor:
        x = torch.randn(*shape, generator=generator)
        return (x.relu() if relu else x).requires_grad_(grad)

    if workload.startswith("tmanet read"):
        train = workload.endswith("fwd+bwd")
        # Keys after ReLU as in TMANet (ConvModule), so the unscaled scores are peaked.
        inputs = (
            randn(1, 64, 97, 97, relu=True, grad=train),
            randn(1, 2, 64, 97, 97, relu=True, grad=train),
            randn(1, 2, 256, 97, 97, grad=train),
        )
        new = unpadded_tmanet_read if workload.endswith("unpadded") else tmanet.memory_read
        read = materialised_tmanet_read if old else new

        def call() -> dict[str, Tensor]:
            if not train:
                with torch.no_grad():
                    return {"out": read(*inputs)}
            for x in inputs:
                x.grad = None
            out = read(*inputs)
            out.square().mean().backward()
            return {"out": out.detach(), **{f"grad{i}": x.grad for i, x in enumerate(inputs)}}

        return call, 97 * 97 * 2 * 97 * 97 * 4
    if workload == "stm read":
        objects, memory = 3, 11 * 30 * 54
        inputs = (randn(objects, 128, memory), randn(objects, 512, memory), randn(objects, 128, 30, 54))
        read = materialised_stm_read if old else stm.memory_read

        def call() -> dict[str, Tensor]:
            with torch.no_grad():
                return {"out": read(*inputs)}

        return call, objects * memory * 30 * 54 * 4
    if workload == "tdnet read":
        torch.manual_seed(0)
        step = tdnet.Propagation(64, 512).eval()
        key, value, query = randn(1, 64, 33, 65), randn(1, 512, 33, 65), randn(1, 64, 97, 193)

        def call() -> dict[str, Tensor]:
            with torch.no_grad():
                if old:
                    return {"out": materialised_propagation(step, key, value, query)}
                return {"out": step(key, value, query)}

        return call, 97 * 193 * 33 * 65 * 4
    torch.manual_seed(0)
    model = get_model("tmanet_r50", num_classes=19).eval()
    frames = randn(1, 3, 3, 769, 769)
    if old:
        tmanet.memory_read = materialised_tmanet_read  # TMAHead.forward looks the name up per call

    def call() -> dict[str, Tensor]:
        with torch.no_grad():
            return {"out": model(frames)}

    return call, 97 * 97 * 2 * 97 * 97 * 4


def _child(workload: str, variant: str, repeats: int, out: Path) -> None:
    """Measure one variant of one workload in this (fresh) process; figures to ``out``."""
    call, weights_bytes = _setup(workload, old=variant == VARIANTS[0])
    before = _current_rss()
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    torch.save(result, out.with_suffix(".pt"))
    figures = {"peak": peak, "first": first, "times": times or [first], "weights": weights_bytes}
    out.write_text(json.dumps(figures | {"threads": torch.get_num_threads()}), encoding="utf-8")


def _max_difference(new: dict[str, Tensor], old: dict[str, Tensor]) -> float:
    """Largest max|new − old| / max|old| over the outputs; exits if one exceeds 1e-4.

    1e-4 rather than 1e-5: the gradients sum over 18 818 memory pixels in fp32, and at this size
    the materialised read's own error against fp64 is 2.5e-5 (SDPA's 6e-6), measured at 80×80.
    """
    worst = 0.0
    for name, reference in old.items():
        error = float((new[name] - reference).abs().max() / reference.abs().max())
        if error > 1e-4:
            raise SystemExit(f"SDPA and the materialised read disagree on {name}: relative error {error:.2e}")
        worst = max(worst, error)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each subprocess")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls after the first")
    parser.add_argument("--skip-forward", action="store_true", help="leave out the whole tmanet_r50 forward")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        _child(*args.child, args.repeats, args.out)
        return
    workloads = WORKLOADS[:-1] if args.skip_forward else WORKLOADS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, workload in enumerate(workloads):
            figures = {}
            for j, variant in enumerate(VARIANTS):
                out = Path(tmp) / f"{i}_{j}.json"
                command = [sys.executable, __file__, "--child", workload, variant, "--out", str(out)]
                command += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
                subprocess.run(command, check=True)
                figures[variant] = json.loads(out.read_text(encoding="utf-8")) | {
                    "result": torch.load(out.with_suffix(".pt"))
                }
            old, new = (figures[v] for v in VARIANTS)
            error = _max_difference(new["result"], old["result"])
            rows.append((workload, old, new, error))
    threads, repeats = args.threads, args.repeats
    print(f"CPU, torch {torch.__version__}, {threads} thread(s), median of {repeats} call(s) after the first")
    print()
    print(
        "| workload | weights matrix (MiB) | peak materialised (MiB) | peak SDPA (MiB) | memory ratio "
        "| ms materialised | ms SDPA | SDPA speed-up | max rel. difference |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for workload, old, new, error in rows:
        old_ms, new_ms = (statistics.median(f["times"]) * 1000 for f in (old, new))
        old_peak, new_peak = old["peak"] / 2**20, new["peak"] / 2**20
        print(
            f"| {workload} | {old['weights'] / 2**20:.0f} | {old_peak:.0f} | {new_peak:.0f} "
            f"| {old_peak / max(new_peak, 1):.1f}× | {old_ms:.0f} | {new_ms:.0f} | {old_ms / new_ms:.2f}× "
            f"| {error:.1e} |"
        )


if __name__ == "__main__":
    main()
    if "--child" not in sys.argv:  # a measuring child process prints nothing more
        print(provenance_line(), flush=True)
