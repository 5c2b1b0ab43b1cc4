"""The sans-IO parts of the tracing middleware: the X-Ray header, body redaction, error names."""

from __future__ import annotations

import io
import json

import pytest

import smruntime.otel
from smruntime import errors, redaction
from smruntime.otel.bodies import STREAM_CAPTURE_LIMIT, body_text, stream_capture
from smruntime.otel.facts import error_type, token_usage
from smruntime.otel.xray import trace_header
from smruntime.redaction import redact_json
from smruntime.types import InvokeEndpointOutput


def test_xray_header_splits_the_trace_id_after_its_epoch_seconds() -> None:
    header = trace_header(0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, True)
    assert header == "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert trace_header(1, 2, False) == "Root=1-00000000-000000000000000000000001;Parent=0000000000000002;Sampled=0"


def test_redaction_replaces_secret_keys_at_any_depth_and_keeps_the_rest() -> None:
    text = '{"password": "p", "nested": [{"Authorization": "Bearer x", "max_tokens": 3}], "token": {"a": 1}}'
    assert redact_json(text) == (
        '{"password":"<redacted>","nested":[{"Authorization":"<redacted>","max_tokens":3}],"token":"<redacted>"}'
    )
    assert redact_json("not json, api_key=kept") == "not json, api_key=kept"


@pytest.mark.parametrize("key", ["accessToken", "refreshToken", "idToken", "clientSecret", "client_secret",
                                 "private_key", "privateKey", "x-api-key", "X-Api-Key", "apiKey", "sessionToken",
                                 "AWS_SECRET_ACCESS_KEY", "Cookie", "set-cookie", "Password", "passphrase",
                                 "api_key", "password", "authorization", "cookie", "credentials", "apiToken",
                                 "X-Auth-Token", "jwt", "db_password", "OPENAI_API_KEY", "github-access-token",
                                 "serviceAccountPrivateKey", "proxyAuthorization", "HF_TOKEN",
                                 "HUGGING_FACE_HUB_TOKEN", "github_token", "api_keys", "secrets", "passwords"])
def test_a_secret_key_is_redacted_whatever_its_case_and_separators(key: str) -> None:
    text = json.dumps({"kept": {"max_tokens": 3, "tokens_used": 4}, "nested": [{key: "s3cr3t"}]})
    expected = {"kept": {"max_tokens": 3, "tokens_used": 4}, "nested": [{key: "<redacted>"}]}
    assert redact_json(text) == json.dumps(expected, separators=(",", ":"))


@pytest.mark.parametrize("key", ["token", "Auth"])
def test_short_secret_names_match_only_whole(key: str) -> None:
    # "token" and "auth" end names that are a model's settings (eos_token): only the bare name is a secret
    kept = {"eos_token": "</s>", "pad-token": "<pad>", "max_tokens": 3, "oauth_scopes": ["a"], "publicKey": "k"}
    assert redact_json(json.dumps({key: "s", **kept})) == json.dumps({key: "<redacted>", **kept}, separators=(",", ":"))


def test_a_models_own_token_settings_and_counts_are_kept() -> None:
    kept = {"eos_token": "</s>", "bos_token": "<s>", "mask_token": "[M]", "tokens": ["a"], "total_tokens": 9,
            "max_new_tokens": 5, "prompt_tokens": 4}
    assert redact_json(json.dumps(kept)) == json.dumps(kept)  # nothing to hide: the text as it was


def test_json_nested_too_deeply_to_check_is_not_shown() -> None:
    deep = '{"a":' * 5000 + '{"api_key": "s3cr3t"}' + "}" * 5000
    assert redact_json(deep) == redaction.TOO_DEEP
    deeper_than_the_walk = "[" * 900 + '{"api_key": "s3cr3t"}' + "]" * 900  # json parses it; the walk cannot
    assert redact_json(deeper_than_the_walk) == redaction.TOO_DEEP


def test_one_redaction_point_serves_tracing_and_the_rest_of_the_package() -> None:
    assert smruntime.otel.redact_json is redaction.redact_json
    assert smruntime.otel.SECRET_KEYS is redaction.SECRET_KEYS
    assert smruntime.otel.REDACTED is redaction.REDACTED


def test_body_text_redacts_before_cutting_and_never_reads_files() -> None:
    assert body_text(b'{"secret": "abcdefgh"}', 14, redact_json) == '{"secret":"<re…<9 more chars>'
    assert body_text(b"\xff\xfe", 10, redact_json) == "<2 bytes, not UTF-8>"
    stream = io.BytesIO(b"data")
    assert body_text(stream, 10, redact_json) == "<BytesIO>"
    assert stream.tell() == 0


def test_error_type_is_the_service_code_or_the_class_and_unwraps_exhausted_retries() -> None:
    throttled = errors.APIError("slow down", code="ThrottlingException", http_status=400)
    assert error_type(throttled) == "ThrottlingException"
    assert error_type(errors.MaxAttemptsExceededError(3, throttled)) == "ThrottlingException"
    assert error_type(errors.ReadTimeoutError("no answer")) == "ReadTimeoutError"


def test_token_usage_reads_openai_and_bedrock_spellings_only_from_json() -> None:
    def output(body: bytes, content_type: str = "application/json") -> InvokeEndpointOutput:
        return InvokeEndpointOutput(body=body, content_type=content_type)

    assert token_usage(output(b'{"usage": {"prompt_tokens": 3, "completion_tokens": 4}}')) == {
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 4}
    assert token_usage(output(b'{"usage": {"inputTokens": 1, "outputTokens": 2}}')) == {
        "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 2}
    assert token_usage(output(b'{"usage": {"prompt_tokens": true}}')) == {}
    assert token_usage(output(b'{"usage": 1}', "text/plain")) == {}
    assert token_usage(output(b"[1]")) == {}


def test_redaction_takes_json_lines_and_server_sent_events_line_by_line() -> None:
    text = '{"token": "t1", "text": "a"}\ndata: {"api_key": "k"}\n\nplain line, secret=kept\n[1, {"password": 2}]'
    assert redact_json(text) == (
        '{"token":"<redacted>","text":"a"}\ndata: {"api_key":"<redacted>"}\n\nplain line, secret=kept\n'
        '[1,{"password":"<redacted>"}]'
    )


def test_a_line_longer_than_the_stream_capture_is_not_kept_in_part() -> None:
    captured = bytearray()
    whole = b'{"text": "kept"}\n'
    long_line = b'{"api_key": "s3cr3t", "text": "' + b"x" * STREAM_CAPTURE_LIMIT + b'"}\n'
    parts = [whole] + [long_line[start : start + 65536] for start in range(0, len(long_line), 65536)]
    for part in parts:
        if not stream_capture(captured, part):
            break
    assert bytes(captured) == whole  # the long line's first parts are dropped with the rest of it


def test_a_stream_capture_stops_at_its_limit_on_a_line_end() -> None:
    captured = bytearray()
    line = b'{"secret": "s"}\n'
    while stream_capture(captured, line * 1000):
        pass
    assert len(captured) <= STREAM_CAPTURE_LIMIT
    assert captured.endswith(b"\n") and len(captured) % len(line) == 0
    assert "s\"" not in redact_json(captured.decode())
