"""The error tree drawn in docs/errors.md and in smruntime.errors' docstring is the code's:
every class importable from ``smruntime.errors``, each under the class it derives from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import smruntime.errors
import smruntime.eventstream

ROOT = Path(__file__).resolve().parents[2]


def drawn_tree(text: str) -> list[tuple[str, str]]:
    """(class, its parent) for each line of the first tree drawn with ├── / └── in ``text``."""
    lines = text[text.index("SageMakerRuntimeError\n"):].splitlines()
    parents = [lines[0].strip()]
    pairs = []
    for line in lines[1:]:
        found = re.match(r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)", line.strip("\n").lstrip())
        if found is None:
            break
        depth = len(found["indent"]) // 4
        del parents[depth + 1:]
        pairs.append((found["name"], parents[depth]))
        parents.append(found["name"])
    return pairs


@pytest.mark.parametrize("where", ["docs/errors.md", "smruntime/errors.py"])
def test_the_drawn_error_tree_is_the_code_s(where: str) -> None:
    text = (ROOT / where).read_text(encoding="utf-8")
    if where.endswith(".py"):
        text = "\n".join(line[4:] for line in text.splitlines())  # the docstring's tree is indented
    pairs = drawn_tree(text)
    assert len(pairs) > 30
    for name, parent in pairs:
        cls = getattr(smruntime.errors, name)
        assert getattr(smruntime.errors, parent) in cls.__bases__, name  # drawn under what it derives from
    assert {name for name, _ in pairs} == {
        name for name in smruntime.errors.__all__
        if isinstance(getattr(smruntime.errors, name), type) and name not in ("SageMakerRuntimeError", "FieldProblem")
    }


def test_the_event_stream_errors_are_one_class_whichever_module_they_are_imported_from() -> None:
    for name in ("ChecksumMismatchError", "PreludeChecksumError", "MessageChecksumError", "InvalidLengthError",
                 "InvalidHeaderError", "TruncatedStreamError"):
        assert getattr(smruntime.eventstream, name) is getattr(smruntime.errors, name)
