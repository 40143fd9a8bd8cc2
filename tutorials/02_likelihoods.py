# %% [markdown]
# # 2. Swapping likelihoods
#
# The likelihood $p_\theta(x \mid z)$ says what a pixel *is*. The 8×8 digits are grey levels in $[0, 1]$;
# with `data.binarize=none` we keep them grey and compare four choices on the same data, same network and
# same seed — only `model.likelihood` changes:
#
# | likelihood | $\log p(x\mid z)$ per pixel | decoder outputs |
# |---|---|---|
# | `bernoulli` | $x\log\lambda + (1-x)\log(1-\lambda)$ — not a density on grey $x$ (no normaliser) | logits |
# | `gaussian`, fixed σ | $-\tfrac12 (x-\mu)^2/\sigma^2 - \log\sigma - \tfrac12\log 2\pi$ | μ |
# | `gaussian`, learned σ | same, with σ learned (one per pixel here) | μ (+ σ parameter) |
# | `continuous_bernoulli` | Bernoulli term $+\log C(\lambda)$, normalised on $[0,1]$ | logits |
#
# With a fixed σ the Gaussian is a weighted squared error: σ sets how much reconstruction is worth against
# the KL term (small σ → sharp reconstructions, weak use of the prior). Learning σ lets the data decide.

# %%
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook widget is not used here

import matplotlib.pyplot as plt
import torch

from pyro_vae import LIKELIHOODS, load_config, train
from pyro_vae.plots import show_images

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 40
HIDDEN = "[32]" if FAST else "[256,128]"
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []
EVAL_K = 5 if FAST else 100
OUT = Path(tempfile.mkdtemp(prefix="tutorial02-"))


print("registered likelihoods:", LIKELIHOODS.names())

# %% [markdown]
# ## Four runs, one override each

# %%
CHOICES = {
    "bernoulli": ["model.likelihood=bernoulli"],
    "gaussian σ=0.1 fixed": ["model.likelihood=gaussian", "model.likelihood.sigma=0.1"],
    "gaussian σ learned": ["model.likelihood=gaussian", "model.likelihood.learn=per_dim"],
    "continuous_bernoulli": ["model.likelihood=continuous_bernoulli"],
}
common = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false",
          "data.binarize=none", *LIMIT]
runs = {}
for i, (name, extra) in enumerate(CHOICES.items()):
    runs[name] = train(load_config(None, common + extra), OUT / f"run{i}")
    print(f"{name:22s} test ELBO {runs[name].history[-1]['test_elbo']:9.2f} nats")

# %% [markdown]
# ## What changes in the samples
#
# Each panel shows $\mathbb E[x\mid z]$ for the same 32 prior draws' worth of samples and the reconstructions of
# the same test digits.

# %%
torch.manual_seed(0)
x = runs["bernoulli"].data().test_x[:16]
fig, axes = plt.subplots(2, len(runs), figsize=(3.2 * len(runs), 6.4))
for j, (name, run) in enumerate(runs.items()):
    torch.manual_seed(0)
    show_images(run.sample(32), nrow=8, title=f"{name}\nsamples", ax=axes[0, j])
    show_images(torch.cat([x, run.model.reconstruct(x)]), nrow=8, title="test (top) / reconstruction", ax=axes[1, j])
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/02_likelihoods.png", dpi=40)

# %% [markdown]
# ## What changes in the numbers
#
# `run.evaluate(K)` reports, per test digit, the ELBO, its reconstruction and KL parts, the importance-sampled
# $\log p(x)$ with $K$ samples and the number of active latent units.
#
# **Careful:** the log-likelihoods of different likelihood families are *not* comparable. The Bernoulli's is
# a log-*probability* of the grey image read as soft bits (≤ 0 always, and not normalised over $[0,1]$); the
# Gaussian and continuous Bernoulli are log-*densities* on $[0,1]^{64}$, which can be positive, and a small σ
# buys large values. Compare within a family (e.g. fixed vs learned σ), and compare samples by eye.

# %%
rows = []
for name, run in runs.items():
    r = run.evaluate(num_samples=EVAL_K)
    rows.append((name, r["test_elbo"], r["reconstruction"], r["kl"], r["test_log_likelihood"], r["active_units"]))
print(f"{'likelihood':22s} {'ELBO':>9s} {'recon':>9s} {'KL':>7s} {'log p(x)':>9s} active")
for row in rows:
    print(f"{row[0]:22s} {row[1]:9.2f} {row[2]:9.2f} {row[3]:7.2f} {row[4]:9.2f} {row[5]:4d}")

# %% [markdown]
# The learned σ ends near the pixel noise level — the model's own estimate of how far reconstructions are off:

# %%
lik = runs["gaussian σ learned"].model.likelihood
sigma = lik.scale(torch.zeros(1, *lik.data_shape)).expand(lik.data_shape).detach()
plt.figure(figsize=(3, 3)); plt.imshow(sigma[0], cmap="viridis"); plt.colorbar(); plt.axis("off")
plt.title(f"learned σ per pixel (mean {sigma.mean():.3f})", fontsize=9);

# %% [markdown]
# **Takeaways.** The likelihood is one config key. Bernoulli is the classic choice for (near-)binary
# pixels; on grey levels the continuous Bernoulli fixes its missing normaliser (and its mean is no longer
# biased towards 0.5); a Gaussian with fixed σ is a tunable squared error, and learning σ removes that knob.
