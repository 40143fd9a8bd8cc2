"""M2 (Kingma et al. 2014): semi-supervised learning with a class y and a style z that generate x.

    model:  y ~ Cat(1/K),  z ~ p(z),  x ~ p(x | z, y)               (the decoder reads [z, onehot y])
    guide:  y ~ q(y|x) = Cat(softmax(W h(x)))  (hidden labels only),  z ~ q(z | x, y) = N(μ, σ)(h(x), onehot y)

h(x) is an MLP of the image (after stride-2 convolutions with ``classifier_channels``); with
``shared_features: false`` the z-encoder reads x itself instead.

A batch carries its labels with ``y = −1`` where a label is hidden (``data.labeled``), and the program
splits it in two: labelled points (``y_labeled`` observed, ``z_labeled``, ``x_labeled`` in
``pyro.plate("labeled")``) and the others (``y``, ``z``, ``x`` in ``pyro.plate("data")``, y enumerated
in parallel, so ``TraceEnum_ELBO`` sums it out exactly):

    L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(z) − log q(z|x,y)] + log p(y)        (labelled)
    U(x)    = Σ_y q(y|x) L(x, y) + H[q(y|x)]                                       (unlabelled)

Training maximizes Kingma's J^α = Σ_labelled L + Σ_unlabelled U + α·E_labelled[log q(y|x)]: the last term,
which trains the classifier on the labels, is a ``pyro.factor`` on the labelled points of a batch of B,
``alpha · B · mean(log q(y|x))`` (``alpha`` = α/N; Kingma's α = 0.1·N is ``alpha: 0.1``). It is an
objective term, not part of p: in eval mode it is left out, so held-out bounds bound log p(x).
A step costs K decoder passes per unlabelled point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config.schema import opt
from ..config.validators import all_positive, non_negative
from ..errors import ConfigError
from ..likelihoods.base import Likelihood
from ..nets.base import hidden_activation, mlp_classifier
from ..priors.base import ConditionalPrior, EncoderPrior, build_prior
from ..registry import LIKELIHOODS, MODELS, NETWORKS, PRIORS
from .base import Grids, LatentModel
from .vae import VAEConfig, check_own_guide


@dataclass
class M2Config(VAEConfig):
    type: str = "m2"
    classifier_dims: List[int] = opt([256], "hidden widths of h(x), the MLP on flattened x under the classifier "
                                            "q(y|x) = softmax(W h(x))")
    classifier_channels: List[int] = opt([], "channels of 3x3 stride-2 convolutions that h(x) applies to the image "
                                                 "before classifier_dims ([]: none, an MLP on flattened x)",
                                         all_positive, "a list of integers >= 1, e.g. [32, 64]")
    shared_features: bool = opt(True, "q(z|x,y) reads the classifier's hidden features h(x) instead of x: one "
                                      "network h serves both guides, so the classifier also learns from every "
                                      "image's reconstruction (and h runs once per x, not once per y); needs "
                                      "network: mlp (it reads the vector h)")
    alpha: float = opt(0.1, "weight of the labelled classification term per datapoint of the ELBO: α/N in "
                            "Kingma's J^α = J + α·E_labelled[−log q(y|x)] (0.1: Kingma's α = 0.1·N)",
                       non_negative, "a number >= 0")


@MODELS.register("m2", M2Config)
class M2(LatentModel):
    """Semi-supervised M2: y ~ Cat(1/K), z ~ p(z), x ~ p(x|z,y); guide q(y|x) (hidden labels) q(z|x,y)."""

    enumerated_sites = ("y",)  # q(y|x) on unlabelled points: train.objective must be enum
    gaussian_posterior = False  # q(z|x) = Σ_y q(y|x) q(z|x,y): no Gaussian-only KL split
    label_conditional = True    # generate(n, y) draws class y
    partial_labels = True       # learns from data.labeled (labels −1 where hidden)

    def __init__(self, config: M2Config, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        if num_classes < 1:
            raise ConfigError(f"model.type: m2 needs a dataset with class labels (got {num_classes} classes)")
        super().__init__()
        self.check_config(config)
        self.config, self.data_shape, self.num_classes = config, tuple(data_shape), num_classes
        self.latent_dim, self.cond_dim = config.latent_dim, num_classes  # encoder and decoder read onehot y
        net = NETWORKS.get(config.network.type).cls
        self.likelihood = LIKELIHOODS.build(config.likelihood, self.data_shape)
        self.prior = build_prior(config.prior, config.latent_dim)
        if not config.shared_features:  # q(z|x,y) = encoder(x, onehot y)
            self.encoder = net.encoder(config.network, self.data_shape, config.latent_dim, num_classes)
        self.decoder = net.decoder(config.network, config.latent_dim, self.data_shape, self.likelihood.num_params,
                                   num_classes)
        classifier = mlp_classifier(self.data_shape, config.classifier_dims, num_classes,
                                    hidden_activation(net, config.network), config.classifier_channels)
        self.features, self.head = classifier[:-1], classifier[-1]  # q(y|x) = softmax(head(h(x)))
        if config.shared_features:  # q(z|x,y) = encoder(h(x), onehot y)
            width = self.head.in_features
            self.encoder = NETWORKS.get("mlp").cls.encoder(config.network, (width,), config.latent_dim, num_classes)
        self.register_buffer("label_logits", torch.zeros(num_classes))  # p(y) = 1/K

    @classmethod
    def check_config(cls, config: M2Config) -> None:
        prior = PRIORS.get(config.prior.type, key="model.prior.type").cls
        if issubclass(prior, (ConditionalPrior, EncoderPrior)) or prior.enumerated_sites_for(config.prior):
            raise ConfigError(f"model.prior.type: m2 needs an unconditional p(z) with no sites of its own (normal, "
                              f"laplace, flat, flow, gmm with form marginal), got {config.prior.type!r}")
        if config.shared_features and config.network.type != "mlp":
            raise ConfigError(f"model.network.type: m2 with shared_features: true encodes the feature vector h(x), "
                              f"which needs network mlp, got {config.network.type!r} (or set shared_features: false)")
        check_own_guide(config)

    @property
    def discrete_levels(self) -> Optional[int]:  # type: ignore[override]
        """The likelihood's ``levels`` (None: a density)."""
        return self.likelihood.levels

    def data_likelihood(self) -> Likelihood:
        return self.likelihood

    @classmethod
    def enumerated_sites_for(cls, config: M2Config) -> Tuple[str, ...]:
        return cls.enumerated_sites

    # ---- the Pyro program ----
    def model(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """p(y) p(z) p(x|y,z) for the labelled and the unlabelled points of the batch; J^α's term in training."""
        pyro.module("vae", self)
        if x is None:
            with pyro.plate("data", y.shape[0] if y is not None else num_samples):
                return self.joint("", None, y)
        labeled, hidden = split_labels(y)
        if labeled is not None:
            x_l, y_l = x[labeled], y[labeled]
            with pyro.plate("labeled", x_l.shape[0]):
                self.joint("_labeled", x_l, y_l)
                if self.training and self.config.alpha > 0:  # α·E_labelled[log q(y|x)], per datapoint: α/N
                    weight = self.config.alpha * x.shape[0] / x_l.shape[0]
                    pyro.factor("classify", weight * dist.Categorical(logits=self.classifier(x_l)).log_prob(y_l))
        if hidden is not None:
            x_u = x[hidden]
            with pyro.plate("data", x_u.shape[0]):
                self.joint("", x_u)
        return x

    def joint(self, suffix: str, x: Optional[Tensor], y: Optional[Tensor] = None) -> Tensor:
        """Sites ``y``, ``z``, ``x`` (+ ``suffix``) inside the caller's plate: y ~ p(y), observed when given."""
        y = pyro.sample(f"y{suffix}", dist.Categorical(logits=self.label_logits), obs=y)
        z = pyro.sample(f"z{suffix}", self.prior.distribution())
        return pyro.sample(f"x{suffix}", self.likelihood.distribution(self.decoder(z, self.onehot(y))), obs=x)

    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> None:
        """q(z|x,y) on labelled points; q(y|x) q(z|x,y) with y enumerated on the others."""
        pyro.module("vae", self)
        labeled, hidden = split_labels(y)
        if labeled is not None:
            x_l = x[labeled]
            with pyro.plate("labeled", x_l.shape[0]):
                loc, scale = self.encode_given(x_l, y[labeled])
                pyro.sample("z_labeled", dist.Normal(loc, scale).to_event(1))
        if hidden is not None:
            x_u = x[hidden]
            h = self.features(x_u)
            with pyro.plate("data", x_u.shape[0]):
                k = pyro.sample("y", dist.Categorical(logits=self.head(h)), infer={"enumerate": "parallel"})
                loc, scale = self.encode_given(x_u, k, h)
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # ---- networks ----
    def onehot(self, y: Tensor) -> Tensor:
        return F.one_hot(y, self.num_classes).to(self.label_logits.dtype)

    def classifier(self, x: Tensor) -> Tensor:
        """The logits of q(y|x), shape ``(B, K)``."""
        return self.head(self.features(x))

    def encode_given(self, x: Tensor, y: Tensor, h: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z|x, y), broadcast over y's shape (e.g. ``(K, 1)`` enumerated);
        ``h``: the features h(x), when already computed."""
        if self.config.shared_features:
            x = self.features(x) if h is None else h
        lead = torch.broadcast_shapes(y.shape, x.shape[:1])
        c = self.onehot(y).expand(*lead, self.num_classes)
        return self.encoder(x.expand(*lead, *x.shape[1:]), c)

    def fill_labels(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The given labels where y ≥ 0, the classifier's argmax_y q(y|x) elsewhere."""
        guess = self.classifier(x).argmax(-1)
        return guess if y is None else torch.where(y >= 0, y, guess)

    # ---- capabilities: classes, clusters, pictures (no Pyro sites) ----
    @torch.no_grad()
    def class_probs(self, x: Tensor) -> Tensor:
        """q(y|x), shape ``(B, K)``: the classifier."""
        return self.classifier(x).softmax(-1)

    @torch.no_grad()
    def cluster_probs(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """q(y = k|x), shape ``(B, K)`` (the labels y are ignored)."""
        return self.class_probs(x)

    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z|x, y) at the given labels (the classifier's guess where hidden)."""
        return self.encode_given(x, self.fill_labels(x, y))

    def decode(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z,y] for latents ``(..., B, latent_dim)``; y defaults to the classes 0..K-1 in turn."""
        if y is None:
            y = torch.arange(z.shape[-2] if z.dim() > 1 else 1, device=z.device) % self.num_classes
        return self.likelihood.mean(self.decoder(z, self.onehot(y)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x | z = E[z|x,ŷ], ŷ], ŷ the label (or the classifier's guess)."""
        y = self.fill_labels(x, y)
        return self.decode(self.encode_given(x, y)[0], y)

    @torch.no_grad()
    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z,y] for z ~ p(z) and class y (default: the classes in turn)."""
        n = num_samples if y is None else y.shape[0]
        z = self.prior.distribution().sample((n,))
        return self.decode(z, y)

    @torch.no_grad()
    def pictures(self, x: Tensor, y: Tensor, rows: int = 8) -> Grids:
        """``analogies.png``: each row a test image, then its style z = E[z|x,ŷ] drawn as every class 0..K-1."""
        x = x[:rows]
        z = self.encode(x)[0]
        k = self.num_classes
        styles = self.decode(z.repeat_interleave(k, 0), torch.arange(k, device=x.device).repeat(x.shape[0]))
        grid = torch.cat([x.unsqueeze(1), styles.reshape(x.shape[0], k, *x.shape[1:])], 1)
        return {"analogies.png": (grid.reshape(-1, *x.shape[1:]), k + 1)}


Index = Union[Tensor, slice]


def split_labels(y: Optional[Tensor]) -> Tuple[Optional[Index], Optional[Index]]:
    """Indices of the labelled (y ≥ 0) and of the unlabelled (y = −1) points of a batch: None for an empty
    part, ``slice(None)`` for the whole batch."""
    if y is None:
        return None, slice(None)
    seen = y >= 0
    if bool(seen.all()):
        return slice(None), None
    if not bool(seen.any()):
        return None, slice(None)
    return seen.nonzero().squeeze(-1), (~seen).nonzero().squeeze(-1)
