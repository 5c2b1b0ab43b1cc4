"""Secrets never leave the signer: not in a log record, a repr, a str or an error message.

With every ``LogMode`` flag on and every logger at DEBUG, the test runs calls signed with a
session token against a local endpoint that expects that token: successes, retries, service
errors, signature failures, a broken stream, transport failures. It collects the text of
every log record and the repr and str of everything a user can reach (the client, its
options and their parts, credentials, inputs, outputs, streams, errors with their whole
exception chain, and the request, response and context a middleware sees) and looks in it
for the secret key, the session token, every signature sent and the derived signing key.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import smruntime
from smruntime import Client
from smruntime.auth import signing_key
from smruntime.errors import SageMakerRuntimeError
from smruntime.http import HTTPRequest
from smruntime.local import LocalEndpoint
from smruntime.middleware import (
    Context,
    DeserializeInput,
    DeserializeOutput,
    FinalizeInput,
    FinalizeOutput,
    Next,
    Position,
    Stack,
    deserialize_middleware,
    finalize_middleware,
)
from smruntime.types import InvokeEndpointInput
from tests.reliability.support import CREDENTIALS, Sleeps, make_client

ACCESS_KEY, SECRET = CREDENTIALS
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/SESSION+TOKEN/that/must/never/show/up=="
WRONG_SECRET = "another-secret-key-that-must-not-show-up-either"
WRONG_TOKEN = "IQoJb3JpZ2luX2VjWRONG/SESSION+TOKEN/also/secret=="


class Seen:
    """Everything a middleware could reach, and every signature that went out."""

    def __init__(self) -> None:
        self.objects: list[Any] = []
        self.signatures: set[str] = set()
        self.dates: set[str] = set()

    def install(self, stack: Stack) -> None:
        def after_signing(ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
            request: HTTPRequest = in_.request
            authorization = request.headers.get("Authorization") or ""
            if "Signature=" in authorization:
                self.signatures.add(authorization.rsplit("Signature=", 1)[1])
                self.dates.add((request.headers.get("X-Amz-Date") or "")[:8])
            self.objects += [request, request.headers, ctx, in_]
            return next(ctx, in_)

        def innermost(ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> DeserializeOutput:
            out = next(ctx, in_)
            self.objects += [out, out.raw_response, out.raw_response.headers, ctx, ctx.metadata]
            return out

        stack.finalize.add(finalize_middleware("SeeSignedRequest", after_signing), Position.AFTER)
        stack.deserialize.add(deserialize_middleware("SeeResponse", innermost), Position.AFTER)
        self.objects.append(stack)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=(ACCESS_KEY, SECRET, TOKEN)) as running:
        yield running


def texts_of(value: Any) -> list[str]:
    """repr and str of a value, and for an exception its whole printed chain and notes."""
    out = [repr(value), str(value)]
    if isinstance(value, BaseException):
        out += ["".join(traceback.format_exception(value))]
        out += [repr(arg) for arg in value.args]
        cause: BaseException | None = value
        while cause is not None:
            out += [repr(cause), str(cause), *getattr(cause, "__notes__", [])]
            cause = cause.__cause__ or cause.__context__
    return out


def run_calls(endpoint: LocalEndpoint, seen: Seen, caught: list[BaseException], reached: list[Any]) -> None:
    def client(**fields: Any) -> Client:
        fields.setdefault("credentials", (ACCESS_KEY, SECRET, TOKEN))
        made = make_client(
            endpoint.url, sleeps=Sleeps(), log_mode=smruntime.LogMode.ALL, api_options=[seen.install], **fields
        )
        reached.extend([made, made.options, made.options.credentials, made.options.signer, made.options.retryer,
                        made.options.http_client])
        reached.append(made.options.credentials.retrieve())
        return made

    def attempt(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except SageMakerRuntimeError as error:
            caught.append(error)
            return None
        reached.append(result)
        return result

    with client() as good:
        params = InvokeEndpointInput(endpoint_name="echo", body=b"{}", custom_attributes="trace=1")
        reached.append(params)
        out = attempt(good.invoke_endpoint, params)
        reached.append(out.metadata)
        endpoint.faults("echo").fail_next(1, status=503)
        attempt(good.invoke_endpoint, endpoint_name="echo", body=b"retried")
        endpoint.faults("echo").fail_next(3, status=503)
        attempt(good.invoke_endpoint, endpoint_name="echo", body=b"exhausted")
        endpoint.faults("echo").fail_next(1, status=424)
        attempt(good.invoke_endpoint, endpoint_name="echo", body=b"model error")
        attempt(good.invoke_endpoint, endpoint_name="nobody", body=b"unknown endpoint")
        stream = attempt(good.invoke_endpoint_with_response_stream, endpoint_name="tokens", body=b"a b c")
        with stream:
            reached.extend(list(stream))
        endpoint.faults("tokens").break_stream_after(1)
        broken = attempt(good.invoke_endpoint_with_response_stream, endpoint_name="tokens", body=b"a b c")
        try:
            with broken:
                reached.extend(list(broken))
        except SageMakerRuntimeError as error:
            caught.append(error)
        reached.append(broken)
        endpoint.set_clock_offset(3600)
        try:
            attempt(good.invoke_endpoint, endpoint_name="echo", body=b"skewed")
        finally:
            endpoint.set_clock_offset(0)
        reached.append(good.stack("InvokeEndpoint"))
    with client(credentials=(ACCESS_KEY, WRONG_SECRET, TOKEN)) as wrong_secret:
        attempt(wrong_secret.invoke_endpoint, endpoint_name="echo", body=b"signature mismatch")
    with client(credentials=(ACCESS_KEY, SECRET, WRONG_TOKEN)) as wrong_token:
        attempt(wrong_token.invoke_endpoint, endpoint_name="echo", body=b"unknown token")
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        refused = make_client(f"http://127.0.0.1:{bound.getsockname()[1]}", credentials=(ACCESS_KEY, SECRET, TOKEN),
                              log_mode=smruntime.LogMode.ALL)
        with refused:
            attempt(refused.invoke_endpoint, endpoint_name="echo", body=b"nobody listens")


def test_no_secret_in_logs_reprs_or_errors(endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen = Seen()
    caught: list[BaseException] = []
    reached: list[Any] = []
    run_calls(endpoint, seen, caught, reached)

    assert len(caught) >= 6  # the failures above did fail
    assert len(seen.signatures) >= 10
    smruntime_records = [r for r in caplog.records if r.name.startswith("smruntime")]
    assert any("signature v4" in r.getMessage() for r in smruntime_records)  # SIGNING was logged
    assert any("retrying" in r.getMessage() for r in smruntime_records)  # RETRIES was logged
    assert any("response: 200" in r.getMessage() for r in smruntime_records)  # RESPONSE was logged

    texts: list[str] = []
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            texts += texts_of(record.exc_info[1])
    for value in [*reached, *seen.objects, *caught, endpoint]:
        texts += texts_of(value)

    secrets = {"secret key": SECRET, "session token": TOKEN, "wrong secret": WRONG_SECRET, "wrong token": WRONG_TOKEN}
    secrets.update({f"signature {signature[:8]}…": signature for signature in seen.signatures})
    for secret_key in (SECRET, WRONG_SECRET):
        for date in seen.dates:
            secrets[f"signing key of {date}"] = signing_key(secret_key, date, "us-east-1", "sagemaker").hex()
    for name, secret in secrets.items():
        leaks = [text[:300] for text in texts if secret in text]
        assert leaks == [], f"the {name} leaked"


def test_a_token_that_cannot_be_sent_is_not_echoed_in_the_error(endpoint: LocalEndpoint) -> None:
    """A token read from a file with its trailing newline cannot go in a header; the error
    that says so must not quote it (an HTTP library's "invalid header value" would)."""
    # Refused when the client is built, before any call.
    with pytest.raises(SageMakerRuntimeError) as caught, make_client(
        endpoint.url, credentials=(ACCESS_KEY, SECRET, TOKEN + "\n")
    ) as client:
        client.invoke_endpoint(endpoint_name="echo", body=b"x")
    leaks = [text[:300] for text in texts_of(caught.value) if TOKEN in text]
    assert leaks == []
