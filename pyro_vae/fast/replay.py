"""Replay: the training loss recorded once per input signature as a graph of tensor ops (``train.replay``).

A Pyro program re-runs its Python on every step: effect handlers, plates, distribution objects. When its
control flow does not depend on tensor values, that Python emits the same tensor ops every time, so
:class:`ReplayedLoss` records them once (``torch.fx.experimental.proxy_tensor.make_fx`` with fake tensors)
and later steps run only the recorded ops. Parameters, buffers, ``x`` and ``y`` are the graph's inputs,
and random draws stay random ops, so every step still draws fresh noise.

The recording is kept only if three checks pass:

* **Fake tensors only.** A program that reads tensor values (``.item()``, ``if tensor: ...``,
  ``F.one_hot`` without ``num_classes``, a spline's bin search) cannot be recorded with fake tensors, so it
  stays eager. Any failure while recording counts the same, and the module keeps its own tensors.
* **No captured trainable tensors.** A captured tensor that needs a gradient (a ``pyro.param`` living
  outside the module) would be frozen into the graph, so the recording is refused.
* **Same value and gradients.** The first replay of each signature is run against the eager program on the
  same random numbers, and its value and gradients must match, or the eager program is kept for good.

Graphs are keyed by the shape, dtype and device of ``x`` and ``y`` and by train/eval mode. In a training
run that is usually two graphs: the full minibatch and the last, smaller one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, fx, nn

from ..rng import set_torch_rng_state, torch_rng_state
from . import compat

Key = Tuple[Any, ...]


def _key(x: Tensor, y: Optional[Tensor], training: bool) -> Key:
    """What a recorded graph is specialised to: shapes, dtypes and devices of x and y, train mode, grad mode."""
    return (x.shape, x.dtype, x.device, None if y is None else (y.shape, y.dtype), training,
            torch.is_grad_enabled())


def _why(e: Exception) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _drop_noop_views(gm: fx.GraphModule) -> None:
    """Remove ``expand``/``view``/``alias`` nodes whose output has its input's shape and strides."""
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in compat.NOOP_VIEWS or not isinstance(node.args[0], fx.Node):
            continue
        src, out = node.args[0].meta.get("val"), node.meta.get("val")
        if not (isinstance(src, Tensor) and isinstance(out, Tensor)):
            continue
        same = src.shape == out.shape and src.stride() == out.stride()
        read_only = all(u.op != "call_function" or not compat.mutates(u.target) for u in node.users)
        if same and read_only:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()  # random draws are in-place ops (impure), so they stay
    gm.recompile()


def record(fn: Callable[..., Tensor], inputs: tuple) -> fx.GraphModule:
    """The tensor ops ``fn(*inputs)`` runs, recorded with fake tensors, with no-op views removed."""
    gm = compat.make_fx_fake(fn, inputs)
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            value = getattr(gm, node.target)
            if isinstance(value, Tensor) and value.requires_grad:
                raise ValueError(f"the program captures a trainable tensor outside the module ({node.target}, "
                                 f"shape {tuple(value.shape)}), e.g. a pyro.param")
    _drop_noop_views(gm)
    return gm


class ReplayedLoss:
    """``loss(x, y)`` (a module, e.g. :class:`~pyro_vae.fast.loss.FastLoss`) run as recorded graphs.

    ``disabled`` is None while replay is on, else the reason it stays eager (e.g. a value-dependent program).
    """

    def __init__(self, loss: nn.Module, rtol: float = 1e-5, atol: float = 1e-5) -> None:
        self.loss, self.rtol, self.atol = loss, rtol, atol
        named = {**dict(loss.named_parameters()), **dict(loss.named_buffers())}
        self.names: List[str] = list(named)
        self.tensors: List[Tensor] = list(named.values())
        self.params: List[Tuple[str, Tensor]] = [(n, t) for n, t in named.items() if t.requires_grad]
        self.graphs: Dict[Key, fx.GraphModule] = {}
        self.disabled: Optional[str] = None

    def graph_for(self, x: Tensor, y: Optional[Tensor] = None) -> Optional[fx.GraphModule]:
        """The graph recorded for this input signature, if any (call it as ``graph(self.tensors, x, y)``)."""
        return self.graphs.get(_key(x, y, self.loss.training))

    def __call__(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The loss: replayed when a graph for this signature exists, else recorded now (or eager)."""
        if self.disabled is not None:
            return self.loss(x, y)
        key = _key(x, y, self.loss.training)
        graph = self.graphs.get(key)
        if graph is None:
            return self._record(key, x, y)
        return graph(self.tensors, x, y)

    def _record(self, key: Key, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """Record a graph for ``key``, check it against the eager program and return this step's loss."""
        state = torch_rng_state()
        slots = compat.tensor_slots(self.loss)
        try:
            names, module = self.names, self.loss

            def functional(tensors: List[Tensor], x: Tensor, y: Optional[Tensor]) -> Tensor:
                return torch.func.functional_call(module, dict(zip(names, tensors)), (x, y), strict=True)

            graph = record(functional, (self.tensors, x, y))
        except Exception as e:  # any failure to record (value-dependent control flow, ...) means: stay eager
            self.disabled = f"not recorded: {_why(e)}"
            return self._eager(slots, state, x, y)
        finally:
            compat.restore_slots(slots)
        set_torch_rng_state(state)
        eager = self.loss(x, y)
        after = torch_rng_state()
        set_torch_rng_state(state)
        try:
            replayed = graph(self.tensors, x, y)
            problem = self._compare(eager, replayed)
        except Exception as e:  # the recorded graph does not run: stay eager
            replayed, problem = eager, f"the recorded graph failed: {_why(e)}"
        set_torch_rng_state(after)
        if problem is not None:
            self.disabled = problem
            return eager
        self.graphs[key] = graph
        return replayed

    def _eager(self, slots: List[compat.Slot], state: Any, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """After a failed recording: the module's own tensors back in place, the random stream rewound, and
        this step's loss from the eager program."""
        compat.restore_slots(slots)
        set_torch_rng_state(state)
        return self.loss(x, y)

    def _compare(self, eager: Tensor, replayed: Tensor) -> Optional[str]:
        """None when value and gradients agree, else what differs."""
        if not torch.allclose(eager, replayed, rtol=self.rtol, atol=self.atol):
            return f"replay differs from the eager program: loss {replayed.item():.6g} vs {eager.item():.6g}"
        if not eager.requires_grad:
            return None
        params = [t for _, t in self.params]
        ge = torch.autograd.grad(eager, params, retain_graph=True, allow_unused=True)
        gr = torch.autograd.grad(replayed, params, retain_graph=True, allow_unused=True)
        for (name, _), a, b in zip(self.params, ge, gr):
            if (a is None) != (b is None) or (a is not None and not torch.allclose(a, b, rtol=self.rtol,
                                                                                     atol=self.atol)):
                return f"replay differs from the eager program in the gradient of {name}"
        return None
