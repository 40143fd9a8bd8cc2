"""Time importance-sampled evaluation: log p(x) of 10,000 MNIST images with K = 1,000 samples each.

The model is ``configs/mnist_vae.yaml``'s VAE (784-512-256-16 MLP, Bernoulli likelihood), untrained by
default (``--train-epochs N`` trains it first): the cost of evaluation does not depend on the weights.
All 10,000 t10k images (the 9,000/1,000 split of the config put back together, binarized once) are
scored, vectorized over K in chunks of ``SAMPLES_PER_PASS`` z's per pass.

    python benchmarks/eval_speed.py                                  # the README figure
    python benchmarks/eval_speed.py --num-images 500 --num-samples 1000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pyro
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyro_vae.config.run import load_config  # noqa: E402
from pyro_vae.data import load_data  # noqa: E402
from pyro_vae.data import ImageData  # noqa: E402
from pyro_vae.evaluation.loglik import SAMPLES_PER_PASS, test_log_likelihood  # noqa: E402
from pyro_vae.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=10000)
    parser.add_argument("--num-samples", type=int, default=1000, help="K importance samples per image")
    parser.add_argument("--batch-size", type=int, default=100, help="images per batch")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help=f"samples of K per pass (default: {SAMPLES_PER_PASS} // batch size)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=0, help="train the model this many epochs first")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pyro.set_rng_seed(0)
    config = load_config(REPO / "configs" / "mnist_vae.yaml", ["train.progress=false",
                                                               f"train.epochs={max(args.train_epochs, 1)}"])
    config.data.root = str((REPO / config.data.root).resolve())  # the config's root is relative to the repo
    data = load_data(config.data, config.seed)
    if args.train_epochs:
        from pyro_vae.train import Trainer

        model = build_model(config.model, data.shape, data.num_classes)
        Trainer(model, data, config.train, seed=config.seed).fit()
    else:
        model = build_model(config.model, data.shape, data.num_classes)
    images = torch.cat([data.train_x, data.test_x])[: args.num_images]
    images = torch.bernoulli(images, generator=torch.Generator().manual_seed(0))
    labels = torch.cat([data.train_y, data.test_y])[: args.num_images]
    everything = ImageData("mnist-t10k", images[:1], labels[:1], images, labels, data.num_classes)
    model.eval()

    start, cpu_start = time.perf_counter(), time.process_time()
    ll = test_log_likelihood(model, everything, args.num_samples, args.batch_size, chunk_size=args.chunk_size)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    result = {
        "images": int(images.shape[0]), "num_samples": args.num_samples, "batch_size": args.batch_size,
        "chunk_size": args.chunk_size or max(1, SAMPLES_PER_PASS // args.batch_size), "threads": args.threads,
        "model": f"mnist_vae.yaml MLP, {'trained %d epochs' % args.train_epochs if args.train_epochs else 'untrained'}",
        "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),  # CPU time over all threads
        "ms_per_image": round(1000 * seconds / images.shape[0], 2), "load_average": list(os.getloadavg()),
        "z_per_second": round(images.shape[0] * args.num_samples / seconds),
        "test_log_likelihood": round(ll.mean, 3), "test_elbo": round(float(ll.elbo.mean()), 3),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
