"""The documentation as tests read it: README.md and every page under docs/, their shell commands and code blocks."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pages() -> dict[str, str]:
    """README.md, docs/**/*.md and k8s/README.md (included in the site), by path relative to the checkout."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "k8s" / "README.md"]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in files}


def blocks(lang: str) -> list[tuple[str, str]]:
    """Every fenced block of `lang`, with the page it is on."""
    pattern = re.compile(rf"^([ \t]*)```{re.escape(lang)}\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)
    return [(page, textwrap.dedent(body)) for page, text in pages().items() for _indent, body in pattern.findall(text)]


def shell_commands() -> list[tuple[str, str]]:
    """Every command of every bash block, with the page it is on: trailing `  # comments` cut, a line
    ending in a backslash or inside an open quote joined to the next, whitespace runs made one space."""
    out = []
    for page, block in blocks("bash"):
        pending = ""
        for line in block.splitlines():
            code = line.split("  #")[0].strip()
            if not code or (code.startswith("#") and not pending):
                continue
            pending = f"{pending} {code}".strip().removesuffix("\\").strip() if pending else code.removesuffix("\\")
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the command goes on
                continue
            if code.endswith("\\"):
                continue
            out.append((page, " ".join(pending.split())))
            pending = ""
        assert not pending, f"{page}: a command never ends: {pending!r}"
    return out


def one_block(lang: str, marker: str) -> str:
    """The one `lang` block of the docs that contains `marker` (fails if none or several)."""
    found = [b for _, b in blocks(lang) if marker in b]
    assert len(found) == 1, f"{len(found)} {lang} blocks in the docs contain {marker!r}"
    return found[0]
