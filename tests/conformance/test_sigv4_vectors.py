"""The AWS SigV4 test suite (header mode), both public copies, against smruntime.auth.

Each case runs twice: through the sans-IO functions the local endpoint's verifier uses
(``canonical_request``, ``string_to_sign``, ``compute_signature``), and through
``SigV4Signer.sign_http`` on an ``HTTPRequest``, as the client signs. The suite's README
(``vectors/sigv4/README.md``) explains the cases handled specially here:

* ``normalize: false`` (7 aws-c-auth cases) is the S3 rule; SageMaker always normalizes,
  so those run only through the sans-IO path with ``normalize_path=False``.
* ``sign_body: true`` (aws-c-auth's two form-urlencoded cases): aws-c-auth adds a signed
  ``x-amz-content-sha256`` header; the harness adds it before signing, as a middleware would.
* ``omit_session_token`` / botocore's ``post-sts-header-after``: the token is added after
  signing, so the request is signed without one.
* botocore's ``get-vanilla-with-session-token.sreq`` carries a wrong signature; only the
  ``.creq``, ``.sts`` and ``.authz`` files are asserted on.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from smruntime.auth import (
    UNSIGNED_HEADERS,
    Credentials,
    SigV4Signer,
    canonical_request,
    compute_signature,
    credential_scope,
    format_authorization,
    parse_authorization,
    string_to_sign,
)
from smruntime.http import HTTPRequest

SIGV4 = Path(__file__).resolve().parent / "vectors" / "sigv4"
AWS_C_AUTH = SIGV4 / "aws-c-auth" / "v4"
BOTOCORE = SIGV4 / "botocore" / "aws4_testsuite"

# The fixed inputs of botocore's copy (it has no context files); see the suite's README.
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SERVICE = "service"
SIGNING_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
BOTOCORE_TOKENS = {
    "get-vanilla-with-session-token": "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
}
EXPECTED_CASES = {"aws-c-auth": 38, "botocore": 34}


@attrs.frozen
class Request:
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]  # in order, repeated names kept
    body: bytes


@attrs.frozen
class Case:
    copy: str
    name: str
    request: Request
    credentials: Credentials
    region: str
    service: str
    signing_time: datetime
    normalize: bool
    sign_body: bool
    token_after_signing: str | None
    expected_creq: str
    expected_sts: str
    expected_authorization: str
    expected_signed_headers: tuple[tuple[str, str], ...]  # from the signed request, when given

    @property
    def id(self) -> str:
        return f"{self.copy}/{self.name}"


def parse_request(text: str) -> Request:
    """``METHOD target HTTP/1.1``, ``Name:value`` lines (obs-fold continuations), body."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    request_line = lines[0]
    method, _, rest = request_line.partition(" ")
    target = rest.rsplit(" HTTP/", 1)[0]  # the target may contain a space
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    return Request(method, path, query, tuple(headers), body.encode("utf-8"))


def parse_signed_headers(text: str) -> tuple[tuple[str, str], ...]:
    request = parse_request(text)
    return tuple((name.lower(), value.strip()) for name, value in request.headers)


def load_aws_c_auth() -> list[Case]:
    cases = []
    for folder in sorted(p for p in AWS_C_AUTH.iterdir() if p.is_dir()):
        context = json.loads((folder / "context.json").read_text("utf-8"))
        creds = context["credentials"]
        token = creds.get("token")
        omit = bool(context.get("omit_session_token", False))
        signed_request = (folder / "header-signed-request.txt").read_text("utf-8")
        cases.append(
            Case(
                copy="aws-c-auth",
                name=folder.name,
                request=parse_request((folder / "request.txt").read_text("utf-8")),
                credentials=Credentials(creds["access_key_id"], creds["secret_access_key"], None if omit else token),
                region=context["region"],
                service=context["service"],
                signing_time=datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00")),
                normalize=bool(context["normalize"]),
                sign_body=bool(context["sign_body"]),
                token_after_signing=token if omit else None,
                expected_creq=(folder / "header-canonical-request.txt").read_text("utf-8"),
                expected_sts=(folder / "header-string-to-sign.txt").read_text("utf-8"),
                expected_authorization=_authorization_in(signed_request),
                expected_signed_headers=parse_signed_headers(signed_request),
            )
        )
    return cases


def load_botocore() -> list[Case]:
    cases = []
    for req in sorted(BOTOCORE.rglob("*.req")):
        folder, name = req.parent, req.stem
        cases.append(
            Case(
                copy="botocore",
                name=str(folder.relative_to(BOTOCORE)),
                request=parse_request(req.read_text("utf-8")),
                credentials=Credentials(ACCESS_KEY, SECRET_KEY, BOTOCORE_TOKENS.get(name)),
                region=REGION,
                service=SERVICE,
                signing_time=SIGNING_TIME,
                normalize=True,
                sign_body=False,
                token_after_signing=None,
                expected_creq=(folder / f"{name}.creq").read_text("utf-8"),
                expected_sts=(folder / f"{name}.sts").read_text("utf-8"),
                expected_authorization=(folder / f"{name}.authz").read_text("utf-8").strip(),
                expected_signed_headers=(),  # .sreq is not trusted (see the module docstring)
            )
        )
    return cases


def _authorization_in(signed_request: str) -> str:
    for line in signed_request.split("\n"):
        if line.lower().startswith("authorization:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Authorization line in the signed request")


def load_cases() -> list[Case]:
    return load_aws_c_auth() + load_botocore()


CASES = load_cases()
NORMALIZED = [case for case in CASES if case.normalize]


def with_added_headers(case: Case) -> list[tuple[str, str]]:
    """The request's headers plus those signing adds, in the order a signer adds them."""
    amz_date = case.signing_time.strftime("%Y%m%dT%H%M%SZ")
    headers = [(name, value) for name, value in case.request.headers if name.lower() != "x-amz-date"]
    headers.append(("X-Amz-Date", amz_date))
    if case.credentials.session_token:
        headers = [(n, v) for n, v in headers if n.lower() != "x-amz-security-token"]
        headers.append(("X-Amz-Security-Token", case.credentials.session_token))
    if case.sign_body:
        headers.append(("x-amz-content-sha256", payload_hash(case)))
    return headers


def payload_hash(case: Case) -> str:
    return hashlib.sha256(case.request.body).hexdigest()


def test_suite_is_present() -> None:
    counts = {copy: sum(1 for case in CASES if case.copy == copy) for copy in EXPECTED_CASES}
    assert counts == EXPECTED_CASES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_sans_io(case: Case) -> None:
    headers = with_added_headers(case)
    signed = sorted({name.lower() for name, _ in headers} - UNSIGNED_HEADERS)
    amz_date = case.signing_time.strftime("%Y%m%dT%H%M%SZ")
    common: dict[str, Any] = {
        "method": case.request.method,
        "raw_path": case.request.path,
        "raw_query": case.request.query,
        "headers": headers,
        "signed_headers": signed,
        "payload_hash": payload_hash(case),
        "normalize_path": case.normalize,
    }
    creq = canonical_request(**common)
    assert creq == case.expected_creq
    sts = string_to_sign(canonical_request=creq, amz_date=amz_date, region=case.region, service=case.service)
    assert sts == case.expected_sts
    signature = compute_signature(
        secret_key=case.credentials.secret_access_key,
        amz_date=amz_date,
        region=case.region,
        service=case.service,
        **common,
    )
    scope = credential_scope(amz_date[:8], case.region, case.service)
    authorization = format_authorization(case.credentials.access_key_id, scope, signed, signature)
    assert authorization == case.expected_authorization
    # The verifier's side: the header parses back to what was signed.
    parsed = parse_authorization(authorization)
    assert (parsed.access_key_id, parsed.scope, list(parsed.signed_headers), parsed.signature) == (
        case.credentials.access_key_id,
        scope,
        signed,
        signature,
    )


@pytest.mark.parametrize("case", NORMALIZED, ids=lambda case: case.id)
def test_signer(case: Case) -> None:
    request = HTTPRequest(
        case.request.method,
        "https://example.amazonaws.com" + case.request.path + (f"?{case.request.query}" if case.request.query else ""),
        _folded(case.request.headers),
        case.request.body or None,
    )
    if case.sign_body:
        request.headers["x-amz-content-sha256"] = payload_hash(case)
    seen: list[tuple[str, str]] = []
    SigV4Signer().sign_http(
        request,
        case.credentials,
        payload_hash(case),
        case.service,
        case.region,
        case.signing_time,
        trace=lambda creq, sts: seen.append((creq, sts)),
    )
    assert seen == [(case.expected_creq, case.expected_sts)]
    assert request.headers["Authorization"] == case.expected_authorization
    assert request.headers["X-Amz-Date"] == "20150830T123600Z"
    if case.token_after_signing:
        request.headers["X-Amz-Security-Token"] = case.token_after_signing
    if case.expected_signed_headers:
        expected = dict(case.expected_signed_headers)
        for name in ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"):
            assert request.headers.get(name) == expected.get(name), name


def _folded(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    # An HTTPRequest holds one value per name; repeated headers are equivalent to one
    # comma-joined header (RFC 9110 §5.3), which is also how SigV4 canonicalizes them.
    folded: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        folded.setdefault(name.lower(), (name, []))[1].append(" ".join(value.split()))
    return [(name, ",".join(values)) for name, values in folded.values()]
