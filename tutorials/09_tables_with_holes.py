# %% [markdown]
# # 9. Tables with holes: mixed column types, missing cells, imputation
#
# Real tables mix continuous, binary, count and categorical columns, and some cells are empty. pyro-vae models
# such a table with **one likelihood per column** (`model.likelihood: columns`) and scores **only the observed
# cells**, so a missing cell is neither an error nor a guess made before training:
#
# $$\log p(x_{\mathrm{obs}} \mid z) = \sum_{j\ \mathrm{observed}} \log p_j(x_j \mid \theta_j(z)),$$
#
# with $p_j$ a Gaussian (σ learned per column), Bernoulli, Poisson or categorical by the column's kind. Trained
# with the importance-weighted bound over the observed cells (MIWAE, Mattei & Frellsen 2019), the same weights
# $w_k \propto p(x_{\mathrm{obs}}, z_k) / q(z_k \mid x_{\mathrm{obs}})$ then fill the holes:
# $\hat x_j = \sum_k w_k\, \mathbb{E}[x_j \mid z_k]$ (for a category: the weighted mode).
#
# The data: the 1996 American National Election Study (944 voters, bundled with statsmodels), with party
# identification, education and self-placement on the left–right scale as categorical columns with their
# names, the vote as binary, days a week of TV news and age as counts, and log population as a continuous column.
# A third of the cells are removed at random; we train on what is left, impute, and compare with scikit-learn's
# `IterativeImputer` on the cells we removed.

# %%
import os
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # IterativeImputer's convergence notes; tqdm's widget

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from statsmodels.datasets import anes96

from pyro_vae import load_config, train

# %matplotlib inline
torch.set_num_threads(2)
FAST = os.environ.get("PYRO_VAE_TUTORIAL_FAST") == "1"
EPOCHS = 3 if FAST else 150
IMPUTE_K = 50 if FAST else 1000
OUT = Path(tempfile.mkdtemp(prefix="tutorial09-"))

# %% [markdown]
# ## A mixed table, with a third of its cells removed

# %%
PARTY = ["strong Democrat", "weak Democrat", "independent Democrat", "independent", "independent Republican",
         "weak Republican", "strong Republican"]
EDUCATION = ["grade 1-8", "some high school", "high school", "some college", "community college", "BA",
             "postgraduate"]
PLACE = ["extremely liberal", "liberal", "slightly liberal", "moderate", "slightly conservative", "conservative",
         "extremely conservative"]
raw = anes96.load_pandas().data
full = pd.DataFrame({
    "logpopul": raw["logpopul"].round(4), "TVnews": raw["TVnews"].astype(int), "age": raw["age"].astype(int),
    "vote": raw["vote"].astype(int), "party": [PARTY[int(v)] for v in raw["PID"]],
    "education": [EDUCATION[int(v) - 1] for v in raw["educ"]], "self_placement": [PLACE[int(v) - 1] for v in raw["selfLR"]],
})
rng = np.random.default_rng(0)
removed = rng.random(full.shape) < 0.3
removed[removed.all(1), 0] = False  # every row keeps at least one cell
holes = full.astype(object).mask(removed)
holes.to_csv(OUT / "anes96_holes.csv", index=False)
holes.head()

# %% [markdown]
# ## Train on the observed cells
#
# `data.missing: mask` keeps empty cells as missing (the default, `error`, names the first one); the column kinds
# are inferred from the text (a value with a decimal point is continuous, 0/1 binary, other non-negative integers
# counts, words categorical) and `data.column_types` could override any of them. `data.standardize` scales the
# continuous columns by their observed cells, so each Gaussian column's learned σ starts at 1.

# %%
config = load_config(None, [
    "data.type=table", f"data.path={OUT / 'anes96_holes.csv'}", "data.missing=mask", "data.standardize=true",
    "data.test_fraction=0.1", "model.likelihood=columns", "model.latent_dim=5",
    "model.network.hidden_dims=[64,64]", "model.network.activation=tanh",
    "train.objective={type: iwae, num_particles: 20}", f"train.epochs={EPOCHS}", "train.lr=0.001",
    "train.progress=false", "train.eval_samples=5"])
run = train(config, OUT / "run")
print([(c.name, c.kind, len(c.levels)) for c in run.config.model.likelihood.columns])
print({k: round(v, 3) for k, v in run.evaluate(num_samples=IMPUTE_K // 10).items() if k.startswith("test_loglik")})

# %% [markdown]
# `evaluate` splits the held-out log-likelihood by column kind (nats per row, observed cells only): where the
# model is good and where it is not.
#
# ## Impute, and compare with IterativeImputer
#
# `run.impute(frame)` returns the frame with the same columns and order, observed cells unchanged; from the
# command line it is `pyro-vae impute RUN anes96_holes.csv -o filled.csv`. `IterativeImputer` works on numbers,
# so it gets the category codes and its answers are rounded to the nearest level.

# %%
filled = run.impute(holes, num_samples=IMPUTE_K)
codes = {"party": PARTY, "education": EDUCATION, "self_placement": PLACE}
def as_numbers(frame):
    return np.stack([[codes[c].index(v) for v in frame[c]] if c in codes else frame[c].astype(float)
                     for c in full.columns], 1)

truth = as_numbers(full)
numeric = np.where(removed, np.nan, truth)
iterative = IterativeImputer(max_iter=25, random_state=0).fit_transform(numeric)
simple = np.where(np.arange(7) >= 3, SimpleImputer(strategy="most_frequent").fit_transform(numeric),
                  SimpleImputer().fit_transform(numeric))
ours = as_numbers(filled)
assert np.array_equal(ours[~removed], truth[~removed])  # observed cells are never changed
discrete = np.arange(7) >= 3  # vote and the three categorical columns
scale = truth.std(0)

def scores(guess):
    guess = np.where(discrete, np.clip(np.round(guess), 0, truth.max(0)), guess)
    accuracy = (guess == truth)[removed & discrete].mean()
    rmse = np.sqrt((((guess - truth) / scale) ** 2)[removed & ~discrete].mean())
    return accuracy, rmse

table = pd.DataFrame([scores(g) for g in (simple, iterative, ours)], columns=["accuracy (categories, vote)",
                     "RMSE (standardized: logpopul, TVnews, age)"], index=["mode / mean", "IterativeImputer", "pyro-vae"])
table.round(3)

# %% [markdown]
# Accuracy per column, on the removed cells (a category's chance level is the share of its most frequent level):

# %%
fig, ax = plt.subplots(figsize=(7, 3))
names = list(full.columns[3:])
for shift, (label, guess) in zip((-0.25, 0, 0.25), (("mode", simple), ("IterativeImputer", iterative), ("pyro-vae", ours))):
    guess = np.clip(np.round(guess), 0, truth.max(0))
    acc = [(guess[:, 3 + i] == truth[:, 3 + i])[removed[:, 3 + i]].mean() for i in range(len(names))]
    ax.bar(np.arange(len(names)) + shift, acc, width=0.25, label=label)
ax.set_xticks(range(len(names)), names)
ax.set_ylabel("accuracy on removed cells")
ax.legend(fontsize=8)
plt.tight_layout()
if Path("thumbnails").is_dir():
    fig.savefig("thumbnails/09_tables_with_holes.png", dpi=40)

# %% [markdown]
# At the CI budget (3 epochs) the model has not learned much: only the full budget (150 epochs) says anything
# about how it compares. Multiple imputation draws whole plausible completions instead of one best guess:
# `run.impute(holes, draws=5)` resamples the particles by their weights and draws each missing cell from
# $p(x_j \mid z_k)$ (from the command line: `--draws 5`). [benchmarks/imputation.md](../benchmarks/imputation.md)
# measures the same model on three numeric tables against mean, KNN and iterative imputation.

# %%
draws = run.impute(holes.head(5), num_samples=IMPUTE_K, draws=3)
pd.concat({f"draw {i + 1}": d["party"] for i, d in enumerate(draws)}, axis=1).assign(observed=holes.head(5)["party"])
