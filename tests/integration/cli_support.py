"""Running the installed ``smruntime`` command, and ``smruntime serve`` in its own process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SMRUNTIME = str(Path(sys.executable).with_name("smruntime"))
"""The installed console script: unlike ``python -m``, it does not put the current directory on sys.path."""


def clean_env(scratch: Path, **extra: str) -> dict[str, str]:
    """This process's environment with no AWS settings (no files, no IMDS), plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(scratch / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(scratch / "credentials"), **extra)
    return env


def hint_environment(hint: list[str]) -> dict[str, str]:
    """The variables of the ``export`` lines that ``smruntime serve`` prints: the example pair's
    (with no credentials) and the one pointing clients at it."""
    lines = [line for line in hint if line.lstrip().startswith("export ")]
    return {name: value for line in lines for name, value in (pair.split("=", 1) for pair in line.split()[1:])}


@contextlib.contextmanager
def serving(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Iterator[tuple[str, list[str]]]:
    """``smruntime serve --port 0 ARGS`` in its own process: its URL and the hint lines it printed."""
    process = subprocess.Popen([SMRUNTIME, "serve", "--port", "0", *args], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, env=env, cwd=cwd, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert " on http://" in banner, banner + process.stderr.read()
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        hint = [process.stderr.readline(), process.stderr.readline()] if "AKIDEXAMPLE" in banner else []
        hint += [process.stderr.readline(), process.stderr.readline()]  # "Point clients at it with:", export
        yield url, hint
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
