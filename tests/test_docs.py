"""The README and the documentation site: short README, no placeholders or tracker numbers, no broken
relative link or image path, every page in the site's navigation, and a strict MkDocs build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img [^>]*src=\"([^\"]+)\"")
PLACEHOLDER = re.compile(r"PLACEHOLDER|\bTODO\b|\bTBD\b|\bFIXME\b|\bXXX\b|lorem ipsum", re.IGNORECASE)
TRACKER = re.compile(r"(?<![\w&/])#\d+\b")


def _prose(path: Path) -> str:
    """The page without its fenced code blocks (code may legitimately hold '#1' or 'TODO' as data)."""
    return re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md has {lines} lines; keep it <= 300 and move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_placeholder_or_tracker_number(page: Path) -> None:
    text = _prose(page)
    assert not PLACEHOLDER.search(text), f"{_rel(page)}: placeholder {PLACEHOLDER.search(text).group(0)!r}"
    assert not TRACKER.search(text), f"{_rel(page)}: tracker reference {TRACKER.search(text).group(0)!r}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_and_images_exist(page: Path) -> None:
    broken = []
    for match in LINK.finditer(_prose(page)):
        target = match.group(1) or match.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#)", target):  # a URL, mailto: or an in-page anchor
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{_rel(page)}: broken relative links {broken}"


def test_every_docs_page_is_in_the_site_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = set()

    def walk(node) -> None:
        if isinstance(node, str):
            listed.add(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config["nav"])
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed, f"pages not in mkdocs.yml nav: {sorted(pages - listed)}; nav entries without a page: {sorted(listed - pages)}"


def test_site_builds_strictly(tmp_path: Path) -> None:
    """The MkDocs site with its API reference from the docstrings (mkdocstrings), warnings as errors."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra (mkdocs, mkdocs-material, mkdocstrings[python]) is not installed")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()


def listed_components(text: str) -> dict:
    """``{kind: [names]}`` from the output of ``pyro-vae list`` (a ``kind:`` line, then ``  name: doc`` lines)."""
    found, kind = {}, None
    for line in text.splitlines():
        if re.fullmatch(r"\w+:", line):
            kind = line[:-1]
            found[kind] = []
        elif kind and (m := re.match(r"^  ([\w-]+): ", line)):
            found[kind].append(m.group(1))
    return found


def documented_components(page: str) -> dict:
    """``{kind: [names]}`` from the tables under ``### kind (`key`)`` of docs/configuration.md."""
    found, kind = {}, None
    for line in page.splitlines():
        if (m := re.match(r"^### (\w+) \(`[\w.]+`\)", line)):
            kind = m.group(1)
            found[kind] = []
        elif line.startswith("#"):
            kind = None
        elif kind and (m := re.match(r"^\| `([\w-]+)` \|", line)):
            found[kind].append(m.group(1))
    return found


def test_configuration_page_names_every_registered_component() -> None:
    """docs/configuration.md lists each component `pyro-vae list` prints, under its kind, and no other."""
    result = subprocess.run([sys.executable, "-m", "pyro_vae", "list"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = listed_components(result.stdout)
    assert {"models", "datasets", "priors", "likelihoods", "objectives"} <= set(listed)
    assert documented_components((ROOT / "docs" / "configuration.md").read_text()) == listed
