"""log_mode flags: what the ``smruntime`` logger records, and what it never does."""

from __future__ import annotations

import logging

import pytest

from smruntime import Client, LogMode
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.retry import StandardRetryer
from smruntime.transport import MockHTTPClient

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN"


def run(mode: LogMode, caplog: pytest.LogCaptureFixture, statuses=(200,), body: bytes = b'{"question": 1}',
        answer: bytes = b'{"answer": 42}') -> list[str]:
    answers = iter(statuses)

    def handler(request: HTTPRequest) -> HTTPResponse:
        status = next(answers)
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": "rid"}
        if status != 200:
            headers["X-Amzn-ErrorType"] = "ServiceUnavailable"
        return HTTPResponse(status, headers, answer)

    client = Client(
        region="us-east-1",
        credentials=("AKIDEXAMPLE", SECRET, TOKEN),
        http_client=MockHTTPClient(handler),
        retryer=StandardRetryer(sleep=lambda s: None),
        log_mode=mode,
    )
    with caplog.at_level(logging.DEBUG, logger="smruntime"):
        client.invoke_endpoint(endpoint_name="ep", body=body, custom_attributes="user=alice")
    return [record.getMessage() for record in caplog.records if record.name.startswith("smruntime")]


def test_nothing_is_logged_by_default(caplog) -> None:
    assert run(LogMode.NONE, caplog) == []


def test_request_and_response_lines_without_bodies_or_sensitive_headers(caplog) -> None:
    lines = run(LogMode.REQUEST | LogMode.RESPONSE, caplog)
    request = next(line for line in lines if "request:" in line)
    response = next(line for line in lines if "response:" in line)
    assert "POST https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/ep/invocations" in request
    assert "user=alice" not in request and "question" not in request
    assert "200" in response and "answer" not in response


def test_logged_bodies_hide_the_values_of_secret_named_json_keys(caplog) -> None:
    lines = run(LogMode.REQUEST_BODY | LogMode.RESPONSE_BODY, caplog,
                body=b'{"prompt": "hi", "api_key": "sk-live-123"}',
                answer=b'data: {"text": "ok", "sessionToken": "tok-456"}\n\ndata: {"text": "done"}\n\n')
    joined = "\n".join(lines)
    assert "sk-live-123" not in joined and "tok-456" not in joined
    assert '{"prompt":"hi","api_key":"<redacted>"}' in joined
    assert 'data: {"text":"ok","sessionToken":"<redacted>"}' in joined and 'data: {"text": "done"}' in joined


def test_a_logged_json_body_too_large_to_check_is_not_shown(caplog) -> None:
    body = b'{"api_key": "sk-live-123", "text": "' + b"x" * (1024 * 1024) + b'"}'
    joined = "\n".join(run(LogMode.REQUEST_BODY, caplog, body=body))
    assert "sk-live-123" not in joined
    assert f"<{len(body)} bytes of what may be JSON, too large to check for secrets>" in joined


def test_body_flags_add_bodies_and_sensitive_headers(caplog) -> None:
    lines = run(LogMode.REQUEST_BODY | LogMode.RESPONSE_BODY, caplog)
    joined = "\n".join(lines)
    assert '{"question": 1}' in joined
    assert '{"answer": 42}' in joined
    assert "user=alice" in joined


def test_retries_are_logged(caplog) -> None:
    lines = run(LogMode.RETRIES, caplog, statuses=(503, 200))
    assert any("retry" in line.lower() for line in lines)


def test_secrets_never_appear_with_every_flag_on(caplog) -> None:
    lines = run(LogMode.ALL, caplog, statuses=(503, 200))
    joined = "\n".join(lines)
    assert lines
    assert SECRET not in joined and TOKEN not in joined
    assert "Signature=" not in joined or "Signature=<redacted>" in joined
    for line in lines:
        if "Signature=" in line:
            assert line.split("Signature=", 1)[1].startswith("<redacted>")


def test_a_response_line_stays_short_and_printable_whatever_the_server_sends(caplog) -> None:
    def handler(request: HTTPRequest) -> HTTPResponse:
        headers = {f"X-Junk-{index}": "\x1b[2J\u202e" + "x" * 60_000 for index in range(20)}
        return HTTPResponse(200, headers, b"\x1b[31m" + b"y" * 100_000)

    client = Client(
        region="us-east-1", credentials=("AKIDEXAMPLE", SECRET), http_client=MockHTTPClient(handler), log_mode=LogMode.ALL
    )
    with caplog.at_level(logging.DEBUG, logger="smruntime"):
        client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    response = next(r.getMessage() for r in caplog.records if "response:" in r.getMessage())
    assert len(response) < 20_000
    assert "\x1b" not in response and "\u202e" not in response
