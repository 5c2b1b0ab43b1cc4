"""The README and the user guide as a user reads them: every Python example runs as written.

Each page's examples run in order in one fresh interpreter, as a reader would paste them into one
session. The environment holds AWS keys that are not the documentation's example pair, and
points ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` at a local endpoint hosting the endpoint names the
examples use, so an example written for AWS runs unchanged against it. Fragments that use a
``client`` made elsewhere get one made as the quickstart makes it. An example that cannot run
here (it needs S3, or it is a signature) is listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from smruntime.local import AsyncInferenceConfig, EndpointConfig, LocalConfig, LocalEndpoint
from tests.integration.cli_support import SMRUNTIME, clean_env, hint_environment, serving

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
ENV_KEYS = ("AKIDDOCSEXAMPLES", "docs-examples-secret")
"""The caller's own keys: deliberately not the documentation's example pair."""

NOT_RUN = {
    ("docs/predictor.md", "from smruntime.predictor import AsyncPredictor"): "a fragment of a coroutine",
    ("docs/bulk.md", "import ray"): "needs the ray extra",
    ("docs/predictor.md", 'predictor = Predictor(client, "my-llm", serializer=JSONSerializer(), stream_deserializer=JSON'
                          'Deserializer())'): "needs an LLM container that streams JSON lines with tokens",
    ("docs/bulk.md", "from smruntime import Client"): "reads your records.jsonl; handle and log_failure are yours",
    ("docs/async.md", "from smruntime import Client"): "reads its input from S3",
    ("docs/async.md", "client.wait_for_async_inference(out, *, timeout=900.0, poll_interval=5.0,"): "a signature",
    ("docs/async.md", "client.wait_for_async_inference(out, timeout=30, poll_interval=0.1, file_root=\"/srv/async-resu"
                      "lts\")"): "reads results from a folder on the reader's machine",
    ("docs/async.md", "AsyncInferenceConfig(s3_output_path=directory.as_uri(), max_concurrent_invocations=1, time"
                      "_scale=0.005)"): "one argument of a configuration",
}

PRELUDE = """\
from smruntime import Client
client = Client(region="us-east-1")
"""


@attrs.frozen
class Example:
    page: str
    line: int
    code: str

    @property
    def key(self) -> tuple[str, str]:
        return self.page, self.code.splitlines()[0]


def code_blocks(page: Path) -> Iterator[tuple[str, Example]]:
    """Each fenced block of a page with its language (empty if none)."""
    language, start, lines = None, 0, []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if language is None and line.startswith("```"):
            language, start, lines = line[3:].strip(), number + 1, []
        elif language is not None and line.startswith("```"):
            yield language, Example(str(page.relative_to(ROOT)), start, "".join(lines))
            language = None
        elif language is not None:
            lines.append(line + "\n")


def examples(page: Path) -> Iterator[Example]:
    return (example for language, example in code_blocks(page) if language == "python")


def test_every_skipped_example_still_exists() -> None:
    keys = {example.key for page in PAGES for example in examples(page)}
    assert set(NOT_RUN) <= keys


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    scratch = tmp_path_factory.mktemp("docs-examples")
    names = {"my-endpoint": "echo", "ep": "echo", "my-llm": "tokens", "sum": "sum", "echo": "echo", "tokens": "tokens"}
    sum_async = EndpointConfig.serving("sum-async", "sum", async_inference=AsyncInferenceConfig(
        s3_output_path=(scratch / "output").as_uri()))
    config = LocalConfig(endpoints=(*(EndpointConfig.serving(name, model) for name, model in names.items()), sum_async))
    with LocalEndpoint(config, credentials=ENV_KEYS) as running:
        yield running


def _environment(scratch: Path, url: str) -> dict[str, str]:
    return clean_env(scratch, AWS_ACCESS_KEY_ID=ENV_KEYS[0], AWS_SECRET_ACCESS_KEY=ENV_KEYS[1],
                     AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url)


def run_page(page: Path, scratch: Path, url: str) -> subprocess.CompletedProcess[str]:
    parts = [PRELUDE]
    for example in examples(page):
        if example.key in NOT_RUN:
            continue
        # Compiled under its own file name and line, so a failure points at the page.
        parts.append(f"exec(compile({example.code!r}, {example.page!r} + ':' + str({example.line}), 'exec'))\n")
    parts.append("client.close()\n")
    script = scratch / "examples.py"
    script.write_text("".join(parts))
    return subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                          cwd=scratch, env=_environment(scratch, url), timeout=120, check=False)


@pytest.mark.parametrize("page", [page for page in PAGES if any(examples(page))], ids=lambda page: page.name)
def test_the_examples_of_a_page_run_as_written(page: Path, endpoint: LocalEndpoint, tmp_path: Path) -> None:
    done = run_page(page, tmp_path, endpoint.url)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_quickstart_local_endpoint_example_answers_with_the_caller_s_own_keys_in_the_environment(
        endpoint: LocalEndpoint, tmp_path: Path) -> None:
    example = next(example for example in examples(ROOT / "docs" / "quickstart.md") if "LocalEndpoint(" in example.code)
    script = tmp_path / "example.py"
    script.write_text(example.code)
    done = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=_environment(tmp_path, endpoint.url), timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"sum": 6' in done.stdout


def test_the_guide_lists_exactly_the_headers_the_signer_never_signs() -> None:
    from smruntime.auth import UNSIGNED_HEADERS

    text = (ROOT / "docs" / "middleware.md").read_text(encoding="utf-8")
    paragraph = text[text.index("A few headers are never signed"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    listed = {name.lower() for name in re.findall(r"`([A-Za-z-]+)`", paragraph)}
    assert listed == set(UNSIGNED_HEADERS)


def shell_commands(page: Path) -> Iterator[str]:
    """The ``smruntime`` commands of a page that talk to ``smruntime serve`` on its default port."""
    for language, block in code_blocks(page):
        if language not in ("sh", ""):
            continue
        for line in block.code.replace("\\\n", " ").splitlines():
            command = line.removeprefix("$ ").split("  #", 1)[0].strip()
            if command.startswith("smruntime ") and "--endpoint-url http://127.0.0.1:8080" in command:
                yield command


def test_the_cli_examples_run_against_smruntime_serve(tmp_path: Path) -> None:
    import shlex

    commands = [command for page in PAGES for command in shell_commands(page)]
    assert commands
    env = clean_env(tmp_path)
    with serving([], env) as (url, hint):
        caller = {**env, **hint_environment(hint)}  # the caller's shell has what serve's hint says
        for command in commands:
            argv = [SMRUNTIME, *shlex.split(command.replace("http://127.0.0.1:8080", url))[1:]]
            done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=caller, timeout=120,
                                  check=False)
            assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
