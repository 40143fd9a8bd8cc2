"""Start-up stays lean: the command line and the library import no heavy package they do not use (checked in a
fresh interpreter through ``sys.modules``; the speed itself is measured in ``benchmarks/``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "sklearn", "scipy", "torchvision", "pandas")


def imported_after(code: str) -> set:
    """The top-level packages among torch and :data:`HEAVY` that ``code`` leaves in ``sys.modules``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if '.' not in m)))"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1])) & {"torch", "pyro", *HEAVY}


def test_the_command_line_imports_neither_torch_nor_plotting():
    assert imported_after("import pyro_vae, pyro_vae.cli; pyro_vae.cli.build_parser()") == set()


@pytest.mark.parametrize("code", [
    "import pyro_vae.run",
    # the default dataset reads scikit-learn's bundled file without importing scikit-learn
    "from pyro_vae import load_config; from pyro_vae.data import load_data; load_data(load_config().data, 0)",
])
def test_the_library_imports_plotting_and_scikit_learn_only_where_used(code):
    assert imported_after(code) <= {"torch", "pyro"}
