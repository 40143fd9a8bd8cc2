"""Partly labelled training data (semi-supervised learning): which labels are seen, and batches that mix them.

A batch carries ``y = −1`` wherever the label is hidden. With few labels, a random shuffle would show a
labelled point about once per epoch; :func:`mixed_batch_indices` instead tops every batch of hidden-label
points up with a fixed number of labelled ones, cycling through the labelled set.
"""

from __future__ import annotations

import math
from typing import Iterator, List, Optional

import torch
from torch import Tensor

from ..errors import ConfigError

HIDDEN = -1  # the label of a point whose label the model must not see


def choose_labeled(labels: Tensor, count: int, num_classes: int, seed: int) -> Tensor:
    """Sorted indices of ``count`` class-balanced points of ``labels``: ⌊count/K⌋ per class, the remainder
    to classes drawn at random; which points, by the seed. A ConfigError naming ``data.labeled`` when
    there are too few points (in all, or of one class)."""
    n = labels.shape[0]
    if count < 1:
        raise ConfigError(f"data.labeled: got {count}; expected an integer >= 1")
    if num_classes < 1:
        raise ConfigError(f"data.labeled: the dataset has {num_classes} classes; expected at least 1")
    if count > n:
        raise ConfigError(f"data.labeled: got {count}, but the training split has only {n} points")
    gen = torch.Generator().manual_seed(seed)
    per_class = torch.full((num_classes,), count // num_classes, dtype=torch.long)
    per_class[torch.randperm(num_classes, generator=gen)[: count % num_classes]] += 1
    labels = labels.cpu()
    chosen: List[Tensor] = []
    for k in range(num_classes):
        members = (labels == k).nonzero().squeeze(-1)
        need = int(per_class[k])
        if need > members.numel():
            raise ConfigError(f"data.labeled: {count} class-balanced labels need {need} points of class {k}, "
                              f"but the training split has {members.numel()}")
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:need]])
    return torch.cat(chosen).sort().values


def seen_labels(labels: Tensor, labeled: Optional[Tensor]) -> Tensor:
    """``labels`` at the indices ``labeled``, :data:`HIDDEN` everywhere else (everywhere when None)."""
    seen = torch.full_like(labels, HIDDEN)
    if labeled is not None:
        seen[labeled] = labels[labeled]
    return seen


def hidden_indices(n: int, labeled: Tensor) -> Tensor:
    """Indices in ``0..n-1`` not in ``labeled``."""
    mask = torch.ones(n, dtype=torch.bool, device=labeled.device)
    mask[labeled] = False
    return mask.nonzero().squeeze(-1)


def mixed_batch_indices(hidden: Tensor, labeled: Tensor, batch_size: int, per_batch: int,
                        generator: Optional[torch.Generator] = None) -> Iterator[Tensor]:
    """One epoch: the ``hidden`` points shuffled into batches of ``batch_size``, each followed by the next
    ``per_batch`` labelled points of a stream of fresh shuffles of ``labeled``. Every draw happens up
    front, so skipping the first batches (resuming) leaves the rest unchanged."""
    order = hidden[torch.randperm(hidden.numel(), generator=generator).to(hidden.device)]
    num_batches = math.ceil(hidden.numel() / batch_size)
    rounds = math.ceil(num_batches * per_batch / labeled.numel())
    stream = torch.cat([labeled[torch.randperm(labeled.numel(), generator=generator).to(labeled.device)]
                        for _ in range(rounds)])
    for b in range(num_batches):
        yield torch.cat([order[b * batch_size:(b + 1) * batch_size], stream[b * per_batch:(b + 1) * per_batch]])
