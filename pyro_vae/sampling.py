"""Prior draws of a trained model: E[x|z] for z ~ p(z), or z ~ p(z|c) at a class label or at covariates."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .errors import ConfigError
from .models.base import GenerativeModel


@torch.no_grad()
def draw(model: GenerativeModel, num_samples: int, label: Optional[int] = None,
         condition: Optional[Sequence[float]] = None, test_covariates: Optional[Callable[[], Tensor]] = None,
         model_type: str = "") -> Tensor:
    """E[x|z] for ``num_samples`` prior draws z ~ p(z) (a label-conditional model: z ~ p(z|c = ``label``);
    a covariate-conditional model: z ~ p(z|c) at covariates ``condition``, by default at ``test_covariates()``
    in turn), in the model's units. ``model_type`` names the model in errors."""
    model.eval()
    device = next(model.parameters()).device
    width = model.covariate_dim
    if condition is not None:
        if not width:
            raise ConfigError(f"condition: this run's model ({model_type}) is not conditioned on "
                              "covariates (train a model.type: cvae with condition: covariates)")
        c = torch.as_tensor(condition, dtype=torch.float32, device=device).reshape(-1)
        if c.numel() != width:
            raise ConfigError(f"condition: got {c.numel()} values, but this run is conditioned on {width} "
                              f"covariates; expected {width} numbers")
        return model.generate(num_samples, c.expand(num_samples, width))
    if width:  # no c given: the held-out covariates, in turn
        covariates = test_covariates()
        return model.generate(num_samples, covariates[torch.arange(num_samples, device=covariates.device)
                                                      % covariates.shape[0]])
    if label is None:
        return model.generate(num_samples)
    if not model.label_conditional:
        raise ConfigError(f"label {label}: this run's model ({model_type}) is not conditioned on "
                          "class labels (train a model.type: cvae with condition: label)")
    return model.generate(num_samples, torch.full((num_samples,), label, device=device))
