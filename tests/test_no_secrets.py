"""No secret in the repository: every tracked file is scanned for key-like strings.

Placeholders (`${...}`, `<...>`, `CHANGE_ME`, `***`, `example`) are allowed;
anything that looks like a real credential fails the test with file and line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abpors]-[A-Za-z0-9-]{10,}\b"),
    "PokeWatch API key": re.compile(r"\bpw_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}\b"),
    "URL with a password": re.compile(r"\b(?:rediss?|postgres(?:ql)?|mysql|https?)://[^\s:/@'\"]*:([^\s@/'\"]{4,})@"),
    "assigned secret": re.compile(
        r"(?i)\b(?:password|passwd|secret|api_key|apikey|token)\b\s*[:=]\s*['\"]([^'\"\s]{8,})['\"]"
    ),
    "Bearer token": re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{24,}=*)"),
}
PLACEHOLDER = re.compile(r"\$\{|<[^>]*>|CHANGE_?ME|\*\*\*|example|placeholder|dummy|not-a-real", re.IGNORECASE)


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no tracked files to scan")
    return [ROOT / name for name in out.decode().split("\0") if name]


def find_secrets(text: str) -> list[tuple[int, str]]:
    """(line number, kind) of every key-like string that is not a placeholder."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                value = match.group(match.lastindex or 0)
                if not PLACEHOLDER.search(value) and not PLACEHOLDER.search(match.group(0)):
                    found.append((number, kind))
    return found


def test_the_scanner_catches_what_it_should_and_spares_placeholders() -> None:
    # Assembled at run time so that this file itself holds no key-like string.
    fake = "Zx8vQ2mN" + "4pL6rT8y"
    planted = "\n".join(
        [
            "REDIS_URL=redis://gateway:" + fake + "@redis:6379/0",
            "password = " + repr(fake),
            "key: pw_" + "0a1b2c3d_" + fake + "U0wE2sD4",
            "AKIA" + "IOSFODNN7" + "ABCDEFG",
        ]
    )
    assert [kind for _, kind in find_secrets(planted)] == [
        "URL with a password",
        "assigned secret",
        "PokeWatch API key",
        "AWS access key",
    ]
    fine = "redis://gateway:${REDIS_GATEWAY_PASSWORD}@redis:6379/0\npassword: CHANGE_ME\nX-API-Key: <key>"
    assert find_secrets(fine) == []


def test_no_tracked_file_holds_a_secret() -> None:
    hits = []
    for path in _tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(ROOT)}:{line}: {kind}" for line, kind in find_secrets(text)]
    assert hits == [], "\n".join(hits)
