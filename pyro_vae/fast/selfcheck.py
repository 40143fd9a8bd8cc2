"""The speed layer checks itself against Pyro the first time it meets a (torch, pyro-ppl) pair.

The one-pass ELBO and replay read private torch/Pyro names (:mod:`.compat`) and re-derive what Pyro's
``Trace_ELBO`` computes. No version is capped in ``pyproject.toml``, so before the speed layer runs on versions
it has not met, :func:`verdict` computes one tiny VAE's loss and gradients both ways (Pyro's
``Trace_ELBO.differentiable_loss``, then the speed layer eagerly and replayed) on the same random draws and
compares them. The verdict is cached per version pair in ``$PYRO_VAE_CACHE_DIR/speed-check.json`` (default
``~/.cache/pyro-vae``). A missing private name or a wrong result turns the speed layer off for the process:
the run falls back to Pyro's own ELBO, says so in one line and records the reason (``engine`` in
``metrics.jsonl`` and ``model.pt``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import pyro
import torch

from ..rng import traceless
from . import compat

CACHE_FILE = "speed-check.json"
RTOL, ATOL = 1e-4, 1e-5  # float32 round-off between the two computations of the same sums
_verdicts: Dict[str, Optional[str]] = {}  # this process: version pair -> None (trusted) or the reason not
_running = False  # inside the check itself (the speed layer it builds must not check again)


def versions() -> str:
    """The version pair the verdict is for, e.g. ``torch 2.14.1, pyro-ppl 1.9.2``."""
    return f"torch {torch.__version__}, pyro-ppl {pyro.__version__}"


def cache_path() -> Path:
    root = os.environ.get("PYRO_VAE_CACHE_DIR") or Path.home() / ".cache" / "pyro-vae"
    return Path(root) / CACHE_FILE


CompileLoss = Callable[..., Any]  # pyro_vae.fast.loss.compile_loss, handed in by its callers (no import cycle)


def verdict(compile_loss: CompileLoss) -> Optional[str]:
    """None when the speed layer (built by ``compile_loss``) may run on these versions, else why not (one phrase).
    A missing private name is looked for on every call; the numeric check runs once per version pair and is
    cached on disk."""
    if _running:
        return None
    missing = compat.missing_names()
    if missing:
        return f"private name {missing[0]} missing in {versions()}"
    key = versions()
    if key not in _verdicts:
        cached = _read_cache()
        if key in cached:
            _verdicts[key] = cached[key]
        else:
            _verdicts[key] = run_check(compile_loss)
            _write_cache({**cached, key: _verdicts[key]})
    return _verdicts[key]


def _read_cache() -> Dict[str, Optional[str]]:
    try:
        data = json.loads(cache_path().read_text())
        return {k: v for k, v in data.items() if v is None or isinstance(v, str)} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(verdicts: Dict[str, Optional[str]]) -> None:
    """Best effort: an unwritable cache only means checking again in the next process."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdicts, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def run_check(compile_loss: CompileLoss, seed: int = 0) -> Optional[str]:
    """Loss and gradients of a tiny VAE (6 → 5 → 2 latents, Bernoulli) from Pyro's ``Trace_ELBO`` against the
    speed layer's eager one pass and its replay, each on the same random draws: None when all agree to
    float32 round-off, else what differed. Pyro's param store and the random streams are left as they were."""
    global _running
    _running = True
    try:
        with traceless():  # (the tiny VAE registers its parameters under the names the caller's VAE uses)
            return _compare(compile_loss, seed)
    except Exception as e:  # the speed layer failing outright on these versions is a failed check too
        return f"self-check failed with {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    finally:
        _running = False


def _compare(compile_loss: CompileLoss, seed: int) -> Optional[str]:
    from ..config.schema import from_dict
    from ..models import build_model
    from ..registry import MODELS, OBJECTIVES

    torch.manual_seed(seed)
    config = from_dict(MODELS.get("vae").config_cls,
                       {"latent_dim": 2, "network": {"type": "mlp", "hidden_dims": [5]}})
    model = build_model(config, (6,), 0)
    x = torch.bernoulli(torch.full((4, 6), 0.5))
    objective = OBJECTIVES.get("elbo").config_cls()
    params = [p for p in model.parameters() if p.requires_grad]
    with pyro.validation_enabled(False):
        expected = _loss_and_grads(lambda: pyro.infer.Trace_ELBO().differentiable_loss(model.model, model.guide, x),
                                   params, seed)
        for replay in (False, True):
            fast = compile_loss(model, objective, replay=replay, notify=None)
            for step in range(2):  # (replay: recorded, then replayed)
                got = _loss_and_grads(lambda: fast.loss(x, None), params, seed)
                if fast.describe()["path"] == "pyro":
                    return f"the one pass did not run ({fast.describe()['reason']})"
                problem = _differs(expected, got)
                if problem:
                    what = ("replayed" if step else "recorded") if replay else "one-pass"
                    return f"{what} {problem} differs from Pyro's Trace_ELBO in {versions()}"
    return None


def _loss_and_grads(loss_fn, params, seed: int) -> Tuple[torch.Tensor, Tuple[torch.Tensor, ...]]:
    pyro.set_rng_seed(seed)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))


def _differs(expected, got) -> Optional[str]:
    (loss_a, grads_a), (loss_b, grads_b) = expected, got
    if not torch.allclose(loss_a, loss_b, rtol=RTOL, atol=ATOL):
        return f"loss ({loss_b.item():.6g} vs {loss_a.item():.6g})"
    for i, (a, b) in enumerate(zip(grads_a, grads_b)):
        if not torch.allclose(a, b, rtol=RTOL, atol=ATOL * max(1.0, a.abs().max().item())):
            return f"gradient of parameter {i}"
    return None
