"""The stack is typed: mypy strict rejects a middleware that misreads what it is given."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

GOOD = """
    from smruntime import middleware
    from smruntime.middleware import Next
    from smruntime.stack_types import BuildInput, BuildOutput, Context

    def handle(ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
        region: str = ctx.options.region or "unset"
        in_.request.headers["X-Trace"] = region
        return next(ctx, in_)

    middleware.build_middleware("Trace", handle)
"""

MISREADS = {
    "ctx.options.retryr": '"Options" has no attribute "retryr"',
    "in_.request.header": '"HTTPRequest" has no attribute "header"',
    "in_.parameters": 'has no attribute "parameters"',
}


def _mypy(tmp_path: Path, source: str) -> tuple[int, str]:
    module = tmp_path / "user_middleware.py"
    module.write_text(textwrap.dedent(source))
    thresholds = gc.get_threshold()
    try:
        stdout, stderr, status = mypy_api.run(["--strict", "--no-incremental", "--python-version", "3.11", str(module)])
    finally:
        # mypy tunes the garbage collector for itself (a first generation of 200,000 objects):
        # the tests after this one, which measure memory, run with Python's own settings.
        gc.set_threshold(*thresholds)
    return status, stdout + stderr


def test_mypy_accepts_a_well_typed_middleware_and_rejects_each_misread(tmp_path: Path) -> None:
    status, output = _mypy(tmp_path, GOOD)
    assert status == 0, output

    misreads = "".join(f"\n        print({expression})" for expression in MISREADS)
    status, output = _mypy(tmp_path, GOOD.replace('\n        in_.request.headers["X-Trace"]', misreads + '\n        in_.request.headers["X-Trace"]'))
    assert status == 1
    for expression, error in MISREADS.items():
        assert error in output, (expression, output)
    assert output.count("error:") == len(MISREADS), output
