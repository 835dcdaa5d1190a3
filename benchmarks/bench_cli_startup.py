"""How long ``frugalseg <command> --help`` takes to start, for every command (issue 47: help was slow).

Each command runs ``--repeats`` times in a fresh interpreter (``python -m frugalseg <command> --help``,
output discarded); the figures are the median wall time and the median peak resident size of the
process. ``--compare DIR`` runs the same commands on another checkout's source (``PYTHONPATH=DIR``, e.g.
the commit before, from ``git worktree add``) in the same run, alternating the two so that the machine's
load falls on both alike. ``--commands`` names some commands only (``"annotate add"``, ``fit``).

    python benchmarks/bench_cli_startup.py [--repeats 5] [--compare /tmp/frugalseg-before] \
        [--commands "annotate add" "annotate serve"]

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
    ["annotate", "add"],
    ["annotate", "serve"],
    ["annotate", "ml-backend"],
    ["fit"],
    ["validate"],
    ["test"],
    ["predict"],
    ["vos"],
]


def startup(source: Path, command: list[str]) -> tuple[float, float]:
    """Seconds ``frugalseg <command> --help`` takes with the package from ``source``, and its peak MB."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "frugalseg", *command, "--help"],
        env=env,
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the largest child's so far
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"frugalseg {' '.join(command)} --help failed in {source}:\n{errors.decode()}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    """Print a Markdown table of the median start-up of each command's help (and the other checkout's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (the median is shown)")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout, timed in the same run")
    parser.add_argument("--commands", nargs="+", default=None, help='only these commands ("annotate add")')
    args = parser.parse_args()
    commands = COMMANDS if args.commands is None else [name.split() for name in args.commands]
    sources = [ROOT] if args.compare is None else [args.compare.resolve(), ROOT]
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.repeats} runs each, median")
    header = ["command", *(("before", "after") if args.compare else ("seconds and peak MB",))]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for command in commands:
        runs: dict[Path, list[tuple[float, float]]] = {source: [] for source in sources}
        for _ in range(args.repeats):
            for source in sources:
                runs[source].append(startup(source, command))
        medians = [
            (statistics.median(t for t, _ in runs[s]), statistics.median(m for _, m in runs[s]))
            for s in sources
        ]
        shown = " | ".join(f"{seconds:.2f} s, {mb:.0f} MB" for seconds, mb in medians)
        print(f"| `frugalseg {' '.join([*command, '--help'])}` | {shown} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
