# %% [markdown]
# # 3. Priors: N(0, I), a Gaussian mixture, and the VampPrior
#
# The prior $p(z)$ is the other half of the generative model. A standard normal is simple but forces all
# codes into one blob; the ELBO's KL term then pulls every $q(z\mid x)$ towards it. Two richer priors:
#
# * **Gaussian mixture** (`gmm`): $p(z) = \sum_k \pi_k \mathcal N(z\mid \mu_k, \operatorname{diag}\sigma_k^2)$, all
#   learned. Written as a program with an explicit discrete component $y \sim \mathrm{Cat}(\pi)$,
#   $z \sim \mathcal N(\mu_y, \sigma_y)$ — and `TraceEnum_ELBO` (objective `enum`) sums $y$ out *exactly* instead
#   of sampling it. Each component can capture one cluster of digits.
# * **VampPrior** (`vamp`): $p(z) = \frac1K\sum_k q(z\mid u_k)$, the encoder's own posteriors at $K$ learned
#   pseudo-inputs $u_k$ — the prior that approximates the optimal one, the aggregated posterior
#   $q(z) = \frac1N\sum_n q(z\mid x_n)$.

# %%
import inspect
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook widget is not used here

import matplotlib.pyplot as plt
import pyro
import pyro.poutine as poutine
import torch

from pyro_vae import PRIORS, load_config, train
from pyro_vae.plots import project_2d, show_images
from pyro_vae.priors.gmm import GMMPrior

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 60
HIDDEN = "[32]" if FAST else "[256,128]"
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []
EVAL_K = 5 if FAST else 100
OUT = Path(tempfile.mkdtemp(prefix="tutorial03-"))
print("registered priors:", PRIORS.names())


# %% [markdown]
# ## The mixture as a program, and enumeration
#
# The model samples the prior's own sites first, then `z = pyro.sample("z", prior.distribution_given(values, c))`;
# with `form: enumerate` the prior declares the discrete site `y` and gives the distribution of `z` given it:

# %%
print(inspect.getsource(GMMPrior.sites))
print(inspect.getsource(GMMPrior.distribution_given))

# %% [markdown]
# `infer={"enumerate": "parallel"}` tells `TraceEnum_ELBO` to evaluate `y` at *all* $K$ values at once, in a new
# tensor dimension to the left of the `data` plate, and to sum them out with the right weights. Here is
# that enumerated trace for a batch of 5 digits: `y` has shape `(K, 1)` — one row per component, broadcast over
# the batch — and `z`'s log-density has shape `(K, 5)`.

# %%
config_gmm = load_config(None, ["model.prior=gmm", "model.prior.form=enumerate", "train.objective=enum",
                                f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}",
                                "train.progress=false", *LIMIT])
from pyro_vae.models import build_model  # noqa: E402

model = build_model(config_gmm.model, (1, 8, 8), 10)
x = torch.rand(5, 1, 8, 8).bernoulli()
guide_trace = poutine.trace(model.guide).get_trace(x)
enum_model = poutine.enum(poutine.replay(model.model, trace=guide_trace), first_available_dim=-2)
trace = poutine.trace(enum_model).get_trace(x)
trace.compute_log_prob()
for name, site in trace.nodes.items():
    if site["type"] == "sample":
        print(f"site {name!r:4s} value {tuple(site['value'].shape)}  log_prob {tuple(site['log_prob'].shape)}")

# %% [markdown]
# ## Three runs, one override each
#
# Same data, network, latent size (8) and seed; the GMM has one component per class (10) and the VampPrior
# 50 pseudo-inputs.

# %%
common = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false", *LIMIT]
CHOICES = {
    "normal": ["model.prior=normal"],
    "gmm (enumerated)": ["model.prior=gmm", "model.prior.form=enumerate", "train.objective=enum"],
    "vamp": ["model.prior=vamp"],
}
runs, reports = {}, {}
for i, (name, extra) in enumerate(CHOICES.items()):
    runs[name] = train(load_config(None, common + extra), OUT / f"run{i}")
    reports[name] = runs[name].evaluate(num_samples=EVAL_K)
print(f"{'prior':18s} {'ELBO':>8s} {'log p(x)':>9s} {'KL':>6s} {'MI':>6s} {'KL(q(z)||p)':>12s} {'cluster acc':>11s}")
for name, r in reports.items():
    acc = r.get("cluster_accuracy")
    print(f"{name:18s} {r['test_elbo']:8.2f} {r['test_log_likelihood']:9.2f} {r['kl']:6.2f} {r['mutual_info']:6.2f} "
          f"{r['marginal_kl']:12.2f} {'—' if acc is None else f'{acc:.3f}':>11s}")

# %% [markdown]
# The **marginal KL** column is $\mathrm{KL}(q(z)\,\|\,p(z))$: how far the prior is from the aggregated
# posterior. A learned prior can move towards the codes, so it pays less here; the mutual information is what
# the codes actually carry about the digits.
#
# ## Aggregated posterior against the prior
#
# One code $z \sim q(z\mid x)$ per test digit (coloured by its label) against as many draws from $p(z)$ (grey),
# projected on the codes' first two principal components.

# %%
fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4))
for ax, (name, run) in zip(axes, runs.items()):
    data, model = run.data(), run.model
    with torch.no_grad():
        loc, scale = model.encode(data.test_x)
        z_q = loc + scale * torch.randn_like(loc)
        z_p = model.prior.distribution().sample((z_q.shape[0],))
    both = project_2d(torch.cat([z_q, z_p]))
    ax.scatter(*both[len(z_q):].T, s=6, c="lightgrey", label="p(z)")
    ax.scatter(*both[:len(z_q)].T, s=6, c=data.test_y.cpu(), cmap="tab10", label="q(z)")
    ax.set_title(f"{name}: KL(q(z)||p(z)) = {reports[name]['marginal_kl']:.2f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/03_priors.png", dpi=40)

# %% [markdown]
# ## Clustering with the mixture
#
# The GMM's posterior responsibility $p(y=k\mid z)$ at $z=\mathbb E[z\mid x]$ assigns each digit to a component;
# `evaluate` matches components to labels (Hungarian algorithm) and reports the accuracy, purity and NMI —
# without ever having seen a label. Decoding each component's mean shows what it stands for; the library
# writes the latent picture with the components' 2σ ellipses into the run folder.

# %%
gmm = runs["gmm (enumerated)"]
r = reports["gmm (enumerated)"]
print({k: round(v, 3) for k, v in r.items() if k.startswith("cluster")})
with torch.no_grad():
    weights, locs, scales = gmm.model.prior.components()
    order = weights.argsort(descending=True)
    means = gmm.model.decode(locs[order])
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
show_images(means, nrow=10, title="decoded component means μ_k (by weight π_k)", ax=axes[0])
axes[1].imshow(plt.imread(gmm.path / "latent.png")); axes[1].set_axis_off()
plt.tight_layout()

# %% [markdown]
# ## Samples
#
# Samples from each prior, decoded. A prior hole (a region of $p(z)$ no digit maps to) shows up as blurry
# non-digits.

# %%
fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4))
for ax, (name, run) in zip(axes, runs.items()):
    torch.manual_seed(0)
    show_images(run.sample(64), title=name, ax=ax)
plt.tight_layout()

# %% [markdown]
# **Takeaways.** The prior is a component like any other. A mixture prior is naturally written with an explicit
# discrete choice, and `TraceEnum_ELBO` marginalises it exactly (no high-variance score-function gradients);
# the same responsibilities then cluster the data. The VampPrior ties the prior to the encoder and reduces
# the marginal KL. Compare priors by log-likelihood and by the split of the KL, not by the ELBO alone.
