"""Held-out accuracy of a model that predicts class labels (a semi-supervised model's classifier q(y|x))."""

from __future__ import annotations

from typing import Dict, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..data.dataset import Dataset


@runtime_checkable
class Classifier(Protocol):
    """A model with a classifier over the dataset's classes (not clusters: its classes are the labels)."""

    def class_probs(self, x: Tensor) -> Tensor:
        """q(y|x), shape ``(B, num_classes)``."""
        ...


@torch.no_grad()
def predict(model: Classifier, x: Tensor, batch_size: int = 1000) -> Tensor:
    """argmax_y q(y|x), shape ``(N,)``."""
    return torch.cat([model.class_probs(x[i:i + batch_size]).argmax(-1) for i in range(0, x.shape[0], batch_size)])


def classification_metrics(model: nn.Module, data: Dataset, split: str = "test") -> Dict[str, float]:
    """``classifier_accuracy``: mean[argmax_y q(y|x) == label] over ``split`` (the true labels, also where
    training hid them); ``{}`` for a model that is no :class:`Classifier`."""
    if not isinstance(model, Classifier):
        return {}
    model.eval()
    x, y = data.tensors(split)
    return {"classifier_accuracy": float((predict(model, x) == y).float().mean())}
