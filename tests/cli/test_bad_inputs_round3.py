"""Bad input, third round (issue 37): the cases the audit left, and the newest features (video files,
tool files) given hostile input — through the real command line.

Each case is run as `tests/cli/test_bad_inputs.py` runs its own: one clear line, the exit code,
and nothing half-written left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cli.test_bad_inputs import Case, _fit, check_case, data  # noqa: F401  (data: the fixture)


def _torch_file(tmp: Path, content: object) -> str:
    path = tmp / "weights.pt"
    torch.save(content, path)
    return str(path)


LEFT_CASES = [
    *(
        Case(
            f"fit --ckpt_path given {what}",
            lambda t, d, content=content: _fit(
                t, "--data.root", str(d["streets"]), "--ckpt_path", _torch_file(t, content)
            ),
            2,
            "weights.pt: a torch file, but not a Lightning checkpoint (it lacks "
            f"{lacks}): give a checkpoint that `frugalseg fit` wrote",
            lambda t: [t / "runs"],
        )
        for what, content, lacks in [
            ("a state dict", {"weight": torch.zeros(2)}, "'pytorch-lightning_version', 'state_dict'"),
            ("a dict with a state dict", {"state_dict": {}}, "'pytorch-lightning_version'"),
            ("a tensor", torch.zeros(2), "'pytorch-lightning_version', 'state_dict'"),
        ]
    ),
]


CASES = LEFT_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name.replace(" ", "-"))
def test_bad_input_gets_one_clear_line_and_writes_nothing(case: Case, data, tmp_path, capsys):  # noqa: F811
    check_case(case, data, tmp_path, capsys)
