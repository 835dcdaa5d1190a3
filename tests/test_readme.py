"""The README's output blocks are what real runs printed (docs/readme_outputs.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "docs" / "readme_outputs.py"


def _module():
    spec = importlib.util.spec_from_file_location("readme_outputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_match_their_recorded_runs():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "match their recorded outputs" in result.stdout


def test_every_recorded_output_is_shown_in_the_readme():
    module = _module()
    shown = {target for _, target, _ in module.marked_blocks(REPO / "README.md")}
    recorded = {str(path.relative_to(REPO)) for path in (REPO / "docs" / "outputs").glob("*.txt")}
    assert recorded <= shown, f"recorded but not shown in README.md: {sorted(recorded - shown)}"


def test_a_block_is_its_recorded_output_with_elisions():
    module = _module()
    body = ["$ run", "first", "second", "third", "fourth", "table  "]
    assert module.block_drift(["$ run", "first", "…", "third", "fourth", "table"], body) is None
    assert module.block_drift(["first", "third"], body) == "line 'third' is not in the recorded output here"
    assert module.block_drift(["third", "…", "first"], body) is not None  # the order counts
    assert "0.7114" in module.block_drift(["$ run", "0.7114"], body)


def _readme(tmp_path: Path, block: str, header: str) -> Path:
    (tmp_path / "docs" / "outputs").mkdir(parents=True)
    recorded = tmp_path / "docs" / "outputs" / "demo.txt"
    recorded.write_text(header + "\n\n.venv/bin/frugalseg fit\nval 0.71\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n<!-- output: docs/outputs/demo.txt -->\n```\n{block}\n```\n", encoding="utf-8")
    return readme


def test_check_names_the_drifted_block_and_the_stale_recording(tmp_path):
    module = _module()
    command = module.RECORDINGS["demo"].command()
    readme = _readme(tmp_path, ".venv/bin/frugalseg fit\nval 0.70", f"command: {command}\ncommit: {'0' * 40}")
    problems = module.check(readme, tmp_path)
    where = "README.md:3 (block docs/outputs/demo.txt)"
    assert any(where in p and "'val 0.70'" in p for p in problems), problems
    shallow = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if shallow == "false":
        assert any(f"commit {'0' * 40} is not in this repository" in p for p in problems), problems


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("command: frugalseg fit --old\ncommit: HEAD+dirty", "record again with --record demo"),
        ("command: {command}\ncommit: HEAD+dirty", "recorded from uncommitted changes"),
    ],
)
def test_check_flags_a_recording_that_no_longer_fits(tmp_path, header, expected):
    module = _module()
    header = header.format(command=module.RECORDINGS["demo"].command())
    readme = _readme(tmp_path, ".venv/bin/frugalseg fit\nval 0.71", header)
    problems = module.check(readme, tmp_path)
    assert any(expected in p for p in problems), problems
