"""The package's modules by dotted name, read from the source tree (for tests that walk them all)."""

from __future__ import annotations

from pathlib import Path

import smruntime

_ROOT = Path(smruntime.__file__).parent


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(_ROOT.rglob("*.py")):
        parts = list(path.relative_to(_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
"""Every module's dotted name (a package by its own name) and its file."""
