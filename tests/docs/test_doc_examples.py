"""The docs' examples that run without AWS, run as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_block(page: str, heading: str) -> str:
    """The first ```python block under ``heading`` in ``docs/page``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, f"no python block under {heading!r} in {page}"
    return found.group(1)


ENVIRONMENTS = ["other keys in the environment", "no keys in the environment"]


def set_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str) -> None:
    """Credentials from one of ENVIRONMENTS, and no AWS configuration of the machine's."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if environment == "other keys in the environment":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERKEY00000000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "someone-elses-secret")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_quickstart_local_endpoint_example_works_whatever_the_environment_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], environment: str
) -> None:
    set_environment(monkeypatch, tmp_path, environment)

    exec(compile(python_block("quickstart.md", "## Without AWS: the local endpoint"), "quickstart.md", "exec"), {})

    assert '"sum": 6' in capsys.readouterr().out


def test_the_api_reference_covers_every_public_name() -> None:
    import importlib

    import smruntime

    documented = {
        line.removeprefix(":::").strip()
        for page in (DOCS / "reference").glob("*.md")
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith(":::")
    }
    missing = []
    for name in smruntime.__all__:
        module = getattr(getattr(smruntime, name), "__module__", None)
        if module is None:  # a constant such as __version__
            continue
        if not any(module == target or module.startswith(target + ".") for target in documented):
            missing.append(f"{name} ({module})")
    for module_name in documented:
        importlib.import_module(module_name)  # every page names a module that exists
    assert missing == []


def test_the_readme_middleware_example_adds_its_middleware_to_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", readme, re.S)[1]
    assert "add_trace" in block

    exec(compile(block, "README.md", "exec"), {})

    printed = capsys.readouterr().out
    assert printed.startswith("InvokeEndpoint\n")
    assert "\t\tUserAgent\n\t\tAddTrace\n" in printed or "\t\tAddTrace\n" in printed.split("Build stack step")[1]


def test_the_bidirectional_guides_mock_example_runs_as_written() -> None:
    exec(compile(python_block("bidirectional-streaming.md", "## Testing your code"), "bidirectional-streaming.md", "exec"), {})


@pytest.mark.parametrize(
    ("heading", "printed"),
    [
        ("## With AsyncClient", "b'world' UTF8 COMPLETE\nAllTraffic\n"),
        ("## With Client", "b'one'\nb'two'\nb'three'\n"),
        ("## Its stack, and middleware for every event", "my card is [card]\n1.0 s of audio sent\n"),
    ],
)
def test_the_bidirectional_guides_examples_run_as_written(
    heading: str, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(python_block("bidirectional-streaming.md", heading), "bidirectional-streaming.md", "exec"), {})

    assert capsys.readouterr().out.endswith(printed)


def test_the_bidirectional_guide_prints_the_stack_as_it_is() -> None:
    from smruntime import Client
    from smruntime.auth import ANONYMOUS

    text = (DOCS / "bidirectional-streaming.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n(InvokeEndpointWithBidirectionalStream\n.*?)```", text, re.S)
    assert shown is not None
    with Client(region="us-east-1", credentials=ANONYMOUS) as client:
        assert shown.group(1) == str(client.stack("InvokeEndpointWithBidirectionalStream"))


def test_the_middleware_timing_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint

    keys = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
    config = LocalConfig(endpoints=(EndpointConfig.serving("my-endpoint", "echo"),))
    with LocalEndpoint(config, credentials=keys) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.url)
        exec(compile(python_block("middleware.md", "### Timing each attempt"), "middleware.md", "exec"), {})

    times = ast.literal_eval(capsys.readouterr().out)  # the printed list of attempt durations
    assert len(times) == 1 and 0 < times[0] < 30


def test_the_fault_injection_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(python_block("local-endpoint.md", "## Fault injection and counters"), "local-endpoint.md", "exec"),
         {})

    assert capsys.readouterr().out == "0\n"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_tracing_guides_testing_example_works_whatever_the_environment_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: str
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    set_environment(monkeypatch, tmp_path, environment)

    exec(compile(python_block("tracing.md", "## Testing your own instrumentation"), "tracing.md", "exec"), {})
