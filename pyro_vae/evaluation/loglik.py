"""Importance-sampled log-likelihood, streamed over data batches and over chunks of the K samples.

    log p(x) ≈ log (1/K) Σ_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x)

(the IWAE_K bound: a lower bound in expectation, tight as K → ∞). The K log-weights of a datapoint are
reduced chunk by chunk with a running ``logaddexp``, so memory is O(batch × chunk) for any K. The log-weights
come from the speed layer's one pass where the program fits it, else from Pyro's traces
(:class:`ImportanceWeights`); :func:`pyro_vae.evaluation.bounds.elbo_and_iwae` uses the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..data.base import ImageData
from ..errors import ConfigError
from ..fast import selfcheck
from ..fast.kernels import NO_CONSTANTS, Constants
from ..fast.onepass import NotFusable, in_particle_plate, point_scores
from ..infer.importance import log_weights
from ..rng import set_torch_rng_state, torch_rng_state

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


class ImportanceWeights:
    """log w_k = log p(x, z_k) − log q(z_k|x) and log p(x|z_k) (the observed sites), each (K, B), for K draws
    z_k ~ q(z|x) per datapoint of a batch, without gradients.

    Computed by the speed layer's one pass (:func:`pyro_vae.fast.onepass.point_scores`: each site scored at its
    sample statement, in one vectorized pass inside a particle plate); a program it does not cover (enumerated
    sites, latents the guide lacks such as a mixture component y, ...) is scored from Pyro's traces instead
    (:func:`pyro_vae.infer.importance.log_weights`). The first call finds out which; a failed one-pass try is
    undone, random draws included, so both give the same numbers on the same seed.
    """

    def __init__(self, model: nn.Module, one_pass: bool = True) -> None:
        self.model = model
        one_pass = one_pass and selfcheck.verdict() is None  # the speed layer trusted on these versions
        self.fused: Optional[bool] = None if one_pass else False  # None: not tried yet
        self.constants = Constants(model).current() if one_pass else NO_CONSTANTS

    @torch.no_grad()
    def __call__(self, x: Tensor, y: Optional[Tensor], k: int) -> Tuple[Tensor, Tensor]:
        """``(log_w, log_px_given_z)`` for ``k`` draws per datapoint of ``x``, each of shape ``(k, B)``."""
        m = self.model
        if self.fused is not False:
            state = torch_rng_state() if self.fused is None else None
            model, guide = (in_particle_plate(f, k, m.max_plate_nesting) for f in (m.model, m.guide))
            try:
                scores = point_scores(model, guide, (x, y), {}, self.constants)
            except NotFusable:
                self.fused = False
                set_torch_rng_state(state)
            else:
                self.fused = True
                log_w, rec = torch.broadcast_tensors(scores.total, scores.reconstruction)
                return log_w.reshape(k, -1), rec.reshape(k, -1)  # (k, 1, B) under deeper plate nesting
        lw = log_weights(m.model, m.guide, x, y, num_samples=k, max_plate_nesting=m.max_plate_nesting)
        return lw.total, sum(v for name, v in lw.model.items() if name not in lw.guide)


@torch.no_grad()
def log_likelihood_batch(model: nn.Module, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1000,
                         chunk_size: Optional[int] = None, bar: Any = None,
                         weights: Optional[ImportanceWeights] = None) -> LogLikelihood:
    """Importance-sampled log p(x) for one batch ``x``; K = ``num_samples`` drawn ``chunk_size`` at a time (memory
    O(B × chunk) for any K); ``weights``: the :class:`ImportanceWeights` to use (one per evaluation)."""
    if num_samples < 1:
        raise ConfigError(f"num_samples: expected an integer >= 1, got {num_samples}")
    weights = weights or ImportanceWeights(model)
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
def test_log_likelihood(model: nn.Module, data: ImageData, num_samples: int = 1000, batch_size: int = 100,
                        split: str = "test", chunk_size: Optional[int] = None,
                        progress: bool = False) -> LogLikelihood:
    """Importance-sampled log p(x) of every datapoint of ``split`` (batched over data and over K);
    ``progress``: a tqdm bar over the N·K samples (with its time estimate) on stderr."""
    from tqdm import tqdm

    n = data.train_x.shape[0] if split == "train" else data.test_x.shape[0]
    weights = ImportanceWeights(model)
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
