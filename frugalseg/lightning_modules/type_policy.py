"""Training the learned annotation-type policy: `TypeGainModule` regresses each type's J&F gain.

The samples are features of frames of simulated annotation loops and the J&F gain each annotation
type brought there (`frugalseg.active.objects.choosing.type_policies.episode_samples`); the network is
the tiny `frugalseg.zoo.TypeGainNet`. `fit_type_gain` trains it on the CPU in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from frugalseg.errors import ConfigError
from frugalseg.lightning_modules.base import BaseTask, quiet_trainers
from frugalseg.zoo import TypeGainNet


class TypeGainModule(BaseTask):
    """Regression of the J&F gain of each annotation type (Huber loss on the gains).

    Args:
        num_features: features per sample.
        num_types: annotation types (outputs).
        hidden: width of the network's hidden layers.
        lr: AdamW's initial rate (decayed by the polynomial schedule).
        weight_decay: AdamW's weight decay.
        huber_delta: where the Huber loss turns from squared to linear (in J&F gain).
    """

    def __init__(
        self,
        num_features: int,
        num_types: int = 2,
        hidden: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        huber_delta: float = 0.1,
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:
        """The `TypeGainNet`."""
        hp = self.hparams
        self.student = TypeGainNet(hp["num_features"], hp["num_types"], hp["hidden"])

    def configure_losses(self) -> None:
        """Huber loss on the predicted gains."""
        self.loss = nn.HuberLoss(delta=self.hparams["huber_delta"])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The loss of one batch of (features, gains)."""
        features, gains = batch
        loss = self.loss(self.student(features), gains)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Log the loss on held-out samples."""
        features, gains = batch
        self.log("val/loss", self.loss(self.student(features), gains))

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """AdamW at ``lr`` with ``weight_decay``."""
        return torch.optim.AdamW(params, lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])


def fit_type_gain(
    features: np.ndarray,
    gains: np.ndarray,
    *,
    epochs: int = 200,
    batch_size: int = 64,
    hidden: int = 32,
    seed: int = 0,
) -> TypeGainNet:
    """A `TypeGainNet` trained through Lightning on ``features`` (N×F) and ``gains`` (N×K), on the CPU.

    Args:
        features: the samples' features.
        gains: the J&F gain of each type on each sample.
        epochs: passes over the samples.
        batch_size: samples per step.
        hidden: width of the hidden layers.
        seed: seed of the initial weights and the shuffling.

    Raises:
        ConfigError: no samples, or features and gains of different lengths.
    """
    if len(features) == 0 or len(features) != len(gains):
        raise ConfigError(
            "samples", f"need as many gains as features, and some: got {len(features)} and {len(gains)}"
        )
    L.seed_everything(seed, verbose=False)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(gains, dtype=torch.float32)
    module = TypeGainModule(x.shape[1], y.shape[1], hidden)
    net = module.student
    assert isinstance(net, TypeGainNet)  # configure_models built it
    net.set_normalisation(x)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    with quiet_trainers():
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
        )
        trainer.fit(module, train_dataloaders=loader)
    return net.eval()
