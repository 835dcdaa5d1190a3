"""What the page's session holds once idle after each propagation, with and without `return_free_memory`.

On DAVIS parkour (100 frames, 854×480) a `SessionService` (what `annotate serve` and `annotate ml-backend`
run) is given the true masks of frames 0, 50 and 99 one after another, as a person's submits, each
propagated by its worker; once it is idle (the propagation done, the allocator's free pages given back
or not) the process's resident size is read. Each way runs in a fresh process, the two alternating
``--repeats`` times; printed: the resident size at start and after each submit, medians.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_serve_memory.py --davis ../shared/data/davis_hard
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from provenance import provenance_line  # benchmarks/, the script's folder

CLIP, FRAMES = "parkour", (0, 50, 99)


def resident_mb() -> float:
    """This process's resident size (MB)."""
    with open("/proc/self/status", encoding="utf-8") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run_one(root: Path, folder: Path, trim: bool) -> list[float]:
    """Resident MB at start and once idle after each submit (in this process)."""
    from frugalseg.active.objects.session.session import AnnotationSession
    from frugalseg.app import jobs

    if not trim:
        jobs.return_free_memory = lambda: None  # the worker reads the module's name when idle
    session = AnnotationSession.open(folder, root=str(root), split="all")
    service = jobs.SessionService(session)
    sizes = [resident_mb()]
    masks = sorted((root / "Annotations" / "480p" / CLIP).glob("*.png"))
    for frame in FRAMES:
        service.add(CLIP, frame, session.read_given(CLIP, frame, mask=masks[frame]))
        service.wait()
        time.sleep(0.5)  # the worker gives the pages back after its job
        sizes.append(resident_mb())
    service.close()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis", type=Path, required=True, help="a DAVIS root holding parkour")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way, alternating")
    parser.add_argument("--one", choices=("trim", "keep"), help=argparse.SUPPRESS)  # a child's run
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.davis.resolve(), args.folder, args.one == "trim")))
        return
    print(provenance_line())
    runs: dict[str, list[list[float]]] = {"keep": [], "trim": []}
    for repeat in range(args.repeats):
        for way in runs:
            folder = Path(f"/tmp/bench_serve_memory/{way}-{repeat}")
            subprocess.run(["rm", "-rf", str(folder)], check=True)
            child = [sys.executable, __file__, "--davis", str(args.davis), "--one", way]
            child += ["--folder", str(folder)]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            runs[way].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for way, sizes in runs.items():
        medians = [statistics.median(column) for column in zip(*sizes, strict=True)]
        shown = ", ".join(f"{mb:.0f}" for mb in medians)
        print(f"{way}: resident MB at start and idle after frames {FRAMES}: {shown}")


if __name__ == "__main__":
    main()
