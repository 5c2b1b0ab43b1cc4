"""SigV4Signer against botocore's SigV4Auth: same request in, same headers out.

Random SageMaker requests (endpoint names that need percent-encoding, odd header values,
custom attributes, empty and binary bodies, session tokens, regions, custom URLs with
ports and base paths) are signed by both at one fixed time; Authorization, X-Amz-Date and
X-Amz-Security-Token must be byte-identical.

botocore reads the clock itself (``botocore.auth.get_current_datetime``); this test
patches that one name to freeze it, which is the only way to compare signatures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smruntime.auth import Credentials, SigV4Signer, payload_sha256
from smruntime.http import HTTPRequest

REGIONS = st.sampled_from(
    ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-1", "us-gov-west-1", "cn-north-1", "il-central-1"]
)
BASES = st.sampled_from(
    [
        "https://runtime.sagemaker.{region}.amazonaws.com",
        "https://runtime-fips.sagemaker.{region}.amazonaws.com",
        "https://vpce-0123-abcd.runtime.sagemaker.{region}.vpce.amazonaws.com",
        "https://RUNTIME.SageMaker.{region}.amazonaws.com:443",  # default port dropped, host lower-cased
        "http://127.0.0.1:8080",
        "http://localhost:80",
        "http://[::1]:9000",
        "https://proxy.example.com/sm",  # a base path is kept
        "https://proxy.example.com:8443/a%20b/",
    ]
)
# Header values as a client may send them: inner runs of spaces and tabs, padding, Latin-1.
HEADER_PIECES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é\xa0"), max_size=8
)
HEADER_TEXT = st.lists(HEADER_PIECES | st.sampled_from([" ", "\t", "   ", " \t  "]), max_size=6).map("".join)
KEY = st.from_regex(r"\A[A-Z0-9]{16,20}\Z")
SECRET = st.from_regex(r"\A[A-Za-z0-9/+]{30,40}\Z")
TOKEN = st.none() | st.from_regex(r"\A[A-Za-z0-9/+=]{20,200}\Z")
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))

OPTIONAL_HEADERS = {
    "Accept": HEADER_TEXT,
    "X-Amzn-SageMaker-Custom-Attributes": HEADER_TEXT,
    "X-Amzn-SageMaker-Target-Model": HEADER_TEXT,
    "X-Amzn-SageMaker-Target-Variant": HEADER_TEXT,
    "X-Amzn-SageMaker-Inference-Id": HEADER_TEXT,
    "X-Amzn-SageMaker-Session-Id": HEADER_TEXT,
    "X-Amzn-SageMaker-Enable-Explanations": HEADER_TEXT,
    "amz-sdk-invocation-id": st.uuids().map(str),
    "amz-sdk-request": st.sampled_from(["attempt=1; max=3", "attempt=2; max=3"]),
    "User-Agent": HEADER_TEXT,  # never signed
    "X-Amzn-Trace-Id": HEADER_TEXT,  # never signed
    "traceparent": HEADER_TEXT,  # never signed
}


@st.composite
def sagemaker_requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    region = draw(REGIONS)
    base = draw(BASES).format(region=region).rstrip("/")
    endpoint = draw(st.text(min_size=1, max_size=30))  # anything: the serializer encodes it once
    operation = draw(st.sampled_from(["invocations", "invocations-response-stream", "async-invocations"]))
    url = f"{base}/endpoints/{quote(endpoint, safe='')}/{operation}"
    body = draw(st.binary(max_size=64))
    headers = {"Content-Type": draw(HEADER_TEXT), "Content-Length": str(len(body))}
    for name in draw(st.sets(st.sampled_from(sorted(OPTIONAL_HEADERS)))):
        headers[name] = draw(OPTIONAL_HEADERS[name])
    return url, headers, body


def botocore_sign(
    url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str, when: datetime
) -> AWSRequest:
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    signer = botocore.auth.SigV4Auth(
        BotocoreCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        "sagemaker",
        region,
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when):
        signer.add_auth(request)
    return request


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request=sagemaker_requests(),
    key=KEY,
    secret=SECRET,
    token=TOKEN,
    region=REGIONS,
    when=TIMES,
)
def test_same_signature_as_botocore(
    request: tuple[str, dict[str, str], bytes], key: str, secret: str, token: str | None, region: str, when: datetime
) -> None:
    url, headers, body = request
    credentials = Credentials(key, secret, token)
    ours = HTTPRequest("POST", url, dict(headers), body)
    SigV4Signer().sign_http(ours, credentials, payload_sha256(body), "sagemaker", region, when.replace(tzinfo=UTC))
    theirs = botocore_sign(url, headers, body, credentials, region, when)
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert ours.headers["X-Amz-Date"] == theirs.headers["X-Amz-Date"]
    assert ours.headers.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")


def test_percent_in_endpoint_name_is_encoded_twice_like_botocore() -> None:
    # The case the public suite cannot tell apart: a wire path that already holds '%'.
    url = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/a%20b%2Fc/invocations"
    credentials = Credentials("AKIDEXAMPLE", "secret")
    when = datetime(2024, 1, 2, 3, 4, 5)
    seen: list[str] = []
    ours = HTTPRequest("POST", url, {"Content-Type": "application/json"}, b"{}")
    SigV4Signer().sign_http(
        ours,
        credentials,
        payload_sha256(b"{}"),
        "sagemaker",
        "us-east-1",
        when.replace(tzinfo=UTC),
        trace=lambda creq, sts: seen.append(creq),
    )
    assert seen[0].split("\n")[1] == "/endpoints/a%2520b%252Fc/invocations"
    theirs = botocore_sign(url, {"Content-Type": "application/json"}, b"{}", credentials, "us-east-1", when)
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]


@pytest.mark.parametrize("existing", [None, "AWS4-HMAC-SHA256 Credential=old/x, SignedHeaders=host, Signature=00"])
def test_resigning_replaces_the_previous_signature_like_botocore(existing: str | None) -> None:
    url = "https://runtime.sagemaker.us-west-2.amazonaws.com/endpoints/ep/invocations"
    headers = {"Content-Type": "text/csv", "X-Amz-Date": "20000101T000000Z"}
    if existing:
        headers["Authorization"] = existing
    credentials = Credentials("AKIDEXAMPLE", "secret", "token")
    when = datetime(2024, 6, 1, 12, 0, 0)
    ours = HTTPRequest("POST", url, dict(headers), b"1,2")
    signer = SigV4Signer()
    for _ in range(2):  # a retry signs the same request again
        signer.sign_http(ours, credentials, payload_sha256(b"1,2"), "sagemaker", "us-west-2", when.replace(tzinfo=UTC))
    theirs = botocore_sign(url, headers, b"1,2", credentials, "us-west-2", when)
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert "Credential=AKIDEXAMPLE/20240601/us-west-2/sagemaker/aws4_request" in ours.headers["Authorization"]
