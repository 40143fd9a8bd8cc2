"""One call that evaluates a trained model: bounds, ELBO parts, KL split, active units, pictures.

Everything is per datapoint of the test split, in nats (higher is better for bounds):

* ``test_log_likelihood`` (= ``test_iwae``): log (1/K) Σ_k p(x,z_k)/q(z_k|x), K = ``num_samples``;
* ``test_elbo`` = ``reconstruction`` − ``kl`` from the same K samples; ``kl_analytic`` in closed form;
* ``mutual_info`` + ``marginal_kl`` = ``kl_split_total`` ≈ ``kl`` (aggregated posterior over the test set);
* ``active_units`` of ``latent_dim`` (posterior-mean variance above 0.01);
* for a likelihood over discrete grey levels (``Likelihood.levels``; the test data on its grid), each bound also in
  bits per scored dimension, ``test_elbo_bits_per_dim`` etc. = −bound / (D ln 2), D = ``scored_dims``
  (:mod:`pyro_vae.evaluation.bits`).

For a point-mass guide (``model.point_estimate``) there is no likelihood bound: the same number is reported as
``test_map_objective`` = log p(x|h) + log p(h) at h = f(x), and the ``test_iwae``/``test_log_likelihood``
keys are left out.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import torch
from torch import Tensor, nn

from ..data.dataset import Dataset
from ..models.base import GenerativeModel, LatentModel
from .active_units import THRESHOLD, active_units
from .bits import add_bits_per_dim, coded_dims
from .decomposition import analytic_kl, kl_split, supports_kl_split
from .loglik import test_log_likelihood


@torch.no_grad()
def evaluate(model: GenerativeModel, data: Dataset, num_samples: int = 100, batch_size: int = 100,
             split_samples: int = 10, threshold: float = THRESHOLD, progress: bool = False) -> Dict[str, Any]:
    """The evaluation report of ``model`` on ``data``'s test split (see the module docstring);
    ``progress``: a progress bar for the importance-sampled log p(x)."""
    model.eval()
    start = time.perf_counter()
    ll = test_log_likelihood(model, data, num_samples, batch_size, progress=progress)
    report: Dict[str, Any] = {
        "test_elbo": float(ll.elbo.mean()), "test_iwae": ll.mean, "test_log_likelihood": ll.mean,
        "reconstruction": float(ll.reconstruction.mean()), "kl": float(ll.kl.mean()),
        "num_samples": num_samples, "num_test": int(data.test_x.shape[0]),
    }
    if model.point_estimate:  # a Delta guide: the "bound" is the MAP objective
        del report["test_iwae"], report["test_log_likelihood"]
        report["test_map_objective"] = report["test_elbo"]
    add_bits_per_dim(report, coded_dims(model, (x for x, _ in data.batches("test", 1000))))
    if supports_kl_split(model):
        exact = [analytic_kl(model, x, y) for x, y in data.batches("test", 1000)]
        if all(e is not None for e in exact):
            report["kl_analytic"] = float(torch.cat(exact).mean())
        split = kl_split(model, data.test_x, data.test_y, num_samples=split_samples)
        report.update(mutual_info=split.mutual_info, marginal_kl=split.marginal_kl, kl_split_total=split.kl,
                      log_num_test=split.log_num_points)
    if isinstance(model, LatentModel):
        units = active_units(model, data, threshold)
        report.update(active_units=units.count, latent_dim=int(units.variances.numel()),
                      active_unit_variances=units.as_list())
    report["seconds"] = time.perf_counter() - start
    return report


@torch.no_grad()
def interpolation_images(model: nn.Module, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
    """E[x|z_t] along z_t = (1 − t)·μ(x_a) + t·μ(x_b), t ∈ [0, 1]: shape ``(pairs, steps, *data_shape)``."""
    z_a, z_b = model.encode(x_a)[0], model.encode(x_b)[0]
    t = torch.linspace(0, 1, steps, device=z_a.device).reshape(1, steps, 1)
    z = (1 - t) * z_a.unsqueeze(1) + t * z_b.unsqueeze(1)  # (pairs, steps, D)
    return model.decode(z.reshape(-1, z.shape[-1])).reshape(x_a.shape[0], steps, *x_a.shape[1:])


@torch.no_grad()
def traversal_images(model: nn.Module, x: Tensor, steps: int = 9, span: float = 3.0) -> Tensor:
    """E[x|z] with z = μ(x) and dim d set to each of ``steps`` values in [−span, span]: ``(D, steps, *data_shape)``."""
    z0 = model.encode(x.unsqueeze(0))[0][0]
    d = z0.shape[-1]
    z = z0.expand(d, steps, d).clone()
    values = torch.linspace(-span, span, steps, device=z0.device)
    z[torch.arange(d), :, torch.arange(d)] = values  # row d: dim d swept, the rest at μ(x)
    return model.decode(z.reshape(-1, d)).reshape(d, steps, *x.shape)
