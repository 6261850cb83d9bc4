"""The layout keeps its promises: import rules, module sizes, the map of where things live (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "gateway", "workers")
MAX_LINES = 300


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_import_contracts_hold() -> None:
    """No cycle; gateway and workers independent; serving and pipeline independent (pyproject's contracts)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "4 kept, 0 broken" in out.stdout, out.stdout[-2000:]


def test_no_module_over_300_lines_unless_its_docstring_says_why() -> None:
    long = []
    for path in _modules():
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and not re.search(r"why .*lines", doc, re.IGNORECASE | re.DOTALL):
            long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert not long, long


def test_every_module_has_a_docstring() -> None:
    missing = [str(p.relative_to(ROOT)) for p in _modules() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, missing


def test_the_layout_map_names_files_that_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout") :]
    table = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    named = [p for line in table for p in re.findall(r"`([\w/<>.-]+\.py)`", line.split("|")[2])]
    assert len(table) >= 20 and named
    for path in named:
        pattern = path.replace("<resource>", "*").replace("<group>", "*")
        assert list(ROOT.glob(pattern)), f"docs/architecture.md's layout names {path}, which does not exist"
    wanted = ["BUY/SELL rule", "dead letter", "hot-reload swap", "walk-forward", "API-key check", "Redis connection",
              "champion's URI"]  # fmt: skip
    for concern in wanted:
        assert any(concern in line for line in table), f"the layout map does not say where {concern!r} lives"
