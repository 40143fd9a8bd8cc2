"""The autoencoder family as Pyro programs: plain, denoising, sparse and contractive autoencoders.

Each member is the VAE's model p(h) p(x|h) with a Delta (point-mass) guide q(h|x) = δ(h − f(x)), so
the ELBO E_q[log p(x,h) − log q(h|x)] is the MAP objective log p(x | f(x)) + log p(f(x)) and SVI is
MAP estimation of the code. What separates the members is one hook each:

* ``autoencoder``: flat prior (log p(h) = 0): maximize log p(x | f(x)) (the reconstruction loss).
* ``denoising``: the guide encodes a corrupted x̃ ~ C(x̃|x); the model scores the clean x:
  maximize E_C[log p(x | f(x̃))].
* ``sparse``: factorial Laplace prior: log p(h) = −Σ_d |h_d|/b + const = −Ω(h), the sparsity penalty.
* ``contractive``: the model adds ``pyro.factor("contractive", −λ‖∂f(x)/∂x‖²_F)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Tuple

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from ..config.schema import component, fraction, opt, positive
from ..config.validators import non_negative
from ..errors import ConfigError
from ..nets.mlp import MLPEncoder
from ..priors.base import ImproperPrior
from ..registry import MODELS, PRIORS
from .vae import VAE, VAEConfig


@dataclass
class AutoencoderConfig(VAEConfig):
    type: str = "autoencoder"
    prior: Any = component(PRIORS, lambda: PRIORS.get("flat").config_cls(), "p(h): flat = no code penalty")


@MODELS.register("autoencoder", AutoencoderConfig)
class Autoencoder(VAE):
    """Deterministic autoencoder: Delta guide δ(h − f(x)), so SVI maximizes log p(x|f(x)) + log p(f(x)) (MAP).

    Same model and sites as the VAE (``z`` = the code h, ``x``); subclasses override :meth:`corrupt` (what
    the guide encodes) and :meth:`penalty` (a factor on the model).
    """

    point_estimate = True  # a point-mass guide: no KL split, no Gaussian-posterior pictures
    swappable_guide = False  # its own guide family: the Delta guide δ(h − f(x))

    # the model is the VAE's, p(h) p(x|h) exp(−Ω(x)), through the hook `penalty` (None here)

    def posterior(self, x: Tensor, c: Optional[Tensor]) -> dist.TorchDistribution:
        """q(h|x̃) = δ(h − f(x̃)): a point mass (log q = 0) at the code of the guide's input x̃ = corrupt(x)."""
        return dist.Delta(self.encoder(x, c)[0]).to_event(1)

    def code(self, x: Tensor) -> Tensor:
        """The deterministic code h = f(x) (the encoder's location head)."""
        return self.encoder(x)[0]

    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """(f(x), 0): the point mass as a degenerate Gaussian (clean input, no corruption)."""
        h = self.code(x)
        return h, torch.zeros_like(h)

    @torch.no_grad()
    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x|h] for h ~ p(h); a flat (improper) prior has no samples, so h ~ N(0, I) is decoded instead
        (a plain autoencoder is not a generative model: these pictures are only illustrative)."""
        if isinstance(self.prior, ImproperPrior):
            h = torch.randn(num_samples, self.config.latent_dim, device=next(self.parameters()).device)
            return self.decode(h, y)
        return super().generate(num_samples, y)


# ---- denoising --------------------------------------------------------------------------------------------

@dataclass
class DenoisingConfig(AutoencoderConfig):
    type: str = "denoising"
    corruption: Literal["gaussian", "mask", "shift"] = opt(
        "gaussian", "C(x̃|x): gaussian: x̃ = x + σε; mask: zero a fraction p; shift: translate the image by up to "
                    "max_shift pixels")
    noise: float = opt(0.1, "σ of the Gaussian corruption", positive, "a number > 0")
    mask_rate: float = opt(0.25, "fraction p of each datapoint's entries zeroed by the mask corruption", fraction,
                           "a number in (0, 1)")
    max_shift: int = opt(1, "the shift corruption's largest translation along each image axis, in pixels", positive,
                         "an integer >= 1")


def gaussian_corruption(x: Tensor, sigma: float) -> Tensor:
    """x̃ = x + σ ε, ε ~ N(0, I)."""
    return x + sigma * torch.randn_like(x)


def mask_corruption(x: Tensor, rate: float) -> Tensor:
    """x̃ = x ⊙ m with exactly round(p·D) of each datapoint's D entries set to 0 (chosen uniformly at random)."""
    flat = x.flatten(1)
    hidden = int(round(rate * flat.shape[1]))
    ranks = torch.rand_like(flat).argsort(dim=1).argsort(dim=1)  # a uniformly random permutation per row
    return (flat * (ranks >= hidden).to(flat.dtype)).view_as(x)


def shift_corruption(x: Tensor, max_shift: int) -> Tensor:
    """x̃(i, j) = x(i + a, j + b), (a, b) uniform on {−s..s}² per image (s = ``max_shift``), zero outside it."""
    s, n, (c, h, w), device = max_shift, x.shape[0], x.shape[-3:], x.device
    padded = nn.functional.pad(x.reshape(n, c, h, w), (s, s, s, s))
    rows = torch.randint(0, 2 * s + 1, (n, 1), device=device) + torch.arange(h, device=device)
    cols = torch.randint(0, 2 * s + 1, (n, 1), device=device) + torch.arange(w, device=device)
    image, channel = torch.arange(n, device=device), torch.arange(c, device=device)
    picked = padded[image[:, None, None, None], channel[:, None, None], rows[:, None, :, None], cols[:, None, None, :]]
    return picked.view_as(x)


def check_corruption(kind: str, data_shape: Tuple[int, ...], key: str) -> None:
    """The shift corruption translates images: refuse data that is not (channels, height, width)."""
    if kind == "shift" and len(data_shape) != 3:
        raise ConfigError(f"{key}: the shift corruption translates images, so it needs data shaped "
                          f"(channels, height, width); this data's points have shape {tuple(data_shape)}")


def corrupt(x: Tensor, kind: str, noise: float, mask_rate: float, max_shift: int) -> Tensor:
    """x̃ ~ C(x̃|x): ``gaussian`` x̃ = x + σε (σ = ``noise``), ``mask`` zeroes a fraction ``mask_rate`` of x,
    ``shift`` translates each image by up to ``max_shift`` pixels along each axis."""
    if kind == "shift":
        return shift_corruption(x, max_shift)
    return mask_corruption(x, mask_rate) if kind == "mask" else gaussian_corruption(x, noise)


@MODELS.register("denoising", DenoisingConfig)
class Denoising(Autoencoder):
    """Denoising autoencoder: the guide encodes x̃ ~ C(x̃|x), the model scores clean x: max E_C log p(x|f(x̃)).

    The Delta carries log-density 0, so the objective is the DAE criterion (plus log p(h)), not a bound.
    """

    def __init__(self, config: DenoisingConfig, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        check_corruption(config.corruption, data_shape, "model.corruption")
        super().__init__(config, data_shape, num_classes)

    def corrupt(self, x: Tensor) -> Tensor:
        return corrupt(x, self.config.corruption, self.config.noise, self.config.mask_rate, self.config.max_shift)


# ---- sparse -----------------------------------------------------------------------------------------------

@dataclass
class SparseConfig(AutoencoderConfig):
    type: str = "sparse"
    prior: Any = component(PRIORS, lambda: PRIORS.get("laplace").config_cls(), "p(h): factorial Laplace(0, b)")


@MODELS.register("sparse", SparseConfig)
class Sparse(Autoencoder):
    """Sparse autoencoder: factorial Laplace(0, b) prior on h, Delta guide: Ω(h) = −log p(h) = Σ|h_d|/b + const.

    The prior is the registry's ``laplace`` prior (``model.prior.scale`` = b = 1/λ); the model is the
    plain autoencoder's, so the penalty is literally the prior's log density at the site ``z``.
    """


# ---- contractive ------------------------------------------------------------------------------------------

@dataclass
class ContractiveConfig(AutoencoderConfig):
    type: str = "contractive"
    weight: float = opt(0.1, "λ of the penalty λ‖∂f(x)/∂x‖²_F", non_negative, "a number >= 0")
    jacobian: Literal["auto", "closed_form", "exact", "hutchinson"] = opt(
        "auto", "‖J‖²_F by: closed_form (one-hidden-layer MLP encoder), exact (D reverse passes, vmapped), "
                "hutchinson (unbiased, `probes` reverse passes); auto = closed_form when possible, else exact")
    probes: int = opt(1, "Hutchinson probes ε ~ N(0, I_D) per datapoint", positive, "an integer >= 1")


def _single_layer(encoder: nn.Module) -> bool:
    return isinstance(encoder, MLPEncoder) and len(encoder.body) == 2 and isinstance(encoder.body[0], nn.Linear)


def jacobian_sq_closed_form(encoder: MLPEncoder, x: Tensor) -> Tensor:
    """‖J‖²_F for f(x) = W₂ a(W₁x + b₁) + b₂: J = W₂ diag(s) W₁, s = a′(W₁x + b₁), so
    ‖J‖²_F = sᵀ G s with G = (W₂ᵀW₂) ⊙ (W₁W₁ᵀ) (H×H, shared by the batch). Shape ``(B,)``."""
    linear, act = encoder.body[0], encoder.body[1]
    pre = linear(x.flatten(-encoder.data_dims))
    s = torch.func.jvp(act, (pre,), (torch.ones_like(pre),))[1]  # elementwise a′(pre), differentiable
    w1, w2 = linear.weight, encoder.head.loc.weight
    gram = (w2.T @ w2) * (w1 @ w1.T)
    return ((s @ gram) * s).sum(-1)


def jacobian_sq_exact(encoder: nn.Module, x: Tensor) -> Tensor:
    """‖J‖²_F from the full Jacobian ∂f(x)/∂x (latent_dim reverse passes, vmapped over the batch)."""
    def f(xi: Tensor) -> Tensor:
        return encoder(xi.unsqueeze(0))[0].squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(f))(x)  # (B, D, *data_shape)
    return jac.pow(2).flatten(1).sum(-1)


def jacobian_sq_hutchinson(encoder: nn.Module, x: Tensor, probes: int = 1) -> Tensor:
    """Unbiased ‖J‖²_F = E_ε‖Jᵀε‖², ε ~ N(0, I_D), averaged over ``probes`` vector-Jacobian products."""
    with torch.enable_grad():  # also under evaluation's no_grad
        x = x.detach().requires_grad_(True)
        h = encoder(x)[0]
        total = x.new_zeros(x.shape[0])
        for _ in range(probes):
            (vjp,) = torch.autograd.grad(h, x, torch.randn_like(h), create_graph=True)
            total = total + vjp.pow(2).flatten(1).sum(-1)
    return total / probes


def jacobian_sq(encoder: nn.Module, x: Tensor, method: str = "auto", probes: int = 1) -> Tensor:
    """‖∂f(x)/∂x‖²_F per datapoint for the code f(x) = ``encoder(x)[0]`` (see :class:`ContractiveConfig`)."""
    if method == "auto":
        method = "closed_form" if _single_layer(encoder) else "exact"
    if method == "closed_form":
        if not _single_layer(encoder):
            raise ValueError("jacobian: closed_form needs an mlp encoder with one hidden layer (hidden_dims: [H])")
        return jacobian_sq_closed_form(encoder, x)
    if method == "exact":
        return jacobian_sq_exact(encoder, x)
    return jacobian_sq_hutchinson(encoder, x, probes)


@MODELS.register("contractive", ContractiveConfig)
class Contractive(Autoencoder):
    """Contractive autoencoder: the model carries ``pyro.factor("contractive", −λ‖∂f(x)/∂x‖²_F)``."""

    penalty_site = "contractive"

    @classmethod
    def check_config(cls, config: ContractiveConfig) -> None:
        single = config.network.type == "mlp" and len(config.network.hidden_dims) == 1
        if config.jacobian == "closed_form" and not single:
            raise ConfigError("model.jacobian: closed_form needs model.network: mlp with one hidden layer "
                              "(hidden_dims: [H]); use exact or hutchinson")
        super().check_config(config)

    def penalty(self, x: Tensor) -> Optional[Tensor]:
        if self.config.weight == 0:
            return None
        return self.config.weight * jacobian_sq(self.encoder, x, self.config.jacobian, self.config.probes)


@torch.no_grad()
def code_sparsity(h: Tensor, threshold: float = 0.05) -> Tuple[float, float]:
    """(fraction of |h_d| < threshold·max|h|, mean Hoyer sparsity (√D − ‖h‖₁/‖h‖₂)/(√D − 1)) of codes ``(N, D)``."""
    d = h.shape[-1]
    scale = h.abs().max().clamp(min=1e-12)
    small = float((h.abs() < threshold * scale).float().mean())
    ratio = h.abs().sum(-1) / h.norm(dim=-1).clamp(min=1e-12)
    hoyer = float(((math.sqrt(d) - ratio) / (math.sqrt(d) - 1)).mean()) if d > 1 else 0.0
    return small, hoyer


def jacobian_singular_values(fn, x: Tensor) -> Tensor:
    """Singular values (descending) of ∂fn(x_i)/∂x_i for each row of ``x``: shape ``(N, min(out, in))``."""
    def single(xi: Tensor) -> Tensor:
        return fn(xi.unsqueeze(0)).flatten(1).squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(single))(x)  # (N, out, *data_shape)
    return torch.linalg.svdvals(jac.flatten(2)).detach()
