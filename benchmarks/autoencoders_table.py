"""The autoencoder family vs the VAE: reconstruction error, code sparsity, VAE held-out log-likelihood,
and the Jacobian spectra of a contractive vs a plain autoencoder.

    python benchmarks/autoencoders_table.py --data digits --epochs 10
    python benchmarks/autoencoders_table.py --data mnist --epochs 3 --iwae-samples 200

Every model: the same one-hidden-layer MLP (so the contractive penalty uses its closed form), the same
latent size, Bernoulli likelihood, Adam, the same seed. Writes ``benchmarks/results/autoencoders/<data>.json``
and ``<data>_jacobian.png`` (singular values of ∂f/∂x, normalized, and of ∂r/∂x for r = g∘f).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyro_vae import plots
from pyro_vae.config.run import load_config
from pyro_vae.data import load_data
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.models import build_model
from pyro_vae.models.autoencoders import code_sparsity, jacobian_singular_values

OUT = Path(__file__).resolve().parent / "results" / "autoencoders"
MEMBERS = {  # model.type and its options
    "vae": {},
    "autoencoder": {},
    "denoising": {"corruption": "mask", "mask_rate": 0.25},
    "sparse": {"prior": {"type": "laplace", "scale": 1.0}},
    "contractive": {"weight": 0.1},
}


def build(data_name: str, kind: str, options: dict, hidden: int, latent: int):
    config_file = "configs/mnist_vae.yaml" if data_name == "mnist" else "configs/digits_vae.yaml"
    overrides = [f"model.type={kind}", f"model.network.hidden_dims=[{hidden}]", f"model.latent_dim={latent}"]
    if kind != "vae":
        overrides.append("model.prior=flat")
    for key, value in options.items():
        overrides.append(f"model.{key}={json.dumps(value)}")
    return load_config(config_file, overrides)


def fit(model, data, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    pyro.clear_param_store()
    svi = SVI(model.model, model.guide, Adam({"lr": lr}), Trace_ELBO())
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in data.batches("train", batch_size, shuffle=True, generator=gen):
            svi.step(x, y)
    return time.perf_counter() - start


@torch.no_grad()
def measure(model, data, kind: str, iwae_samples: int) -> dict:
    model.eval()
    x = data.test_x
    h = model.encode(x)[0]
    params = model.decoder(h)
    nll = -model.likelihood.distribution(params).log_prob(x).mean().item()
    mse = (model.likelihood.mean(params) - x).pow(2).flatten(1).sum(1).mean().item()
    small, hoyer = code_sparsity(h)
    row = {"recon_nll": nll, "recon_sse": mse, "code_small_frac": small, "code_hoyer": hoyer,
           "code_mean_abs": h.abs().mean().item()}
    if kind == "vae":
        pyro.set_rng_seed(0)
        row["test_iwae"] = elbo_and_iwae(model, data, num_samples=iwae_samples, batch_size=50)["iwae"]
        row["iwae_samples"] = iwae_samples
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--iwae-samples", type=int, default=1000)
    parser.add_argument("--jacobian-points", type=int, default=200)
    parser.add_argument("--members", nargs="*", default=list(MEMBERS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    rows, spectra_f, spectra_r = {}, {}, {}
    for kind in args.members:
        config = build(args.data, kind, MEMBERS[kind], args.hidden, args.latent)
        pyro.set_rng_seed(config.seed)
        data = load_data(config.data, config.seed)
        model = build_model(config.model, data.shape, data.num_classes)
        seconds = fit(model, data, args.epochs, args.batch_size, args.lr, config.seed)
        rows[kind] = {**measure(model, data, kind, args.iwae_samples), "train_seconds": seconds}
        print(kind, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[kind].items()}),
              flush=True)
        if kind in ("autoencoder", "contractive"):
            points = data.train_x[: args.jacobian_points]
            spectra_f[kind] = jacobian_singular_values(lambda v: model.encode(v)[0], points)
            spectra_r[kind] = jacobian_singular_values(lambda v: model.decode(model.encode(v)[0]), points)[:, :args.latent]  # rank <= latent
            s, r = spectra_f[kind], spectra_r[kind]
            rows[kind]["jacobian_f_top"] = s[:, 0].mean().item()
            rows[kind]["jacobian_f_ratio_k5"] = (s[:, 4] / s[:, 0]).mean().item() if s.shape[1] > 4 else None
            rows[kind]["jacobian_f_frobenius_sq"] = s.pow(2).sum(1).mean().item()
            rows[kind]["jacobian_r_top5"] = r[:, :5].mean(0).tolist()
            rows[kind]["jacobian_r_above_0.1"] = (r > 0.1).sum(1).float().mean().item()
    if spectra_f:
        plots.save_singular_values(spectra_f, OUT / f"{args.data}_jacobian_f.png", normalize=True,
                                   title=f"{args.data}: singular values of ∂f(x)/∂x (code), σ_k/σ_1")
        plots.save_singular_values(spectra_r, OUT / f"{args.data}_jacobian_r.png",
                                   title=f"{args.data}: singular values of ∂g(f(x))/∂x (reconstruction)")
    result = {"data": args.data, "epochs": args.epochs, "hidden": args.hidden, "latent": args.latent,
              "batch_size": args.batch_size, "lr": args.lr, "machine": "2-core CPU dev box, shared with other jobs",
              "num_train": int(data.train_x.shape[0]), "num_test": int(data.test_x.shape[0]), "rows": rows}
    (OUT / f"{args.data}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
