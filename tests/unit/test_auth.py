"""Credentials, the SigV4 signer's pieces and the signing middleware (no sockets).

Middleware run with a fake ``next`` or inside a real Stack with a terminal handler that
records the request; the default chain reads env vars and temp files, with IMDS disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.credentials import RefreshableCredentials

from smruntime import keys
from smruntime.auth import (
    ANONYMOUS,
    EMPTY_SHA256,
    BotocoreCredentialsProvider,
    ComputePayloadHash,
    Credentials,
    DefaultCredentialsProvider,
    Signing,
    SigningKey,
    SigningKeyCache,
    SigV4Signer,
    StaticCredentialsProvider,
    canonical_uri,
    compute_signature,
    credentials_provider,
    format_amz_date,
    parse_authorization,
    payload_sha256,
    signing_key,
)
from smruntime.auth import credentials as auth_credentials
from smruntime.errors import CredentialsError, InvalidParamsError, SigningError
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.logs import LogMode
from smruntime.middleware import (
    BuildInput,
    BuildOutput,
    Context,
    FinalizeInput,
    FinalizeOutput,
    Stack,
    finalize_middleware,
)
from smruntime.options import Options

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLETOKENvalue+/=="
URL = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations"
NOW = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
BODY = b'{"inputs":"hi"}'  # 15 bytes


def ctx_for(**options: Any) -> Context:
    options.setdefault("region", "us-east-1")
    return Context("InvokeEndpoint", "SageMaker Runtime", Options(**options))


def new_request(body: Any = BODY, **headers: str) -> HTTPRequest:
    return HTTPRequest("POST", URL, {"Content-Type": "application/json", **headers}, body)


class Recorder:
    """A fake ``next``: records each request it receives."""

    def __init__(self) -> None:
        self.requests: list[HTTPRequest] = []

    def __call__(self, ctx: Context, in_: Any) -> Any:
        self.requests.append(in_.request)
        return FinalizeOutput(result="done") if isinstance(in_, FinalizeInput) else BuildOutput(result="done")

    @property
    def request(self) -> HTTPRequest:
        assert len(self.requests) == 1
        return self.requests[0]


def sign_once(ctx: Context, request: HTTPRequest | None = None, signing: Signing | None = None) -> HTTPRequest:
    recorder = Recorder()
    if not ctx.has(keys.PAYLOAD_HASH):
        ctx.set(keys.PAYLOAD_HASH, payload_sha256(BODY))
    out = (signing or Signing(clock=lambda: NOW)).handle(ctx, FinalizeInput(request or new_request()), recorder)
    assert out.result == "done"
    return recorder.request


def verify(request: HTTPRequest, secret: str = SECRET, payload: bytes = BODY) -> bool:
    """Check a signed request the way the local endpoint's verifier does."""
    parsed = parse_authorization(request.headers["Authorization"])
    host = "runtime.sagemaker.us-east-1.amazonaws.com"
    path = URL.split(host, 1)[1]
    expected = compute_signature(
        secret_key=secret,
        method=request.method,
        raw_path=path,
        raw_query="",
        headers=[*request.headers.lower_items(), ("host", host)],
        signed_headers=parsed.signed_headers,
        payload_hash=payload_sha256(payload),
        amz_date=request.headers["X-Amz-Date"],
        region=parsed.region,
        service=parsed.service,
    )
    return expected == parsed.signature


# -- credentials -------------------------------------------------------------------


def test_credentials_repr_and_str_show_the_key_id_only() -> None:
    credentials = Credentials(KEY_ID, SECRET, TOKEN, expiry=NOW, source="env")
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert KEY_ID in text
        assert SECRET not in text
        assert TOKEN not in text
    assert "source='env'" in repr(credentials)


def test_credentials_are_frozen_values() -> None:
    credentials = Credentials(KEY_ID, SECRET)
    with pytest.raises(AttributeError):
        credentials.secret_access_key = "other"  # type: ignore[misc]
    assert credentials == Credentials(KEY_ID, SECRET)
    assert credentials.session_token is None and credentials.expiry is None


def test_providers_repr_never_show_secrets() -> None:
    static = StaticCredentialsProvider(Credentials(KEY_ID, SECRET, TOKEN))
    wrapped = BotocoreCredentialsProvider(BotocoreCredentials(KEY_ID, SECRET, TOKEN, method="explicit"))
    for provider in (static, wrapped, DefaultCredentialsProvider("dev")):
        assert SECRET not in repr(provider) and TOKEN not in repr(provider)
    assert "dev" in repr(DefaultCredentialsProvider("dev"))
    assert repr(ANONYMOUS) == "ANONYMOUS"


def test_credentials_provider_normalizes_every_accepted_form() -> None:
    default = credentials_provider(None, "dev")
    assert isinstance(default, DefaultCredentialsProvider) and default.profile == "dev"
    assert credentials_provider(ANONYMOUS, None) is None

    pair = credentials_provider((KEY_ID, SECRET), None)
    assert pair is not None and pair.retrieve() == Credentials(KEY_ID, SECRET, source="static")
    triple = credentials_provider((KEY_ID, SECRET, TOKEN), None)
    assert triple is not None and triple.retrieve().session_token == TOKEN

    credentials = Credentials(KEY_ID, SECRET, TOKEN)
    static = credentials_provider(credentials, None)
    assert isinstance(static, StaticCredentialsProvider) and static.retrieve() is credentials

    custom = StaticCredentialsProvider(credentials)
    assert credentials_provider(custom, None) is custom

    boto = credentials_provider(BotocoreCredentials(KEY_ID, SECRET, TOKEN, method="explicit"), None)
    assert isinstance(boto, BotocoreCredentialsProvider)
    got = boto.retrieve()
    assert (got.access_key_id, got.secret_access_key, got.session_token, got.source) == (
        KEY_ID,
        SECRET,
        TOKEN,
        "explicit",
    )


@pytest.mark.parametrize(
    "value",
    [
        (KEY_ID,),
        (KEY_ID, SECRET, TOKEN, "extra"),
        ("", SECRET),
        (KEY_ID, ""),
        (KEY_ID, 12345),
        (KEY_ID, SECRET, 7),
        42,
        "AKIDEXAMPLE:" + SECRET,
        {"access_key_id": KEY_ID, "secret_access_key": SECRET},
    ],
    ids=["short", "long", "empty-key", "empty-secret", "int-secret", "int-token", "int", "str", "dict"],
)
def test_bad_credentials_raise_invalid_params_naming_credentials(value: Any) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        credentials_provider(value, None)
    assert caught.value.fields == ("credentials",)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A sealed AWS environment: empty config files, no IMDS, no ambient credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    config, shared = tmp_path / "config", tmp_path / "credentials"
    config.write_text("")
    shared.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_default_chain_reads_environment_variables(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    credentials = DefaultCredentialsProvider().retrieve()
    assert (credentials.access_key_id, credentials.secret_access_key, credentials.session_token) == (
        KEY_ID,
        SECRET,
        TOKEN,
    )
    assert credentials.source == "env"


def test_default_chain_reads_a_profile_from_the_shared_credentials_file(aws_env: Path) -> None:
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n"
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = dev-secret\naws_session_token = dev-token\n"
    )
    dev = DefaultCredentialsProvider("dev").retrieve()
    assert (dev.access_key_id, dev.secret_access_key, dev.session_token) == ("AKIDDEV", "dev-secret", "dev-token")
    assert dev.source == "shared-credentials-file"
    assert DefaultCredentialsProvider().retrieve().access_key_id == "AKIDDEFAULT"


def test_default_chain_with_nothing_found_raises_a_clear_credentials_error(aws_env: Path) -> None:
    with pytest.raises(CredentialsError, match="no AWS credentials found"):
        DefaultCredentialsProvider().retrieve()


def test_unknown_profile_becomes_a_credentials_error(aws_env: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        DefaultCredentialsProvider("missing").retrieve()
    assert "missing" in str(caught.value) and "ProfileNotFound" in str(caught.value)


def test_a_failed_lookup_is_retried_on_the_next_call(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = DefaultCredentialsProvider()
    with pytest.raises(CredentialsError):
        provider.retrieve()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert provider.retrieve().access_key_id == KEY_ID


def _botocore_chain(profile: str | None) -> tuple[str, str, str | None, str]:
    import botocore.session

    found = botocore.session.Session(profile=profile).get_credentials()
    frozen = found.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token or None, found.method


def _ours(profile: str | None) -> tuple[str, str, str | None, str]:
    got = DefaultCredentialsProvider(profile).retrieve()
    return got.access_key_id, got.secret_access_key, got.session_token, got.source


_STATIC_PROFILES = (
    "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n"
    "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = dev-secret\n"
)


@pytest.mark.parametrize(
    ("variables", "profile", "fast"),
    [
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}, None, True),
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}, None, True),
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SECURITY_TOKEN": "legacy",
          "AWS_SESSION_TOKEN": TOKEN}, None, True),
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SECURITY_TOKEN": "",
          "AWS_SESSION_TOKEN": TOKEN}, None, True),
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": ""}, None, True),
        # A named profile outranks the environment: botocore answers.
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}, "dev", False),
        ({}, "dev", False),
        # Only the shared credentials file: botocore answers.
        ({}, None, False),
        ({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
          "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"}, None, False),
    ],
)
def test_the_environment_fast_path_gives_what_botocores_chain_gives(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], profile: str | None, fast: bool
) -> None:
    (aws_env / "credentials").write_text(_STATIC_PROFILES)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert (auth_credentials._from_environment(profile) is not None) == fast
    assert _ours(profile) == _botocore_chain(profile)


def test_a_half_set_key_pair_is_left_to_botocore_which_reports_it(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    assert auth_credentials._from_environment(None) is None
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY"):
        DefaultCredentialsProvider().retrieve()


def test_a_profile_with_credential_process_or_role_arn_is_left_to_botocore(aws_env: Path) -> None:
    script = aws_env / "creds.py"
    script.write_text(
        "import json\nprint(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDPROC', 'SecretAccessKey': 'proc-secret',"
        " 'SessionToken': 'proc-token'}))\n"
    )
    (aws_env / "config").write_text(
        f"[profile proc]\ncredential_process = {sys.executable} {script}\n\n"
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = dev\n"
    )
    (aws_env / "credentials").write_text(_STATIC_PROFILES)
    assert auth_credentials._from_environment("proc") is None and auth_credentials._from_environment("role") is None
    assert _ours("proc") == _botocore_chain("proc") == ("AKIDPROC", "proc-secret", "proc-token", "custom-process")


def test_importing_auth_does_not_import_botocore_session() -> None:
    code = (
        "import sys, smruntime.auth as a; a.DefaultCredentialsProvider(); a.credentials_provider(None, None); "
        "print('botocore.session' in sys.modules, 'botocore' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split() == ["False", "False"]


def _refreshing(counter: list[int]) -> RefreshableCredentials:
    """Real botocore refreshable credentials that expire within the mandatory window."""

    def metadata() -> dict[str, str]:
        counter.append(1)
        n = len(counter)
        expiry = datetime.now(UTC) + timedelta(minutes=5)  # inside botocore's 10-minute window
        return {
            "access_key": f"AKIDGEN{n}",
            "secret_key": f"secret-{n}",
            "token": f"token-{n}",
            "expiry_time": expiry.isoformat(),
        }

    return RefreshableCredentials.create_from_metadata(metadata(), refresh_using=metadata, method="assume-role")


def test_refreshable_credentials_are_read_again_on_every_retrieve() -> None:
    counter: list[int] = []
    provider = BotocoreCredentialsProvider(_refreshing(counter))
    first, second = provider.retrieve(), provider.retrieve()
    assert first.access_key_id != second.access_key_id
    assert second.secret_access_key == f"secret-{len(counter)}"
    assert first.expiry is not None and first.source == "assume-role"


def test_default_chain_is_resolved_once_and_frozen_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    counter: list[int] = []
    resolved: list[str | None] = []

    def resolve(profile: str | None) -> Any:
        resolved.append(profile)
        return _refreshing(counter)

    monkeypatch.setattr(auth_credentials, "_resolve_chain", resolve)
    provider = DefaultCredentialsProvider("dev")
    results: list[Credentials] = []
    threads = [threading.Thread(target=lambda: results.append(provider.retrieve())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resolved == ["dev"]
    assert len(results) == 8
    assert provider.retrieve().access_key_id == f"AKIDGEN{len(counter)}"


def test_botocore_failures_while_refreshing_become_credentials_errors() -> None:
    class Broken:
        method = "sso"

        def get_frozen_credentials(self) -> Any:
            from botocore.exceptions import TokenRetrievalError

            raise TokenRetrievalError(provider="sso", error_msg="the SSO session has expired")

    with pytest.raises(CredentialsError, match="SSO session has expired"):
        BotocoreCredentialsProvider(Broken()).retrieve()


# -- SigV4 pieces ------------------------------------------------------------------------


def test_format_amz_date_converts_to_utc() -> None:
    assert format_amz_date(NOW) == "20240304T050607Z"
    assert format_amz_date(datetime(2024, 3, 4, 5, 6, 7)) == "20240304T050607Z"
    plus_two = timezone(timedelta(hours=2))
    assert format_amz_date(datetime(2024, 3, 4, 1, 0, 0, 999999, tzinfo=plus_two)) == "20240303T230000Z"


def test_canonical_uri_normalizes_then_encodes_the_wire_path_again() -> None:
    assert canonical_uri("/endpoints/a%20b/invocations") == "/endpoints/a%2520b/invocations"
    assert canonical_uri("/sm//endpoints/./x/../ep/invocations") == "/sm/endpoints/ep/invocations"
    assert canonical_uri("") == "/"
    assert canonical_uri("/a/./b/", normalize=False) == "/a/./b/"


def test_signing_key_cache_hits_and_is_bounded() -> None:
    cache = SigningKeyCache(maxsize=2)
    first = cache.get(SECRET, "20240304", "us-east-1", "sagemaker")
    assert first.key == signing_key(SECRET, "20240304", "us-east-1", "sagemaker")
    assert cache.get(SECRET, "20240304", "us-east-1", "sagemaker") is first
    assert (cache.hits, cache.misses) == (1, 1)
    cache.get(SECRET, "20240305", "us-east-1", "sagemaker")
    cache.get(SECRET, "20240306", "us-east-1", "sagemaker")
    assert len(cache) == 2 and cache.misses == 3
    assert SECRET not in repr(cache) and first.key.hex() not in repr(first)


def test_signer_reuses_the_signing_key_across_requests() -> None:
    signer = SigV4Signer()
    credentials = Credentials(KEY_ID, SECRET)
    for _ in range(3):
        signer.sign_http(new_request(), credentials, payload_sha256(BODY), "sagemaker", "us-east-1", NOW)
    assert (signer.key_cache.misses, signer.key_cache.hits) == (1, 2)
    signer.sign_http(new_request(), credentials, payload_sha256(BODY), "sagemaker", "us-west-2", NOW)
    assert signer.key_cache.misses == 2


def test_signer_is_safe_to_share_between_threads() -> None:
    signer = SigV4Signer()
    credentials = Credentials(KEY_ID, SECRET, TOKEN)
    out: list[str] = []

    def work() -> None:
        for _ in range(50):
            request = new_request()
            signer.sign_http(request, credentials, payload_sha256(BODY), "sagemaker", "us-east-1", NOW)
            out.append(request.headers["Authorization"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(out) == 200 and len(set(out)) == 1


def test_parse_authorization_round_trip_and_repr_hides_the_signature() -> None:
    request = sign_once(ctx_for(credentials=StaticCredentialsProvider(Credentials(KEY_ID, SECRET))))
    parsed = parse_authorization(request.headers["Authorization"])
    assert (parsed.algorithm, parsed.access_key_id, parsed.date, parsed.region, parsed.service, parsed.terminator) == (
        "AWS4-HMAC-SHA256",
        KEY_ID,
        "20240304",
        "us-east-1",
        "sagemaker",
        "aws4_request",
    )
    assert parsed.signed_headers == ("content-type", "host", "x-amz-date")
    assert parsed.signature not in repr(parsed)


GOOD_SIG = "a" * 64


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("", "unsupported algorithm"),
        (
            f"AWS4-HMAC-SHA1 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host, Signature={GOOD_SIG}",
            "algorithm",
        ),
        (f"AWS4-HMAC-SHA256 SignedHeaders=host, Signature={GOOD_SIG}", "missing Credential"),
        ("AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host", "missing Signature"),
        (f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, Signature={GOOD_SIG}", "missing SignedHeaders"),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/aws4_request, SignedHeaders=host, Signature={GOOD_SIG}",
            "Credential must be",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/2024-01-01/r/s/aws4_request, SignedHeaders=host, Signature={GOOD_SIG}",
            "date",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws5_request, SignedHeaders=host, Signature={GOOD_SIG}",
            "aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=Host, Signature={GOOD_SIG}",
            "SignedHeaders",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host;;x, Signature={GOOD_SIG}",
            "SignedHeaders",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host, Signature=XYZ",
            "Signature must be",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host, Signature={GOOD_SIG}, Signature={GOOD_SIG}",
            "twice",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=A/20240101/r/s/aws4_request, SignedHeaders=host, Junk, Signature={GOOD_SIG}",
            "malformed",
        ),
    ],
)
def test_parse_authorization_names_what_is_wrong(value: str, complaint: str) -> None:
    with pytest.raises(SigningError, match=complaint):
        parse_authorization(value)


def test_verifier_detects_a_tampered_header_or_body() -> None:
    request = sign_once(ctx_for(credentials=StaticCredentialsProvider(Credentials(KEY_ID, SECRET))))
    assert verify(request)
    assert not verify(request, secret="wrong")
    assert not verify(request, payload=b'{"inputs":"ho"}')
    request.headers["Content-Type"] = "text/plain"
    assert not verify(request)


# -- payload hash --------------------------------------------------------------------------


def run_hash(body: Any, ctx: Context | None = None, headers: dict[str, str] | None = None) -> str:
    ctx = ctx or ctx_for()
    ComputePayloadHash().handle(ctx, BuildInput(new_request(body, **(headers or {}))), Recorder())
    value = ctx.get(keys.PAYLOAD_HASH)
    assert value is not None
    return value


def test_payload_hash_of_bytes_and_empty_bodies() -> None:
    assert run_hash(BODY) == hashlib.sha256(BODY).hexdigest()
    assert run_hash(bytearray(BODY)) == hashlib.sha256(BODY).hexdigest()
    assert run_hash(b"") == EMPTY_SHA256
    assert run_hash(None) == EMPTY_SHA256


def test_payload_hash_of_a_seekable_file_restores_its_position(tmp_path: Path) -> None:
    buffer = io.BytesIO(b"xxx" + BODY)
    buffer.seek(3)
    assert run_hash(buffer) == payload_sha256(BODY)
    assert buffer.tell() == 3
    path = tmp_path / "payload.bin"
    path.write_bytes(BODY * 100_000)  # larger than one hashing chunk
    with path.open("rb") as handle:
        assert run_hash(handle) == payload_sha256(BODY * 100_000)
        assert handle.tell() == 0


def test_payload_hash_of_an_unseekable_stream_is_a_signing_error() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with (
        os.fdopen(read_end, "rb") as pipe,
        pytest.raises(SigningError, match="bytes or a seekable binary file") as caught,
    ):
        run_hash(pipe)
    assert caught.value.operation == "InvokeEndpoint"


def test_payload_hash_of_a_text_file_is_a_signing_error() -> None:
    with pytest.raises(SigningError, match="binary mode"):
        payload_sha256(io.StringIO("text"))  # type: ignore[arg-type]


def test_payload_hash_keeps_an_override() -> None:
    ctx = ctx_for()
    ctx.set(keys.PAYLOAD_HASH, "UNSIGNED-PAYLOAD")
    assert run_hash(BODY, ctx) == "UNSIGNED-PAYLOAD"
    assert run_hash(BODY, headers={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}) == "UNSIGNED-PAYLOAD"


# -- the Signing middleware ---------------------------------------------------------------


def static(key: str = KEY_ID, secret: str = SECRET, token: str | None = None) -> StaticCredentialsProvider:
    return StaticCredentialsProvider(Credentials(key, secret, token))


def test_signing_signs_with_the_options_credentials() -> None:
    request = sign_once(ctx_for(credentials=static(token=TOKEN)))
    authorization = request.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20240304/us-east-1/sagemaker/aws4_request, ")
    assert request.headers["X-Amz-Date"] == "20240304T050607Z"
    assert request.headers["X-Amz-Security-Token"] == TOKEN
    assert "x-amz-security-token" in parse_authorization(authorization).signed_headers
    assert verify(request)


def test_signing_is_skipped_for_anonymous_credentials() -> None:
    request = sign_once(ctx_for(credentials=ANONYMOUS))
    assert "Authorization" not in request.headers and "X-Amz-Date" not in request.headers


def test_unset_credentials_mean_the_default_chain_never_unsigned(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    request = sign_once(ctx_for(credentials=None))
    assert "Credential=AKIDFROMENV/" in request.headers["Authorization"]


def test_signing_skips_when_a_provider_answers_anonymous() -> None:
    class Anonymous:
        def retrieve(self) -> Any:
            return ANONYMOUS

    assert "Authorization" not in sign_once(ctx_for(credentials=Anonymous())).headers


@pytest.mark.parametrize("raw", [(KEY_ID, SECRET), Credentials(KEY_ID, SECRET)], ids=["tuple", "credentials"])
def test_signing_normalizes_raw_credentials(raw: Any) -> None:
    assert verify(sign_once(ctx_for(credentials=raw)))


def test_signing_region_from_the_endpoint_wins_over_options_region() -> None:
    ctx = ctx_for(region="us-west-2", credentials=static())
    ctx.set(keys.SIGNING_REGION, "eu-west-1")
    ctx.set(keys.SIGNING_NAME, "sagemaker")
    assert parse_authorization(sign_once(ctx).headers["Authorization"]).region == "eu-west-1"
    assert (
        parse_authorization(
            sign_once(ctx_for(region="us-west-2", credentials=static())).headers["Authorization"]
        ).region
        == "us-west-2"
    )


def test_signing_without_any_region_is_a_signing_error() -> None:
    with pytest.raises(SigningError, match="no signing region") as caught:
        sign_once(ctx_for(region=None, credentials=static()))
    assert caught.value.operation == "InvokeEndpoint"


def test_signing_name_comes_from_the_context() -> None:
    ctx = ctx_for(credentials=static())
    ctx.set(keys.SIGNING_NAME, "execute-api")
    assert parse_authorization(sign_once(ctx).headers["Authorization"]).service == "execute-api"


@pytest.mark.parametrize(
    ("offset", "expected"), [(3600.0, "20240304T060607Z"), (-7.0, "20240304T050600Z"), (0.0, "20240304T050607Z")]
)
def test_signing_applies_the_clock_offset(offset: float, expected: str) -> None:
    ctx = ctx_for(credentials=static())
    ctx.set(keys.CLOCK_OFFSET, offset)
    assert sign_once(ctx).headers["X-Amz-Date"] == expected


def test_signing_uses_the_real_clock_by_default() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    request = sign_once(ctx_for(credentials=static()), signing=Signing())
    signed_at = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed_at <= datetime.now(UTC)


def test_each_attempt_gets_fresh_credentials_and_a_new_signature() -> None:
    counter: list[int] = []
    ctx = ctx_for(credentials=BotocoreCredentialsProvider(_refreshing(counter)))
    ctx.set(keys.PAYLOAD_HASH, payload_sha256(BODY))
    signing = Signing(clock=lambda: NOW)
    first = sign_once(ctx, new_request(), signing)
    second = sign_once(ctx, new_request(), signing)
    assert (
        parse_authorization(first.headers["Authorization"]).access_key_id
        != parse_authorization(second.headers["Authorization"]).access_key_id
    )


def test_signing_hashes_the_body_when_no_payload_hash_was_computed() -> None:
    ctx = ctx_for(credentials=static())
    recorder = Recorder()
    Signing(clock=lambda: NOW).handle(ctx, FinalizeInput(new_request()), recorder)
    assert verify(recorder.request)


def test_signing_uses_the_signer_from_options() -> None:
    calls: list[tuple[str, str, str]] = []

    class Custom:
        def sign_http(
            self,
            request: HTTPRequest,
            credentials: Credentials,
            payload_hash: str,
            service: str,
            region: str,
            signing_time: datetime,
        ) -> None:
            calls.append((service, region, format_amz_date(signing_time)))
            request.headers["Authorization"] = "Custom"

    request = sign_once(ctx_for(credentials=static(), signer=Custom()))
    assert request.headers["Authorization"] == "Custom"
    assert calls == [("sagemaker", "us-east-1", "20240304T050607Z")]


def test_a_signer_failure_is_wrapped_without_secrets() -> None:
    class Leaky:
        def sign_http(self, request: HTTPRequest, credentials: Credentials, *args: Any) -> None:
            raise ValueError(f"cannot use {credentials.secret_access_key} with {credentials.session_token}")

    with pytest.raises(SigningError) as caught:
        sign_once(ctx_for(credentials=static(token=TOKEN), signer=Leaky()))
    text = f"{caught.value} {caught.value!r}"
    assert "ValueError" in text and SECRET not in text and TOKEN not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_provider_failures_become_credentials_errors() -> None:
    class Failing:
        def retrieve(self) -> Credentials:
            raise RuntimeError("vault unreachable")

    class Wrong:
        def retrieve(self) -> Any:
            return (KEY_ID, SECRET)

    with pytest.raises(CredentialsError, match="vault unreachable") as caught:
        sign_once(ctx_for(credentials=Failing()))
    assert caught.value.operation == "InvokeEndpoint"
    with pytest.raises(CredentialsError, match="returned tuple, not Credentials") as wrong:
        sign_once(ctx_for(credentials=Wrong()))
    assert SECRET not in str(wrong.value)


def test_a_header_added_before_signing_is_signed_and_one_added_after_is_not() -> None:
    sent: list[HTTPRequest] = []

    def terminal(ctx: Context, request: HTTPRequest) -> HTTPResponse:
        sent.append(request)
        return HTTPResponse(200)

    def before(ctx: Context, in_: FinalizeInput, next: Any) -> Any:
        in_.request.headers["X-Amzn-SageMaker-Custom-Attributes"] = "trace_id=abc"
        return next(ctx, in_)

    def after(ctx: Context, in_: FinalizeInput, next: Any) -> Any:
        in_.request.headers["X-Added-Late"] = "1"
        return next(ctx, in_)

    stack = Stack("InvokeEndpoint", lambda: HTTPRequest("POST", URL, {"Content-Type": "application/json"}, BODY))
    stack.build.add(ComputePayloadHash())
    stack.finalize.add(finalize_middleware("AddTrace", before))
    stack.finalize.add(Signing(clock=lambda: NOW))
    stack.finalize.add(finalize_middleware("AddLate", after))
    stack.handler(terminal)(ctx_for(credentials=static()), None)

    signed = parse_authorization(sent[0].headers["Authorization"]).signed_headers
    assert "x-amzn-sagemaker-custom-attributes" in signed
    assert "x-added-late" not in signed
    assert verify(sent[0])  # the late header does not break the signature


def test_signing_log_shows_the_canonical_request_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    ctx = ctx_for(credentials=static(token=TOKEN), log_mode=LogMode.SIGNING)
    request = new_request(**{"X-Amzn-SageMaker-Custom-Attributes": "customer=secret-stuff"})
    with caplog.at_level(logging.DEBUG, logger="smruntime"):
        signed = sign_once(ctx, request)
    text = caplog.text
    signature = parse_authorization(signed.headers["Authorization"]).signature
    assert "CANONICAL STRING" in text and "STRING TO SIGN" in text
    assert "x-amz-security-token:<redacted>" in text
    assert "/endpoints/my-endpoint/invocations" in text and "20240304/us-east-1/sagemaker/aws4_request" in text
    for secret in (SECRET, TOKEN, signature, "secret-stuff"):
        assert secret not in text


def test_signing_log_goes_to_the_options_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.auth.custom")
    with caplog.at_level(logging.DEBUG, logger="tests.auth.custom"):
        sign_once(ctx_for(credentials=static(), log_mode=LogMode.SIGNING | LogMode.REQUEST_BODY, logger=logger))
        sign_once(ctx_for(credentials=static(), log_mode=LogMode.REQUEST, logger=logger))  # signing not asked for
    assert [record.name for record in caplog.records] == ["tests.auth.custom"]


def test_signing_log_with_a_custom_signer_redacts_its_authorization(caplog: pytest.LogCaptureFixture) -> None:
    class Custom:
        def sign_http(self, request: HTTPRequest, *args: Any) -> None:
            request.headers["Authorization"] = (
                "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=" + "b" * 64
            )

    with caplog.at_level(logging.DEBUG, logger="smruntime"):
        sign_once(ctx_for(credentials=static(), signer=Custom(), log_mode=LogMode.SIGNING))
    assert "Custom" in caplog.text and "b" * 64 not in caplog.text


@pytest.mark.parametrize("size", [0, 1, 32, 63, 64, 65, 200])
def test_signing_key_hmac_matches_the_standard_library(size: int) -> None:
    key = bytes(range(256))[:size]
    message = "AWS4-HMAC-SHA256\n20240304T050607Z\nscope\n" + "é" * size
    expected = hmac.new(key, message.encode("utf-8"), hashlib.sha256)
    assert SigningKey(key).sign(message) == expected.hexdigest()
    assert SigningKey(key).digest(message) == expected.digest()


def test_a_request_without_a_host_cannot_be_signed() -> None:
    request = HTTPRequest("POST", "/endpoints/x/invocations", {}, b"")
    with pytest.raises(SigningError, match="no host"):
        SigV4Signer().sign_http(request, Credentials(KEY_ID, SECRET), EMPTY_SHA256, "sagemaker", "us-east-1", NOW)
    request.headers["Host"] = "localhost:8080"  # an explicit Host header is enough
    SigV4Signer().sign_http(request, Credentials(KEY_ID, SECRET), EMPTY_SHA256, "sagemaker", "us-east-1", NOW)
    assert "host" in parse_authorization(request.headers["Authorization"]).signed_headers


def test_payload_hash_of_a_closed_file_is_a_signing_error() -> None:
    closed = io.BytesIO(BODY)
    closed.close()
    with pytest.raises(SigningError):
        payload_sha256(closed)
