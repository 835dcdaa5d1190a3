"""Cost of a training step with each loss of issue 5 switched on, against cross-entropy alone.

One step = forward + backward of a compact student (DeepLabV3+ MobileNetV2, random weights) on a
fixed batch of 2 clips at 128×256 with 19 classes, plus whatever the loss needs beyond the
student's target-frame forward: the Gated CRF at the decoder stride 4 (its default, as in the
reference) and, for comparison, at full resolution (stride 1), a second student forward on frame
t−1 (temporal consistency), a frozen DeepLabV3+ R18 teacher forward under ``no_grad`` (KD), or
student forwards on the neighbour frames, their warping and the teacher's target prediction
(MFD). Flows are given
(in training they come from the loader). The steps are timed round-robin, so load changes on a
shared machine hit all alike; the table gives the median and the ratio to CE alone, in process
CPU time (the work done, which other jobs on a shared machine barely move at 1 thread) and in
wall time. ``--device cuda`` runs the same steps on a GPU (wall time after a synchronise) and
``--precision bf16|16`` under autocast, as Lightning's ``bf16-mixed``/``16-mixed`` do; a step whose loss
is not finite is marked.

    .venv/bin/python benchmarks/bench_loss_step.py [--repeats 5] [--size 128 256] [--threads 1]
        [--device cpu|cuda] [--precision 32|bf16|16]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from provenance import provenance_line  # benchmarks/, the script's folder

from frugalseg.datamodules.transforms import Normalize
from frugalseg.flow import backward_warp, forward_backward_mask
from frugalseg.losses import get_loss, kd_loss, mfd_loss, temporal_consistency_loss
from frugalseg.zoo import get_model

CLASSES, BATCH, NEIGHBOURS = 19, 2, 2


AUTOCAST = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def make_steps(
    height: int, width: int, device: torch.device, precision: str = "32"
) -> dict[str, Callable[[], float]]:
    """One closure per configuration; each runs a full step on ``device`` and returns the loss value."""
    torch.manual_seed(0)
    student = get_model("deeplabv3plus_mbv2", num_classes=CLASSES).train().to(device)
    teacher = get_model("deeplabv3plus_r18", num_classes=CLASSES).eval().requires_grad_(False).to(device)
    clip = Normalize()(torch.randint(0, 256, (BATCH, 1 + NEIGHBOURS, 3, height, width), dtype=torch.uint8))
    target, neighbours = clip[:, -1:].to(device), clip[:, :-1].to(device)
    label = torch.randint(0, CLASSES, (BATCH, height, width))
    clicks = torch.full_like(label, 255)
    rows, cols = torch.randint(0, height, (BATCH, 20)), torch.randint(0, width, (BATCH, 20))
    for b in range(BATCH):
        clicks[b, rows[b], cols[b]] = label[b, rows[b], cols[b]]
    label, clicks = label.to(device), clicks.to(device)
    flow = torch.zeros(BATCH, 2, height, width, device=device)
    flow[:, 0] = -2.0  # every frame moved right by 2 px since the one before
    dtype = AUTOCAST[precision]
    ce, phuber = get_loss("ce"), get_loss("phuber_ce")
    partial, gated = get_loss("partial_ce"), get_loss("gated_crf")
    gated_full = get_loss("gated_crf", stride=1)

    def run(loss_of: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], float]:
        def step() -> float:
            student.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_of(student(target))
            loss.backward()
            return float(loss.detach())  # synchronises a GPU

        return step

    def temporal(logits: torch.Tensor) -> torch.Tensor:
        previous = student(neighbours[:, -1:])
        consistency = temporal_consistency_loss(logits.softmax(1), previous.softmax(1), flow, -flow)
        return ce(logits, label) + consistency

    def kd(logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(target)
        return ce(logits, label) + kd_loss(logits, teacher_logits)

    def mfd(logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(target)
        warped, valid = [], []
        for index in range(NEIGHBOURS):
            offset_flow = flow * (NEIGHBOURS - index)
            probs_f, inside = backward_warp(student(neighbours[:, index : index + 1]).softmax(1), offset_flow)
            warped.append(probs_f)
            valid.append(inside & forward_backward_mask(offset_flow, -offset_flow))
        return ce(logits, label) + mfd_loss(logits, warped, teacher_logits, valid)

    return {
        "ce": run(lambda logits: ce(logits, label)),
        "phuber_ce": run(lambda logits: phuber(logits, label)),
        "partial_ce + 0.1 gated_crf": run(
            lambda logits: partial(logits, clicks) + 0.1 * gated(logits, image=target[:, -1])
        ),
        "  same, gated_crf stride 1": run(
            lambda logits: partial(logits, clicks) + 0.1 * gated_full(logits, image=target[:, -1])
        ),
        "ce + temporal": run(temporal),
        "ce + kd": run(kd),
        f"ce + mfd ({NEIGHBOURS} neighbours)": run(mfd),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", choices=tuple(AUTOCAST), default="32", help="autocast dtype")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps = make_steps(*args.size, device=device, precision=args.precision)
    finite = {name: math.isfinite(step()) for name, step in steps.items()}  # the warm-up step
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            step()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    base_wall, base_cpu = statistics.median(wall["ce"]), statistics.median(cpu["ce"])
    print(
        f"student deeplabv3plus_mbv2, batch {BATCH}x3x{args.size[0]}x{args.size[1]}, {CLASSES} classes, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats} round-robin steps, "
        f"device {device}, precision {args.precision}"
    )
    for name in steps:
        step_wall, step_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        print(
            f"{name:<28} CPU {step_cpu * 1000:7.1f} ms/step {step_cpu / base_cpu:5.2f}x CE   "
            f"wall {step_wall * 1000:7.1f} ms/step {step_wall / base_wall:5.2f}x CE"
            + ("" if finite[name] else "   LOSS NOT FINITE")
        )
    if not all(finite.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
