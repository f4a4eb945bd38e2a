"""The install instructions tell the truth: extras tables match pyproject.toml, the torch notes are there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _extras() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(ROOT / "pyproject.toml", "rb") as handle:
        extras = tomllib.load(handle)["project"]["optional-dependencies"]
    return {name: [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in reqs] for name, reqs in extras.items()}


def test_extras_table_lists_exactly_the_extras():
    rows = {}
    for line in (ROOT / "docs" / "installation.md").read_text().splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| .* \| (.*) \|", line)
        if match:
            rows[match[1]] = [name.strip() for name in match[2].split(",")]
    assert rows == _extras()


@pytest.mark.parametrize("path", ["README.md", "docs/installation.md"])
def test_torch_install_truth(path):
    text = " ".join((ROOT / path).read_text().split())
    assert "pip install torch==2.13.0" in text and "Linux x86_64" in text and "CUDA build" in text
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    assert "macOS and Windows" in text and "torch>=2.1" in text and "is kept" in text


def test_readme_first_commands_unchanged():
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks[0] == (
        'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[test]" '
        "&& scdeconv demo --out demo_out"
    )
    assert blocks[1] == ". .venv/bin/activate && python -m pytest --nbmake tests tutorials"  # CI runs it verbatim
    assert len(re.findall(r"^## Tutorials", (ROOT / "README.md").read_text(), flags=re.M)) == 1
