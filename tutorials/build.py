"""Build the tutorial notebooks from their text twins (jupytext "percent" format), optionally executing them.

    python tutorials/build.py                 # NN_name.py -> NN_name.ipynb (no outputs)
    python tutorials/build.py --execute       # ... and run each one in tutorials/ (writes thumbnails/)
    PYRO_VAE_TUTORIAL_FAST=1 python tutorials/build.py --execute 01   # the CI budget, one notebook

The ``.py`` file is the source of truth; cells start at ``# %%`` (code) or ``# %% [markdown]``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import List

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
CELL = re.compile(r"^# %%(.*)$")
MAGIC = re.compile(r"^# (%[a-z]\w*\b.*)$", re.MULTILINE)


def read_percent(path: Path) -> nbformat.NotebookNode:
    """Parse a percent-format script into a notebook (markdown cells lose their leading ``# ``)."""
    cells: List[nbformat.NotebookNode] = []
    kind, lines = None, []

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if kind is None or not text:
            return
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(new_markdown_cell(text))
        else:  # jupytext comments out IPython magics in the text twin: "# %matplotlib inline"
            cells.append(new_code_cell(MAGIC.sub(r"\1", text)))

    for line in path.read_text().splitlines():
        m = CELL.match(line)
        if m:
            flush()
            kind, lines = ("markdown" if "[markdown]" in m.group(1) else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    return nb


def sources(selected: List[str]) -> List[Path]:
    paths = sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))
    return [p for p in paths if not selected or any(p.name.startswith(s) for s in selected)]


def execute(nb: nbformat.NotebookNode, timeout: int = 1200) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook number prefixes to build (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each notebook and save it with its outputs")
    args = parser.parse_args(argv)
    for src in sources(args.only):
        nb = read_percent(src)
        start = time.perf_counter()
        if args.execute:
            execute(nb)
        seconds = time.perf_counter() - start
        out = src.with_suffix(".ipynb")
        nbformat.write(nb, out)
        ran = f", executed in {seconds:.0f} s" if args.execute else ""
        print(f"{out.relative_to(HERE.parent)}: {out.stat().st_size / 1e3:.0f} kB{ran}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
