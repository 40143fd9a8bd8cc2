# %% [markdown]
# # 4. Conditional VAE
#
# A conditional VAE (Sohn et al., 2015) models $p(x \mid c)$: the condition $c$ is threaded through the prior
# $p(z\mid c)$, the decoder $p(x\mid z, c)$ and the guide $q(z\mid x, c)$. `model.type=cvae` is a subclass of the
# VAE with the same sites (`z`, `x` in `pyro.plate("data")`), so training, importance sampling and evaluation
# work unchanged. Two kinds of condition:
#
# * `condition=label`: $c$ is the one-hot class — **class-conditional generation**;
# * `condition=quadrants`: $c$ is the visible part of the image and $x$ the hidden rest — **structured output
#   prediction**, compared with a **deterministic baseline** $\hat x = f(c)$ (`model.type=baseline`).

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
from pyro_vae.models.cvae import CVAE

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 60
HIDDEN = "[32]" if FAST else "[256,128]"
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []
EVAL_K = 5 if FAST else 100
OUT = Path(tempfile.mkdtemp(prefix="tutorial04-"))
common = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false", *LIMIT]


# %% [markdown]
# ## The model
#
# Model and guide are the VAE's: the CVAE only builds the condition, and the shared body threads $c$ =
# `self.condition(x, y)` through prior, encoder and decoder; `self.observed(...)` masks the likelihood to the
# hidden pixels when $c$ is quadrants.

# %%
print(inspect.getsource(CVAE.model))

# %% [markdown]
# ## Class-conditional digits
#
# `prior=conditional` learns $p(z\mid c) = \mathcal N(\mu(c), \operatorname{diag}\sigma^2(c))$. Because the label
# carries the class, $z$ is free to encode *style* (slant, thickness): fixing $z$ and changing $c$ redraws the
# same style as every digit.

# %%
label_run = train(load_config(None, common + ["model.type=cvae", "model.condition=label", "model.latent_dim=4",
                                              "model.prior=conditional"]), OUT / "label")
torch.manual_seed(0)
labels = torch.arange(10).repeat_interleave(8)
by_class = label_run.model.generate(labels.shape[0], labels)     # one row per class
z = torch.randn(8, 4).repeat(10, 1)                               # the same 8 styles for every class
same_style = label_run.model.decode(z, labels)
fig, axes = plt.subplots(1, 2, figsize=(9, 5))
show_images(by_class, nrow=8, title="rows: c = 0..9, z ~ p(z|c)", ax=axes[0])
show_images(same_style, nrow=8, title="rows: c = 0..9, columns: one fixed z", ax=axes[1])
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/04_cvae.png", dpi=40)

# %% [markdown]
# ## Quadrant completion against the deterministic baseline
#
# With `visible=1` only the bottom-left 4×4 quadrant of each 8×8 digit is shown, and the model must fill in the
# other three. The baseline predicts one image $\mathbb E[x\mid c]$ — a blur over every digit compatible
# with the visible stroke — while the CVAE draws $z \sim p(z\mid c)$ and commits to one plausible completion per
# sample. Both report the conditional $-\log p(x\mid c)$ of the hidden pixels (the CVAE's by importance
# sampling with $K$ draws from $q(z\mid x, c)$).

# %%
quad = ["model.condition=quadrants", "model.visible=1"]
base_run = train(load_config(None, common + ["model.type=baseline", *quad]), OUT / "baseline")
cvae_run = train(load_config(None, common + ["model.type=cvae", *quad, "model.prior=conditional"]), OUT / "cvae")
for name, run in [("baseline", base_run), ("cvae", cvae_run)]:
    r = run.evaluate(num_samples=EVAL_K)
    print(f"{name:9s} −log p(x|c) = {-r['test_iwae']:7.2f} nats per digit (hidden pixels; K={EVAL_K})")

# %%
x = cvae_run.data().test_x[:10]
torch.manual_seed(0)
rows = [x, base_run.model.reconstruct(x), *cvae_run.model.complete(x, 4)]
show_images(torch.cat(rows), nrow=10, title="truth / baseline / 4 CVAE completions (visible: bottom-left quadrant)")
print("the run folders also hold these pictures:", sorted(p.name for p in cvae_run.path.glob("*.png")))

# %% [markdown]
# **Takeaways.** Conditioning is one more argument threaded through prior, decoder and guide; the Pyro
# program keeps its sites, so every inference and evaluation tool applies. When the answer is multimodal
# (which digit continues this stroke?), a latent variable lets samples commit to one mode where a
# deterministic predictor averages them.
