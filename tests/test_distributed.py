"""Data-parallel training: 2 CPU processes (gloo, torchrun's environment) against one process."""

import json
import os
import socket

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from conftest import tiny_overrides
from pyro_vae import cli, load_config, train
from pyro_vae.config.schema import from_dict
from pyro_vae.models import VAE, VAEConfig
from pyro_vae.train import distributed
from pyro_vae.train.config import TrainConfig
from pyro_vae.train.engine import TorchEngine

N, STEPS, SHAPE = 8, 4, (1, 4, 4)


class FixedNormal(dist.Normal):
    """N(loc, scale) whose reparameterized draw uses a given ε: z = loc + scale·ε."""

    def __init__(self, loc, scale, eps):
        super().__init__(loc, scale)
        self.eps = eps

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return FixedNormal(self.loc.expand(shape), self.scale.expand(shape), self.eps.expand(shape))

    def rsample(self, sample_shape=torch.Size()):
        return self.loc + self.scale * self.eps


class FixedNoiseVAE(VAE):
    """The VAE with ε fixed per datapoint (looked up by its index y): a deterministic ELBO, exact to compare."""

    def __init__(self) -> None:
        super().__init__(from_dict(VAEConfig, {"latent_dim": 2, "network": {"type": "mlp", "hidden_dims": [8]}}),
                         SHAPE)
        self.register_buffer("eps", torch.randn(N, 2, generator=torch.Generator().manual_seed(5)))

    def guide(self, x, y=None, num_samples=1):
        pyro.module("vae", self)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encode(x)
            return pyro.sample("z", FixedNormal(loc, scale, self.eps[y]).to_event(1))


def _fit(engine_cls):
    torch.manual_seed(0)
    pyro.clear_param_store()
    model = FixedNoiseVAE()
    engine = engine_cls(model, from_dict(TrainConfig, {"lr": 0.01}))
    x = torch.bernoulli(torch.full((N, *SHAPE), 0.4), generator=torch.Generator().manual_seed(1))
    y = torch.arange(N)
    losses = [engine.step(x, y) for _ in range(STEPS)]
    return losses, [p.detach().clone() for p in model.parameters()]


OVERRIDES = tiny_overrides("train.epochs=2", "train.batch_size=32", "data.limit=800")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank with the environment torchrun gives it: the exact check, then ``pyro-vae train``."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    assert distributed.is_distributed() and distributed.world_size() == world
    torch.save(_fit(distributed.DistributedEngine), f"{out}.{rank}")
    assert cli.main(["train", *OVERRIDES, "--out", f"{out}-run"]) == 0  # run.train leaves the process group
    assert not tdist.is_initialized()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_match_one_process(tmp_path):
    """2 CPU ranks (gloo). Same global batch and fixed noise: DDP's averaged gradients × N are the one-process
    gradient, so losses and weights agree to float round-off. Then ``pyro-vae train`` under the torchrun
    environment: rank 0 alone writes the run folder, and its ELBOs match a one-process run in expectation
    (same seed and data order, different noise per rank)."""
    out = str(tmp_path / "res")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    single_losses, single_params = _fit(TorchEngine)
    for rank in range(2):
        losses, params = torch.load(f"{out}.{rank}", weights_only=True)
        assert losses == pytest.approx(single_losses, rel=1e-5)  # the global loss, all-reduced over ranks
        for a, b in zip(params, single_params):
            assert torch.allclose(a, b, atol=1e-5)
    rows = [json.loads(line) for line in (tmp_path / "res-run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["step"] for r in rows] == [23, 46]  # ceil(720 / 32) global minibatches per epoch
    single = train(load_config(None, OVERRIDES), tmp_path / "single").history
    assert abs(rows[-1]["test_elbo"] - single[-1]["test_elbo"]) < 1.5
    assert abs(rows[-1]["train_elbo"] - single[-1]["train_elbo"]) < 1.5


def test_shards_cover_the_global_batch_once():
    x = torch.arange(7)
    parts = [distributed.shard(x, r, 2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == x.tolist()
    assert not distributed.is_distributed() and distributed.is_main() and distributed.average(1.5) == 1.5
