"""Clustering metrics of a model that clusters (a mixture prior, a cluster guide q(y|x)) or of any assignment.

* ``cluster_accuracy``: max over one-to-one maps of clusters to labels of the fraction matched (Hungarian);
* ``cluster_purity``: many-to-one accuracy (each cluster read as its most frequent label);
* ``cluster_nmi`` / ``cluster_ari``: normalized mutual information / adjusted Rand index with the labels;
* ``clusters_used``: distinct clusters assigned; ``components_used``: clusters holding >= 1 % of the points.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..data.dataset import Dataset
from ..models.base import Clusterer, LatentModel
from ..priors.base import MixturePrior


def hungarian_accuracy(clusters: np.ndarray, labels: np.ndarray) -> float:
    """max over one-to-one maps m of clusters to labels of mean[m(cluster) == label] (unmatched clusters count wrong)."""
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    from scipy.optimize import linear_sum_assignment  # (imported on use: SciPy is slow to import)

    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Many-to-one accuracy: each cluster is read as its most frequent label."""
    counts = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    return float(counts.max(1).sum() / len(labels))


def has_clusters(model: nn.Module) -> bool:
    """True for a :class:`~pyro_vae.models.base.Clusterer` (a cluster guide q(y|x)), or a latent model with a
    :class:`~pyro_vae.priors.base.MixturePrior`."""
    return isinstance(model, Clusterer) or (isinstance(model, LatentModel) and isinstance(model.prior, MixturePrior))


@torch.no_grad()
def cluster_probs(model: nn.Module, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
    """Component probabilities ``(B, K)``: the guide's q(y|x) where the model has one, else the mixture
    prior's p(y = k | z = E[z|x])."""
    if isinstance(model, Clusterer):
        return model.cluster_probs(x, y)
    return model.prior.responsibilities(model.encode(x, y)[0])


@torch.no_grad()
def assign_clusters(model: nn.Module, x: Tensor, y: Optional[Tensor] = None, batch_size: int = 1000) -> Tensor:
    """argmax_k of :func:`cluster_probs`, shape ``(N,)``."""
    parts = [cluster_probs(model, x[i:i + batch_size], None if y is None else y[i:i + batch_size]).argmax(-1)
             for i in range(0, x.shape[0], batch_size)]
    return torch.cat(parts)


USED_FRACTION = 0.01  # a component "is used" when it holds at least 1 % of the points


def assignment_metrics(clusters: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Hungarian accuracy, purity, NMI, ARI and the clusters used, for integer ``clusters`` against ``labels``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # (on use: slow to import)

    clusters, labels = np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(clusters)
    return {"cluster_accuracy": hungarian_accuracy(clusters, labels), "cluster_purity": purity(clusters, labels),
            "cluster_nmi": float(normalized_mutual_info_score(labels, clusters)),
            "cluster_ari": float(adjusted_rand_score(labels, clusters)),
            "clusters_used": int((sizes > 0).sum()),
            "components_used": int((sizes >= USED_FRACTION * len(clusters)).sum())}


def clustering_metrics(model: nn.Module, data: Dataset, split: str = "test") -> Dict[str, float]:
    """For a model that clusters (:func:`has_clusters`): :func:`assignment_metrics` of its cluster assignments
    against the labels of ``split``, plus ``num_components`` (K, of a mixture prior); ``{}`` for other models."""
    if not has_clusters(model):
        return {}
    model.eval()
    x, y = data.tensors(split)
    clusters = assign_clusters(model, x).cpu().numpy()
    report = assignment_metrics(clusters, y.cpu().numpy())
    if isinstance(model, LatentModel) and isinstance(model.prior, MixturePrior):
        report["num_components"] = int(model.prior.components()[0].shape[0])
    return report
