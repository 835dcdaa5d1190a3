"""GPU throughput: training steps of five students, SAM 2 propagation and clicks, Boundary IoU on the device.

Ready for a GPU machine; ``--smoke`` runs every part on the CPU at tiny sizes so the script can be
checked where there is no GPU (its figures mean nothing). All weights are random.

- **Training**: ``tmanet_r50``, ``tdnet_td2_psp50``, ``tdnet_td4_psp18``, ``hrnetv2_w48`` and
  ``deeplabv3plus_r101`` (19 classes, ``frugalseg.zoo.get_model``), SGD (lr 0.01, momentum 0.9)
  steps on random clips and labels: ``forward_train``, cross-entropy on ``"out"`` plus each
  auxiliary output weighted by ``model.aux_weights``, backward, step. fp32 and bf16 autocast.
  ``--crops full`` (default): 1024×2048, batch 2 (the least BatchNorm in training takes on the
  1×1 pooled maps of TDNet's PSP and DeepLabV3+'s ASPP; ``--batch`` overrides it).
  ``--crops official``: each paper's train crop and per-GPU batch (TMANet 769×769 × 2, HRNet
  512×1024 × 3, DeepLabV3+-R101 768×768 × 4 as
  ``configs/weclick_teacher.yaml``; TDNet 769×1537 × 2, where the paper has 1 per GPU with
  SyncBN). Steps/s and images/s (labelled frames; a video student reads ``num_frames`` frames per
  image) over ``--steps`` steps after ``--warmup``; peak memory is
  ``torch.cuda.max_memory_allocated`` over warm-up and timed steps.
- **Attention kernels**: the TMANet, STM and TDNet reads at 1024×2048 feature sizes, run with
  SDPA's math fallback disabled, so a row says whether a fused kernel (flash, memory-efficient,
  cuDNN; on the CPU, flash) takes each shape and dtype.
- **SAM 2**: ``SAM2Propagator(SAM2Options(random_weights=True, image_size=1024))`` (``sam2.1_hiera_t``, bf16
  autocast on CUDA) carrying an anchor label of 8 objects over random 1024×2048 frames;
  frames/s = propagated frames / seconds, after a warm-up propagation.
- **SAM 2 clicks**: the ``sam2`` click model of the interactive tools,
  ``SAM2Clicks(SAM2Options(random_weights=True))`` (``sam2.1_hiera_t``, fp32 as the tool runs it) built
  on the CPU and moved with ``.to(device)``, answering on a blocky 854×480 image: one positive click
  from an empty mask on a new image (the answer includes the image embedding), then, on the embedding
  already made, a correction of 3 clicks to a current mask (one block of the image) and a box. Median ms
  per answer over 5 answers after a warm-up one, and whether it is within the interactive tools' 0.3 s
  budget.
- **Boundary IoU**: ``BoundaryIoU(19, backend="torch")`` on the device against
  ``backend="opencv"`` on the CPU, on a batch of blocky 1024×2048 label maps and a shifted,
  partly relabelled prediction; ms per image (median) and whether the counts are identical.

A failure of a check (non-finite loss, unequal Boundary IoU counts, a missing SAM 2 label or mask) exits
non-zero; a model that runs out of memory is reported as OOM. Without a CUDA device (and without
``--smoke``) the script says so and exits 0, so that ``make bench`` passes on a CPU machine.

    .venv/bin/python benchmarks/bench_gpu.py [--crops full|official] [--batch N] [--steps 10] [--out FILE]
    .venv/bin/python benchmarks/bench_gpu.py --smoke
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from provenance import provenance_line  # benchmarks/, the script's folder
from torch.nn.attention import SDPBackend, sdpa_kernel

from frugalseg.metrics import BoundaryIoU
from frugalseg.zoo import get_model, stm, tdnet, tmanet

MODELS = ("tmanet_r50", "tdnet_td2_psp50", "tdnet_td4_psp18", "hrnetv2_w48", "deeplabv3plus_r101")
#: (H, W) train crop and per-GPU batch of each paper's recipe. TDNet trains one crop per GPU with
#: SyncBN over 8 GPUs; here 2, the least its PSP BatchNorm on 1×1 pooled maps accepts on one device.
OFFICIAL = {
    "tmanet_r50": ((769, 769), 2),
    "tdnet_td2_psp50": ((769, 1537), 2),
    "tdnet_td4_psp18": ((769, 1537), 2),
    "hrnetv2_w48": ((512, 1024), 3),
    "deeplabv3plus_r101": ((768, 768), 4),
}
NUM_CLASSES = 19


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: full-size on a GPU, tiny for ``--smoke``."""

    device: torch.device
    crops: str
    warmup: int
    steps: int
    sam2_image_size: int
    sam2_frames: int
    frame_size: tuple[int, int]
    biou_batch: int
    batch: int | None = None  # overrides every model's training batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _crop(plan: Plan, name: str) -> tuple[tuple[int, int], int]:
    if plan.device.type != "cuda":
        size, batch = (64, 128), 2
    else:
        size, batch = OFFICIAL[name] if plan.crops == "official" else ((1024, 2048), 2)
    return size, plan.batch or batch


def train_row(plan: Plan, name: str, bf16: bool) -> list[str]:
    """One model's training throughput and peak memory in one precision."""
    (height, width), batch = _crop(plan, name)
    device = plan.device
    torch.manual_seed(0)
    model = get_model(name, num_classes=NUM_CLASSES).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    frames = torch.randn(batch, model.num_frames, 3, height, width, device=device)
    target = torch.randint(0, NUM_CLASSES, (batch, height, width), device=device)
    precision = "bf16 autocast" if bf16 else "fp32"
    row = [name, precision, f"{height}×{width}", str(batch), str(model.num_frames)]

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            outputs = model.forward_train(frames)
            loss = F.cross_entropy(outputs["out"].float(), target, ignore_index=255)
            for key, weight in model.aux_weights.items():
                loss = loss + weight * F.cross_entropy(outputs[key].float(), target, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        losses = [step() for _ in range(plan.warmup)]
        _sync(device)
        start = time.perf_counter()
        losses += [step() for _ in range(plan.steps)]
        _sync(device)
        seconds = time.perf_counter() - start
    except torch.OutOfMemoryError:
        del model, optimizer
        return [*row, "OOM", "OOM", "OOM"]
    except ValueError as error:
        if "more than 1 value per channel" not in str(error):
            raise
        return [*row, "batch 1: BatchNorm on a pooled map needs 2", "–", "–"]
    if not all(math.isfinite(value) for value in losses):
        raise SystemExit(f"{name} {precision}: non-finite training loss {losses}")
    peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "n/a (CPU)"
    rate = plan.steps / seconds
    return [*row, f"{rate:.2f}", f"{rate * batch:.2f}", peak]


def attention_rows(device: torch.device, smoke: bool) -> list[list[str]]:
    """Whether a fused SDPA kernel takes each model's read (math fallback disabled)."""
    fused = [SDPBackend.FLASH_ATTENTION]
    if device.type == "cuda":
        fused += [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    h, w = (32, 64) if smoke else (128, 256)  # stride 8 of the frame: 1024×2048 (or 256×512)
    sh, sw = h // 2, w // 2  # STM's stride 16
    kh, kw = -(-h // 3), -(-w // 3)  # TDNet's past frame subsampled by 3
    propagation = tdnet.Propagation(64, 512).to(device).eval()

    def randn(*shape: int, dtype: torch.dtype) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=dtype)

    reads: dict[str, tuple[str, Callable[[torch.dtype], torch.Tensor]]] = {
        # TMANet: 2 memory frames, keys 64, values 256, unscaled.
        "TMANet memory read": (
            f"{h * w} ← {2 * h * w}, 64/256",
            lambda dt: tmanet.memory_read(
                randn(1, 64, h, w, dtype=dt),
                randn(1, 2, 64, h, w, dtype=dt),
                randn(1, 2, 256, h, w, dtype=dt),
            ),
        ),
        # STM: 3 objects, 5 memory frames, keys 128, values 512.
        "STM memory read": (
            f"3 × {sh * sw} ← {5 * sh * sw}, 128/512",
            lambda dt: stm.memory_read(
                randn(3, 128, 5 * sh * sw, dtype=dt),
                randn(3, 512, 5 * sh * sw, dtype=dt),
                randn(3, 128, sh, sw, dtype=dt),
            ),
        ),
        # TDNet: one propagation step (eval), keys 64, values 512, with its 1×1 output conv.
        "TDNet propagation": (
            f"{h * w} ← {kh * kw}, 64/512",
            lambda dt: propagation.to(dt)(
                randn(1, 64, kh, kw, dtype=dt), randn(1, 512, kh, kw, dtype=dt), randn(1, 64, h, w, dtype=dt)
            ),
        ),
    }
    rows = []
    for name, (shape, read) in reads.items():
        for dtype in (torch.float32, torch.bfloat16):
            try:
                with torch.no_grad(), sdpa_kernel(fused):
                    out = read(dtype)
                _sync(device)
                verdict = "yes" if torch.isfinite(out).all() else "non-finite output"
            except RuntimeError as error:
                verdict = f"no: {str(error).splitlines()[0][:80]}"
            rows.append([name, shape, str(dtype).removeprefix("torch."), verdict])
    return rows


def _blocks(size: tuple[int, int], objects: int, seed: int) -> np.ndarray:
    """A label map of ``objects`` rectangles of distinct classes on a background class."""
    rng = np.random.default_rng(seed)
    height, width = size
    label = np.zeros(size, dtype=np.uint8)
    for index in range(objects):
        y, x = rng.integers(0, height * 3 // 4), rng.integers(0, width * 3 // 4)
        label[y : y + max(4, height // 5), x : x + max(4, width // 6)] = 1 + index % (NUM_CLASSES - 1)
    return label


def sam2_row(plan: Plan) -> list[str]:
    """SAM 2 propagation frames/s over random frames from an anchor label of 8 objects."""
    from frugalseg.autolabel.sam2_loading import SAM2Options
    from frugalseg.autolabel.sam2_propagate import SAM2Propagator

    torch.manual_seed(0)
    engine = SAM2Propagator(
        SAM2Options(random_weights=True, image_size=plan.sam2_image_size, device=str(plan.device))
    )
    rng = np.random.default_rng(0)
    height, width = plan.frame_size
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(plan.sam2_frames)]
    label = _blocks(plan.frame_size, 8, seed=1)
    engine.propagate(frames[:2], 0, label, [1])  # warm-up
    targets = list(range(1, len(frames)))
    _sync(plan.device)
    start = time.perf_counter()
    labels = engine.propagate(frames, 0, label, targets)
    _sync(plan.device)
    seconds = time.perf_counter() - start
    if sorted(labels) != targets or any(labels[t].shape != label.shape for t in targets):
        raise SystemExit(f"SAM 2 returned labels for {sorted(labels)}, expected {targets} of {label.shape}")
    precision = "bf16 autocast" if plan.device.type == "cuda" else "fp32"
    return [
        f"sam2.1_hiera_t, {precision}",
        str(plan.sam2_image_size),
        f"{len(targets)} of {height}×{width}",
        "8",
        f"{len(targets) / seconds:.2f}",
    ]


#: The interactive tools' goal for one answer to a click (seconds).
CLICK_BUDGET = 0.3


def click_rows(plan: Plan, repeats: int) -> list[list[str]]:
    """SAM 2 click model answers on one image: ms per answer (median) and whether within `CLICK_BUDGET`."""
    from frugalseg.active.objects.simulation.annotation_types import GivenClick
    from frugalseg.active.objects.tools.click_models import SAM2Clicks
    from frugalseg.autolabel.sam2_loading import SAM2Options

    torch.manual_seed(0)
    model = SAM2Clicks(SAM2Options(random_weights=True, image_size=plan.sam2_image_size, device="cpu"))
    model.to(plan.device)
    height, width = (480, 854) if plan.device.type == "cuda" else plan.frame_size
    palette = np.random.default_rng(2).integers(0, 256, (NUM_CLASSES, 3), dtype=np.uint8)
    label = _blocks((height, width), 12, seed=3)
    base = palette[label]
    # A new image for every first click (shifted by a pixel), so each of them embeds its image again.
    images = [np.roll(base, index, axis=1) for index in range(repeats + 1)]
    x, y = width // 2, height // 2
    clicks = [
        GivenClick(0, x, y, True),
        GivenClick(0, x + width // 8, y, True),
        GivenClick(0, x, y + height // 8, False),
    ]
    box = (width // 4, height // 4, width * 3 // 4, height * 3 // 4)
    empty = np.zeros((height, width), dtype=bool)

    def timed(answer: Callable[[int], np.ndarray]) -> float:
        samples = []
        for index in range(repeats + 1):  # the first call warms up
            _sync(plan.device)
            start = time.perf_counter()
            mask = answer(index)
            _sync(plan.device)
            samples.append(time.perf_counter() - start)
            if mask.shape != (height, width) or mask.dtype != bool:
                raise SystemExit(
                    f"SAM 2 clicks: a {mask.dtype} mask of {mask.shape}, expected bool {height, width}"
                )
        return statistics.median(samples[1:])

    first = timed(lambda index: model.correct(images[index], empty, clicks[:1]))
    current = label == label[y, x]  # the block under the first click, as the mask to correct
    answers = {
        "first click, empty mask (embeds the image)": ("1 positive click", first),
        "correction (embedding cached)": (
            "3 clicks on a current mask",
            timed(lambda _: model.correct(images[-1], current, clicks)),
        ),
        "box (embedding cached)": ("box", timed(lambda _: model.box(images[-1], box))),
    }
    model_name = f"sam2.1_hiera_t {plan.sam2_image_size}, fp32"
    return [
        [
            model_name,
            name,
            f"{width}×{height}",
            prompt,
            f"{seconds * 1000:.1f}",
            "yes" if seconds <= CLICK_BUDGET else "no",
        ]
        for name, (prompt, seconds) in answers.items()
    ]


def boundary_rows(plan: Plan, repeats: int) -> list[list[str]]:
    """Boundary IoU update, torch backend on the device against OpenCV on the CPU: ms per image."""
    size = plan.frame_size
    target = torch.from_numpy(np.stack([_blocks(size, 30, seed=s) for s in range(plan.biou_batch)])).long()
    preds = torch.roll(target, shifts=(3, -5), dims=(1, 2)).clone()
    preds[:, : size[0] // 8, : size[1] // 8] = 7
    target[:, -size[0] // 10 :] = 255
    runs = {
        ("opencv", "cpu"): (preds, target),
        ("torch", plan.device.type): (preds.to(plan.device), target.to(plan.device)),
    }
    counts, times = {}, {}
    for (backend, device), (p, t) in runs.items():
        metric = BoundaryIoU(NUM_CLASSES, backend=backend).to(p.device)  # type: ignore[arg-type]
        samples = []
        for _ in range(repeats + 1):  # the first call warms up
            metric.reset()
            _sync(p.device)
            start = time.perf_counter()
            metric.update(p, t)
            _sync(p.device)
            samples.append(time.perf_counter() - start)
        counts[backend] = (metric.intersection.cpu(), metric.union.cpu())
        times[(backend, device)] = statistics.median(samples[1:]) / plan.biou_batch
    equal = all(torch.equal(a, b) for a, b in zip(counts["opencv"], counts["torch"], strict=True))
    if not equal:
        raise SystemExit("Boundary IoU: the torch and OpenCV backends count differently")
    reference = times[("opencv", "cpu")]
    return [
        [backend, device, f"{seconds * 1000:.1f}", f"{reference / seconds:.1f}×", "yes"]
        for (backend, device), seconds in times.items()
    ]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: check that everything runs")
    parser.add_argument("--crops", choices=("full", "official"), default="full")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--batch", type=int, help="training batch of every model (1 fails for TDNet and DeepLabV3+)"
    )
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    if args.smoke:
        torch.set_num_threads(1)
        plan = Plan(torch.device("cpu"), "tiny", 1, 1, 64, 3, (64, 128), 2, args.batch)
        device_name = "CPU (--smoke: tiny sizes, figures meaningless)"
    else:
        if not torch.cuda.is_available():
            # Not an error: `make bench` runs every script, also where no GPU is.
            print("bench_gpu.py: no CUDA device, nothing measured (run with --smoke to check the script)")
            return
        torch.backends.cudnn.benchmark = True
        plan = Plan(
            torch.device("cuda"), args.crops, args.warmup, args.steps, 1024, 16, (1024, 2048), 8, args.batch
        )
        device_name = torch.cuda.get_device_name()
    sections = [
        f"Device: {device_name}; torch {torch.__version__}"
        + (f", CUDA {torch.version.cuda}, cudnn.benchmark on" if plan.device.type == "cuda" else "")
        + f"; random weights; {plan.steps} timed step(s) after {plan.warmup} warm-up step(s)",
        _table(
            [
                "model",
                "precision",
                "crop",
                "batch",
                "frames/clip",
                "steps/s",
                "images/s",
                "peak memory (GiB)",
            ],
            [train_row(plan, name, bf16) for name in args.models for bf16 in (False, True)],
        ),
        _table(
            ["attention read", "queries ← keys, key/value width", "dtype", "fused SDPA kernel"],
            attention_rows(plan.device, args.smoke),
        ),
        _table(["SAM 2 propagation", "image size", "frames", "objects", "frames/s"], [sam2_row(plan)]),
        _table(
            ["SAM 2 clicks", "answer", "image", "prompt", "ms per answer", f"within {CLICK_BUDGET} s"],
            click_rows(plan, repeats=1 if args.smoke else 5),
        ),
        _table(
            ["Boundary IoU backend", "device", "ms per image", "speed vs opencv", "counts identical"],
            boundary_rows(plan, repeats=1 if args.smoke else 5),
        ),
    ]
    text = "\n\n".join(sections) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
    print(provenance_line(), flush=True)
