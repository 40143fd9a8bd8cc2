# %% [markdown]
# # 1. From the ELBO to SVI
#
# A variational autoencoder is a latent-variable model $p_\theta(x, z) = p(z)\,p_\theta(x \mid z)$ fitted by
# maximising a lower bound on $\log p_\theta(x)$. This tutorial derives that bound in four lines, shows the
# Pyro **model** and **guide** that encode it in `pyro_vae`, and trains one on the 8×8 scikit-learn digits.
#
# **Budget.** With `PYRO_VAE_TUTORIAL_FAST=1` (what CI sets) every run is a few epochs of a tiny network;
# without it the runs are long enough for good-looking figures (a couple of minutes on 2 CPU cores).

# %%
import inspect
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook widget is not used here

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.kl import kl_divergence

import pyro_vae
from pyro_vae import load_config, train
from pyro_vae.plots import show_images
from pyro_vae.models.vae import VAE
from pyro_vae.nets.base import GaussianHead

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 40
HIDDEN = "[32]" if FAST else "[256,128]"
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []  # CI: a 400-digit subset
OUT = Path(tempfile.mkdtemp(prefix="tutorial01-"))  # run folders go to a scratch directory
print(f"pyro_vae {pyro_vae.__version__}, pyro {pyro.__version__}, fast={FAST}, epochs={EPOCHS}")


# %% [markdown]
# ## The bound
#
# For any distribution $q_\phi(z \mid x)$ whose support covers the posterior's, Jensen's inequality
# ($\log \mathbb{E} \ge \mathbb{E} \log$, since $\log$ is concave) gives the **evidence lower bound**:
#
# $$\log p_\theta(x) = \log \mathbb{E}_{q_\phi(z\mid x)}\!\left[\frac{p_\theta(x, z)}{q_\phi(z \mid x)}\right]
#   \;\ge\; \mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x \mid z)\big] - \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)
#   = \mathrm{ELBO}(x).$$
#
# The gap is exactly $\mathrm{KL}(q_\phi(z\mid x)\,\|\,p_\theta(z \mid x))$: maximising the ELBO over $\phi$ makes
# $q$ a better posterior approximation, maximising it over $\theta$ fits the model.
#
# * **Reparameterization.** With $q_\phi(z\mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ we
#   write $z = \mu + \sigma \odot \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$, so a one-sample Monte Carlo
#   estimate of the ELBO is a differentiable function of $\phi$ — low-variance gradients by backpropagation.
#   Pyro does this automatically for distributions with `has_rsample=True`.
# * **Closed-form KL.** For $p(z) = \mathcal N(0, I)$ the KL term needs no sampling:
#   $\mathrm{KL} = \tfrac12 \sum_d \big(\mu_d^2 + \sigma_d^2 - \log\sigma_d^2 - 1\big)$.
#   The encoder predicts $\log\sigma^2$ (a *log-variance head*), so $\sigma = \exp(\tfrac12 \log\sigma^2)$ is
#   positive without constraints, and the $-\log \sigma^2_d$ term is just the head's output.
#
# Both facts are easy to check numerically:

# %%
torch.manual_seed(0)
loc = torch.randn(5, requires_grad=True)
logvar = torch.randn(5, requires_grad=True)
q = dist.Normal(loc, torch.exp(0.5 * logvar)).to_event(1)
p = dist.Normal(torch.zeros(5), torch.ones(5)).to_event(1)

kl_formula = 0.5 * (loc ** 2 + logvar.exp() - logvar - 1).sum()
kl_pyro = kl_divergence(q, p)                  # Pyro's registered closed form
z = q.rsample((20000,))                              # z = μ + σ ε: differentiable in (μ, log σ²)
kl_mc = (q.log_prob(z) - p.log_prob(z)).mean()
print(f"KL closed form {kl_formula.item():.4f} | pyro {kl_pyro.item():.4f} | Monte Carlo (20k) {kl_mc.item():.4f}")
kl_mc.backward()
print("gradients flow through the sample: dKL/dμ =", loc.grad.numpy().round(3))

# %% [markdown]
# The library's encoders end in exactly this head:

# %%
print(inspect.getsource(GaussianHead))

# %% [markdown]
# ## The model and the guide
#
# In Pyro the generative story is the **model** and $q_\phi$ is the **guide**; sites with the same name (`z`)
# are paired. `pyro.plate("data")` declares that datapoints are conditionally independent (so the ELBO of a
# minibatch is rescaled correctly), and `.to_event(1)` makes the $D$ latent coordinates one event.

# %%
print(inspect.getsource(VAE.model))
print(inspect.getsource(VAE.guide))

# %% [markdown]
# The model draws site `z` from the prior's distribution $p(z)$ and observes site `x` under the likelihood's
# $p_\theta(x\mid z)$ — both are swappable components (tutorials 2 and 3). This one body serves the whole
# family: the hooks `condition` (the CVAE's $c$, tutorial 4), `penalty` and the guide's `corrupt` (the
# autoencoders, tutorial 6) are `None` or the identity for the VAE. `pyro.infer.SVI` with `Trace_ELBO`
# runs model and guide, and ascends the one-sample ELBO estimate; with `TraceMeanField_ELBO` (objective
# `meanfield`) it uses the closed-form KL above instead of sampling it. pyro-vae's default engine computes
# the same estimators (same random numbers, same gradients) with one-pass versions of these classes and
# replays their recorded tensor ops (docs/speed.md); `train.engine=svi train.objective.fused=false`
# runs Pyro's own loop exactly as described here.
#
# ## Training on digits
#
# `load_config(None, overrides)` starts from the default config (`configs/digits_vae.yaml`: the 1,797 8×8
# digits, 1,617 train / 180 test, dynamically binarized, Bernoulli likelihood, $N(0, I)$ prior) and applies
# `key=value` overrides. `train` writes a run folder and returns a `Run`.

# %%
overrides = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false",
             "train.objective=meanfield", *LIMIT]
config = load_config(None, overrides)
print(config.model)
run = train(config, OUT / "vae")
print(f"last epoch: train ELBO {run.history[-1]['train_elbo']:.2f}, test ELBO {run.history[-1]['test_elbo']:.2f} nats")

# %%
epochs = [h["epoch"] for h in run.history]
plt.figure(figsize=(5, 3))
plt.plot(epochs, [h["train_elbo"] for h in run.history], label="train")
plt.plot(epochs, [h["test_elbo"] for h in run.history], label="test")
plt.xlabel("epoch"); plt.ylabel("ELBO per digit (nats)"); plt.legend(); plt.tight_layout()

# %% [markdown]
# ## Samples and reconstructions
#
# `run.sample(n)` draws $z \sim p(z)$ and decodes $\mathbb E[x \mid z]$ (pixel probabilities for a Bernoulli
# likelihood). A reconstruction encodes a test digit to $\mu_\phi(x)$ and decodes it.

# %%
data = run.data()
x = data.test_x[:32]
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
show_images(run.sample(64), title="samples E[x|z], z ~ p(z)", ax=axes[0])
show_images(x, title="test digits", ax=axes[1])
show_images(run.model.reconstruct(x), title="reconstructions", ax=axes[2])
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/01_elbo_to_svi.png", dpi=40)

# %% [markdown]
# The run folder also holds the pictures the CLI writes (`pyro-vae train` produces the same folder):

# %%
from IPython.display import Image, display

print(sorted(p.name for p in run.path.iterdir()))
display(Image(filename=str(run.path / "latent.png"), width=360))

# %% [markdown]
# **Takeaways.** The ELBO is a Jensen bound whose gap is the posterior KL; the reparameterization trick makes
# its Monte Carlo estimate differentiable; a log-variance head gives the KL term in closed form. In `pyro_vae`
# all of this is a ten-line model/guide pair, and everything else is configuration.
