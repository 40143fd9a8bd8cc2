# %% [markdown]
# # 6. The autoencoder family as probabilistic programs
#
# Classic autoencoders look like a different world from VAEs: a deterministic code $h = f(x)$ and a loss. In
# Pyro they are the VAE's *model* $p(h)\,p(x\mid h)$ with a point-mass guide $q(h\mid x) = \delta(h - f(x))$. A
# Delta has log-density 0, so the ELBO becomes
#
# $$\mathbb E_q[\log p(x, h) - \log q(h\mid x)] = \log p(x \mid f(x)) + \log p(f(x)),$$
#
# a MAP objective for the code — and SVI is MAP estimation. Each family member changes one thing:
#
# | model | what changes | objective |
# |---|---|---|
# | `autoencoder` | flat (improper) prior, $\log p(h) = 0$ | $\log p(x\mid f(x))$: the reconstruction loss |
# | `denoising` | the guide encodes a corrupted $\tilde x \sim C(\tilde x\mid x)$ | $\mathbb E_C \log p(x \mid f(\tilde x))$ |
# | `sparse` | factorial Laplace prior $p(h) \propto e^{-\sum_d |h_d|/b}$ | reconstruction $-\ \|h\|_1 / b$ |
# | `contractive` | a `pyro.factor` on the model | reconstruction $-\ \lambda \|\partial f/\partial x\|_F^2$ |

# %%
import inspect
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook widget is not used here

import matplotlib.pyplot as plt
import torch

from pyro_vae import load_config, train
from pyro_vae.plots import show_images
from pyro_vae.models.autoencoders import Autoencoder, code_sparsity, jacobian_sq

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 40
HIDDEN = "[32]" if FAST else "[256]"   # one hidden layer: the contractive penalty has a closed form
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []
OUT = Path(tempfile.mkdtemp(prefix="tutorial06-"))


# %% [markdown]
# ## One model, one guide, two hooks

# %%
print(inspect.getsource(Autoencoder.model))
print(inspect.getsource(Autoencoder.guide))
print(inspect.getsource(Autoencoder.posterior))

# %% [markdown]
# The model and the guide are the VAE's; the autoencoder only swaps the guide's family for a point mass
# (`posterior`). `corrupt` (the identity here) is what the denoising member overrides; `penalty` (None here) is
# what the contractive member overrides. The sparse member overrides nothing: its penalty *is* its prior.
#
# ## Four runs on grey-level digits

# %%
common = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false",
          "data.binarize=none", "model.latent_dim=16", *LIMIT]
MEMBERS = {
    "autoencoder": ["model.type=autoencoder"],
    "denoising": ["model.type=denoising", "model.noise=0.3"],
    "sparse": ["model.type=sparse", "model.prior.scale=0.5"],
    "contractive": ["model.type=contractive", "model.weight=0.1"],
}
runs = {name: train(load_config(None, common + extra), OUT / name) for name, extra in MEMBERS.items()}

# %% [markdown]
# ## What each penalty buys
#
# On the same clean and noisy test digits: reconstruction error, reconstruction error *from a noisy input*
# (the denoising criterion), code sparsity (Hoyer measure, 1 = one active unit) and the encoder's contraction
# $\|\partial f / \partial x\|_F^2$.

# %%
data = runs["autoencoder"].data()
x = data.test_x
torch.manual_seed(0)
x_noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
print(f"{'model':12s} {'MSE clean':>10s} {'MSE noisy in':>13s} {'Hoyer':>6s} {'‖J‖²_F':>8s}")
stats = {}
for name, run in runs.items():
    m = run.model
    with torch.no_grad():
        mse = float(((m.reconstruct(x) - x) ** 2).mean())
        mse_noisy = float(((m.reconstruct(x_noisy) - x) ** 2).mean())
        h = m.code(x)
    jac = float(jacobian_sq(m.encoder, x[:64]).detach().mean())
    stats[name] = (mse, mse_noisy, code_sparsity(h)[1], jac)
    print(f"{name:12s} {mse:10.4f} {mse_noisy:13.4f} {stats[name][2]:6.3f} {jac:8.2f}")

# %%
fig, axes = plt.subplots(1, len(runs) + 1, figsize=(2.6 * (len(runs) + 1), 3.2))
show_images(torch.cat([x[:8], x_noisy[:8]]), nrow=8, title="clean / noisy input", ax=axes[0])
for ax, (name, run) in zip(axes[1:], runs.items()):
    show_images(torch.cat([run.model.reconstruct(x[:8]), run.model.reconstruct(x_noisy[:8])]), nrow=8, title=name, ax=ax)
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/06_autoencoders.png", dpi=40)

# %% [markdown]
# ## Codes
#
# Histograms of code values: the Laplace prior pushes the sparse member's codes to zero.

# %%
fig, axes = plt.subplots(1, len(runs), figsize=(3 * len(runs), 2.6), sharey=True)
for ax, (name, run) in zip(axes, runs.items()):
    with torch.no_grad():
        ax.hist(run.model.code(x).flatten().numpy(), bins=50)
    ax.set_title(name, fontsize=9); ax.set_yscale("log")
plt.tight_layout()

# %% [markdown]
# **Takeaways.** An autoencoder is a VAE whose guide is a point mass: the "loss" is a log-likelihood, a
# regulariser is either a prior (sparse: Laplace) or a factor on the model (contractive), and denoising is a
# change of what the guide sees. None of them is a generative model — a flat prior has no samples — which is
# exactly what the VAE's Gaussian guide and proper prior add.
