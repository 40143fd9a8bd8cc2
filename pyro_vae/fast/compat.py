"""Every private Pyro/torch name the speed layer relies on, in one place (tested in ``tests/test_fast_compat.py``).

Tested with the torch and pyro-ppl versions listed in ``docs/speed.md``; ``pyproject.toml`` caps neither. Each
helper names the private attribute it reads; when a release renames one, this is the only file to change, the
compatibility test says which helper broke, and :func:`missing_names` (checked by
:mod:`pyro_vae.fast.selfcheck` before the speed layer runs) makes the library fall back to Pyro's own ELBO.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn
import torch.distributions.utils as _dist_utils

PRIVATE_NAMES = (  # (where, name): every private name below, for missing_names()
    ("torch.distributions.utils", "_standard_normal"), ("torch.distributions.utils", "_sum_rightmost"),
    ("torch.distributions.Distribution", "_extended_shape"), ("pyro.infer.ELBO", "_vectorized_num_particles"),
    ("torch.Tensor", "_base"), ("torch.Tensor", "_version"), ("torch.nn.Module", "_parameters"),
    ("torch.nn.Module", "_buffers"), ("torch.fx.experimental.proxy_tensor", "make_fx"),
)


def _owner(where: str) -> Any:
    """The module or class named by a dotted path (imported if a module)."""
    import importlib

    module, _, attr = where.rpartition(".")
    try:
        return importlib.import_module(where)
    except ImportError:
        return getattr(importlib.import_module(module), attr)


_looked_up: Dict[Tuple[Tuple[str, str], ...], List[str]] = {}  # PRIVATE_NAMES -> missing ones (once a process)


def missing_names() -> List[str]:
    """The private names of :data:`PRIVATE_NAMES` this torch/Pyro lacks (``where.name``), empty when all exist.
    Instance attributes (``Tensor._base``, ``Module._parameters``) are looked up on an instance."""
    if PRIVATE_NAMES not in _looked_up:
        _looked_up[PRIVATE_NAMES] = _look_up(PRIVATE_NAMES)
    return list(_looked_up[PRIVATE_NAMES])


def _look_up(names: Tuple[Tuple[str, str], ...]) -> List[str]:
    probes = {"torch.Tensor": torch.zeros(1), "torch.nn.Module": nn.Module()}
    missing = []
    for where, name in names:
        try:
            owner = probes[where] if where in probes else _owner(where)
            getattr(owner, name)
        except (ImportError, AttributeError):
            missing.append(f"{where}.{name}")
    return missing

def standard_normal(shape: torch.Size, like: Tensor) -> Tensor:
    """ε ~ N(0, I) of ``shape``, drawn exactly as ``torch.distributions.Normal.rsample`` draws it
    (``torch.distributions.utils._standard_normal``), so the one-pass guide and Pyro's draw the same ε."""
    return _dist_utils._standard_normal(shape, dtype=like.dtype, device=like.device)


def extended_shape(fn: Any, sample_shape: torch.Size = torch.Size()) -> torch.Size:
    """``sample_shape + batch_shape + event_shape`` (one draw by default) (``Distribution._extended_shape``)."""
    return fn._extended_shape(sample_shape)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """Sum of the ``dim`` rightmost dims (``torch.distributions.utils._sum_rightmost``)."""
    return _dist_utils._sum_rightmost(value, dim)


def is_family(fn: Any, family: type) -> bool:
    """``fn`` is ``family`` itself or Pyro's thin wrapper of it (``pyro.distributions.Normal`` subclasses
    ``torch.distributions.Normal`` and ``TorchDistributionMixin`` and changes no math), not a user subclass that
    may change ``log_prob``: the wrapper's first base class (``type(fn).__mro__[1]``) is ``family``."""
    cls = type(fn)
    return cls is family or (cls.__module__.startswith("pyro.distributions") and cls.__mro__[1] is family)


def vectorized_particles(elbo: Any, fn: Callable) -> Callable:
    """``fn`` inside the outermost particle plate Pyro's ELBO would put it in (``ELBO._vectorized_num_particles``)."""
    return elbo._vectorized_num_particles(fn)


def view_base(t: Tensor) -> Tensor:
    """The tensor ``t`` is a view of (``Tensor._base``), or ``t`` itself: a buffer seen through ``expand``/broadcast."""
    base = t._base
    return t if base is None else base


def version(t: Tensor) -> int:
    """In-place modification counter of ``t`` (``Tensor._version``): it changes when the values may have changed."""
    return t._version


Slot = Tuple[nn.Module, str, str, Tensor]  # (module, "_parameters" | "_buffers", name, tensor)


def tensor_slots(module: nn.Module) -> List[Slot]:
    """Every parameter and buffer entry of every submodule, tied ones included (``Module._parameters``/``_buffers``)."""
    return [(m, kind, name, t) for m in module.modules() for kind in ("_parameters", "_buffers")
            for name, t in getattr(m, kind).items() if t is not None]


def restore_slots(slots: List[Slot]) -> None:
    """Put back every tensor of :func:`tensor_slots` that a failed ``functional_call`` left swapped (it leaves
    fake tensors in modules that are registered twice, e.g. Pyro's spline transforms)."""
    for m, kind, name, t in slots:
        if getattr(m, kind).get(name) is not t:
            getattr(m, kind)[name] = t


def make_fx_fake(fn: Callable, inputs: tuple) -> Any:
    """``torch.fx.experimental.proxy_tensor.make_fx`` with fake tensors: the tensor ops ``fn(*inputs)`` runs."""
    from torch.fx.experimental.proxy_tensor import make_fx

    return make_fx(fn, tracing_mode="fake")(*inputs)


NOOP_VIEWS = frozenset({torch.ops.aten.expand.default, torch.ops.aten.view.default, torch.ops.aten.alias.default,
                        torch.ops.aten._unsafe_view.default})  # view ops an FX graph may drop when shapes agree


def mutates(target: Any) -> bool:
    """An aten op that writes into one of its arguments (its schema's ``is_mutable``, ``OpOverload._schema``)."""
    schema = getattr(target, "_schema", None)
    return schema is not None and schema.is_mutable



# ---- distributions: torch's pattern for ``Distribution.expand`` in a subclass ----
def checked_instance(d: Any, cls: type, instance: Any = None) -> Any:
    """A new ``cls`` (or ``instance``) for ``d.expand`` to fill in (``Distribution._get_checked_instance``)."""
    return d._get_checked_instance(cls, instance)


def copy_validation(new: Any, d: Any) -> None:
    """Give ``new`` the argument-validation setting of ``d`` (``Distribution._validate_args``)."""
    new._validate_args = d._validate_args


# ---- Pyro's ELBO classes: the private methods a subclass hooks into ----
class TraceHooks:
    """Mixin for a Pyro ``Trace_ELBO``-family class exposing the two private steps a subclass changes:
    each trace's model and guide run under :meth:`program_handler` (``ELBO._get_trace``), and each particle's
    (loss, surrogate) passes through :meth:`particle_loss` (``Trace_ELBO._differentiable_loss_particle``)."""

    def program_handler(self) -> Any:
        """An effect handler the model and the guide of every trace run under (None: none)."""
        return None

    def particle_loss(self, model_trace: Any, guide_trace: Any, loss: Any, surrogate: Any) -> Tuple[Any, Any]:
        """One particle's ``(loss, surrogate loss)`` as Pyro computed them, adjusted (unchanged here)."""
        return loss, surrogate

    def _get_trace(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> Any:
        handler = self.program_handler()
        if handler is not None:
            model, guide = handler(model), handler(guide)
        return super()._get_trace(model, guide, args, kwargs)  # type: ignore[misc]

    def _differentiable_loss_particle(self, model_trace: Any, guide_trace: Any) -> Tuple[Any, Any]:
        loss, surrogate = super()._differentiable_loss_particle(model_trace, guide_trace)  # type: ignore[misc]
        return self.particle_loss(model_trace, guide_trace, loss, surrogate)


def particle_traces(elbo: Any, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> Any:
    """``(model_trace, guide_trace)`` per particle, drawn as ``elbo`` draws them (``ELBO._get_traces``)."""
    return elbo._get_traces(model, guide, args, kwargs)
