"""The conditional VAE (Sohn et al. 2015): p(z|c) p(x|z,c) with guide q(z|x,c).

The condition c is the one-hot label (class-conditional generation), a vector of continuous
covariates given with each datapoint (``y`` of shape (B, C): dose, age, batch effects...), or the
visible quadrants of the image itself (structured output prediction: x is the hidden rest, and only
hidden pixels count in log p(x|z,c)). :class:`Condition` holds that choice; :class:`CVAE` reuses the VAE's
construction, model and guide and only threads c through prior, encoder and decoder (the hooks
``build_condition``, ``condition`` and ``observed``).

With ``pretrain.epochs`` > 0 the CVAE is built on top of the deterministic baseline (Sohn et al.): a
pretraining phase fits x̂ = f(c) (:class:`~pyro_vae.models.baseline.Baseline`, by maximum likelihood of the
target pixels), then the decoder starts at it, f(z, c) = f(c) at z-weights zero. (Pyro's CVAE example also
fits the baseline first, but feeds its frozen prediction to the prior network instead.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Tuple

import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from torch import Tensor, nn

from ..config.schema import component, opt, positive
from ..data.base import ImageData
from ..data.quadrants import show_hidden, visible_quadrants
from ..errors import ConfigError, DataError
from ..priors.base import EncoderPrior
from ..registry import MODELS, PRIORS
from .base import Grids
from .vae import VAE, VAEConfig


class Condition(nn.Module):
    """c as a function of (x, y): the one-hot label, the covariate vector y itself, or the visible quadrants of x.

    ``visible`` (quadrants only) is a boolean mask of the data shape; the pixels it marks are the
    condition and are left out of the likelihood.
    """

    def __init__(self, kind: str, data_shape: Tuple[int, ...], num_classes: int, visible: int = 2,
                 covariate_dim: int = 0) -> None:
        super().__init__()
        self.kind, self.data_shape, self.num_classes = kind, tuple(data_shape), num_classes
        mask = visible_quadrants(self.data_shape, visible) if kind == "quadrants" else None
        self.register_buffer("visible", mask, persistent=False)
        self.register_buffer("anchor", torch.zeros(0), persistent=False)  # follows the model's device
        self.dim = int(mask.sum()) if mask is not None else covariate_dim if kind == "covariates" else num_classes
        if kind == "covariates" and covariate_dim < 1:
            raise ConfigError("model.condition: covariates needs a dataset with covariates (their width fills in "
                              "model.covariate_dim); this one has none")

    @property
    def visible_dims(self) -> int:
        """How many data dimensions are the condition, not the target (the visible pixels; 0 but for quadrants)."""
        return 0 if self.visible is None else int(self.visible.sum())

    def labels(self, y: Tensor) -> Tensor:
        """Integer labels ``(B,)`` (or one-hot ``(B, K)``) → one-hot ``(B, K)``; anything else is a DataError."""
        k = self.num_classes
        if y.dim() == 2 and y.shape[-1] == k and y.is_floating_point():
            return y
        if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
            raise DataError(f"condition: expected integer labels of shape (B,) or one-hot (B, {k}), "
                            f"got {y.dtype} of shape {tuple(y.shape)}")
        if is_validation_enabled():  # reads the labels (a host sync): first step and evaluation, not the hot loop
            bad = y[(y < 0) | (y >= k)]
            if bad.numel():
                raise DataError(f"label {int(bad[0])} is outside the classes 0..{k - 1}")
        return torch.zeros(*y.shape, k, device=y.device).scatter_(-1, y.unsqueeze(-1), 1.0)

    def covariates(self, y: Optional[Tensor]) -> Tensor:
        """Covariates ``(B, C)`` as floats; missing or of another width is a DataError."""
        if y is None:
            raise DataError(f"a covariate-conditional model needs the covariates c of width {self.dim} "
                            "(pyro-vae sample --condition c1,c2,...)")
        if y.dim() != 2 or y.shape[-1] != self.dim:
            raise DataError(f"condition: expected covariates of shape (B, {self.dim}), got {tuple(y.shape)}")
        return y.to(self.anchor.dtype)

    def forward(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """c of shape ``(B, dim)``; without data: balanced labels 0..K-1, or blank visible quadrants
        (covariates are always given)."""
        if x is not None and tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"x: expected shape (B, {', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}")
        if self.kind == "covariates":
            c = self.covariates(y)
            if x is not None and c.shape[0] != x.shape[0]:
                raise DataError(f"condition: {c.shape[0]} covariate rows for {x.shape[0]} datapoints")
            return c
        if self.visible is not None:
            if x is None:
                return torch.zeros(num_samples, self.dim, device=self.anchor.device)
            return x[:, self.visible]
        if y is None:
            if x is not None:
                raise DataError("a label-conditional model needs the labels y with x")
            y = torch.arange(num_samples, device=self.anchor.device) % self.num_classes
        c = self.labels(y)
        if x is not None and c.shape[0] != x.shape[0]:
            raise DataError(f"condition: {c.shape[0]} labels for {x.shape[0]} images")
        return c

    def observed(self, d: dist.TorchDistribution) -> dist.TorchDistribution:
        """p(x|z,c) restricted to the target: visible pixels are masked out of log p (their log-prob is 0)."""
        if self.visible is None:
            return d
        return d.base_dist.mask(~self.visible).to_event(d.reinterpreted_batch_ndims)

    def paste(self, mean: Tensor, x: Optional[Tensor]) -> Tensor:
        """``mean`` with the visible pixels of ``x`` pasted in (a completion); ``mean`` itself for labels."""
        if self.visible is None or x is None:
            return mean
        return torch.where(self.visible, x, mean)


def build_condition(config: Any, data_shape: Tuple[int, ...], num_classes: int) -> Condition:
    return Condition(config.condition, data_shape, num_classes, config.visible, config.covariate_dim)


def _visible(x: int) -> bool:
    return x in (1, 2, 3)


def _non_negative(x: int) -> bool:
    return x >= 0


@dataclass
class BaselinePretrainConfig:
    """The baseline phase before the CVAE (its own progress bar; checkpointed and resumable)."""

    epochs: int = opt(0, "epochs fitting the deterministic baseline x̂ = f(c) first, whose weights then start the "
                         "decoder (0: no baseline phase, the decoder starts at random)", _non_negative,
                      "an integer >= 0")
    lr: float = opt(1e-3, "Adam learning rate of the baseline phase", positive, "a number > 0")


@dataclass
class CVAEConfig(VAEConfig):
    type: str = "cvae"
    condition: Literal["label", "covariates", "quadrants"] = opt(
        "label", "label: c = one-hot class; covariates: c = the data's covariate vector; quadrants: c = visible "
                 "quadrants of x, x = the hidden rest")
    covariate_dim: int = opt(0, "width of c when condition: covariates (0: taken from the data)", _non_negative,
                             "an integer >= 0")
    visible: int = opt(2, "visible quadrants when condition: quadrants (1 bottom-left, 2 left half, 3 all but "
                          "bottom-right)", _visible, "1, 2 or 3")
    prior: Any = component(PRIORS, lambda: PRIORS.get("conditional").config_cls(), "p(z|c) (or an unconditional p(z))")
    pretrain: BaselinePretrainConfig = field(default_factory=BaselinePretrainConfig)


@MODELS.register("cvae", CVAEConfig)
class CVAE(VAE):
    """Conditional VAE: z ~ p(z|c), x ~ p(x|z,c); guide q(z|x,c); c = one-hot label, covariates or visible quadrants.

    Same sites as the VAE (``z``, ``x`` in ``pyro.plate("data")``); with quadrants, ``x`` scores only
    the hidden pixels, so importance sampling over q(z|x,c) estimates the conditional log p(x|c).
    """

    conditional = True

    def __init__(self, config: CVAEConfig, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__(config, data_shape, num_classes)
        self.pretrain_epochs, self.pretrain_lr = config.pretrain.epochs, config.pretrain.lr
        self.baseline = self.build_baseline() if self.pretrain_epochs else None

    @classmethod
    def check_config(cls, config: CVAEConfig) -> None:
        prior = PRIORS.get(config.prior.type, key="model.prior.type").cls
        if issubclass(prior, EncoderPrior):
            raise ConfigError(f"model.prior.type: {config.prior.type!r} mixes the encoder's q(z|u_k) at "
                              "pseudo-inputs, but a cvae's encoder also needs the condition c; use a prior that "
                              "does not need the encoder (e.g. conditional, normal, gmm, flow)")
        super().check_config(config)

    def build_condition(self) -> Condition:
        return build_condition(self.config, self.data_shape, self.num_classes)

    # ---- the baseline phase (pyro_vae.train.phases.Pretrainable) ----
    def build_baseline(self) -> nn.Module:
        """The deterministic baseline x̂ = f(c) with this CVAE's condition, network and likelihood."""
        from .baseline import Baseline, BaselineConfig, check_baseline_fits  # (baseline.py builds on this module)

        c = self.config
        baseline = Baseline(BaselineConfig(condition=c.condition, visible=c.visible, covariate_dim=c.covariate_dim,
                                           network=c.network, likelihood=c.likelihood), self.data_shape,
                            self.num_classes)
        check_baseline_fits(self, baseline, key="model.pretrain.epochs")
        return baseline

    def pretrain_loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """−Σ log p(x|c) under the baseline x̂ = f(c) (with quadrants: the hidden pixels only)."""
        return -self.baseline.log_prob(x, y).sum()

    def end_pretraining(self, data: ImageData, seed: int) -> None:
        """Start the decoder at the fitted baseline: f(z, c) = f(c) at z-weights zero."""
        from .baseline import init_from_baseline

        init_from_baseline(self, self.baseline)

    # model and guide are the VAE's, p(z|c) p(x|z,c) and q(z|x,c) = N(μ(x,c), diag σ²(x,c)), through the hooks
    # `condition` (c) and `observed` (the hidden pixels only, with quadrants)

    # ---- conveniences for pictures and evaluation (no Pyro sites) ----
    def mean(self, z: Tensor, c: Tensor, x: Optional[Tensor] = None) -> Tensor:
        """E[x|z,c], with the visible pixels of ``x`` pasted in when c is quadrants."""
        return self.cond.paste(self.likelihood.mean(self.decoder(z, c)), x)

    def decode(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.mean(z, self.cond(None, y, z.shape[-2] if z.dim() > 1 else 1))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        c = self.cond(x, y)
        return self.mean(self.encoder(x, c)[0], c, x)

    @torch.no_grad()
    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z,c] for z ~ p(z|c): class ``y`` (default: balanced classes), covariates ``y`` ``(B, C)``, or blank
        visible quadrants."""
        c = self.cond(None, y, num_samples if y is None else y.shape[0])
        z = self.prior.distribution(c).expand(c.shape[:-1]).sample()
        return self.mean(z, c)

    @torch.no_grad()
    def complete(self, x: Tensor, num_samples: int = 1) -> Tensor:
        """``(num_samples, B, *data_shape)`` completions of ``x``: z ~ p(z|c), E[x|z,c], visible pixels kept."""
        c = self.cond(x)
        z = self.prior.distribution(c).expand(c.shape[:-1]).sample((num_samples,))
        return self.mean(z, c, x)

    def pictures(self, x: Tensor, y: Tensor, per_row: int = 8) -> Grids:
        """Extra pictures for the run folder: a grid with one row per class, or test-image completions."""
        if self.covariate_dim:
            return {}
        if self.label_conditional:
            labels = torch.arange(self.num_classes, device=x.device).repeat_interleave(per_row)
            return {"samples_by_class.png": (self.generate(labels.shape[0], labels), per_row)}
        x = x[:per_row]
        rows = [show_hidden(x, self.cond.visible), x, *self.complete(x, 4)]
        return {"completions.png": (torch.cat(rows), x.shape[0])}
