"""The per-call fast paths (remembered validation and signing parts, cheap invocation IDs, the
header store) keep their results exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from smruntime import http
from smruntime.auth import Credentials, SigV4Signer, format_amz_date, parse_authorization
from smruntime.errors import InvalidParamsError
from smruntime.http import Headers, HTTPRequest
from smruntime.operations import invoke_endpoint, invoke_endpoint_with_response_stream
from smruntime.retry.middleware import _uuid4
from smruntime.types import InvokeEndpointInput
from smruntime.validation import PassedValues

URL = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/ep/invocations"
WHEN = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def test_invocation_ids_are_distinct_rfc4122_version_4_uuids() -> None:
    ids = [_uuid4() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_lower_dict_is_a_snapshot_of_lowercase_names() -> None:
    headers = Headers({"Content-Type": "a", "X-Amz-Date": "b"})
    snapshot = headers.lower_dict()
    headers["content-type"] = "c"
    assert snapshot == {"content-type": "a", "x-amz-date": "b"}


def _signed_names(headers: dict[str, str], url: str = URL) -> tuple[str, ...]:
    request = HTTPRequest("POST", url, headers, b"{}")
    SigV4Signer().sign_http(request, CREDENTIALS, "0" * 64, "sagemaker", "us-east-1", WHEN)
    return parse_authorization(request.headers["Authorization"]).signed_headers


def test_signed_headers_follow_each_requests_own_header_names() -> None:
    # The sorted name list is memoized by the set of names: a new header must still be signed,
    # and an unsigned one (User-Agent) left out, on every call.
    first = _signed_names({"Content-Type": "application/json"})
    second = _signed_names({"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": "m"})
    third = _signed_names({"Content-Type": "application/json", "User-Agent": "ua"})
    assert first == ("content-type", "host", "x-amz-date")
    assert second == ("content-type", "host", "x-amz-date", "x-amzn-sagemaker-target-model")
    assert third == first


def test_the_same_url_with_another_method_or_host_header_signs_differently() -> None:
    post = HTTPRequest("POST", URL, {"Content-Type": "a"}, b"")
    put = HTTPRequest("PUT", URL, {"Content-Type": "a"}, b"")
    proxied = HTTPRequest("POST", URL, {"Content-Type": "a", "Host": "proxy.example"}, b"")
    signer = SigV4Signer()
    for request in (post, put, proxied):
        signer.sign_http(request, CREDENTIALS, "0" * 64, "sagemaker", "us-east-1", WHEN)
    signatures = {parse_authorization(r.headers["Authorization"]).signature for r in (post, put, proxied)}
    assert len(signatures) == 3


# --- remembered validation ---------------------------------------------------------------------


@pytest.mark.parametrize("operation", [invoke_endpoint, invoke_endpoint_with_response_stream], ids=["invoke", "stream"])
def test_a_remembered_input_is_checked_again_when_a_value_changes(operation: Any) -> None:
    make = operation.OPERATION.input_type
    operation.validate(make(endpoint_name="memo-ep", body=b"{}", content_type="application/json"), "Op")
    # Each changed value is checked, though the rest of the input passed before.
    for changed, field in [
        ({"endpoint_name": "memo ep"}, "endpoint_name"),
        ({"content_type": "application/json\n"}, "content_type"),
        ({"accept": "x" * 1025}, "accept"),
        ({"target_variant": "a_b"}, "target_variant"),
    ]:
        params = make(**{"endpoint_name": "memo-ep", "body": b"{}", "content_type": "application/json", **changed})
        with pytest.raises(InvalidParamsError) as caught:
            operation.validate(params, "Op")
        assert caught.value.fields == (field,)


@pytest.mark.parametrize("operation", [invoke_endpoint, invoke_endpoint_with_response_stream], ids=["invoke", "stream"])
def test_the_body_and_per_request_members_are_checked_on_every_call(operation: Any) -> None:
    make = operation.OPERATION.input_type
    good = {"endpoint_name": "every-call", "body": b"{}"}
    operation.validate(make(**good), "Op")
    operation.validate(make(**good), "Op")  # remembered now
    for changed, field in [
        ({"body": b"x" * (6 * 1024 * 1024 + 1)}, "body"),
        ({"body": None}, "body"),
        ({"custom_attributes": "\x00"}, "custom_attributes"),
        ({"inference_id": ""}, "inference_id"),
        ({"session_id": "bad session"}, "session_id"),
    ]:
        with pytest.raises(InvalidParamsError) as caught:
            operation.validate(make(**{**good, **changed}), "Op")
        assert caught.value.fields == (field,)


def test_problems_keep_the_member_order_whether_or_not_the_input_was_remembered() -> None:
    make = InvokeEndpointInput
    invoke_endpoint.validate(make(endpoint_name="order-ep", body=b"{}", target_variant="v1"), "Op")
    with pytest.raises(InvalidParamsError) as remembered:
        invoke_endpoint.validate(make(endpoint_name="order-ep", body=None, target_variant="v1", session_id="x y"), "Op")
    assert remembered.value.fields == ("body", "session_id")
    with pytest.raises(InvalidParamsError) as fresh:
        invoke_endpoint.validate(
            make(endpoint_name="order ep", body=None, target_variant="v_1", inference_id="", session_id="x y"), "Op"
        )
    assert fresh.value.fields == ("endpoint_name", "body", "target_variant", "inference_id", "session_id")


def test_passed_values_remember_only_exact_strings_and_stay_bounded() -> None:
    memo = PassedValues(maxsize=2)
    memo.add(("a", None))
    assert ("a", None) in memo
    assert ("b", None) not in memo
    memo.add((1, None))  # not a str: never remembered, so True (== 1) cannot pass for it
    assert (1, None) not in memo and (True, None) not in memo
    assert (["unhashable"], None) not in memo
    memo.add(("b", None))
    memo.add(("c", None))  # full: starts over
    assert len(memo) == 1 and ("c", None) in memo and ("a", None) not in memo


# --- remembered signing parts -------------------------------------------------------------------


def _sign(signer: SigV4Signer, headers: dict[str, str], when: datetime = WHEN, credentials: Credentials = CREDENTIALS) -> Headers:
    request = HTTPRequest("POST", URL, headers, b"{}")
    signer.sign_http(request, credentials, "0" * 64, "sagemaker", "us-east-1", when)
    return request.headers


def test_a_reused_signer_signs_each_request_as_a_fresh_one_does() -> None:
    # Canonical header lines are remembered per name with the value they were made from.
    reused = SigV4Signer()
    for value in ["application/json", "application/json", "text/csv", " text/csv ", "a  b\tc", "a b c", "application/json"]:
        headers = {"Content-Type": value, "X-Amzn-SageMaker-Custom-Attributes": value}
        assert _sign(reused, headers)["Authorization"] == _sign(SigV4Signer(), headers)["Authorization"]


def test_remembered_header_lines_stay_bounded() -> None:
    signer = SigV4Signer()
    for n in range(200):
        headers = {f"X-Custom-{n}": "v"}
        assert _sign(signer, headers)["Authorization"] == _sign(SigV4Signer(), headers)["Authorization"]
    assert len(signer._lines) <= 70


_SHARED_SIGNER = SigV4Signer()


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 12, 0, 0, 999999, tzinfo=UTC),
        datetime(2026, 11, 24, 12, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 24, 12, 0, 1, tzinfo=UTC),  # same time of day, another month
        datetime(2026, 11, 24, 12, 0, 1),  # naive: taken to be UTC
        datetime(2026, 11, 24, 14, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC),
    ],
)
def test_the_amz_date_follows_each_signing_time(when: datetime) -> None:
    signer = _SHARED_SIGNER  # one signer across the cases: its remembered date must not leak
    assert _sign(signer, {}, when)["X-Amz-Date"] == format_amz_date(when)



def test_the_authorization_names_each_access_key_and_day() -> None:
    signer = SigV4Signer()
    other = Credentials("AKIDOTHER", CREDENTIALS.secret_access_key)
    first = parse_authorization(_sign(signer, {})["Authorization"])
    second = parse_authorization(_sign(signer, {}, credentials=other)["Authorization"])
    next_day = parse_authorization(_sign(signer, {}, WHEN + timedelta(days=1))["Authorization"])
    assert (first.access_key_id, first.date) == ("AKIDEXAMPLE", "20261124")
    assert (second.access_key_id, second.date) == ("AKIDOTHER", "20261124")
    assert (next_day.access_key_id, next_day.date) == ("AKIDEXAMPLE", "20261125")
    # The key id is not signed (the secret is); the day is, through the scope.
    assert first.signature == second.signature != next_day.signature


# --- headers ------------------------------------------------------------------------------------


def test_headers_keep_the_first_spelling_and_the_order_of_names() -> None:
    headers = Headers([("Content-Type", "a"), ("X-Amz-Date", "b")])
    headers["content-type"] = "c"  # replaces the value, keeps spelling and place
    headers["Accept"] = "d"
    assert list(headers) == ["Content-Type", "X-Amz-Date", "Accept"]
    assert list(headers.items()) == [("Content-Type", "c"), ("X-Amz-Date", "b"), ("Accept", "d")]
    assert list(headers.lower_items()) == [("content-type", "c"), ("x-amz-date", "b"), ("accept", "d")]
    del headers["CONTENT-TYPE"]
    headers["content-TYPE"] = "e"  # a new entry: its own spelling, at the end
    assert list(headers.items()) == [("X-Amz-Date", "b"), ("Accept", "d"), ("content-TYPE", "e")]
    assert headers.get("Content-Type") == "e" and headers["CONTENT-type"] == "e" and "content-type" in headers
    assert headers.get("missing") is None and 5 not in headers  # type: ignore[comparison-overlap]
    assert len(headers) == 3 and headers == {"x-amz-date": "b", "ACCEPT": "d", "Content-Type": "e"}


def test_a_headers_copy_is_independent() -> None:
    headers = Headers({"Content-Type": "a"})
    clone = headers.copy()
    clone["X-New"] = "b"
    clone["content-type"] = "c"
    del headers["Content-Type"]
    assert dict(headers.items()) == {}
    assert dict(clone.items()) == {"Content-Type": "c", "X-New": "b"}


def test_header_names_are_matched_case_insensitively_beyond_the_known_ones() -> None:
    known = dict(http._LOWERCASE)
    headers = Headers()
    for n in range(1500):  # names the fixed table of lower-case forms does not hold
        headers[f"X-Name-{n}"] = str(n)
    assert known == http._LOWERCASE  # a fixed table: nothing a caller sends is remembered
    headers["X-AMZ-DATE"] = "d"  # a known name in a spelling the table does not hold
    assert headers["x-amz-date"] == headers["X-Amz-Date"] == "d"
    assert headers["x-name-1499"] == "1499" and headers.get("X-NAME-0") == "0" and "x-Name-750" in headers
    assert list(headers)[-2:] == ["X-Name-1499", "X-AMZ-DATE"]


def test_received_headers_join_a_repeated_name_and_keep_its_first_spelling() -> None:
    headers = Headers.received([("Set-Cookie", "a=1"), ("x-amzn-RequestId", "r"), ("set-cookie", "b=2"), ("SET-COOKIE", "c")])
    assert list(headers.items()) == [("Set-Cookie", "a=1, b=2, c"), ("x-amzn-RequestId", "r")]
    assert headers["x-amzn-requestid"] == "r" and headers.get("Set-cookie") == "a=1, b=2, c"
    assert Headers.received([]) == {}


def test_request_head_refuses_a_name_or_value_that_would_smuggle_a_header() -> None:
    from smruntime.transport.fast_client import _request_head
    from smruntime.transport.shared import PreparedBody

    class Origin:
        host = "example.com"
        extra_headers = ""

    body = PreparedBody(b"{}")
    good = Headers({"Content-Type": "application/json", "X-Amz-Date": "20261205T001000Z"})
    head = _request_head(HTTPRequest("POST", "http://example.com/x", good, b"{}"), "/x", body, Origin)  # type: ignore[arg-type]
    assert head == (
        b"POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\n"
        b"X-Amz-Date: 20261205T001000Z\r\nContent-Length: 2\r\n\r\n"
    )
    for name, value in [("X-A\nX-B", "v"), ("X-A", "v\r\nX-Evil: 1"), ("", "v"), ("X A", "v"), ("X-A", "v\x00"), ("X:A", "v")]:
        headers = Headers(good.items())
        headers[name] = value
        with pytest.raises(ValueError, match="invalid header"):
            _request_head(HTTPRequest("POST", "http://example.com/x", headers, b"{}"), "/x", body, Origin)  # type: ignore[arg-type]


def test_every_header_name_the_service_model_binds_is_lowered_through_the_fixed_table() -> None:
    from smruntime import service_model
    from smruntime.shapes import Shape

    bound = {
        member.location_name
        for shape in vars(service_model).values()
        if isinstance(shape, Shape)
        for member in shape.held
        if member.location == "header" and member.location_name
    }
    assert bound
    assert bound <= set(http._LOWERCASE)
    assert all(http._LOWERCASE[name] == name.lower() for name in http._LOWERCASE)
