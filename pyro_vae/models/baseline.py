"""The deterministic baseline of structured output prediction: a network x̂ = f(c), no latent variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal, Optional, Tuple

import pyro
import torch
from torch import Tensor

from ..config.schema import component, opt
from ..config.validators import non_negative, one_of
from ..data.quadrants import show_hidden
from ..errors import ConfigError
from ..registry import LIKELIHOODS, MODELS, NETWORKS
from .base import Grids
from .condition import build_condition
from .program import DecoderModel
from .vae import VAE


@dataclass
class BaselineConfig:
    type: str = "baseline"
    condition: Literal["label", "covariates", "quadrants"] = opt(
        "quadrants", "label: c = one-hot class; covariates: c = the data's covariate vector; quadrants: c = visible "
                     "quadrants of x, x = the hidden rest")
    visible: int = opt(2, "visible quadrants when condition: quadrants", one_of(1, 2, 3), "1, 2 or 3")
    covariate_dim: int = opt(0, "width of c when condition: covariates (0: taken from the data)", non_negative,
                             "an integer >= 0")
    network: Any = component(NETWORKS, lambda: NETWORKS.get("mlp").config_cls(), "the decoder architecture")
    likelihood: Any = component(LIKELIHOODS, lambda: LIKELIHOODS.get("bernoulli").config_cls(), "p(x|c)")


@MODELS.register("baseline", BaselineConfig)
class Baseline(DecoderModel):
    """Deterministic baseline: x ~ likelihood(f(c)); −log p(x|c) is the NLL of the target (hidden) pixels.

    It is the CVAE's decoder with no z (latent width 0; the shared model body with ``prior`` None); its
    guide is empty, so SVI fits it by maximum likelihood and importance weights are exactly log p(x|c).
    """

    max_plate_nesting = 1

    def __init__(self, config: BaselineConfig, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__()
        self.config, self.data_shape, self.num_classes = config, tuple(data_shape), num_classes
        self.cond = build_condition(config, self.data_shape, num_classes)
        self.prior = None  # no latent
        self.likelihood = LIKELIHOODS.build(config.likelihood, self.data_shape)
        net = NETWORKS.get(config.network.type).cls
        self.decoder = net.decoder(config.network, 0, self.data_shape, self.likelihood.num_params, self.cond.dim)

    def predict(self, c: Tensor) -> Tensor:
        """Likelihood parameters f(c), shape ``(B, num_params, *data_shape)``."""
        return self.decoder(c.new_zeros(*c.shape[:-1], 0), c)

    def log_prob(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """log p(x|c) per datapoint, shape ``(B,)``: the ``x`` site's score (with quadrants, the hidden pixels)."""
        return self.observed(self.likelihood.distribution(self.predict(self.cond(x, y)))).log_prob(x)

    def params(self, z: Optional[Tensor], c: Tensor) -> Tensor:
        """f(c): the model has no z."""
        return self.predict(c)

    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> None:
        """Nothing latent: SVI on (model, guide) maximizes log p(x|c)."""
        pyro.module("vae", self)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The prediction E[x|c] with the visible pixels of ``x`` pasted in."""
        return self.cond.paste(self.likelihood.mean(self.predict(self.cond(x, y))), x)

    @torch.no_grad()
    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x|c] for class ``y`` (default: balanced classes), covariates ``y``, or for blank visible quadrants."""
        c = self.cond(None, y, num_samples if y is None else y.shape[0])
        return self.likelihood.mean(self.predict(c))

    def pictures(self, x: Tensor, y: Tensor, per_row: int = 8) -> Grids:
        """Predictions for test images (quadrants), as rows: input, truth, prediction."""
        if self.cond.visible is None:
            return {}
        x = x[:per_row]
        return {"completions.png": (torch.cat([show_hidden(x, self.cond.visible), x, self.reconstruct(x)]), x.shape[0])}


def _decoder_pairs(cvae: VAE, baseline: Baseline, key: str) -> Iterator[Tuple[Tensor, Tensor]]:
    """(CVAE decoder tensor, baseline decoder tensor) pairs; a ConfigError naming ``key`` if they do not fit."""
    source, latent = baseline.decoder.state_dict(), cvae.latent_dim
    for name, target in cvae.decoder.state_dict().items():
        w = source.get(name)
        fits = w is not None and (w.shape == target.shape or (
            w.dim() == 2 and target.dim() == 2 and w.shape[0] == target.shape[0] and target.shape[1] - w.shape[1] == latent))
        if not fits:
            shape = "missing" if w is None else f"of shape {tuple(w.shape)}"
            raise ConfigError(f"{key}: the baseline's decoder.{name} ({shape}) cannot start the CVAE's "
                              f"{tuple(target.shape)}; the baseline phase needs a decoder whose first layer reads [z, c] "
                              "(as the mlp, conv and linear networks do)")
        yield target, w


def check_baseline_fits(cvae: VAE, baseline: Baseline, key: str = "model.pretrain.epochs") -> None:
    """ConfigError naming ``key`` unless :func:`init_from_baseline` can start ``cvae`` at ``baseline``."""
    for _ in _decoder_pairs(cvae, baseline, key):
        pass


def init_from_baseline(cvae: VAE, baseline: Baseline) -> None:
    """Start the CVAE's decoder at the baseline: f(z, c) = baseline(c) at z-weights zero.

    Every decoder tensor is copied; the first layer's weight gains zero columns for z (z comes first
    in the decoder input ``[z, c]``).
    """
    latent = cvae.latent_dim
    with torch.no_grad():
        for target, w in _decoder_pairs(cvae, baseline, "model.pretrain.epochs"):
            if w.shape == target.shape:
                target.copy_(w)
            else:
                target.zero_()
                target[:, latent:] = w
