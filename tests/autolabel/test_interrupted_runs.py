"""A labelling run killed with SIGKILL mid-way resumes without redoing or corrupting a label."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import label_propagate_command

from frugalseg.autolabel import FlowPropagator, LabelStore, propagate_split
from frugalseg.cli import main
from frugalseg.data.formats import get_format


def _records(store: Path) -> list[dict]:
    path = store / "manifest.jsonl"
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines if line.strip() and line.endswith(b"}")]


@pytest.mark.slow
def test_sigkilled_propagation_resumes_to_the_labels_of_an_uninterrupted_run(tiny_streets, tmp_path, capsys):
    """A `label propagate` process killed after 25 of its 80 labels; the same command, run again (in
    this process), writes the other 55 and leaves the 25 untouched."""
    reference = tmp_path / "reference"
    fmt = get_format("synthetic", tiny_streets)
    offsets = [s * o for o in range(1, 11) for s in (-1, 1)]
    propagate_split(fmt, "train", LabelStore(reference), offsets, FlowPropagator(), progress=False)

    out = tmp_path / "killed"
    command = label_propagate_command(tiny_streets, out, "--k", "10")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_records(out)) < 25 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {r["path"]: (out / r["path"]).stat().st_mtime_ns for r in _records(out)}
    assert 25 <= len(done_before) < 80

    assert main(command[3:]) == 0  # the command without ``python -m frugalseg``
    assert f"{80 - len(done_before)} labels written, {len(done_before)} skipped" in capsys.readouterr().out

    records = _records(out)
    keys = [(r["split"], r["clip_id"], r["offset"]) for r in records]
    assert len(keys) == len(set(keys)) == 80
    for path, mtime in done_before.items():  # labels recorded before the kill were not redone
        assert (out / path).stat().st_mtime_ns == mtime
    for record in records:  # every label equals the uninterrupted run's, byte for byte
        assert (out / record["path"]).read_bytes() == (reference / record["path"]).read_bytes()


@pytest.mark.slow
def test_ctrl_c_ends_a_labelling_run_with_whole_clips_kept_said_so_and_code_130(tmp_path):
    """A Ctrl-C finishes the clips under way, keeps every clip made whole (its 20 labels) and says what the
    store holds and how to resume, above the one line of every interrupted command."""
    from frugalseg.data.formats.synthetic import generate_synthetic_streets

    # Enough work (12 clips × 20 labels at 128×256) that the run cannot end between the check
    # below and the signal, even on a loaded machine.
    streets = generate_synthetic_streets(tmp_path / "streets", clips_per_split={"train": 12}, size=(128, 256))
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        label_propagate_command(streets, out, "--k", "10"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # pytest-xdist workers ignore SIGINT and a child inherits that; a terminal's Ctrl-C reaches a
        # process that has the default disposition, which Python turns into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(_records(out)) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    records = _records(out)
    clips = len({r["clip_id"] for r in records})
    note, *lines = err.strip().splitlines()  # one clip at a time (one core) adds how to stop at once
    assert note.startswith("interrupted: finishing and keeping the clips under way, then stopping")
    assert lines == [
        f"label propagate: interrupted; the {len(records)} labels it wrote are kept in {out}, which holds "
        f"labels of {clips} clips: run the same command again to resume (what is recorded is skipped)",
        "frugalseg: interrupted",
    ]
    assert len(records) == 20 * clips and all((out / r["path"]).is_file() for r in records)
