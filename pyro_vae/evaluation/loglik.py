"""Importance-sampled log-likelihood, streamed over data batches and over chunks of the K samples.

    log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x)

(the IWAE_K bound: a lower bound in expectation, tight as K → ∞). The K log-weights of a datapoint are
reduced chunk by chunk with a running ``logaddexp``, so memory is O(batch × chunk) for any K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from torch import Tensor, nn

from ..data.base import ImageData
from ..errors import ConfigError
from ..infer.importance import log_weights

SAMPLES_PER_PASS = 1 << 15  # z's decoded in one vectorized pass (chunk × batch): bounds peak memory


@dataclass
class LogLikelihood:
    """Per-datapoint estimates (nats), each of shape ``(N,)``, from K importance samples."""

    log_px: Tensor          # log (1/K) Σ_k w_k: importance-sampled log p(x) (= IWAE_K)
    reconstruction: Tensor  # (1/K) Σ_k log p(x|z_k): the observed sites
    kl: Tensor              # (1/K) Σ_k [log q(z_k|x) − log p(z_k)]: the latent sites
    num_samples: int

    @property
    def elbo(self) -> Tensor:
        """(1/K) Σ_k log w_k = reconstruction − kl, from the same samples."""
        return self.reconstruction - self.kl

    @property
    def mean(self) -> float:
        return float(self.log_px.mean())

    @staticmethod
    def cat(parts: "List[LogLikelihood]") -> "LogLikelihood":
        return LogLikelihood(*(torch.cat([getattr(p, f) for p in parts]) for f in ("log_px", "reconstruction", "kl")),
                             parts[0].num_samples)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


@torch.no_grad()
def log_likelihood_batch(model: nn.Module, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1000,
                         chunk_size: Optional[int] = None, bar: Any = None) -> LogLikelihood:
    """Importance-sampled log p(x) for one batch ``x``; K = ``num_samples`` drawn ``chunk_size`` at a time."""
    if num_samples < 1:
        raise ConfigError(f"num_samples: expected an integer >= 1, got {num_samples}")
    chunk_size = chunk_size or max(1, SAMPLES_PER_PASS // x.shape[0])
    log_sum = torch.full((x.shape[0],), -math.inf, device=x.device)
    rec_sum, kl_sum = torch.zeros(x.shape[0], device=x.device), torch.zeros(x.shape[0], device=x.device)
    for k in _chunks(num_samples, chunk_size):
        lw = log_weights(model.model, model.guide, x, y, num_samples=k, max_plate_nesting=model.max_plate_nesting)
        log_sum = torch.logaddexp(log_sum, torch.logsumexp(lw.total, 0))  # lw.total: (k, B)
        rec = sum(v for name, v in lw.model.items() if name not in lw.guide)
        rec_sum += rec.sum(0)
        kl_sum += (rec - lw.total).sum(0)  # log q − log p(z) over the latent sites
        if bar is not None:
            bar.update(k * x.shape[0])
    return LogLikelihood(log_sum - math.log(num_samples), rec_sum / num_samples, kl_sum / num_samples, num_samples)


@torch.no_grad()
def test_log_likelihood(model: nn.Module, data: ImageData, num_samples: int = 1000, batch_size: int = 100,
                        split: str = "test", chunk_size: Optional[int] = None,
                        progress: bool = False) -> LogLikelihood:
    """Importance-sampled log p(x) of every datapoint of ``split`` (batched over data and over K);
    ``progress``: a tqdm bar over the N·K samples (with its time estimate) on stderr."""
    from tqdm import tqdm

    n = data.train_x.shape[0] if split == "train" else data.test_x.shape[0]
    with tqdm(total=n * num_samples, disable=not progress, desc=f"log p(x), K={num_samples}", unit="z",
              unit_scale=True, dynamic_ncols=True) as bar:
        return LogLikelihood.cat([log_likelihood_batch(model, x, y, num_samples, chunk_size, bar)
                                  for x, y in data.batches(split, batch_size)])


@torch.no_grad()
def linear_gaussian_log_marginal(model: nn.Module, x: Tensor) -> Tensor:
    """Exact log p(x) = log N(x; b, WWᵀ + diag σ²) of a VAE with ``linear`` network, ``normal`` prior and a
    ``gaussian`` likelihood (σ fixed, shared or per pixel): the reference for the estimators above."""
    import pyro.distributions as dist

    from ..likelihoods.gaussian import GaussianLikelihood
    from ..nets.linear import LinearDecoder
    from ..priors.normal import NormalPrior

    decoder, likelihood = model.decoder, model.likelihood
    if not (isinstance(decoder, LinearDecoder) and isinstance(model.prior, NormalPrior)
            and isinstance(likelihood, GaussianLikelihood) and likelihood.num_params == 1):
        raise ConfigError("model: the closed-form log p(x) needs network: linear, prior: normal and a gaussian "
                          "likelihood with learn: fixed, shared or per_dim")
    W, b = decoder.weight, decoder.bias  # (P, D), (P,)
    sigma = likelihood.scale(b.reshape(1, *decoder.out_shape)).expand(model.data_shape).reshape(-1)
    cov = W @ W.T + torch.diag(sigma ** 2)
    return dist.MultivariateNormal(b, covariance_matrix=cov).log_prob(x.flatten(-len(model.data_shape)))
