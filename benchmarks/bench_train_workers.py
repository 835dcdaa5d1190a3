"""What training loader workers that start afresh each epoch cost against persistent ones.

A resume draws what the run would have drawn only if each epoch's training iterator draws its
shuffle and its workers' seeds anew (`VideoSegmentationDataModule._loader`), so the training loader's
workers are no longer persistent: each epoch forks them again. This times epochs of the demo's
training loader (configs/demo.yaml: the synthetic streets set, recipe B3, batch 4, 2 workers, its
frame and flow caches warm after one pass) both ways, alternating epoch by epoch in one process,
and prints the median seconds per epoch of each with the spread (min–max).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_train_workers.py --epochs 5
"""

from __future__ import annotations

import argparse
import statistics
import time

from provenance import provenance_line  # benchmarks/, the script's folder
from torch.utils.data import DataLoader

from frugalseg.cli.lightning import FrugalsegCLI, ShortErrorParser
from frugalseg.datamodules.datamodule import VideoSegDataModule
from frugalseg.lightning_modules import VideoSegmentationModule


def epoch_seconds(loader: DataLoader) -> float:
    """Seconds to draw every batch of one epoch (a persistent loader keeps its workers between epochs)."""
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def main() -> None:
    """Build the demo's data, time both loaders' epochs in turn, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs of each way")
    parser.add_argument("--workers", type=int, default=2, help="loader workers")
    args = parser.parse_args()
    cli = FrugalsegCLI(
        VideoSegmentationModule, VideoSegDataModule, subclass_mode_model=True, parser_class=ShortErrorParser,
        args=["--config", "configs/demo.yaml"], run=False,
    )  # fmt: skip
    data = cli.datamodule
    data.prepare_data()
    data.setup("fit")
    fresh = data.train_dataloader()
    options = dict(batch_size=fresh.batch_size, shuffle=True, drop_last=fresh.drop_last)
    loaders = {
        "afresh each epoch": DataLoader(fresh.dataset, num_workers=args.workers, **options),
        "persistent": DataLoader(fresh.dataset, num_workers=args.workers, persistent_workers=True, **options),
    }
    for loader in loaders.values():  # warm the caches and start the persistent workers
        epoch_seconds(loader)
    times: dict[str, list[float]] = {way: [] for way in loaders}
    for _ in range(args.epochs):
        for way, loader in loaders.items():
            times[way].append(epoch_seconds(loader))
    print(f"| loader ({args.workers} workers, {len(fresh)} batches) | s per epoch, median | min–max |")
    print("|---|---:|---:|")
    for way, seconds in times.items():
        print(f"| {way} | {statistics.median(seconds):.2f} | {min(seconds):.2f}–{max(seconds):.2f} |")
    print(f"\n{provenance_line()}")


if __name__ == "__main__":
    main()
