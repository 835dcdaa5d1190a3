"""README output blocks that come from real runs: record them, and check that the README still shows them.

A fenced block in README.md preceded by ``<!-- output: docs/outputs/NAME.txt -->`` shows what a real
run printed. The file holds that run's output, after a header naming the command, the commit it ran
at and how it was made::

    python docs/readme_outputs.py --record demo   # runs the demo for real (minutes) and rewrites its file
    python docs/readme_outputs.py --check         # fast, runs nothing: exit 1 and a message per drift

``--check`` verifies that every marked block is made of lines of its recorded output — each stretch
between lines that are only ``…`` appears there as consecutive lines, in the block's order (trailing
spaces ignored, lines matching the recording's ``hidden`` patterns skipped) — that the file was
recorded by this script's current command for it, and that the recorded commit is a clean ancestor
of HEAD. ``tests/test_readme.py`` runs it, so a README edited by hand or a recording left behind by
a changed command fails the tests.

The runs write into a temporary folder (frugalseg's cache, Lightning's runs, the examples' outputs);
the paths printed inside it are written as the README spells them (``~/.cache/frugalseg`` …).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = Path("docs/outputs")
MARKER = "<!-- output: "
ELISION = "…"


@dataclass(frozen=True)
class Step:
    """One command of a recording: as the README shows it, and as it is run.

    Attributes:
        shown: the command's lines as the README prints them (continuation lines included).
        argv: what runs; ``{tmp}`` is the recording's temporary folder, ``{frugalseg}`` the CLI
            installed beside this Python.
    """

    shown: tuple[str, ...]
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Recording:
    """A README example run for real: its steps, environment and the paths shown in the README's words.

    ``hidden`` are patterns of recorded lines the README leaves out without an ``…`` (warnings of
    the libraries below, kept in the recorded file).
    """

    steps: tuple[Step, ...]
    env: dict[str, str] = field(default_factory=dict)
    shown_paths: dict[str, str] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()

    def command(self) -> str:
        """The recorded command, one line per step, as the header of the output file names it."""
        steps = (" ".join(line.strip().rstrip("\\").strip() for line in step.shown) for step in self.steps)
        return " && ".join(steps)


RECORDINGS: dict[str, Recording] = {
    # `make demo`: the README's first screen.
    "demo": Recording(
        steps=(
            Step(
                shown=(".venv/bin/frugalseg fit --config configs/demo.yaml",),
                argv=(
                    "{frugalseg}",
                    "fit",
                    "--config",
                    "configs/demo.yaml",
                    "--trainer.default_root_dir",
                    "{tmp}/runs/demo",
                    "--trainer.logger.init_args.save_dir",
                    "{tmp}/runs/demo",
                ),
            ),
        ),
        env={"FRUGALSEG_CACHE": "{tmp}/cache"},
        shown_paths={"{tmp}/cache": "~/.cache/frugalseg", "{tmp}/runs": "runs"},
    ),
    # README, "The semantic annotation loop".
    "semantic_loop": Recording(
        steps=(
            Step(
                shown=(
                    '$ python -c "from frugalseg.data.formats import generate_synthetic_streets as g; '
                    "g('/tmp/streets', {'val': 1}, size=(48, 96), num_frames=20, seed=7)\"",
                ),
                argv=(
                    "{python}",
                    "-c",
                    "from frugalseg.data.formats import generate_synthetic_streets as g; "
                    "g('{tmp}/streets', {'val': 1}, size=(48, 96), num_frames=20, seed=7)",
                ),
            ),
            Step(
                shown=(
                    "$ frugalseg annotate semantic --root /tmp/streets --max-frames 12 "
                    "--student hrnetv2_w18_small \\",
                    "    --init-weights streets-hrnetv2-w18s --epochs 2 --granularities frame,superpixel "
                    "--segments 24 \\",
                    "    --selectors diversity,random --budget-clicks-percent 25 --out /tmp/hvsa",
                ),
                argv=(
                    "{frugalseg}",
                    "annotate",
                    "semantic",
                    "--root",
                    "{tmp}/streets",
                    "--max-frames",
                    "12",
                    "--student",
                    "hrnetv2_w18_small",
                    "--init-weights",
                    "streets-hrnetv2-w18s",
                    "--epochs",
                    "2",
                    "--granularities",
                    "frame,superpixel",
                    "--segments",
                    "24",
                    "--selectors",
                    "diversity,random",
                    "--budget-clicks-percent",
                    "25",
                    "--out",
                    "{tmp}/hvsa",
                ),
            ),
        ),
        env={"FRUGALSEG_CACHE": "{tmp}/cache"},
        shown_paths={"{tmp}/cache": "~/.cache/frugalseg", "{tmp}/": "/tmp/"},
        # Lightning's FutureWarning, once per fine-tuning (issue 36 lists it as noise to remove).
        hidden=(r"^\S+/lightning/pytorch/utilities/_pytree\.py:\d+: `isinstance\(treespec, LeafSpec\)`",),
    ),
}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def _commit() -> str:
    """HEAD, with ``+dirty`` when tracked files differ from it: such a recording fails ``--check``."""
    head = _git("rev-parse", "HEAD").stdout.strip() or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head + ("+dirty" if dirty else "")


def _environment() -> str:
    from importlib import metadata

    versions = []
    for name in ("torch", "lightning", "numpy", "opencv-python-headless"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    return f"Python {sys.version.split()[0]}, {', '.join(versions)}; {os.cpu_count()} CPUs"


def record(name: str, outputs: Path = REPO / OUTPUTS) -> Path:
    """Run recording ``name`` for real and write its output file; returns the file.

    Raises:
        SystemExit: a step failed (its output is printed, nothing is written).
    """
    recording = RECORDINGS[name]
    commit = _commit()
    frugalseg = Path(sys.executable).with_name("frugalseg")
    with tempfile.TemporaryDirectory(prefix=f"readme-{name}-") as tmp:

        def fill(text: str) -> str:
            return (
                text.replace("{tmp}", tmp)
                .replace("{frugalseg}", str(frugalseg) if frugalseg.exists() else "frugalseg")
                .replace("{python}", sys.executable)
            )

        env = {**os.environ, "COLUMNS": "80", **{key: fill(value) for key, value in recording.env.items()}}
        env.pop("FORCE_COLOR", None)
        body: list[str] = []
        start = time.monotonic()
        for step in recording.steps:
            result = subprocess.run(
                [fill(arg) for arg in step.argv],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            print(result.stdout, end="")
            if result.returncode != 0:
                shown = " ".join(step.shown)
                raise SystemExit(f"{name}: {shown} exited with {result.returncode}; nothing written")
            output = result.stdout
            for path, shown in sorted(recording.shown_paths.items(), key=lambda item: -len(item[0])):
                output = output.replace(fill(path), shown)
            body += [*step.shown, *(line.rstrip() for line in output.splitlines())]
        wall = time.monotonic() - start
    header = [
        f"command: {recording.command()}",
        f"commit: {commit}",
        f"recorded: {datetime.date.today().isoformat()}, wall {wall:.0f} s, {_environment()}",
        f"made by: python docs/readme_outputs.py --record {name} (paths in its temporary folder written as "
        + ", ".join(f"{shown}" for shown in recording.shown_paths.values())
        + ")",
    ]
    outputs.mkdir(parents=True, exist_ok=True)
    path = outputs / f"{name}.txt"
    path.write_text("\n".join([*header, "", *body]) + "\n", encoding="utf-8")
    return path


def read_recorded(path: Path) -> tuple[dict[str, str], list[str]]:
    """The header fields and the output lines of a recorded file (header, one empty line, output)."""
    text = path.read_text(encoding="utf-8")
    head, _, body = text.partition("\n\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
    return fields, [line.rstrip() for line in body.splitlines()]


def marked_blocks(readme: Path) -> list[tuple[int, str, list[str]]]:
    """Every marked block of ``readme``: (line number of its marker, recorded file, the block's lines)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if not line.startswith(MARKER):
            continue
        target = line[len(MARKER) :].removesuffix("-->").strip()
        fence = number + 1
        if fence >= len(lines) or not lines[fence].startswith("```"):
            blocks.append((number + 1, target, []))  # reported as a marker without its block
            continue
        end = next((i for i in range(fence + 1, len(lines)) if lines[i].startswith("```")), len(lines))
        blocks.append((number + 1, target, [text.rstrip() for text in lines[fence + 1 : end]]))
    return blocks


def _find(chunk: list[str], body: list[str], start: int) -> int:
    """Index in ``body`` (from ``start``) where ``chunk`` begins as consecutive lines, or -1."""
    for i in range(start, len(body) - len(chunk) + 1):
        if body[i : i + len(chunk)] == chunk:
            return i
    return -1


def block_drift(block: list[str], body: list[str]) -> str | None:
    """Why ``block`` is not a copy of ``body`` with elisions, or None when it is."""
    body = [line.rstrip() for line in body]
    chunks: list[list[str]] = [[]]
    for line in (line.rstrip() for line in block):
        if line.strip() == ELISION:
            chunks.append([])
        else:
            chunks[-1].append(line)
    position = 0
    for chunk in chunks:
        if not chunk:
            continue
        found = _find(chunk, body, position)
        if found < 0:
            # Name the first line that breaks the match, to say where the README drifted.
            for size in range(1, len(chunk) + 1):
                if _find(chunk[:size], body, position) < 0:
                    return f"line {chunk[size - 1]!r} is not in the recorded output here"
        position = found + len(chunk)
    return None


def _ancestor_problem(commit: str) -> str | None:
    if commit.endswith("+dirty"):
        return f"recorded from uncommitted changes ({commit}): record again from a clean checkout"
    if _git("rev-parse", "--git-dir").returncode != 0:
        return None  # not a git checkout (an sdist): nothing to compare with
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            return None  # a shallow clone may lack it
        return f"commit {commit} is not in this repository"
    if _git("merge-base", "--is-ancestor", commit, "HEAD").returncode != 0:
        return f"commit {commit} is not an ancestor of HEAD"
    return None


def check(readme: Path = REPO / "README.md", root: Path = REPO) -> list[str]:
    """Every drift between ``readme``'s marked blocks and their recorded files, one message each."""
    problems = []
    for line, target, block in marked_blocks(readme):
        where = f"{readme.name}:{line} (block {target})"
        path = root / target
        if not block:
            problems.append(f"{where}: the marker is not followed by a fenced block")
            continue
        if not path.is_file():
            problems.append(f"{where}: {target} does not exist; record it with --record {Path(target).stem}")
            continue
        fields, body = read_recorded(path)
        recording = RECORDINGS.get(path.stem)
        if recording is None:
            problems.append(f"{where}: no recording named {path.stem!r} in docs/readme_outputs.py")
        elif fields.get("command") != recording.command():
            problems.append(
                f"{where}: recorded with {fields.get('command')!r}, but the recording now runs "
                f"{recording.command()!r}: record again with --record {path.stem}"
            )
        if "commit" not in fields:
            problems.append(f"{where}: {target} names no commit")
        elif (problem := _ancestor_problem(fields["commit"])) is not None:
            problems.append(f"{where}: {target} {problem}")
        if recording is not None:
            hidden = [re.compile(pattern) for pattern in recording.hidden]
            body = [line for line in body if not any(pattern.search(line) for pattern in hidden)]
        if (drift := block_drift(block, body)) is not None:
            problems.append(
                f"{where}: the README drifted from its recorded output: {drift} "
                f"(copy it from {target}, or record again with --record {path.stem})"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--record NAME`` or ``--check``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--record", choices=sorted(RECORDINGS), help="run this example for real and write its file"
    )
    mode.add_argument("--check", action="store_true", help="check the README's marked blocks (runs nothing)")
    args = parser.parse_args(argv)
    if args.record:
        if shutil.which("git") is None:
            raise SystemExit("--record needs git to name the commit it ran at")
        path = record(args.record)
        print(f"wrote {path.relative_to(REPO)}: copy the lines the README shows into its block")
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        count = len(marked_blocks(REPO / "README.md"))
        print(f"README.md: {count} marked block(s) match their recorded outputs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
