"""The asyncio guide's FastAPI example, run as written: served by uvicorn on a loopback port,
called by a real HTTP client, which must see each token before the model produces the next."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelRequest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "asyncio.md"
CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def fastapi_example() -> str:
    section = GUIDE.read_text().split("## Streaming an endpoint's tokens on, with FastAPI", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the guide's FastAPI example is missing"
    return found.group(1)


class Gated:
    """Yields one token, then waits for the test to have seen it before yielding the rest."""

    def __init__(self) -> None:
        self.seen_first = threading.Event()

    def __call__(self, request: ModelRequest) -> Iterator[bytes]:
        yield b"Hello"
        if not self.seen_first.wait(10):
            raise RuntimeError("the first token did not reach the service's client on its own")
        yield b", world"
        yield b"!"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Gated]]:
    model = Gated()
    config = LocalConfig(endpoints=(EndpointConfig.serving("llm", model),))
    with LocalEndpoint(config, credentials=CREDENTIALS) as endpoint:
        for name, value in {
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint.url,
            "LLM_ENDPOINT": "llm",
        }.items():
            monkeypatch.setenv(name, value)
        namespace: dict[str, Any] = {"__name__": "fastapi_example"}
        exec(compile(fastapi_example(), str(GUIDE), "exec"), namespace)
        server = uvicorn.Server(uvicorn.Config(namespace["app"], host="127.0.0.1", port=0, log_level="warning",
                                               lifespan="on"))
        thread = threading.Thread(target=server.run, name="fastapi-example", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", model
        finally:
            server.should_exit = True
            thread.join(10)


def test_the_fastapi_example_streams_each_token_as_it_arrives(service: tuple[str, Gated]) -> None:
    url, model = service
    received: list[bytes] = []
    with httpx.Client(timeout=10) as http, http.stream("POST", f"{url}/generate", content=b'{"inputs": "hi"}') as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received.append(chunk)
            model.seen_first.set()  # the model yields the rest only after this
    assert b"".join(received) == b"Hello, world!"
    assert received[0] == b"Hello"
