"""Every picture the library writes: image grids, the latent space, training curves."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .nofollow import write_with

PathLike = Union[str, Path]
MIN_SIDE = 28  # small images (8x8 digits) are upscaled so a grid is legible


def save_figure(fig: "plt.Figure", path: PathLike, dpi: int = 120) -> None:
    """``fig.savefig`` into ``path`` (format from its extension) without following a link in its place."""
    write_with(path, lambda buffer: fig.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".").lower() or None))


def _pil_format(path: PathLike) -> str:
    """PIL's format name for ``path``'s extension (``.jpg`` -> ``JPEG``); PNG when it has none PIL knows."""
    from PIL import Image

    return Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported on the first figure (with the file-only Agg backend unless pyplot was
    already imported with another): runs and commands that draw no figure never import matplotlib."""
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


class _Pyplot:
    """``plt.subplots(...)`` etc. through :func:`pyplot`: matplotlib loads when a figure is first drawn."""

    def __getattr__(self, name: str) -> Any:
        return getattr(pyplot(), name)


plt = _Pyplot()


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 0.0) -> Tensor:
    """``(N, C, H, W)`` images as one ``(3, H', W')`` grid, ``nrow`` per row, ``padding`` pixels of ``pad_value``
    around each (grey levels repeated to RGB; one image is returned as it is), as ``torchvision.utils.make_grid``
    lays it out."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[0] == 1:
        return images[0]
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(n):
        top, left = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = images[k]
    return grid


def save_image(images: Tensor, path: Any, format: Optional[str] = None, **grid: Any) -> None:
    """:func:`make_grid` of ``images`` in [0, 1] written as an 8-bit image file or binary file object
    (``round(255·v)``, PIL; ``format``: PIL's format name, needed for a file object)."""
    from PIL import Image

    pixels = make_grid(images, **grid).mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8)
    Image.fromarray(pixels.cpu().numpy()).save(path, format=format)


def _upscale(images: Tensor) -> Tensor:
    side = images.shape[-1]
    if side >= MIN_SIDE:
        return images
    factor = -(-MIN_SIDE // side)
    return F.interpolate(images, scale_factor=factor, mode="nearest")


def show_images(images: Tensor, nrow: int = 8, title: Optional[str] = None, ax: Optional["plt.Axes"] = None,
                fontsize: int = 9) -> "plt.Axes":
    """Draw (N, C, H, W) images in [0, 1] as one grid on ``ax`` (a new figure if None), e.g. in a notebook."""
    grid = make_grid(images.detach().cpu().clamp(0, 1), nrow=nrow, padding=1, pad_value=1.0)
    ax = ax or plt.figure(figsize=(4, 4)).gca()
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize)
    return ax


def save_grid(images: Tensor, path: PathLike, nrow: int = 8) -> None:
    """Save ``(N, C, H, W)`` images in [0, 1] as one grid PNG."""
    grid = _upscale(images.detach().float().cpu().clamp(0, 1))
    write_with(path, lambda buffer: save_image(grid, buffer, format=_pil_format(path), nrow=nrow, padding=2,
                                               pad_value=1.0))


def save_reconstructions(inputs: Tensor, recons: Tensor, path: PathLike, nrow: int = 8) -> None:
    """Rows of inputs, each directly above a row of their reconstructions."""
    n = (inputs.shape[0] // nrow) * nrow or inputs.shape[0]
    inputs, recons = inputs[:n].cpu(), recons[:n].cpu()
    rows = [t for i in range(0, n, nrow) for t in (inputs[i:i + nrow], recons[i:i + nrow])]
    save_grid(torch.cat(rows), path, nrow=min(nrow, n))


def project_2d(z: Tensor) -> Tensor:
    """``z`` itself if 2-D, else its projection on the top two principal components (1-D: padded with 0)."""
    z = z.detach().float().cpu()
    if z.shape[1] == 2:
        return z
    if z.shape[1] == 1:
        return torch.cat([z, torch.zeros_like(z)], 1)
    centred = z - z.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T


def _pca_basis(z: Tensor) -> Tuple[Tensor, Tensor]:
    """``(centre, V)`` with ``project_2d(z) == (z - centre) @ V`` (identity for 2-D ``z``)."""
    z = z.detach().float().cpu()
    if z.shape[1] <= 2:
        return torch.zeros(z.shape[1]), torch.eye(z.shape[1], 2)
    centre = z.mean(0)
    _, _, v = torch.linalg.svd(z - centre, full_matrices=False)
    return centre, v[:2].T


def _draw_components(ax, components: Tuple[Tensor, Tensor, Tensor], centre: Tensor, basis: Tensor) -> None:
    """Each mixture component k as its projected mean (×) and 2σ ellipse, line width ∝ its weight π_k."""
    from matplotlib.patches import Ellipse

    weights, locs, scales = (t.detach().float().cpu() for t in components)
    xy = (locs - centre) @ basis
    for k in range(locs.shape[0]):
        cov = basis.T @ torch.diag(scales[k] ** 2) @ basis  # projected covariance V^T diag(σ_k²) V
        evals, evecs = torch.linalg.eigh(cov)
        angle = float(torch.rad2deg(torch.atan2(evecs[1, 1], evecs[0, 1])))
        width, height = (4 * evals.clamp(min=0).sqrt()).tolist()[::-1]
        lw = 0.5 + 3 * float(weights[k] / weights.max())
        ax.add_patch(Ellipse(xy[k].tolist(), width, height, angle=angle, fill=False, color="black", lw=lw, alpha=0.7))
    ax.scatter(xy[:, 0], xy[:, 1], marker="x", c="black", s=40, label="prior components (2σ)")
    ax.legend(loc="best", fontsize=8)


def save_latent(means: Tensor, labels: Tensor, path: PathLike, title: Optional[str] = None,
                components: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                clusters: Optional[Tensor] = None, label_name: str = "label",
                class_names: Optional[Sequence[str]] = None) -> None:
    """Scatter of posterior means (PCA to 2-D when needed), coloured by label; with a mixture prior's
    ``components = (weights, locs, scales)``, also its component means and 2σ ellipses in the same projection.
    With ``clusters`` (a model's assignments, ``(N,)``) a second panel beside it colours the same points by
    assigned cluster. ``label_name`` labels the colour bar (e.g. the label column's name), ``class_names`` its
    ticks (class k is ``class_names[k]``)."""
    xy, labels = project_2d(means), labels.cpu()
    panels = [(label_name, labels)] + ([("assigned cluster", clusters.cpu())] if clusters is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5), squeeze=False)
    pca = means.shape[1] > 2
    default = "aggregated posterior (means, PCA)" if pca else "aggregated posterior (means)"
    for ax, (name, colour) in zip(axes[0], panels):
        cmap = "tab10" if int(colour.max()) < 10 else "tab20"
        points = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap=cmap, s=6, alpha=0.8)
        bar = fig.colorbar(points, ax=ax, label=name)
        if class_names and name == label_name and len(class_names) <= 20:
            bar.set_ticks(range(len(class_names)), labels=list(class_names))
        if components is not None and means.shape[1] >= 2:
            _draw_components(ax, components, *_pca_basis(means))
        ax.set_xlabel("PC 1 of E[z|x]" if pca else "E[z₁|x]")
        ax.set_ylabel("PC 2 of E[z|x]" if pca else "E[z₂|x]")
        ax.set_title(title or (default + (" vs prior components" if components is not None else "")
                               + ("" if len(panels) == 1 else f"\ncoloured by {name}")), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def save_curves(history: Sequence[Dict[str, float]], path: PathLike,
                keys: Sequence[str] = ("train_elbo", "test_elbo")) -> None:
    """Per-epoch curves (ELBO per datapoint, nats) from ``metrics.jsonl`` rows."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs: List[int] = [row["epoch"] for row in history]
    for key in keys:
        ax.plot(epochs, [row[key] for row in history], label=key.replace("_", " "))
    save_epoch_axes(fig, ax, path, "nats per datapoint (higher is better)")


def save_epoch_axes(fig: "plt.Figure", ax: "plt.Axes", path: Optional[PathLike], ylabel: str) -> None:
    """Label a per-epoch plot (x: epoch), add legend and grid, save it to ``path`` (if given) and close it."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=120)
    plt.close(fig)


def save_labelled_rows(rows: Sequence[Tuple[str, Tensor]], path: PathLike, title: Optional[str] = None) -> None:
    """One labelled row of ``(N, C, H, W)`` images per ``(label, images)`` (e.g. input, truth, completions)."""
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * rows[0][1].shape[0], 1.25 * len(rows)), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        grid = make_grid(_upscale(images.detach().float().cpu().clamp(0, 1)), nrow=images.shape[0], padding=2,
                         pad_value=1.0)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def save_interpolation(images: Tensor, path: PathLike) -> None:
    """Latent interpolations ``(pairs, steps, C, H, W)``: one row per pair, from x_a (left) to x_b (right)."""
    save_grid(images.flatten(0, 1), path, nrow=images.shape[1])


def save_traversal(images: Tensor, path: PathLike) -> None:
    """Latent traversal ``(D, steps, C, H, W)``: row d sweeps z_d from −3 to 3 with the other dims fixed."""
    save_grid(images.flatten(0, 1), path, nrow=images.shape[1])


def save_vector_field(points: Tensor, grid: Tensor, displacement: Tensor, path: PathLike,
                      title: str = "reconstruction field r(x̃) − x̃ (arrows) and the data") -> None:
    """Arrows ``displacement`` (e.g. g(f(x̃)) − x̃) at 2-D ``grid`` points over a scatter of data ``points``."""
    points, grid, displacement = (t.detach().float().cpu() for t in (points, grid, displacement))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(points[:, 0], points[:, 1], s=3, c="tab:blue", alpha=0.4, label="data")
    ax.quiver(grid[:, 0], grid[:, 1], displacement[:, 0], displacement[:, 1], angles="xy", scale_units="xy",
              scale=1.0, width=0.003, color="black", alpha=0.8)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def save_singular_values(spectra: Dict[str, Tensor], path: PathLike, normalize: bool = False,
                         title: str = "Jacobian singular values at training points") -> None:
    """Per model, the mean (line) and 10–90% band of sorted singular values ``(N, K)`` against their rank;
    ``normalize`` divides each point's spectrum by its largest value (scale-free shape)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in spectra.items():
        s = s.detach().float().cpu()
        if normalize:
            s = s / s[:, :1].clamp(min=1e-12)
        rank = torch.arange(1, s.shape[1] + 1)
        lo, hi = torch.quantile(s, 0.1, dim=0), torch.quantile(s, 0.9, dim=0)
        (line,) = ax.plot(rank, s.mean(0), marker="o", ms=3, label=name)
        ax.fill_between(rank, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("rank k")
    ax.set_ylabel("σ_k / σ_1" if normalize else "σ_k")
    ax.set_title(title, fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _feature_axes(num: int, max_features: int) -> Tuple["plt.Figure", List["plt.Axes"], int]:
    """A grid of up to ``max_features`` small panels (4 per row), one per feature."""
    shown = min(num, max_features)
    cols = min(4, shown)
    rows = (shown + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[shown:]:
        ax.axis("off")
    return fig, list(axes.flat[:shown]), shown


def save_feature_scatter(x: Tensor, recon: Tensor, path: PathLike, max_features: int = 8,
                         names: Optional[Sequence[str]] = None) -> None:
    """Per feature of vector data ``(N, D)``: observed x_d against its reconstruction E[x_d | z = μ(x)],
    with the diagonal x̂ = x (points on it are reconstructed exactly)."""
    x, recon = x.detach().float().cpu().flatten(1), recon.detach().float().cpu().flatten(1)
    fig, axes, shown = _feature_axes(x.shape[1], max_features)
    for d, ax in enumerate(axes):
        ax.scatter(x[:, d], recon[:, d], s=4, alpha=0.5)
        lo, hi = float(min(x[:, d].min(), recon[:, d].min())), float(max(x[:, d].max(), recon[:, d].max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        ax.set_title(names[d] if names is not None else f"feature {d}", fontsize=9)
        ax.set_xlabel("x", fontsize=8)
        ax.set_ylabel("reconstruction", fontsize=8)
    fig.suptitle(f"held-out reconstructions (first {shown} of {x.shape[1]} features)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def save_feature_histograms(data: Optional[Tensor], samples: Tensor, path: PathLike, max_features: int = 8,
                            names: Optional[Sequence[str]] = None, bins: int = 30, drawn: str = "z ~ p(z)") -> None:
    """Per feature of vector data ``(N, D)``: the histogram of held-out data (when given) against that of
    model samples E[x|z], z ~ p(z) (the marginals a good generative model matches); ``drawn`` says how z was
    drawn (``z ~ p(z|c)`` for a conditional model)."""
    samples = samples.detach().float().cpu().flatten(1)
    data = data.detach().float().cpu().flatten(1) if data is not None else None
    both = torch.cat([data, samples]) if data is not None else samples
    fig, axes, shown = _feature_axes(samples.shape[1], max_features)
    for d, ax in enumerate(axes):
        lo, hi = float(both[:, d].min()), float(both[:, d].max())
        edges = torch.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1).numpy()
        if data is not None:
            ax.hist(data[:, d].numpy(), bins=edges, alpha=0.5, density=True, label="data")
        ax.hist(samples[:, d].numpy(), bins=edges, alpha=0.5, density=True, label="samples")
        ax.set_title(names[d] if names is not None else f"feature {d}", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{'held-out data vs ' if data is not None else ''}samples E[x|z], {drawn} "
                 f"(first {shown} of {samples.shape[1]} features)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def save_samples(samples: Tensor, path: PathLike, names: Optional[Sequence[str]] = None,
                 drawn: str = "z ~ p(z)") -> None:
    """Samples as a picture: an image grid for images; for vectors ``(N, D)`` per-feature histograms, with
    the values themselves in a CSV beside it (``path`` with suffix ``.csv``, one row per sample, ``names`` its
    header)."""
    if samples.dim() > 2:
        save_grid(samples, path)
        return
    save_feature_histograms(None, samples, path, names=names, drawn=drawn)
    save_values_csv(samples, Path(path).with_suffix(".csv"), names)


def save_values_csv(values: Tensor, path: PathLike, names: Optional[Sequence[str]] = None) -> None:
    """One row per sample (images flattened), with a header row of ``names`` when given."""
    import numpy as np

    header = ",".join(names) if names is not None else ""
    np.savetxt(path, values.detach().float().cpu().numpy().reshape(len(values), -1), delimiter=",", fmt="%.6g",
               header=header, comments="")
