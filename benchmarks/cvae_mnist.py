"""Quadrant completion on real MNIST: the CVAE's −ELBO and −log p(x|c) next to the deterministic baseline's NLL.

For 1, 2 and 3 visible quadrants, train ``configs/mnist_cvae.yaml`` with its baseline phase
(``model.pretrain.epochs``: the baseline x̂ = f(c) is fitted first and starts the CVAE's decoder — the same
mechanism as ``pyro-vae train``), then report on the 1,000 held-out images, per image, over the hidden
pixels only (nats, lower is better):

* ``baseline_nll``: −log p(x|c) of the baseline (the Bernoulli NLL of the hidden pixels; Pyro's "NN" row);
* ``cvae_neg_elbo``: −ELBO = −E_q(z|x,c)[log p(x|z,c) + log p(z|c) − log q(z|x,c)], the quantity Pyro's table
  reports for the CVAE ("CVAE (Monte Carlo)": ``Trace_ELBO(num_particles=10)``'s loss over the hidden pixels),
  here averaged over the same K draws as the next number;
* ``cvae_nll``: the importance-sampled −log (1/K) Σ_k p(x, z_k|c) / q(z_k|x, c) (tighter: −ELBO ≥ it ≥ −log p(x|c)
  in expectation).

Also writes the completions figure (input, truth, baseline, CVAE samples).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/cvae_mnist.py --epochs 20 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyro
import torch

from pyro_vae import load_config, plots
from pyro_vae.data import load_data
from pyro_vae.data.quadrants import show_hidden
from pyro_vae.evaluation.loglik import test_log_likelihood
from pyro_vae.models import build_model
from pyro_vae.train import Trainer
from pyro_vae.train.callbacks import Callback
from pyro_vae.train.phases import PRETRAIN

REPO = Path(__file__).resolve().parents[1]


def standard_error(values: torch.Tensor) -> float:
    return float(values.std() / values.numel() ** 0.5)


@torch.no_grad()
def baseline_nll(model, data, batch_size: int = 500) -> torch.Tensor:
    """−log p(x|c) of every held-out image under the CVAE's fitted baseline (hidden pixels)."""
    return -torch.cat([model.baseline.log_prob(x, y) for x, y in data.batches("test", batch_size)])


def run_one(visible: int, args: argparse.Namespace, out: Path) -> dict:
    overrides = [f"model.visible={visible}", f"train.epochs={args.epochs}", f"model.pretrain.epochs={args.baseline_epochs}",
                 "train.progress=false"]
    cfg = load_config(REPO / "configs" / "mnist_cvae.yaml", overrides)
    # the config's root is relative to the repository; --data-root points elsewhere (e.g. from a worktree)
    cfg.data.root = str(Path(args.data_root).resolve() if args.data_root else (REPO / cfg.data.root).resolve())
    pyro.clear_param_store()
    pyro.set_rng_seed(cfg.seed)
    data = load_data(cfg.data, cfg.seed)
    model = build_model(cfg.model, data.shape, data.num_classes)
    marks = {"start": time.perf_counter()}

    class PhaseEnd(Callback):
        def on_phase_end(self, trainer: Trainer, phase: str) -> None:
            if phase == PRETRAIN:  # the baseline phase is over
                marks["baseline"] = time.perf_counter()

    Trainer(model, data, cfg.train, seed=cfg.seed).fit([PhaseEnd()])
    marks["cvae"] = time.perf_counter()
    model.eval()
    pyro.set_rng_seed(cfg.seed)
    ll = test_log_likelihood(model, data, args.num_samples, batch_size=200)
    row = {"visible": visible, "cvae_neg_elbo": -float(ll.elbo.mean()), "cvae_neg_elbo_se": standard_error(ll.elbo),
           "cvae_nll": -ll.mean, "cvae_nll_se": standard_error(ll.log_px)}
    if model.baseline is not None:
        nll = baseline_nll(model, data)
        row.update(baseline_nll=float(nll.mean()), baseline_nll_se=standard_error(nll),
                   baseline_seconds=marks["baseline"] - marks["start"])
    row.update(cvae_seconds=marks["cvae"] - marks.get("baseline", marks["start"]), epochs=args.epochs,
               baseline_epochs=args.baseline_epochs, num_samples=args.num_samples,
               num_train=int(data.train_x.shape[0]), num_test=int(data.test_x.shape[0]),
               hidden_pixels=model.scored_dims())

    x = data.test_x[:10]
    with torch.no_grad():
        figure = [("input", show_hidden(x, model.cond.visible)), ("truth", x)]
        if model.baseline is not None:
            figure.append(("baseline", model.baseline.reconstruct(x)))
        figure += [(f"CVAE {i + 1}", s) for i, s in enumerate(model.complete(x, 3))]
    plots.save_labelled_rows(figure, out / f"cvae_completions_{visible}q.png",
                             title=f"{visible} visible quadrant(s): hidden pixels grey in the input")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the CVAE (main phase)")
    parser.add_argument("--baseline-epochs", type=int, default=None,
                        help="epochs of the baseline phase (default: --epochs; 0: the CVAE from scratch, no baseline)")
    parser.add_argument("--num-samples", type=int, default=100, help="importance samples K per test image")
    parser.add_argument("--visible", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data-root", default=None, help="folder of the t10k IDX files (default: the config's)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    if args.baseline_epochs is None:
        args.baseline_epochs = args.epochs
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for visible in args.visible:
        rows.append(run_one(visible, args, out))
        print(json.dumps(rows[-1]), flush=True)
        name = f"cvae_mnist_{''.join(map(str, args.visible))}q_{args.epochs}ep.json"
        (out / name).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
