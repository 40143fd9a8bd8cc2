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

import torch
from torch import Tensor

from ..config.schema import component, opt
from ..config.validators import non_negative, one_of, positive
from ..data.dataset import Dataset
from ..data.quadrants import show_hidden
from ..errors import ConfigError
from ..priors.base import EncoderPrior
from ..registry import MODELS, PRIORS
from .base import Grids
from .baseline import Baseline, BaselineConfig, check_baseline_fits, init_from_baseline
from .condition import Condition, build_condition
from .vae import VAE, VAEConfig


def baseline_for(config: Any, data_shape: Tuple[int, ...], num_classes: int) -> Baseline:
    """The deterministic baseline x̂ = f(c) with the condition, network and likelihood of the CVAE config ``config``."""
    return Baseline(BaselineConfig(condition=config.condition, visible=config.visible,
                                   covariate_dim=config.covariate_dim, network=config.network,
                                   likelihood=config.likelihood), data_shape, num_classes)


@dataclass
class BaselinePretrainConfig:
    """The baseline phase before the CVAE (its own progress bar; checkpointed and resumable)."""

    epochs: int = opt(0, "epochs fitting the deterministic baseline x̂ = f(c) first, whose weights then start the "
                         "decoder (0: no baseline phase, the decoder starts at random)", non_negative,
                      "an integer >= 0")
    lr: float = opt(1e-3, "Adam learning rate of the baseline phase", positive, "a number > 0")


@dataclass
class CVAEConfig(VAEConfig):
    type: str = "cvae"
    condition: Literal["label", "covariates", "quadrants"] = opt(
        "label", "label: c = one-hot class; covariates: c = the data's covariate vector; quadrants: c = visible "
                 "quadrants of x, x = the hidden rest")
    covariate_dim: int = opt(0, "width of c when condition: covariates (0: taken from the data)", non_negative,
                             "an integer >= 0")
    visible: int = opt(2, "visible quadrants when condition: quadrants (1 bottom-left, 2 left half, 3 all but "
                          "bottom-right)", one_of(1, 2, 3), "1, 2 or 3")
    prior: Any = component(PRIORS, lambda: PRIORS.get("conditional").config_cls(), "p(z|c) (or an unconditional p(z))")
    pretrain: BaselinePretrainConfig = field(default_factory=BaselinePretrainConfig)


@MODELS.register("cvae", CVAEConfig)
class CVAE(VAE):
    """Conditional VAE: z ~ p(z|c), x ~ p(x|z,c); guide q(z|x,c); c = one-hot label, covariates or visible quadrants.

    Same sites as the VAE (``z``, ``x`` in ``pyro.plate("data")``); with quadrants, ``x`` scores only
    the hidden pixels, so importance sampling over q(z|x,c) estimates the conditional log p(x|c).
    """

    conditional = True

    def __init__(self, config: CVAEConfig, data_shape: Tuple[int, ...], num_classes: int = 10,
                 baseline: Optional[Baseline] = None) -> None:
        """``baseline``: the deterministic baseline x̂ = f(c) whose fit starts the decoder (as Pyro's CVAE example is
        handed its pre-trained baseline network); default with ``pretrain.epochs`` > 0: :func:`baseline_for` ``config``."""
        super().__init__(config, data_shape, num_classes)
        self.pretrain_epochs, self.pretrain_lr = config.pretrain.epochs, config.pretrain.lr
        if baseline is None and self.pretrain_epochs:
            baseline = baseline_for(config, self.data_shape, num_classes)
        if baseline is not None:
            check_baseline_fits(self, baseline, key="model.pretrain.epochs")
        self.baseline = baseline

    @classmethod
    def check_config(cls, config: CVAEConfig) -> None:
        prior = PRIORS.get(config.prior.type, key="model.prior.type").cls
        if issubclass(prior, EncoderPrior):
            raise ConfigError(f"model.prior.type: {config.prior.type!r} mixes the encoder's q(z|u_k) at "
                              "pseudo-inputs, but a cvae's encoder also needs the condition c; use a prior that "
                              "does not need the encoder (e.g. conditional, normal, gmm, flow)")
        super().check_config(config)

    def build_condition(self) -> Condition:
        """c(x, y) as ``model.condition`` says (:mod:`~pyro_vae.models.condition`)."""
        return build_condition(self.config, self.data_shape, self.num_classes)

    # ---- the baseline phase (pyro_vae.train.phases.Pretrainable) ----
    def pretrain_loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """−Σ log p(x|c) under the baseline x̂ = f(c) (with quadrants: the hidden pixels only)."""
        return -self.baseline.log_prob(x, y).sum()

    def end_pretraining(self, data: Dataset, seed: int) -> None:
        """Start the decoder at the fitted baseline: f(z, c) = f(c) at z-weights zero."""
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
