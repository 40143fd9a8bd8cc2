"""Every picture the library writes: image grids, the latent space, training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

PathLike = Union[str, Path]
MIN_SIDE = 28  # small images (8x8 digits) are upscaled so a grid is legible


def _upscale(images: Tensor) -> Tensor:
    side = images.shape[-1]
    if side >= MIN_SIDE:
        return images
    factor = -(-MIN_SIDE // side)
    return F.interpolate(images, scale_factor=factor, mode="nearest")


def save_grid(images: Tensor, path: PathLike, nrow: int = 8) -> None:
    """Save ``(N, C, H, W)`` images in [0, 1] as one grid PNG."""
    save_image(_upscale(images.detach().float().cpu().clamp(0, 1)), str(path), nrow=nrow, padding=2, pad_value=1.0)


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


def save_latent(means: Tensor, labels: Tensor, path: PathLike, title: Optional[str] = None) -> None:
    """Scatter of posterior means (PCA to 2-D when needed), coloured by label."""
    xy, labels = project_2d(means), labels.cpu()
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
    fig.colorbar(points, ax=ax, label="label")
    pca = means.shape[1] > 2
    ax.set_xlabel("PC 1 of E[z|x]" if pca else "E[z₁|x]")
    ax.set_ylabel("PC 2 of E[z|x]" if pca else "E[z₂|x]")
    ax.set_title(title or ("posterior means (PCA)" if pca else "posterior means"))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_curves(history: Sequence[Dict[str, float]], path: PathLike,
                keys: Sequence[str] = ("train_elbo", "test_elbo")) -> None:
    """Per-epoch curves (ELBO per datapoint, nats) from ``metrics.jsonl`` rows."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs: List[int] = [row["epoch"] for row in history]
    for key in keys:
        ax.plot(epochs, [row[key] for row in history], label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per datapoint (higher is better)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
