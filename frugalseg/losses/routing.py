"""RoutedLoss: each label kind of a batch gets its own losses and weights.

A recipe mixes manual labels, propagated pseudo-labels, clicks… in one batch, and each deserves a
different loss (CE for ``fine``, partially Huberised CE for ``pseudo``, partial CE + Gated CRF for
``clicks``). The kind of every sample is known on the host (the loader gives it), so the samples of
a kind are picked without asking the device anything; a batch of a single kind is used as it is.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from frugalseg.data.clips import IGNORE_INDEX, LabelKind
from frugalseg.errors import ConfigError
from frugalseg.losses.gated_crf import GatedCRFLoss
from frugalseg.losses.registry import LOSSES, get_loss

#: One label kind's losses: a loss name (weight 1) or loss name → weight.
LossSpec = str | dict[str, float]

#: Partially Huberised CE (τ = 3) for pseudo-labels: a wrong one costs at most a bounded amount.
DEFAULT_LOSSES: dict[str, LossSpec] = {
    "fine": "ce",
    "pseudo": "phuber_ce",
    "coarse": "ce",
    "refined_coarse": "ce",
}


def parse_loss_spec(kind: str, spec: LossSpec) -> dict[str, float]:
    """``"ce"`` → ``{"ce": 1.0}``; ``{"partial_ce": 1.0, "gated_crf": 0.1}`` is kept (weights as floats)."""
    weights = {spec: 1.0} if isinstance(spec, str) else {str(k): float(v) for k, v in dict(spec).items()}
    if not weights:
        raise ConfigError("losses", f"{kind} labels have no loss: give at least one (e.g. `{kind}: ce`)")
    return weights


def split_loss_args(kind: str, names: list[str], args: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Keyword arguments per loss of one kind.

    ``loss_args.{kind}`` is either loss name → kwargs (``clicks: {gated_crf: {radius: 5}}``) or,
    for a kind with a single loss, that loss's kwargs directly (``pseudo: {tau: 3}``).
    """
    args = dict(args or {})
    if args and all(key in names and isinstance(value, dict) for key, value in args.items()):
        return {name: dict(args.get(name, {})) for name in names}
    if args and len(names) > 1:
        raise ConfigError(
            "loss_args",
            f"{kind} labels have several losses ({', '.join(names)}); "
            f"key its arguments by loss name, e.g. {{{names[-1]}: {{…}}}}",
        )
    return {name: args for name in names}


def _get_loss(name: str, ignore_index: int, kwargs: dict[str, Any]) -> nn.Module:
    """``get_loss`` with ``ignore_index`` passed to the losses that take one."""
    factory = LOSSES.get(name)
    if factory is not None and "ignore_index" not in kwargs:
        params = inspect.signature(factory).parameters.values()
        if any(p.name == "ignore_index" or p.kind is p.VAR_KEYWORD for p in params):
            kwargs = {**kwargs, "ignore_index": ignore_index}
    return get_loss(name, **kwargs)


class RoutedLoss(nn.Module):
    """The label loss of a batch whose samples carry different label kinds.

    Each loss sees only the samples of its kind: their logits, labels, image and valid mask. A kind's
    loss is the weighted sum of its losses, each the mean over the kind's samples; kinds are combined
    by their share of the batch. Auxiliary outputs (``aux_weights``) get the kind's losses times
    their weight.

    Args:
        losses: label kind → loss name (``fine: ce``) or loss name → weight
            (``clicks: {partial_ce: 1.0, gated_crf: 0.1}``); kinds not listed cannot be trained on.
        loss_args: label kind → keyword arguments of its loss (``pseudo: {tau: 3}``), or loss name →
            keyword arguments for a kind with several losses (``clicks: {gated_crf: {radius: 5}}``).
        ignore_index: label value that gets no loss, passed to the losses that take one.
    """

    def __init__(
        self,
        losses: Mapping[str, LossSpec] | None = None,
        loss_args: Mapping[str, Mapping[str, Any]] | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        losses = dict(losses or DEFAULT_LOSSES)
        loss_args = dict(loss_args or {})
        known = [kind.value for kind in LabelKind]
        for option, kinds in (("losses", losses), ("loss_args", loss_args)):
            unknown = set(kinds) - set(known)
            if unknown:
                raise ConfigError(option, f"unknown label kinds {sorted(unknown)}; kinds are {known}")
        lossless = set(loss_args) - set(losses)
        if lossless:  # a warning, not an error: a checkpoint saved with such arguments still loads
            warnings.warn(
                f"loss_args of label kinds {sorted(lossless)} are not used: losses trains "
                f"{sorted(losses)} only (give those kinds a loss there, or leave their arguments out)",
                stacklevel=2,
            )
        self.weights = {kind: parse_loss_spec(kind, spec) for kind, spec in losses.items()}
        self.losses = nn.ModuleDict()
        for kind, weights in self.weights.items():
            kwargs = split_loss_args(kind, list(weights), loss_args.get(kind))
            self.losses[kind] = nn.ModuleDict(
                {name: _get_loss(name, ignore_index, kwargs[name]) for name in weights}
            )

    def forward(
        self,
        outputs: Mapping[str, Tensor],
        target: Tensor,
        kinds: Sequence[str | LabelKind],
        *,
        image: Tensor | None = None,
        valid: Tensor | None = None,
        aux_weights: Mapping[str, float] | None = None,
        step: int | None = None,
    ) -> tuple[Tensor, dict[str, tuple[Tensor, int]]]:
        """The routed loss and its terms.

        Args:
            outputs: the student's outputs: ``out`` (B×C×H×W logits) and one per auxiliary head.
            target: B×H×W labels.
            kinds: the label kind of each of the B samples, on the host.
            image: B×3×H×W target frames as the student sees them (for losses that read colour).
            valid: B×H×W pixels inside the (augmented) frame.
            aux_weights: weight of each auxiliary output in ``outputs``.
            step: the training step (the trainer's ``global_step``) of the losses with a warm-up
                (`GatedCRFLoss` ``ramp_steps``); None counts this call as one step. The main and the
                auxiliary outputs get the same.

        Returns:
            The scalar loss, and for logging ``{"{kind}": (loss, samples), "{kind}_{name}": …}``.
        """
        names = [LabelKind(kind).value for kind in kinds]
        if len(names) != target.shape[0]:
            raise ValueError(f"{len(names)} label kinds for a batch of {target.shape[0]} samples")
        groups: dict[str, list[int]] = {}
        for index, kind in enumerate(names):
            groups.setdefault(kind, []).append(index)
        missing = sorted(set(groups) - set(self.losses))
        if missing:
            raise ConfigError(
                "losses", f"batch has {missing} labels but the model has no loss for them (model.losses)"
            )
        total = outputs["out"].new_zeros(())
        terms: dict[str, tuple[Tensor, int]] = {}
        for kind, indices in groups.items():
            pick = _picker(indices, len(names), target.device)
            count = len(indices)
            picked = {key: pick(value) for key, value in outputs.items()}
            label, kind_image, kind_valid = pick(target), pick(image), pick(valid)
            kind_loss = total.new_zeros(())
            for name, weight in self.weights[kind].items():
                loss_fn = cast(nn.ModuleDict, self.losses[kind])[name]
                extra = _step_argument(loss_fn, step)
                term = loss_fn(picked["out"], label, image=kind_image, valid=kind_valid, **extra)
                for aux, aux_weight in (aux_weights or {}).items():
                    aux_term = loss_fn(picked[aux], label, image=kind_image, valid=kind_valid, **extra)
                    term = term + aux_weight * aux_term
                terms[f"{kind}_{name}"] = (term, count)
                kind_loss = kind_loss + weight * term
            terms[kind] = (kind_loss, count)
            total = total + kind_loss * (count / len(names))
        return total, terms


def _step_argument(loss_fn: nn.Module, step: int | None) -> dict[str, int]:
    """``{"step": k}`` for a loss with a warm-up (k: ``step``, else its steps so far), else ``{}``."""
    if not isinstance(loss_fn, GatedCRFLoss) or not loss_fn.ramp_steps:
        return {}
    return {"step": int(loss_fn.calls) if step is None else step}


def _picker(indices: list[int], size: int, device: torch.device) -> Callable[[Tensor | None], Tensor | None]:
    """A function selecting the samples ``indices`` of a batch of ``size`` (identity when all are)."""
    if len(indices) == size:
        return lambda value: value
    index = torch.tensor(indices, device=device)
    return lambda value: None if value is None else value.index_select(0, index.to(value.device))
