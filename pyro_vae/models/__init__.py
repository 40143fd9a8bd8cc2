"""Models (model/guide pairs), registered by name (``model.type``)."""

import dataclasses
from typing import Tuple

from torch import nn

from ..errors import ConfigError
from ..registry import MODELS
from . import vae  # noqa: F401  (register the models)
from . import baseline, cvae  # noqa: F401  (conditional VAE and its deterministic baseline)
from . import autoencoders  # noqa: F401  (autoencoder, denoising, sparse, contractive)
from . import gmvae  # noqa: F401  (mixture prior with a cluster guide q(y|x))
from . import vade  # noqa: F401  (mixture prior initialised by pretraining + a fitted GMM)
from . import m2  # noqa: F401  (semi-supervised M2: partly observed class y, style z)
from .base import Clusterer, GenerativeModel, LatentModel
from .program import DecoderModel
from .vae import VAE, VAEConfig


def build_model(config, data_shape: Tuple[int, ...], num_classes: int = 10, covariate_dim: int = 0) -> nn.Module:
    """Instantiate the model named by ``config.type`` for data of ``data_shape``.

    A model config with a field ``covariate_dim`` (0: from the data) gets the data's covariate width
    ``covariate_dim`` filled in, so ``config.yaml`` records it and the run loads back without the data.
    """
    fill_covariate_dim(config, covariate_dim)
    return MODELS.build(config, tuple(data_shape), num_classes)


def fill_covariate_dim(config, covariate_dim: int) -> None:
    """Set ``config.covariate_dim`` (when the model config has one and it is 0) to the data's covariate width."""
    if not covariate_dim or not any(f.name == "covariate_dim" for f in dataclasses.fields(config)):
        return
    if config.covariate_dim == 0:
        config.covariate_dim = int(covariate_dim)
    elif config.covariate_dim != covariate_dim:
        raise ConfigError(f"model.covariate_dim: {config.covariate_dim}, but the data has {covariate_dim} covariates "
                          "(leave it 0 to take the data's)")


__all__ = ["MODELS", "Clusterer", "DecoderModel", "GenerativeModel", "LatentModel", "VAE", "VAEConfig", "build_model"]
