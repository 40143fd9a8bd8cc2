"""The speed layer's compatibility module (pyro_vae.fast.compat): each private Pyro/torch name still means what
the one-pass ELBO and replay rely on, and the installed versions meet pyproject.toml's (uncapped) lower bounds."""

from __future__ import annotations

import ast
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from pyro_vae.fast import compat

REPO = Path(__file__).resolve().parents[1]


def test_installed_versions_meet_the_lower_bounds_and_nothing_is_capped():
    tomllib = pytest.importorskip("tomllib")
    requirements = pytest.importorskip("packaging.requirements")
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {r.name: r.specifier for r in map(requirements.Requirement, deps)}
    for name, version in (("torch", torch.__version__.split("+")[0]), ("pyro-ppl", pyro.__version__)):
        assert not any(s.operator in ("<", "<=", "==", "~=") for s in bounds[name]), (name, str(bounds[name]))
        assert version in bounds[name], (name, version, str(bounds[name]))


def test_every_private_name_is_present():
    assert compat.missing_names() == []


def test_standard_normal_is_the_noise_normal_rsample_draws():
    loc, scale = torch.randn(3, 2), torch.rand(3, 2) + 0.5
    d = dist.Normal(loc, scale)
    torch.manual_seed(0)
    z = d.rsample()
    torch.manual_seed(0)
    eps = compat.standard_normal(compat.extended_shape(d), loc)
    assert compat.extended_shape(d) == z.shape and torch.equal(loc + eps * scale, z)


def test_sum_rightmost_and_views():
    v = torch.randn(2, 3, 4)
    assert torch.allclose(compat.sum_rightmost(v, 2), v.sum((-1, -2)))
    buf = torch.zeros(4)
    view = torch.broadcast_tensors(buf, torch.zeros(3, 4))[0].expand(2, 3, 4)
    assert compat.view_base(view) is buf and compat.view_base(buf) is buf
    before = compat.version(buf)
    buf.add_(1.0)
    assert compat.version(buf) != before


def test_is_family_accepts_pyros_wrappers_only():
    class Mine(dist.Normal):  # a user subclass may change log_prob: not the family
        pass

    normal = torch.distributions.Normal
    assert compat.is_family(dist.Normal(0.0, 1.0), normal) and compat.is_family(normal(0.0, 1.0), normal)
    assert not compat.is_family(Mine(0.0, 1.0), normal)
    assert compat.is_family(dist.Normal(torch.zeros(2), 1.0).to_event(1), torch.distributions.Independent)


def test_vectorized_particles_adds_the_outer_particle_plate():
    elbo = pyro.infer.Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1)

    def fn():
        with pyro.plate("data", 2):
            return pyro.sample("z", dist.Normal(0.0, 1.0))

    assert pyro.poutine.trace(compat.vectorized_particles(elbo, fn)).get_trace().nodes["z"]["value"].shape == (3, 2)


def test_tensor_slots_restore_what_was_swapped():
    net = nn.Linear(2, 1)
    shared = nn.Module()
    shared.a, shared.b = net, net  # one module under two names
    slots = compat.tensor_slots(shared)
    weight = net.weight
    net._parameters["weight"] = nn.Parameter(torch.zeros(1, 2))
    compat.restore_slots(slots)
    assert net.weight is weight


def test_make_fx_fake_records_ops_and_op_schemas_are_readable():
    gm = compat.make_fx_fake(lambda x: (x * 2).sum(), (torch.randn(3),))
    targets = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.mul.Tensor in targets and torch.ops.aten.sum.default in targets
    assert compat.mutates(torch.ops.aten.add_.Tensor) and not compat.mutates(torch.ops.aten.add.Tensor)
    assert sorted(op.name() for op in compat.NOOP_VIEWS) == ["aten::_unsafe_view", "aten::alias", "aten::expand",
                                                             "aten::view"]


# ---- no private Pyro/torch name outside pyro_vae/fast/compat.py ----
PACKAGE = REPO / "pyro_vae"
COMPAT = PACKAGE / "fast" / "compat.py"
#: underscore names that are Pyro's and torch's documented extension points: an effect handler's message hooks,
#: a Transform's forward and inverse
HOOKS = {"_process_message", "_postprocess_message", "_call", "_inverse"}
#: Pyro/torch classes whose underscore methods a subclass here must not override outside compat.py
BASES = (pyro.infer.Trace_ELBO, pyro.infer.TraceEnum_ELBO, pyro.infer.RenyiELBO, dist.TorchDistribution,
         torch.distributions.transforms.Transform, nn.Module, pyro.poutine.messenger.Messenger)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in HOOKS and not name.startswith("_pyro_")


def _own_names(trees) -> set:
    """Underscore names the package defines itself: functions, classes, module names, ``self._x``, arguments."""
    own = set()
    for tree in trees:
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not _is_override(n):
                own.add(n.name)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                own.add(n.id)
            elif (isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
                  and n.value.id == "self"):
                own.add(n.attr)
            elif isinstance(n, ast.arg):
                own.add(n.arg)
    return own


def _is_override(node) -> bool:
    """A method whose underscore name a Pyro/torch base class has (overriding a private step of theirs)."""
    return (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name)
            and any(hasattr(base, node.name) for base in BASES))


def private_uses(path: Path, own: set) -> list:
    """``line: name`` for each private Pyro/torch name ``path`` reads, imports or overrides."""
    found = []
    for n in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(n, ast.Attribute) and not (isinstance(n.value, ast.Name) and n.value.id == "os"):
            names = [n.attr]
        elif isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("torch", "pyro"):
            names = [a.name for a in n.names]
        elif _is_override(n):
            found.append(f"{n.lineno}: def {n.name}")
        found += [f"{n.lineno}: {name}" for name in names if _private(name) and name not in own]
    return found


def test_no_private_pyro_or_torch_name_outside_compat():
    files = [p for p in PACKAGE.rglob("*.py") if p != COMPAT]
    own = _own_names(ast.parse(p.read_text()) for p in files)
    bad = {str(p.relative_to(REPO)): uses for p in files if (uses := private_uses(p, own))}
    assert not bad, f"private Pyro/torch names outside pyro_vae/fast/compat.py: {bad}"


def test_the_scan_finds_a_private_name(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from torch.distributions.utils import _sum_rightmost\n"
                     "class L:\n    def _get_trace(self):\n        return self.elbo._get_traces()\n")
    assert private_uses(probe, set()) == ["1: _sum_rightmost", "3: def _get_trace", "4: _get_traces"]
