"""What a run will cost, checked before training starts and before anything is written: every size that scales
memory (batch × data, particles, labelled points per batch, mixture components) against the estimate
:func:`pyro_vae.resources.check_memory` also applies to ``sample -n``, and the held-out evaluation's work.

A training step on ``min(B, N) + labelled per batch`` datapoints is sized by :func:`pyro_vae.resources.step_bytes`.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..errors import ConfigError
from ..resources import check_memory, step_bytes

EVAL_WORK = 10 ** 11  # data values decoded by one epoch's held-out ELBO (test points × eval_samples × D)


def _widths(tree: Any) -> Iterable[int]:
    """Every layer width or channel count in a config (integers in lists of integers)."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _widths(value)
    elif isinstance(tree, list) and tree and all(isinstance(v, int) and not isinstance(v, bool) for v in tree):
        yield from tree


def check_run_size(config: Any, data: Any) -> None:
    """A one-line :class:`~pyro_vae.errors.ResourceError` (or ConfigError) naming the keys when ``config``
    trained on ``data`` cannot fit in memory or its per-epoch evaluation would run for days."""
    from ..config.schema import to_dict

    model = to_dict(config.model)
    prior = model.get("prior") if isinstance(model.get("prior"), dict) else {}
    components, latent = int(prior.get("num_components", 0) or 0), int(model.get("latent_dim", 0) or 0)
    if components > data.num_train:
        raise ConfigError(f"model.prior.num_components={components}: more mixture components than the "
                          f"{data.num_train} training points; expected at most {data.num_train} (fewer components, "
                          "or more data)")
    dim = math.prod(data.shape)
    batch, particles = min(config.train.batch_size, data.num_train), getattr(config.train.objective, "num_particles", 1)
    labelled = data.labeled_per_batch if data.labeled is not None else 0
    keys = [f"train.batch_size={config.train.batch_size}"] + \
        ([f"data.labeled_per_batch={labelled}"] if labelled else []) + \
        ([f"train.objective.num_particles={particles}"] if particles > 1 else [])
    what = " + ".join(keys[:2 if labelled else 1]) + "".join(f" × {k}" for k in keys[2 if labelled else 1:])
    need = step_bytes(batch + labelled, particles, dim, sum(_widths(model)), components, latent)
    check_memory(need, what, f"lower {' or '.join(k.split('=')[0] for k in keys)}",
                 f"one training step ({dim} values a datapoint)")
    work = data.num_test * config.train.eval_samples * dim
    if work > EVAL_WORK:
        raise ConfigError(f"train.eval_samples={config.train.eval_samples}: each epoch's held-out ELBO would decode "
                          f"{work:.3g} values ({data.num_test} test points × {config.train.eval_samples} samples × "
                          f"{dim}); expected at most {EVAL_WORK:.0e}: lower train.eval_samples (evaluate a finished "
                          "run with pyro-vae evaluate --num-samples K)")
