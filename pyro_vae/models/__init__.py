"""Models (model/guide pairs), registered by name (``model.type``)."""

from typing import Tuple

from torch import nn

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


def build_model(config, data_shape: Tuple[int, ...], num_classes: int = 10) -> nn.Module:
    """Instantiate the model named by ``config.type`` for data of ``data_shape``."""
    return MODELS.build(config, tuple(data_shape), num_classes)


__all__ = ["MODELS", "Clusterer", "DecoderModel", "GenerativeModel", "LatentModel", "VAE", "VAEConfig", "build_model"]
