"""docs/architecture.svg (shown by the README) is docs/architecture.dot rendered, and the source
draws every database alias the code knows: the picture cannot drift from its source silently,
nor the source from the code's list of databases."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from core import aliases

DOCS = Path(__file__).resolve().parents[2] / "docs"
SOURCE = DOCS / "architecture.dot"
PICTURE = DOCS / "architecture.svg"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (scripts/test installs it)")
def test_the_committed_svg_is_the_source_rendered() -> None:
    rendered = subprocess.run(
        ["dot", "-Tsvg", str(SOURCE)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert rendered == PICTURE.read_text(encoding="utf-8"), (
        "docs/architecture.svg is stale: run `dot -Tsvg docs/architecture.dot -o docs/architecture.svg`"
    )


def test_the_source_draws_every_database() -> None:
    nodes = set(re.findall(r"^\s*([a-z_]+)\s+\[label=", SOURCE.read_text(encoding="utf-8"), re.MULTILINE))
    assert set(aliases.PRIMARIES) <= nodes, sorted(set(aliases.PRIMARIES) - nodes)


def test_the_readme_shows_the_picture() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "](docs/architecture.svg)" in readme
