# %% [markdown]
# # 8. Clustering with a mixture prior: VaDE and a GMVAE that keeps its components, against k-means
#
# A Gaussian-mixture prior $p(z) = \sum_c \pi_c \mathcal N(z\mid\mu_c, \operatorname{diag}\sigma_c^2)$ gives every
# datapoint a cluster: $q(c\mid x) = p(c\mid z = \mu(x))$, the prior's responsibility at the code of $x$.
# Trained from a random start (tutorial 3) it does not find the digit classes: plain k-means on the raw pixels
# does better. Two fixes, both Pyro programs in the library:
#
# * **VaDE** (`model.type: vade`, Jiang et al. 2017). With $q(c\mid x) = p(c\mid z)$ the VaDE ELBO is
#   $\mathbb E_{q(z\mid x)}\big[\log p(x\mid z) + \log \sum_c \pi_c \mathcal N(z;\mu_c,\sigma_c) - \log q(z\mid x)\big]$,
#   the GMM prior with $c$ summed out. What makes it cluster is the *initialisation*: one `train` run first
#   pretrains an autoencoder (its own progress-bar phase, checkpointed), then fits scikit-learn's
#   `GaussianMixture` to the latent means of the training set to set $\pi, \mu_c, \sigma_c$, then trains the ELBO.
# * **GMVAE with a balance term** (`model.type: gmvae`, `model.balance: λ`): a cluster guide $q(y\mid x)$,
#   $y$ enumerated by `TraceEnum_ELBO`, $p(y)$ kept uniform, and $\lambda \cdot B \cdot H(\bar q(y))$ (the entropy
#   of the minibatch-mean $q(y\mid x)$) added to the training objective so that all $K$ components stay in use.
#
# Cluster accuracy matches clusters to labels one-to-one (Hungarian); NMI and ARI need no matching;
# "components used" counts components holding at least 1 % of the held-out points.

# %%
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")

import matplotlib.pyplot as plt
import torch
from sklearn.cluster import KMeans

import pyro_vae
from pyro_vae import load_config, train
from pyro_vae.evaluation.clustering import assign_clusters, assignment_metrics
from pyro_vae.plots import project_2d

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
CONFIGS = Path(pyro_vae.__file__).resolve().parents[1] / "configs"  # the repository's configs/
TINY = ["data.limit=400", "model.network.hidden_dims=[32]", "train.eval_samples=2"] if FAST else []
OUT = Path(tempfile.mkdtemp(prefix="tutorial08-"))

# %% [markdown]
# ## The baseline: k-means on the raw pixels
#
# Fitted to the grey-level training digits, applied to the 180 held-out ones (the split every run below uses).

# %%
vade_config = load_config(CONFIGS / "digits_vade.yaml",
                          ["train.progress=false", *(["train.epochs=2", "model.pretrain.epochs=2"] if FAST else []),
                           *TINY])
from pyro_vae.data import load_data

data = load_data(vade_config.data, vade_config.seed)
kmeans = KMeans(10, n_init=10, random_state=0).fit(data.train_x.flatten(1).numpy())
results = {"k-means, raw pixels": assignment_metrics(kmeans.predict(data.test_x.flatten(1).numpy()),
                                                     data.test_y.numpy())}
results["k-means, raw pixels"]

# %% [markdown]
# ## VaDE: pretraining, a fitted GMM, then the ELBO — one run
#
# The config's `model.pretrain` block sets the pretraining phase (`epochs`, `kind: autoencoder` or `vae`,
# `lr`, `gmm_restarts`). The trainer runs `pretrain` and then `train`; an interrupted run resumes in the
# phase it stopped in (`pyro-vae train --resume RUN`).

# %%
print({k: getattr(vade_config.model.pretrain, k) for k in ("epochs", "kind", "lr", "gmm_restarts")},
      "then", vade_config.train.epochs, "epochs")
vade = train(vade_config, OUT / "vade")
report = vade.evaluate(num_samples=5 if FAST else 100)
results["VaDE"] = {k: v for k, v in report.items() if k.startswith("cluster") or k == "components_used"}
print(f"held-out log p(x) ≈ {report['test_log_likelihood']:.2f} nats (importance-sampled)")
results["VaDE"]

# %% [markdown]
# ## The fixed GMVAE
#
# Same data, its own config: uniform $p(y)$ (`prior.learn_weights: false`) and `balance: 1.0`.
# Without the balance term this model settles on one or two components.

# %%
gmvae_config = load_config(CONFIGS / "digits_gmvae_balanced.yaml",
                           ["train.progress=false", *(["train.epochs=2"] if FAST else []), *TINY])
gmvae = train(gmvae_config, OUT / "gmvae")
report = gmvae.evaluate(num_samples=5 if FAST else 100)
results["GMVAE + balance"] = {k: v for k, v in report.items() if k.startswith("cluster") or k == "components_used"}
for name, r in results.items():
    print(f"{name:22s} accuracy {100 * r['cluster_accuracy']:5.1f} %  NMI {r['cluster_nmi']:.3f}  "
          f"ARI {r['cluster_ari']:.3f}  components used {r['components_used']}")

# %% [markdown]
# ## What the clusters look like
#
# VaDE's latent means of the held-out digits (PCA to 2-D), coloured by the true label and by the assigned
# cluster. `pyro-vae train` writes the same two panels to the run folder's `latent.png`.

# %%
vade.model.eval()
with torch.no_grad():
    means = vade.model.encode(data.test_x)[0]
    clusters = assign_clusters(vade.model, data.test_x)
xy = project_2d(means)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, colour) in zip(axes, [("true label", data.test_y), ("VaDE cluster", clusters)]):
    ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="tab10", s=8)
    ax.set_title(f"held-out digits coloured by {name}")
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# Measured over 3 seeds on the digits and on the MNIST t10k split, with the settings chosen on a validation
# slice of the training set, the full comparison (k-means, a GMM on a plain VAE's codes, the old GMM-prior VAE,
# VaDE, this GMVAE and the semi-supervised M2) is in `benchmarks/clustering.md` and `docs/clustering.md`.
