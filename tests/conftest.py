"""Shared fixtures: the real sample data (its tests marked ``realdata``), a small generated dataset, one
torch thread (and one OpenCV thread where asked), an isolated cache, and random-weight SAM 2 engines
with their checkpoint files; and a check that the suite leaves the checkout as it found it."""

from __future__ import annotations

import os
import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"
#: What tools, not tests, write into a checkout: left out of the check that tests write only under tmp_path.
TOOL_FOLDERS = {
    ".git",
    ".venv",
    "build",
    "dist",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".cache",  # CI's FRUGALSEG_CACHE and the Label Studio of the end-to-end test (it rewrites its files)
}


def ignored_folders(root: Path = REPOSITORY) -> list[str]:
    """The folder patterns of ``root``'s ``.gitignore``: its lines ending in ``/`` (``runs/``, ``.cache/`` …).

    What git ignores is what a run writes (``make demo`` while ``make test`` runs), not a test.
    """
    path = root / ".gitignore"
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
    return [line.strip("/") for line in lines if line.endswith("/") and not line.startswith(("#", "!"))]


def checkout_files(root: Path = REPOSITORY) -> dict[str, tuple[int, int]]:
    """(size, modification time) of every file in the checkout ``root``, by its relative path.

    Tools' folders (`TOOL_FOLDERS`) and the folders ``root``'s ``.gitignore`` ignores are left out.
    """
    files = {}
    ignored = ignored_folders(root)
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [
            d
            for d in subfolders
            if d not in TOOL_FOLDERS
            and not d.endswith(".egg-info")
            and not any(fnmatch(d, p) for p in ignored)
        ]
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            files[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return files


def checkout_changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files added, changed or removed between two `checkout_files`, each named with what happened."""
    added = [f"added {name}" for name in sorted(after.keys() - before.keys())]
    removed = [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    kept = sorted(before.keys() & after.keys())
    changed = [f"changed {name}" for name in kept if before[name] != after[name]]
    return added + changed + removed


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the checkout's files before any test runs (in the xdist controller, or the only process)."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_CHECKOUT] = checkout_files()


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its example database and constants out of the checkout (its default folder).

    The process that makes the folder (the xdist controller, whose workers inherit it) removes it at the end.
    """
    if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
        folder = tempfile.mkdtemp(prefix="frugalseg-hypothesis-")
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = folder
        config.stash[_HYPOTHESIS_FOLDER] = folder


@pytest.fixture(scope="session", autouse=True)
def lightning_logs_to_the_sessions_stderr() -> None:
    """Import Lightning before any test captures stderr: its logger's handler keeps the ``sys.stderr`` of
    its import, and imported under one test's capsys it wrote the next test's records to a closed stream
    ("--- Logging error ---", then a traceback in that test's stderr)."""
    import lightning.pytorch  # noqa: F401


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the Hypothesis folder this process made (`pytest_configure`), and unset it."""
    folder = config.stash.get(_HYPOTHESIS_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        del os.environ["HYPOTHESIS_STORAGE_DIRECTORY"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session when a test wrote into the checkout: tests write only under their temporary folder."""
    before = session.config.stash.get(_CHECKOUT, None)
    if before is None:
        return
    changes = checkout_changes(before, checkout_files())
    if changes:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["the tests changed the checkout (write under tmp_path instead):", *changes[:20]]
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_CHECKOUT = pytest.StashKey[dict[str, tuple[int, int]]]()
_HYPOTHESIS_FOLDER = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects: ``-m "not realdata"`` leaves them out
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``realdata`` every test that uses the ``shared_data`` fixture (directly or through another)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (real Cityscapes, DAVIS and CamVid samples); tests that need it are skipped,
    with the reason, in a clone that does not have it beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real sample data are not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Point frugalseg's cache (synthetic data, pseudo-labels) and the folder that publishing writes to
    at fresh folders for the session, so no test writes into the repository or the user's cache; and
    the Hugging Face Hub at an empty, offline cache, so a Hub id no test put there fails instead of
    reaching a network (``hub_cache`` fills one)."""
    from huggingface_hub import constants

    cache = tmp_path_factory.mktemp("frugalseg_cache")
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    hf_home = tmp_path_factory.mktemp("hf_home")
    variables = {
        "FRUGALSEG_CACHE": str(cache),
        "FRUGALSEG_CHECKPOINTS": str(checkpoints),
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_HUB_OFFLINE": "1",
    }
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    hub = pytest.MonkeyPatch()
    hub.setattr(constants, "HF_HOME", str(hf_home))
    hub.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    hub.setattr(constants, "HF_HUB_OFFLINE", True)
    yield cache
    hub.undo()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def tiny_streets(tmp_path_factory) -> Path:
    """A small synthetic streets set: 4 train and 3 val clips of 30 frames at 64×128."""
    from frugalseg.data.formats.synthetic import generate_synthetic_streets

    root = tmp_path_factory.mktemp("streets") / "tiny"
    return generate_synthetic_streets(root, clips_per_split={"train": 4, "val": 3}, size=(64, 128))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op torch thread for the whole session, and for the processes tests start.

    The tests run tiny models, for which one thread is as fast as two; on a 2-core machine that
    also runs data-loader workers or other jobs, two OpenMP threads waiting on each other made
    small steps up to 100× slower.
    """
    import torch

    previous_threads, previous_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(previous_threads)
    if previous_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = previous_env


@pytest.fixture
def one_cv_thread():
    """OpenCV on one thread for the test (GrabCut and DIS give the same bytes whatever the thread count)."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(previous)


SAM2_IMAGE_SIZE = 64  # the smallest SAM 2 input; its low-resolution masks are 16×16


def _sam2_checkpoint(state: dict, path: Path) -> Path:
    """SAM 2 weights in the official checkpoint layout, half precision to keep the file small."""
    import torch

    torch.save({"model": {k: v.half() for k, v in state.items()}}, path)
    return path


@pytest.fixture(scope="session")
def sam2_engine():
    """The SAM 2 propagation engine (sam2.1_hiera_t), random weights: for the pipeline, not quality."""
    import torch

    from frugalseg.autolabel.sam2_loading import SAM2Options
    from frugalseg.autolabel.sam2_propagate import SAM2Propagator

    torch.manual_seed(0)
    return SAM2Propagator(SAM2Options(random_weights=True, image_size=SAM2_IMAGE_SIZE, device="cpu"))


@pytest.fixture(scope="session")
def sam2_checkpoint(sam2_engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam2_engine``'s weights as a checkpoint file."""
    return _sam2_checkpoint(
        sam2_engine.predictor.state_dict(), tmp_path_factory.mktemp("sam2") / "tiny_random.pt"
    )


@pytest.fixture(scope="session")
def sam2_clicks():
    """The ``sam2`` click model (sam2.1_hiera_t), random weights: tests of the pipeline, not of quality."""
    import torch

    from frugalseg.active.objects.tools.click_models import SAM2Clicks
    from frugalseg.autolabel.sam2_loading import SAM2Options

    torch.manual_seed(0)
    return SAM2Clicks(SAM2Options(random_weights=True, image_size=SAM2_IMAGE_SIZE, device="cpu"))


@pytest.fixture(scope="session")
def sam2_clicks_checkpoint(sam2_clicks, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam2_clicks``' weights as a checkpoint file."""
    state = sam2_clicks.predictor.model.state_dict()
    return _sam2_checkpoint(state, tmp_path_factory.mktemp("sam2_clicks") / "tiny_random.pt")


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Hugging Face cache in a temporary ``HF_HOME``, offline; ``add`` fills it (tests/hub_cache.py)."""
    from hub_cache import HubCache

    return HubCache(tmp_path / "hf_home", monkeypatch)
