"""Every picture a run folder gets, chosen from its model and data and drawn with :mod:`pyro_vae.plots`.

Images: ``samples.png``, ``reconstructions.png``, ``latent.png``, the model's own pictures
(``GenerativeModel.pictures``), ``interpolation.png`` and ``traversal.png``; vectors: ``latent.png``,
``reconstruction_scatter.png``, ``sample_histograms.png`` and for 2-D points ``vector_field.png``; both
``elbo.png`` (the metrics history). A picture whose method the model leaves out (the contract's optional
``generate``/``reconstruct``/``encode``) is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import nn

from . import plots
from .evaluation.clustering import assign_clusters, has_clusters
from .evaluation.decomposition import has_unconditional_encoder
from .evaluation.report import interpolation_images, traversal_images
from .models.base import LatentModel
from .priors.base import MixturePrior


def write_pictures(run: Any) -> None:
    """(Re)write the pictures of ``run`` (a :class:`~pyro_vae.run.Run`) into its folder."""
    run.model.eval()
    data, n, folder = run.data(), run.config.train.num_images, run.path
    if len(data.shape) == 1:  # vector data (points, not images): no image grids
        write_vector_pictures(run)
        return
    model = run.model
    with torch.no_grad():
        x, y = data.test_x[:n], data.test_y[:n]
        samples = _unless_unsupported(lambda: run.sample(n))
        if samples is not None:
            plots.save_grid(samples, folder / "samples.png")
        recons = _unless_unsupported(lambda: model.reconstruct(x, y))
        if recons is not None:
            plots.save_reconstructions(run.to_data_units(x), run.to_data_units(recons), folder / "reconstructions.png")
        extra = model.pictures(x, y)  # model-level pictures
    for name, (images, per_row) in extra.items():
        plots.save_grid(images, folder / name, nrow=per_row)
    _latent_picture(run)
    write_latent_pictures(model, data, folder)  # interpolation.png, traversal.png
    _curves(run)


def write_vector_pictures(run: Any, steps: int = 17) -> None:
    """For vector data ``(N, D)``, in the data's units: ``latent.png`` (held-out posterior means coloured by
    label), ``reconstruction_scatter.png`` (x against E[x|z = μ(x)] per feature), ``sample_histograms.png``
    (held-out data against prior samples per feature), ``elbo.png``; for 2-D points also
    ``vector_field.png``, the arrows r(x̃) − x̃ of the reconstruction map r = E[x | z = μ(x̃)] on a grid
    (for a denoising autoencoder, g(f(x̃)) − x̃ points back to the data)."""
    model, data, folder = run.model, run.data(), run.path
    n = max(run.config.train.num_images, 256)
    x, y = data.test_x[:n], data.test_y[:n]
    points = data.tensors("train" if data.in_memory else "test")[0]  # a streamed dataset: the held-out points
    if data.shape == (2,) and run.standardizer is None and not data.covariate_dim:  # the grid has no c
        lo, hi = points.min(0).values, points.max(0).values
        pad = 0.25 * (hi - lo)
        axes = [torch.linspace(float(a), float(b), steps, device=points.device) for a, b in zip(lo - pad, hi + pad)]
        grid = torch.cartesian_prod(*axes)
        with torch.no_grad():
            recons = _unless_unsupported(lambda: model.reconstruct(grid))
        if recons is not None:
            plots.save_vector_field(points, grid, recons - grid, folder / "vector_field.png")
    with torch.no_grad():
        recon = _unless_unsupported(lambda: model.reconstruct(x, y))
        # held-out data against samples: unconditional models, and covariate models at the test covariates
        samples = None if model.label_conditional else _unless_unsupported(lambda: run.sample(data.num_test))
    names = run.feature_names()
    if recon is not None:
        plots.save_feature_scatter(run.to_data_units(x), run.to_data_units(recon),
                                   folder / "reconstruction_scatter.png", names=names)
    if samples is not None:
        plots.save_feature_histograms(run.to_data_units(data.test_x), samples, folder / "sample_histograms.png",
                                      names=names, drawn=run.drawn())
    _latent_picture(run)
    _curves(run)


def write_latent_pictures(model: nn.Module, data: Any, folder: Union[str, Path], pairs: int = 8,
                          max_dims: Optional[int] = 32) -> Dict[str, Path]:
    """``interpolation.png`` (rows: test pairs) and ``traversal.png`` (rows: latent dims) into ``folder``.

    Skipped (empty dict) for models without an unconditional Gaussian encoder."""
    if not has_unconditional_encoder(model):
        return {}
    model.eval()
    folder = Path(folder)
    x = data.test_x[: 2 * pairs]
    pairs = x.shape[0] // 2
    out = {"interpolation": folder / "interpolation.png", "traversal": folder / "traversal.png"}
    if pairs:
        plots.save_interpolation(interpolation_images(model, x[:pairs], x[pairs:2 * pairs]), out["interpolation"])
    traversal = traversal_images(model, data.test_x[0])[:max_dims]
    plots.save_traversal(traversal, out["traversal"])
    return out


def _latent_picture(run: Any) -> None:
    """``latent.png``: the held-out posterior means, the mixture prior's components and the assigned clusters
    (a model without a latent, e.g. the baseline, or without ``encode``: none)."""
    model, data = run.model, run.data()
    if not isinstance(model, LatentModel):
        return
    with torch.no_grad():
        means = _unless_unsupported(lambda: model.encode(data.test_x, data.test_y)[0])
        if means is None:
            return
        components = model.prior.components() if isinstance(model.prior, MixturePrior) else None
        clusters = assign_clusters(model, data.test_x) if has_clusters(model) else None
    plots.save_latent(means, _latent_colours(data), run.path / "latent.png", components=components,
                      clusters=clusters, label_name=run.label_name(), class_names=_class_names(data))


def _curves(run: Any) -> None:
    if run.history:
        plots.save_curves(run.history, run.path / "elbo.png")


def _latent_colours(data: Any) -> torch.Tensor:
    """What colours the latent plot: the test labels, else the first covariate, else one colour."""
    labels = data.labels("test")
    if labels is not None:
        return labels
    return data.test_y[:, 0] if data.covariate_dim else torch.zeros(data.num_test)


def _class_names(data: Any) -> Optional[List[str]]:
    """The names of the label classes the latent plot is coloured by (None: numbers, or covariates)."""
    return None if data.covariate_dim else data.class_names


def _unless_unsupported(make: Callable[[], torch.Tensor]) -> Optional[torch.Tensor]:
    """``make()``, or None when the model does not implement it (the contract's optional methods)."""
    try:
        return make()
    except NotImplementedError:
        return None
