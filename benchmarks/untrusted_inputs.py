"""Time to refuse hostile inputs: each must be one line, fast, and use no memory proportional to its claim.

* a "billion laughs" YAML config (340 bytes expanding to 10⁹ values);
* a PNG whose header claims 20000 × 20000 pixels (header check, nothing decoded);
* a run folder whose checkpoint names a module to import (refused before importing it);
* a sparse 64 GiB ``model.pt`` (refused from its size, not read).

    python benchmarks/untrusted_inputs.py            # 20 repeats each
    python benchmarks/untrusted_inputs.py --quick    # 2 repeats each (a smoke run)
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Callable, Dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyro_vae.errors import PyroVAEError  # noqa: E402

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def bomb_png(path: Path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    raw[16:24] = struct.pack(">II", 20000, 20000)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def refused(action: Callable[[], object], repeats: int) -> Dict[str, float]:
    """Best wall time (ms) and peak traced allocation (MB) of ``action``, which must raise a PyroVAEError."""
    def once() -> float:
        start = time.perf_counter()
        try:
            action()
        except PyroVAEError:
            return time.perf_counter() - start
        raise AssertionError(f"{action} was not refused")

    best = min(once() for _ in range(repeats))
    tracemalloc.start()  # (traced separately: tracing slows Python down several times)
    once()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return {"ms": round(1000 * best, 2), "peak_mb": round(peak, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats each")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    repeats = 2 if args.quick else 20

    import torch

    from pyro_vae import load_run, train
    from pyro_vae.config.loading import read_yaml
    from pyro_vae.data.image_folder import header_size
    from pyro_vae.train.checkpoint import load_checkpoint, save_checkpoint

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "laughs.yaml").write_text(LAUGHS)
        bomb_png(tmp / "bomb.png")
        run = tmp / "run"
        train(None, run, ["train.epochs=1", "train.progress=false", "data.limit=100", "model.latent_dim=2",
                          "model.network.hidden_dims=[8]", "train.num_images=4", "train.eval_samples=2"])
        payload = load_checkpoint(run / "model.pt")
        payload["config"]["model"]["prior"] = {"type": "planted_module_never_imported:Prior"}
        save_checkpoint(payload, run / "model.pt")
        huge = tmp / "huge" / "model.pt"
        huge.parent.mkdir()
        with open(huge, "wb") as f:
            f.truncate(64 << 30)  # sparse: no disk used
        results = {
            "billion_laughs_yaml": refused(lambda: read_yaml(tmp / "laughs.yaml"), repeats),
            "png_header_20000x20000": refused(lambda: header_size(str(tmp / "bomb.png")), repeats),
            "run_naming_a_module": refused(lambda: load_run(run), repeats),
            "sparse_64GiB_checkpoint": refused(lambda: load_checkpoint(huge), repeats),
        }
    for name, r in results.items():
        print(f"{name:28s} {r['ms']:9.2f} ms   peak {r['peak_mb']:.2f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
