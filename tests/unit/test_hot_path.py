"""The per-call fast paths (memoized signing parts, cheap invocation IDs) keep their results exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from smruntime.auth import Credentials, SigV4Signer, parse_authorization
from smruntime.http import Headers, HTTPRequest
from smruntime.retry import _uuid4

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
