"""The speed layer's compatibility module (pyro_vae.fast.compat): each private Pyro/torch name still means what
the one-pass ELBO and replay rely on, and the installed versions meet pyproject.toml's (uncapped) lower bounds."""

from __future__ import annotations

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
