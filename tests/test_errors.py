"""The package's errors: the same error, message and fields after a DataLoader worker raised it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from torch.utils.data import DataLoader, Dataset

from frugalseg.cli import _bad_input
from frugalseg.errors import (
    ConfigError,
    DataError,
    FrugalsegError,
    MissingPackageError,
    WeightsError,
    option_paths,
)


class Raising(Dataset):
    """One item, whose reading raises ``error`` (caused by an OSError, as a failed read is)."""

    def __init__(self, error: FrugalsegError) -> None:
        self.error = error

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> None:
        try:
            raise OSError("the read failed")
        except OSError as err:
            raise self.error from err


def _from_worker(error: FrugalsegError) -> FrugalsegError:
    """What the main process catches when a DataLoader worker raises ``error``."""
    loader = iter(DataLoader(Raising(error), num_workers=1))
    try:
        with pytest.raises(FrugalsegError) as caught:
            next(loader)
    finally:
        loader._shutdown_workers()  # type: ignore[attr-defined]
    return caught.value


ERRORS = [
    DataError("mixed/trunc.jpg", "the image file ends early (truncated)\na second line: of it"),
    WeightsError("https://example.org/w.pt", "sha256 differs"),
    ConfigError("data.loader.num_workers", "must be ≥ 0: got -1"),
    MissingPackageError("SAM 2 needs the sam2 package: pip install sam2"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_an_error_raised_in_a_dataloader_worker_comes_back_as_itself(error: FrugalsegError):
    got = _from_worker(error)
    assert type(got) is type(error)
    assert str(got) == str(error)
    for field in ("path", "problem", "option"):
        assert getattr(got, field, None) == getattr(error, field, None)
    assert got.__notes__[0].startswith(f"Caught {type(error).__name__} in DataLoader worker process 0.")
    assert "Original Traceback" in got.__notes__[0]  # the worker's traceback, shown by --debug
    assert _bad_input(got) is got  # the command line prints it as one line
    assert str(pickle.loads(pickle.dumps(got))) == str(error)


def test_the_rebuilt_file_error_splits_path_and_problem():
    got = _from_worker(DataError(Path("a b/c.png"), "cannot decode image"))
    assert (got.path, got.problem) == (Path("a b/c.png"), "cannot decode image")
    assert str(got) == "a b/c.png: cannot decode image"


def test_a_message_that_only_looks_like_torchs_is_kept():
    text = "Caught DataError in a net, no traceback"
    assert str(DataError(text)) == text and not hasattr(DataError(text), "__notes__")
    assert str(FrugalsegError("x", 2)) == "('x', 2)"


def test_option_paths_name_the_option_a_user_set_and_keep_the_rest() -> None:
    with pytest.raises(ConfigError) as renamed, option_paths(recipe="data.recipe.name"):
        raise ConfigError("recipe", "unknown recipe 'B4'")
    assert (renamed.value.option, str(renamed.value)) == (
        "data.recipe.name",
        "data.recipe.name: unknown recipe 'B4'",
    )
    assert isinstance(renamed.value.__cause__, ConfigError)
    with pytest.raises(ConfigError) as kept, option_paths(recipe="data.recipe.name"):
        raise ConfigError("budget", "must be >= 0, got -1")
    assert str(kept.value) == "budget: must be >= 0, got -1"
    with pytest.raises(DataError), option_paths(recipe="data.recipe.name"):
        raise DataError("a.png", "truncated")
