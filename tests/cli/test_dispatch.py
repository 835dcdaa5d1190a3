"""Dispatch: ``frugalseg --help`` lists every command, ``--version`` prints, and ``label --help`` stays light
(it imports neither Lightning nor timm nor smp)."""

from __future__ import annotations

import subprocess
import sys

import frugalseg


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_label_help_imports_no_lightning_timm_or_smp():
    code = (
        "import sys\n"
        "from frugalseg.cli import main\n"
        "try:\n    main(['label', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['lightning', 'pytorch_lightning', 'timm', 'segmentation_models_pytorch']\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    out = _run(code)
    assert "propagate" in out and "refine-coarse" in out and "HEAVY []" in out


def test_help_lists_every_command_and_version_prints():
    overview = _run("from frugalseg.cli import main; main(['--help'])")
    for command in ("fit", "validate", "test", "predict", "vos", "label", "data", "zoo"):
        assert f"\n  {command} " in overview
    assert (
        _run("from frugalseg.cli import main; main(['--version'])").strip()
        == f"frugalseg {frugalseg.__version__}"
    )
