# %% [markdown]
# # 5. Is my VAE any good?
#
# The training curve shows the ELBO, a *lower bound*. Whether a VAE is good depends on what you want from it,
# and `pyro_vae.evaluation` gives the standard diagnostics — all per test datapoint, in nats:
#
# * **Importance-sampled log-likelihood** (= the IWAE bound with $K$ samples):
#   $\log p(x) \approx \log \frac1K \sum_k p(x, z_k)/q(z_k\mid x)$, $z_k \sim q(z\mid x)$. It is ≥ the ELBO in
#   expectation and tightens as $K$ grows; ELBO and IWAE$_K$ differ by how good $q$ is as a proposal.
# * **The ELBO split.** Averaged over data, the KL term splits (Hoffman & Johnson, 2016) into
#   $\mathbb E_x \mathrm{KL}(q(z\mid x)\|p(z)) = I_q(x; z) + \mathrm{KL}(q(z)\|p(z))$: the **mutual information**
#   between datapoint and code (bounded by $\log N$) and the **marginal KL** between the *aggregated posterior*
#   $q(z) = \frac1N\sum_n q(z\mid x_n)$ and the prior (how well samples from $p(z)$ land where data codes are).
# * **Active units**: latent dimensions $d$ with $\operatorname{Var}_x \mathbb E_q[z_d\mid x] > 0.01$; the others
#   have collapsed to the prior and carry no information.
# * **The β trade-off**: weighting the KL term by β trades reconstruction against rate.
#
# `run.evaluate(K)` computes all of them in one call.

# %%
import math
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook widget is not used here

import matplotlib.pyplot as plt
import torch

from pyro_vae import load_config, train
from pyro_vae.evaluation import elbo_and_iwae, kl_split, test_log_likelihood

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 40
HIDDEN = "[32]" if FAST else "[256,128]"
LIMIT = ["data.limit=400", "train.eval_samples=2"] if FAST else []
KS = [1, 5, 20] if FAST else [1, 10, 100, 1000]
BETAS = [0.5, 2.0] if FAST else [0.25, 0.5, 1.0, 2.0, 4.0]
OUT = Path(tempfile.mkdtemp(prefix="tutorial05-"))
common = [f"train.epochs={EPOCHS}", f"model.network.hidden_dims={HIDDEN}", "train.progress=false",
          "model.latent_dim=16", *LIMIT]

run = train(load_config(None, common), OUT / "vae")
report = run.evaluate(num_samples=KS[-1])
for key in ["test_elbo", "reconstruction", "kl", "kl_analytic", "test_log_likelihood", "mutual_info", "marginal_kl",
            "log_num_test", "active_units", "latent_dim"]:
    value = report.get(key)
    print(f"{key:20s} {value:10.3f}" if isinstance(value, float) else f"{key:20s} {value}")

# %% [markdown]
# ## The bound tightens with K
#
# The ELBO does not depend on $K$ (only its Monte Carlo noise does); IWAE$_K$ grows towards $\log p(x)$.

# %%
data = run.data()
torch.manual_seed(0)
bounds = [elbo_and_iwae(run.model, data, num_samples=k) for k in KS]
for k, b in zip(KS, bounds):
    print(f"K={k:5d}  ELBO {b['elbo']:8.3f}   IWAE_K {b['iwae']:8.3f}")
plt.figure(figsize=(4.5, 3))
plt.semilogx(KS, [b["iwae"] for b in bounds], "o-", label="IWAE$_K$ ≈ log p(x)")
plt.semilogx(KS, [b["elbo"] for b in bounds], "s--", label="ELBO")
plt.xlabel("K importance samples"); plt.ylabel("nats per digit"); plt.legend(); plt.tight_layout()

# %% [markdown]
# Per digit, the gap $\log p(x) - \mathrm{ELBO}$ is the posterior KL $\mathrm{KL}(q(z\mid x)\|p(z\mid x))$ (up to
# the IWAE estimator's own bias): which digits does the Gaussian guide fit worst?

# %%
ll = test_log_likelihood(run.model, data, num_samples=KS[-1])
gap = (ll.log_px - ll.elbo).detach()
print(f"gap mean {gap.mean():.3f} nats, max {gap.max():.3f}; fraction of digits with gap < 0: {(gap < 0).float().mean():.2f}")
plt.figure(figsize=(4.5, 3)); plt.hist(gap.numpy(), bins=30); plt.xlabel("log p(x) − ELBO (nats)"); plt.tight_layout()

# %% [markdown]
# ## Mutual information and marginal KL
#
# `kl_split` evaluates the aggregated posterior exactly over the test set. The two parts add up to the KL
# term, and $I_q \le \log N$ always: with $N$ = 180 test digits a code can at most single out one digit.

# %%
split = kl_split(run.model, data.test_x, num_samples=10)
print(f"KL {split.kl:.3f} = I_q(x;z) {split.mutual_info:.3f} + KL(q(z)||p(z)) {split.marginal_kl:.3f};"
      f"  log N = {split.log_num_points:.3f}")

# %% [markdown]
# ## Active units
#
# Sorted per-dimension variances of the posterior mean; dimensions below the threshold are unused.

# %%
variances = sorted(report["active_unit_variances"], reverse=True)
plt.figure(figsize=(4.5, 3))
plt.bar(range(len(variances)), variances); plt.axhline(0.01, color="r", ls="--", label="threshold 0.01")
plt.yscale("log"); plt.xlabel("latent dimension (sorted)"); plt.ylabel("Var$_x$ E[z$_d$|x]"); plt.legend()
plt.title(f"{report['active_units']} of {report['latent_dim']} units active"); plt.tight_layout()

# %% [markdown]
# ## The β trade-off
#
# `train.objective.beta=β` trains on $\mathbb E_q \log p(x\mid z) - \beta\,\mathrm{KL}$. We evaluate every model on
# the *same* β = 1 quantities: large β buys a small rate (KL, active units) with worse reconstructions;
# small β the opposite. The log-likelihood is best near β = 1, the objective that bounds it.

# %%
results = {1.0: report}
for beta in BETAS:
    if beta != 1.0:
        r = train(load_config(None, common + [f"train.objective.beta={beta}"]), OUT / f"beta{beta}")
        results[beta] = r.evaluate(num_samples=KS[-1])
betas = sorted(results)
print(f"{'β':>5s} {'recon':>9s} {'KL':>7s} {'MI':>6s} {'mKL':>6s} {'log p(x)':>9s} active")
for b in betas:
    r = results[b]
    print(f"{b:5.2f} {r['reconstruction']:9.2f} {r['kl']:7.2f} {r['mutual_info']:6.2f} {r['marginal_kl']:6.2f} "
          f"{r['test_log_likelihood']:9.2f} {r['active_units']:4d}")
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.plot([results[b]["kl"] for b in betas], [-results[b]["reconstruction"] for b in betas], "o-")
for b in betas:
    ax.annotate(f"β={b:g}", (results[b]["kl"], -results[b]["reconstruction"]), fontsize=8)
ax.set_xlabel("rate: KL (nats)"); ax.set_ylabel("distortion: −E log p(x|z) (nats)"); ax.set_title("rate–distortion")
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/05_evaluation.png", dpi=40)

# %% [markdown]
# **Takeaways.** Report the importance-sampled log-likelihood with its $K$, not just the ELBO; look at the
# KL split to see whether the KL pays for information ($I_q$) or for a prior hole ($\mathrm{KL}(q(z)\|p(z))$);
# count active units; and remember β moves you along a rate–distortion curve rather than "improving" a model.
