"""A downscale option that shrinks the frames below what the flow or the snap needs is refused naming the
option and the largest factor the frames allow, before anything is written; not the label file alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import label_propagate_command

from frugalseg.cli import main

FLOW, SNAP = "DIS optical flow", "snapping (GrabCut)"
CASES = {  # options, the option named, what it says they shrink the 128×64 frames to, for what, the most
    "direct": (["--direct-downscale", "1000"], "direct_downscale", "0×0", FLOW, 4),
    "snap": (["--snap-downscale", "1000"], "snap_downscale", "0×0", SNAP, 4),
    "check": (["--check-downscale", "5"], "check_downscale", "25×12", FLOW, 4),
    "direct × check": (
        ["--direct-downscale", "2", "--check-downscale", "3"],
        "direct_downscale",
        "21×10",
        FLOW,
        1,
    ),
}


@pytest.mark.parametrize(("options", "option", "shrunk", "what", "most"), CASES.values(), ids=CASES.keys())
def test_a_downscale_too_large_for_the_frames_names_the_option(
    tiny_streets: Path,
    tmp_path: Path,
    capsys,
    options: list[str],
    option: str,
    shrunk: str,
    what: str,
    most: int,
) -> None:
    out = tmp_path / "store"
    assert main(label_propagate_command(tiny_streets, out, "--k", "1", *options)[3:]) == 2
    err = capsys.readouterr().err
    given = " × ".join(
        f"{a.removeprefix('--').replace('-', '_')} {b}"
        for a, b in zip(options[::2], options[1::2], strict=True)
    )
    verb = "shrink" if len(options) > 2 else "shrinks"
    assert err.startswith(f"error: {option}: {given} {verb} the frames of 128×64 (") and err.count("\n") == 1
    assert (
        f") to {shrunk} px, too small for {what}, which needs 16 px a side: at most {option} {most} " in err
    )
    assert not out.exists()


def test_the_largest_factor_named_is_accepted(tiny_streets: Path, tmp_path: Path) -> None:
    for number, option in enumerate(["--direct-downscale", "--snap-downscale"]):
        out = tmp_path / f"store{number}"
        assert main(label_propagate_command(tiny_streets, out, "--k", "1", option, "4")[3:]) == 0
