"""The user's own components: registered from Python, or named by import path (``type: module:Class``) in YAML,
a user-written model trained end to end from a YAML file, and one-line errors for bad import paths."""

from __future__ import annotations

import itertools
import math
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch
import yaml

from conftest import tiny_overrides
from pyro_vae import load_config, load_run, resume, save_config, train
from pyro_vae.cli import main
from pyro_vae.config.run import RunConfig
from pyro_vae.config.schema import from_dict, to_dict
from pyro_vae.data import load_data
from pyro_vae.errors import ConfigError, ImportPathError
from pyro_vae.infer import log_weights
from pyro_vae.models import build_model
from pyro_vae.priors.base import Prior
from pyro_vae.registry import DATASETS, LIKELIHOODS, MODELS, NETWORKS, PRIORS, REGISTRIES

PLUGIN = '''
"""A user's own prior, likelihood, network and models, in their own file."""
import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_vae.config.schema import opt, positive
from pyro_vae.likelihoods.base import Likelihood
from pyro_vae.models.base import GenerativeModel, LatentModel
from pyro_vae.nets.mlp import MLPConfig, MLPDecoder, MLPEncoder
from pyro_vae.priors.base import Prior
from pyro_vae.priors.normal import NormalPrior, NormalPriorConfig


@dataclass
class StudentTConfig:
    type: str = "student_t"
    df: float = opt(3.0, "degrees of freedom", positive, "a number > 0")


class StudentT(Prior):
    """Student-t prior: z_d ~ t_df(0, 1) independently."""

    Config = StudentTConfig

    def __init__(self, config, latent_dim):
        super().__init__(latent_dim)
        self.df = config.df
        self.register_buffer("loc", torch.zeros(latent_dim))

    def distribution(self, context=None):
        return dist.StudentT(self.df, self.loc, torch.ones_like(self.loc)).to_event(1)


@dataclass
class RobustConfig:
    type: str = "robust"
    df: float = 4.0
    scale: float = 0.2


class Robust(Likelihood):
    """Student-t likelihood with a fixed scale: heavy-tailed noise around the decoder's mean."""

    Config = RobustConfig

    def __init__(self, config, data_shape):
        super().__init__(data_shape)
        self.config = config

    def distribution(self, params):
        loc = self.split(params)[0]
        return dist.StudentT(self.config.df, loc, self.config.scale * torch.ones_like(loc)).to_event(len(self.data_shape))


@dataclass
class SlimConfig(MLPConfig):
    type: str = "slim"


class Slim:
    """The MLP's encoder and decoder under a name of my own."""

    Config = SlimConfig
    encoder = MLPEncoder
    decoder = MLPDecoder


@dataclass
class TinyConfig:
    type: str = "tiny"
    latent_dim: int = 2
    hidden: int = 16


class TinyVAE(LatentModel):
    """A user-written VAE: z ~ N(0, I), x ~ Bernoulli(sigmoid(W z + b)), q(z|x) from a one-layer net."""

    Config = TinyConfig

    def __init__(self, config, data_shape, num_classes=0):
        super().__init__()
        self.data_shape, self.num_classes, self.latent_dim = tuple(data_shape), num_classes, config.latent_dim
        self.prior = NormalPrior(NormalPriorConfig(), config.latent_dim)
        d = math.prod(self.data_shape)
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(d, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, 2 * config.latent_dim))
        self.dec = nn.Linear(config.latent_dim, d)

    def model(self, x=None, y=None, num_samples=1):
        pyro.module("tiny", self)
        with pyro.plate("data", x.shape[0] if x is not None else num_samples):
            z = pyro.sample("z", self.prior.distribution())
            logits = self.dec(z).unflatten(-1, self.data_shape)
            return pyro.sample("x", dist.Bernoulli(logits=logits).to_event(len(self.data_shape)), obs=x)

    def guide(self, x, y=None, num_samples=1):
        pyro.module("tiny", self)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encode(x, y)
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def encode(self, x, y=None):
        loc, s = self.enc(x).chunk(2, -1)
        return loc, nn.functional.softplus(s) + 1e-3

    def decode(self, z, y=None):
        return torch.sigmoid(self.dec(z)).unflatten(-1, self.data_shape)

    @torch.no_grad()
    def generate(self, num_samples, y=None):
        return self.decode(torch.randn(num_samples, self.latent_dim))

    @torch.no_grad()
    def reconstruct(self, x, y=None):
        return self.decode(self.encode(x, y)[0])


class Bare(GenerativeModel):
    """Only model and guide: no generate, reconstruct or encode."""

    Config = TinyConfig

    def __init__(self, config, data_shape, num_classes=0):
        super().__init__()
        self.inner = TinyVAE(config, data_shape, num_classes)
        self.data_shape, self.num_classes = tuple(data_shape), num_classes

    def model(self, x=None, y=None, num_samples=1):
        return self.inner.model(x, y, num_samples)

    def guide(self, x, y=None, num_samples=1):
        return self.inner.guide(x, y, num_samples)


class NoConfig(Prior):
    """A prior without a typed config."""


class NotAPrior:
    """Not a subclass of Prior."""

    Config = StudentTConfig


not_a_class = 3
'''

_names = itertools.count()


@pytest.fixture(autouse=True)
def _clean_registries():
    """Registrations and imports made by a test do not leak into the others."""
    saved = [(r, dict(r._entries), dict(r._imported)) for r in REGISTRIES]
    yield
    for r, entries, imported in saved:
        r._entries, r._imported = entries, imported


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A fresh module (unique name) holding :data:`PLUGIN`, importable from ``tmp_path``; its name."""
    name = f"user_plugin_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _digits(*extra):
    return tiny_overrides("train.epochs=1", "data.limit=300", *extra)


# ---- from Python: registration ---------------------------------------------------------------------------

def test_each_kind_registers_from_python():
    @dataclass
    class ShiftedConfig:
        type: str = "shifted"
        shift: float = 1.0

    @PRIORS.register("shifted", ShiftedConfig)
    class Shifted(Prior):
        """N(shift, I)."""

        def __init__(self, config, latent_dim):
            super().__init__(latent_dim)
            self.register_buffer("loc", torch.full((latent_dim,), config.shift))

        def distribution(self, context=None):
            import pyro.distributions as dist

            return dist.Normal(self.loc, 1.0).to_event(1)

    likelihood_entry, network_entry = LIKELIHOODS.get("laplace"), NETWORKS.get("mlp")

    @dataclass
    class MyLikelihoodConfig(likelihood_entry.config_cls):
        type: str = "my_laplace"

    @dataclass
    class MyNetConfig(network_entry.config_cls):
        type: str = "my_mlp"

    LIKELIHOODS.register("my_laplace", MyLikelihoodConfig)(type("MyLaplace", (likelihood_entry.cls,), {}))
    NETWORKS.register("my_mlp", MyNetConfig)(type("MyMLP", (network_entry.cls,), {}))

    @dataclass
    class MyVAEConfig(MODELS.get("vae").config_cls):
        type: str = "my_vae"

    MODELS.register("my_vae", MyVAEConfig)(type("MyVAE", (MODELS.get("vae").cls,), {}))

    @dataclass
    class MyDigitsConfig(DATASETS.get("digits").config_cls):
        type: str = "my_digits"

    DATASETS.register("my_digits", MyDigitsConfig)(type("MyDigits", (DATASETS.get("digits").cls,), {}))

    config = load_config(None, ["model.type=my_vae", "model.prior=shifted", "model.prior.shift=2.0",
                                "model.likelihood=my_laplace", "model.network=my_mlp", "model.latent_dim=3",
                                "model.network.hidden_dims=[16]", "data.type=my_digits", "data.limit=50",
                                "data.binarize=none"])
    data = load_data(config.data, 0)
    model = build_model(config.model, data.shape, data.num_classes)
    assert type(model).__name__ == "MyVAE" and type(model.likelihood).__name__ == "MyLaplace"
    assert isinstance(model.prior, Shifted) and torch.equal(model.prior.loc, torch.full((3,), 2.0))
    x, y = next(data.batches("train", 8))
    assert torch.isfinite(log_weights(model.model, model.guide, x, y, num_samples=2).total).all()
    assert from_dict(RunConfig, to_dict(config)) == config


def test_defining_the_same_class_again_replaces_it():
    """A notebook cell run twice registers the new definition; another class under a taken name is refused."""
    @dataclass
    class AgainConfig:
        type: str = "again"

    def define(doc):
        class Again(Prior):
            pass
        Again.__doc__ = doc
        return PRIORS.register("again", AgainConfig)(Again)

    define("first")
    second = define("second")
    assert PRIORS.get("again").cls is second and PRIORS.get("again").doc == "second"
    with pytest.raises(KeyError, match="prior 'normal' is already registered"):
        PRIORS.register("normal", PRIORS.get("normal").config_cls)(second)


# ---- from YAML: import paths ------------------------------------------------------------------------------

def test_components_by_import_path_round_trip(plugin, tmp_path):
    spec = {"data": {"type": "digits", "binarize": "none", "limit": 50},
            "model": {"type": "vae", "latent_dim": 2,
                      "prior": {"type": f"{plugin}:StudentT", "df": 5.0},
                      "likelihood": f"{plugin}:Robust",
                      "network": {"type": f"{plugin}:Slim", "hidden_dims": [16]}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    config = load_config(tmp_path / "c.yaml")
    assert config.model.prior.type == f"{plugin}:StudentT" and config.model.prior.df == 5.0
    model = build_model(config.model, (1, 8, 8))
    module = sys.modules[plugin]
    assert isinstance(model.prior, module.StudentT) and isinstance(model.likelihood, module.Robust)
    assert model.prior.df == 5.0 and model.decoder.body[0].in_features == 2
    save_config(config, tmp_path / "saved.yaml")  # config.yaml keeps the import paths
    assert yaml.safe_load((tmp_path / "saved.yaml").read_text())["model"]["likelihood"]["type"] == f"{plugin}:Robust"
    assert load_config(tmp_path / "saved.yaml") == config


@pytest.mark.parametrize("path, expected", [
    ("no_such_module_xyz:StudentT", "cannot import module 'no_such_module_xyz'"),
    ("{plugin}:Missing", "has no 'Missing'"),
    ("{plugin}:not_a_class", "is not a class"),
    ("{plugin}:NotAPrior", "is not a prior: expected a subclass of pyro_vae.priors.base.Prior"),
    ("{plugin}:NoConfig", "has no typed config; expected a dataclass attribute `Config`"),
    ("{plugin}:TinyVAE", "is not a prior"),
    ("{plugin}:", "unknown key"),  # YAML reads `a:` as a mapping
    ("{plugin}:Bad-Name", "is not an import path; expected module:Class"),
])
def test_bad_import_path_is_one_line_naming_the_key(plugin, tmp_path, capsys, path, expected):
    out = tmp_path / "run"
    assert main(["train", *_digits(f"model.prior={path.format(plugin=plugin)}"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "model.prior" in err and expected in err
    assert not out.exists()


def test_module_that_fails_at_import_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_plugin_mod.py").write_text("import math\nraise RuntimeError('needs a GPU\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["train", *_digits("model.type=broken_plugin_mod:Model"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.type: cannot import module 'broken_plugin_mod'" in err
    assert "RuntimeError: needs a GPU" in err
    sys.modules.pop("broken_plugin_mod", None)


def test_model_path_must_name_a_generative_model(plugin):
    with pytest.raises(ImportPathError, match=r"model.type: .*:StudentT is not a model: expected a subclass of "
                                              r"pyro_vae.models.base.GenerativeModel"):
        load_config(None, [f"model.type={plugin}:StudentT"])
    with pytest.raises(ImportPathError, match="is not a network: expected a class with encoder and decoder"):
        load_config(None, [f"model.network={plugin}:StudentT"])
    with pytest.raises(ConfigError, match=r"unknown prior 'student_t'; allowed: .* \(or an import path module:Class\)"):
        load_config(None, ["model.prior=student_t"])


# ---- a user-defined model, end to end --------------------------------------------------------------------

def test_user_model_trains_from_yaml_loads_back_and_evaluates(plugin, tmp_path, capsys):
    spec = {"data": {"type": "digits", "limit": 300},
            "model": {"type": f"{plugin}:TinyVAE", "latent_dim": 2, "hidden": 8},
            "train": {"epochs": 1, "progress": False, "eval_samples": 2, "num_images": 16}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "tiny.yaml"), "--out", str(out)]) == 0
    assert {"model.pt", "best.pt", "config.yaml", "metrics.jsonl", "samples.png", "reconstructions.png",
            "latent.png", "elbo.png", "interpolation.png", "traversal.png"} <= {p.name for p in out.iterdir()}

    run = load_run(out)
    assert type(run.model).__name__ == "TinyVAE" and run.config.model.hidden == 8
    report = run.evaluate(num_samples=3)
    assert math.isfinite(report["test_iwae"]) and report["test_iwae"] < 0
    assert report["test_elbo"] <= report["test_iwae"] + 1e-3  # ELBO ≤ IWAE_K from the same samples
    assert report["latent_dim"] == 2  # active units: from the LatentModel's encode
    assert "mutual_info" in report and "kl_analytic" in report  # the KL split: encode and a Prior attribute
    capsys.readouterr()
    assert main(["evaluate", str(out), "--num-samples", "2", "--json"]) == 0
    assert main(["sample", str(out), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0

    resumed = resume(out, ["train.epochs=2"])  # its checkpoint carries the training state too
    assert [row["epoch"] for row in resumed.history] == [1, 2]

    capsys.readouterr()
    assert main(["list", "--import", plugin]) == 0
    listed = capsys.readouterr().out
    for name in ("TinyVAE", "Bare", "StudentT", "Robust", "Slim"):
        assert f"  {plugin}:{name}: " in listed
    assert f"{plugin}:NoConfig" not in listed and f"{plugin}:NotAPrior" not in listed


@pytest.mark.parametrize("engine, objective", [("torch", "elbo"), ("svi", "elbo"), ("auto", "iwae"),
                                               ("torch", "meanfield")])
def test_user_model_trains_with_every_engine_and_objective(plugin, tmp_path, engine, objective):
    run = train(None, tmp_path / "r", _digits(f"model.type={plugin}:TinyVAE", "data.limit=100", f"train.engine={engine}",
                                            f"train.objective={objective}"))
    assert math.isfinite(run.history[-1]["train_elbo"]) and math.isfinite(run.history[-1]["test_elbo"])


def test_a_run_imports_its_module_only_when_allowed(plugin, tmp_path, capsys):
    """A run naming the user's module loads in a process that imported it, or with --import / imports=[...];
    otherwise it is one line naming the module and how to allow it, and nothing is imported."""
    out = tmp_path / "run"
    train(None, out, _digits(f"model.prior={plugin}:StudentT"))
    sys.modules.pop(plugin)
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"model.pt: model.prior.type: names module {plugin!r}" in err
    assert f"--import {plugin}" in err and plugin not in sys.modules
    assert main(["evaluate", str(out), "--num-samples", "2", "--import", plugin]) == 0
    sys.modules.pop(plugin)
    assert type(load_run(out, imports=[plugin]).model.prior).__name__ == "StudentT"
    sys.modules.pop(plugin)
    sys.path.remove(str(tmp_path))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--import", plugin]) == 2
    assert f"--import: cannot import module {plugin!r}" in capsys.readouterr().err


def test_model_without_the_optional_methods(plugin, tmp_path, capsys):
    run = train(None, tmp_path / "bare", _digits(f"model.type={plugin}:Bare"))
    names = {p.name for p in run.path.iterdir()}
    assert {"model.pt", "elbo.png"} <= names and not names & {"samples.png", "reconstructions.png", "latent.png"}
    assert math.isfinite(run.evaluate(num_samples=2)["test_iwae"])
    capsys.readouterr()
    assert main(["sample", str(run.path)]) == 2
    assert "does not generate samples" in capsys.readouterr().err


def test_list_import_of_a_missing_module(capsys):
    assert main(["list", "--import", "no_such_module_xyz"]) == 2
    assert "--import: cannot import module 'no_such_module_xyz'" in capsys.readouterr().err


def test_docs_extending_examples_run(tmp_path, monkeypatch, capsys):
    """docs/extending.md: its Python block is the module my_project.components; each YAML block trains."""
    import re

    from conftest import REPO

    text = (REPO / "docs" / "extending.md").read_text()
    (python_block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "components.py").write_text(python_block)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert len(yaml_blocks) == 2
        for i, block in enumerate(yaml_blocks):
            (tmp_path / f"c{i}.yaml").write_text(block)
            out = tmp_path / f"run{i}"
            overrides = ["train.epochs=1", "train.progress=false", "data.limit=200", "train.eval_samples=2",
                         "train.num_images=8"]
            assert main(["train", str(tmp_path / f"c{i}.yaml"), *overrides, "--out", str(out)]) == 0
            assert math.isfinite(load_run(out).evaluate(num_samples=2)["test_iwae"])
        capsys.readouterr()
        assert main(["list", "--import", "my_project.components"]) == 0
        listed = capsys.readouterr().out
        assert all(f"my_project.components:{n}:" in listed for n in ("StudentT", "Robust", "Slim", "LinearVAE"))
    finally:
        for name in ("my_project.components", "my_project"):
            sys.modules.pop(name, None)


def test_cli_does_not_search_the_current_folder(tmp_path, monkeypatch, capsys):
    """The command never puts the current folder on sys.path: a module there is found like any other, installed
    or on PYTHONPATH."""
    (tmp_path / "cwd_plugin_mod.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    before = list(sys.path)
    try:
        assert main(["list", "--import", "cwd_plugin_mod"]) == 2
        assert "cannot import module 'cwd_plugin_mod'" in capsys.readouterr().err and sys.path == before
        monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
        assert main(["list", "--import", "cwd_plugin_mod"]) == 0
        assert "cwd_plugin_mod:StudentT" in capsys.readouterr().out
    finally:
        sys.modules.pop("cwd_plugin_mod", None)
