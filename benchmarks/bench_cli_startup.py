"""How long ``frugalseg <command> --help`` takes to start, for every command (issue 47: help was slow).

Each command runs ``--repeats`` times in a fresh interpreter (``python -m frugalseg <command> --help``,
output discarded); the figure is the median wall time. ``--compare DIR`` runs the same commands on
another checkout's source (``PYTHONPATH=DIR``, e.g. the commit before, from ``git worktree add``) in the
same run, alternating the two so that the machine's load falls on both alike.

    python benchmarks/bench_cli_startup.py [--repeats 5] [--compare /tmp/frugalseg-before]

Not importing torch (``import torch`` alone is ~1 s here) is what keeps a command's help under a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    [],
    ["label"],
    ["label", "propagate"],
    ["data"],
    ["configs"],
    ["zoo"],
    ["zoo", "list"],
    ["annotate"],
    ["annotate", "simulate"],
    ["annotate", "serve"],
    ["fit"],
    ["validate"],
    ["test"],
    ["predict"],
    ["vos"],
]


def startup(source: Path, command: list[str]) -> float:
    """Seconds ``frugalseg <command> --help`` takes with the package from ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "frugalseg", *command, "--help"], env=env, capture_output=True, cwd=source
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"frugalseg {' '.join(command)} --help failed in {source}:\n{done.stderr.decode()}")
    return seconds


def main() -> None:
    """Print a Markdown table of the median start-up of each command's help (and the other checkout's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (the median is shown)")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout, timed in the same run")
    args = parser.parse_args()
    sources = [ROOT] if args.compare is None else [args.compare.resolve(), ROOT]
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.repeats} runs each, median")
    header = ["command", *(("before", "after") if args.compare else ("seconds",))]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for command in COMMANDS:
        times: dict[Path, list[float]] = {source: [] for source in sources}
        for _ in range(args.repeats):
            for source in sources:
                times[source].append(startup(source, command))
        shown = " | ".join(f"{statistics.median(times[s]):.2f} s" for s in sources)
        print(f"| `frugalseg {' '.join([*command, '--help'])}` | {shown} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
