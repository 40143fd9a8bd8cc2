"""Importance-sampled log-likelihood, streamed over data batches and over chunks of the K samples.

    log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x)

(the IWAE_K bound: a lower bound in expectation, tight as K → ∞). The K log-weights of a datapoint are
reduced chunk by chunk with a running ``logaddexp``, so memory is O(batch × chunk) for any K. The log-weights
come from the speed layer's entry :func:`pyro_vae.fast.log_weights` (its one pass where the program fits it,
else Pyro's traces); :func:`pyro_vae.evaluation.bounds.elbo_and_iwae` uses the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from torch import Tensor, nn

from ..data.dataset import Dataset
from ..errors import ConfigError
from ..fast import ImportanceWeights, log_weights

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
        return LogLikelihood(torch.cat([p.log_px for p in parts]), torch.cat([p.reconstruction for p in parts]),
                             torch.cat([p.kl for p in parts]), parts[0].num_samples)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


@torch.no_grad()
def log_likelihood_batch(model: nn.Module, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1000,
                         chunk_size: Optional[int] = None, bar: Any = None,
                         weights: Optional[ImportanceWeights] = None) -> LogLikelihood:
    """Importance-sampled log p(x) for one batch ``x``; K = ``num_samples`` drawn ``chunk_size`` at a time (memory
    O(B × chunk) for any K); ``weights``: the :class:`ImportanceWeights` to use (one per evaluation)."""
    if num_samples < 1:
        raise ConfigError(f"num_samples: expected an integer >= 1, got {num_samples}")
    weights = weights or log_weights(model)
    chunk_size = chunk_size or max(1, SAMPLES_PER_PASS // x.shape[0])
    log_sum = rec_sum = kl_sum = None
    for k in _chunks(num_samples, chunk_size):
        log_w, rec = weights(x, y, k)  # (k, B) each
        lse, rec_k, kl_k = torch.logsumexp(log_w, 0), rec.sum(0), (rec - log_w).sum(0)  # kl: log q − log p(z)
        if log_sum is None:
            log_sum, rec_sum, kl_sum = lse, rec_k, kl_k
        else:
            log_sum, rec_sum, kl_sum = torch.logaddexp(log_sum, lse), rec_sum + rec_k, kl_sum + kl_k
        if bar is not None:
            bar.update(k * x.shape[0])
    shape = x.shape[:1]  # a program whose sites do not depend on the draws still gives one number per datapoint
    return LogLikelihood((log_sum - math.log(num_samples)).expand(shape), (rec_sum / num_samples).expand(shape),
                         (kl_sum / num_samples).expand(shape), num_samples)


@torch.no_grad()
def test_log_likelihood(model: nn.Module, data: Dataset, num_samples: int = 1000, batch_size: int = 100,
                        split: str = "test", chunk_size: Optional[int] = None,
                        progress: bool = False) -> LogLikelihood:
    """Importance-sampled log p(x) of every datapoint of ``split`` (batched over data and over K);
    ``progress``: a tqdm bar over the N·K samples (with its time estimate) on stderr."""
    from tqdm import tqdm

    n = data.num_train if split == "train" else data.num_test
    weights = log_weights(model)
    with tqdm(total=n * num_samples, disable=not progress, desc=f"log p(x), K={num_samples}", unit="z",
              unit_scale=True, dynamic_ncols=True) as bar:
        return LogLikelihood.cat([log_likelihood_batch(model, x, y, num_samples, chunk_size, bar, weights)
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
