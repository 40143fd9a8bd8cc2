"""Choose M2's settings on a validation slice of the training split (never the held-out test split).

    python benchmarks/m2_validation.py configs/mnist_m2.yaml --labeled 100 1000 --seeds 0 1 [key=value ...]

For each seed and label count: the config's training split loses its first ``--validation`` points
(a random slice: the split is already shuffled by the seed) to a validation set, ``data.labeled``
labels are chosen among the remaining training points, the model trains, and the classifier's
accuracy on the validation slice is printed after every epoch, with seconds per epoch. One JSON line
per run goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import pyro

from pyro_vae.config.run import load_config
from pyro_vae.data import load_data
from pyro_vae.data.base import ImageData, with_labeled
from pyro_vae.evaluation.classification import classification_metrics
from pyro_vae.models import build_model
from pyro_vae.train import Trainer


def validation_data(data: ImageData, size: int) -> ImageData:
    """The training split cut in two: its first ``size`` points become the test split."""
    return replace(data, train_x=data.train_x[size:], train_y=data.train_y[size:], test_x=data.train_x[:size],
                   test_y=data.train_y[:size], labeled=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--labeled", type=int, nargs="+", default=[100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--out", default=None, help="append one JSON line per run to this file")
    args = parser.parse_args()
    for labeled in args.labeled:
        for seed in args.seeds:
            config = load_config(args.config, [*args.overrides, f"seed={seed}", "train.progress=false"])
            pyro.set_rng_seed(seed)
            pyro.clear_param_store()
            data = validation_data(load_data(replace(config.data, labeled=None), seed), args.validation)
            data = with_labeled(data, labeled, config.data.labeled_per_batch, seed)
            model = build_model(config.model, data.shape, data.num_classes)
            trainer = Trainer(model, data, config.train, seed=seed)
            curve = []

            def on_epoch_end(t: Trainer, metrics) -> None:
                acc = classification_metrics(t.model, t.data)["classifier_accuracy"]
                curve.append(round(acc, 4))
                print(f"labeled={labeled} seed={seed} epoch {metrics.epoch}: validation accuracy {acc:.4f}, "
                      f"{metrics.seconds:.1f} s", flush=True)

            start = time.perf_counter()
            trainer.fit(on_epoch_end)
            row = {"config": args.config, "overrides": args.overrides, "labeled": labeled, "seed": seed,
                   "validation": args.validation, "accuracy": curve[-1], "curve": curve,
                   "seconds": round(time.perf_counter() - start, 1)}
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
