"""Where option defaults come from: arguments, then environment, then the profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from smruntime import Client, Options
from smruntime.errors import InvalidParamsError
from smruntime.options import resolve_defaults
from smruntime.retry import StandardRetryer

CONFIG = """
[default]
region = eu-west-1
retry_mode = adaptive
max_attempts = 5

[profile other]
region = ap-south-1
endpoint_url = http://127.0.0.1:9999
use_fips_endpoint = true
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    return path


def env(config_file: Path, **values: str) -> dict[str, str]:
    return {"AWS_CONFIG_FILE": str(config_file), **values}


def test_arguments_win_over_environment_and_profile(config_file: Path) -> None:
    options = resolve_defaults(
        Options(region="us-east-2", retry_mode="none", max_attempts=2),
        env(config_file, AWS_REGION="us-west-1", AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="4"),
    )
    assert (options.region, options.retry_mode, options.max_attempts) == ("us-east-2", "none", 2)


def test_environment_wins_over_the_profile(config_file: Path) -> None:
    options = resolve_defaults(Options(), env(config_file, AWS_REGION="us-west-1", AWS_MAX_ATTEMPTS="4"))
    assert (options.region, options.retry_mode, options.max_attempts) == ("us-west-1", "adaptive", 4)


def test_aws_default_region_is_read_after_aws_region(config_file: Path) -> None:
    assert resolve_defaults(Options(), env(config_file, AWS_DEFAULT_REGION="ca-central-1")).region == "ca-central-1"
    both = env(config_file, AWS_REGION="us-west-1", AWS_DEFAULT_REGION="ca-central-1")
    assert resolve_defaults(Options(), both).region == "us-west-1"


def test_the_default_profile_fills_the_rest(config_file: Path) -> None:
    options = resolve_defaults(Options(), env(config_file))
    assert (options.region, options.retry_mode, options.max_attempts) == ("eu-west-1", "adaptive", 5)


@pytest.mark.parametrize("how", ["argument", "AWS_PROFILE"])
def test_a_named_profile(config_file: Path, how: str) -> None:
    if how == "argument":
        options = resolve_defaults(Options(profile="other"), env(config_file))
    else:
        options = resolve_defaults(Options(), env(config_file, AWS_PROFILE="other"))
    assert options.profile == "other"
    assert options.region == "ap-south-1"
    assert options.endpoint_url == "http://127.0.0.1:9999"
    assert options.use_fips_endpoint is True
    assert (options.retry_mode, options.max_attempts) == ("standard", 3)


def test_service_specific_endpoint_url_beats_the_global_one(config_file: Path) -> None:
    values = env(config_file, AWS_ENDPOINT_URL="http://global", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="http://sagemaker")
    assert resolve_defaults(Options(), values).endpoint_url == "http://sagemaker"
    assert resolve_defaults(Options(), env(config_file, AWS_ENDPOINT_URL="http://global")).endpoint_url == "http://global"


SERVICES = """
[default]
endpoint_url = http://profile-global
services = local

[services local]
sagemaker_runtime =
  endpoint_url = http://services-section
sagemaker_runtime_http2 =
  endpoint_url = http://services-section:8443
"""


def test_configured_endpoint_urls_in_botocores_order(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(SERVICES)
    base = {"AWS_CONFIG_FILE": str(config)}
    assert resolve_defaults(Options(), base).endpoint_url == "http://services-section"
    assert resolve_defaults(Options(), {**base, "AWS_ENDPOINT_URL": "http://global"}).endpoint_url == "http://global"
    config.write_text(SERVICES.replace("services = local\n", ""))
    assert resolve_defaults(Options(), base).endpoint_url == "http://profile-global"


@pytest.mark.parametrize("where", ["environment", "profile"])
def test_ignore_configured_endpoint_urls_leaves_the_endpoint_to_the_rules(tmp_path: Path, where: str) -> None:
    config = tmp_path / "config"
    text = SERVICES.replace("[default]\n", "[default]\nignore_configured_endpoint_urls = true\n")
    config.write_text(text if where == "profile" else SERVICES)
    environ = {"AWS_CONFIG_FILE": str(config), "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://service-variable",
               "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2": "http://service-variable:8443"}
    if where == "environment":
        environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    options = resolve_defaults(Options(), environ)
    assert (options.endpoint_url, options.http2_endpoint_url) == (None, None)
    # An argument is not a configured endpoint: it still counts.
    assert resolve_defaults(Options(endpoint_url="http://argument"), environ).endpoint_url == "http://argument"


def test_an_endpoint_resolver_is_not_overridden_by_the_environment(config_file: Path) -> None:
    from smruntime.endpoints import StaticEndpointResolver

    resolver = StaticEndpointResolver("http://mine")
    options = resolve_defaults(Options(endpoint_resolver=resolver), env(config_file, AWS_ENDPOINT_URL="http://global"))
    assert options.endpoint_url is None


def test_a_missing_config_file_is_fine(tmp_path: Path) -> None:
    options = resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(tmp_path / "absent")})
    assert (options.region, options.retry_mode, options.max_attempts) == (None, "standard", 3)


def test_a_user_retryer_keeps_its_own_max_attempts(tmp_path: Path) -> None:
    options = resolve_defaults(Options(retryer=StandardRetryer(max_attempts=5)), {"AWS_CONFIG_FILE": str(tmp_path / "x")})
    assert options.max_attempts == 5


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"retry_mode": "legacy"}, "retry_mode"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"max_pool_connections": 0}, "max_pool_connections"),
        ({"max_response_body_size": 0}, "max_response_body_size"),
        ({"verify": "/no/such/ca-bundle.pem"}, "verify"),
        ({"verify": 1}, "verify"),
        ({"read_timeout": float("nan")}, "read_timeout"),
        ({"connect_timeout": float("inf")}, "connect_timeout"),
        ({"read_timeout": 1e12}, "read_timeout"),  # past what a socket takes
        ({"read_timeout": 10**5000}, "read_timeout"),  # too long to write out: its size is shown
        ({"max_attempts": -(10**5000)}, "max_attempts"),
        ({"connect_timeout": None}, "connect_timeout"),  # not "no timeout": the clients need one
        ({"read_timeout": "10"}, "read_timeout"),
        ({"connect_timeout": True}, "connect_timeout"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_pool_connections": "4"}, "max_pool_connections"),
        ({"max_response_body_size": True}, "max_response_body_size"),
        ({"region": 1}, "region"),
        ({"endpoint_url": b"http://x"}, "endpoint_url"),
        ({"retry_mode": 3}, "retry_mode"),
        ({"user_agent_extra": ["x"]}, "user_agent_extra"),
    ],
)
def test_bad_options_name_the_field(tmp_path: Path, fields, field) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        resolve_defaults(Options(**fields), {"AWS_CONFIG_FILE": str(tmp_path / "x")})
    assert caught.value.fields == (field,)


def test_integers_of_other_libraries_are_counts(tmp_path: Path) -> None:
    class Count:  # as numpy.int64: an integer type that is not int
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

        def __lt__(self, other: int) -> bool:
            return self.value < other

    options = resolve_defaults(Options(max_attempts=Count(4), max_pool_connections=Count(2)),  # type: ignore[arg-type]
                               {"AWS_CONFIG_FILE": str(tmp_path / "x")})
    assert options.max_attempts.value == 4  # type: ignore[attr-defined]


def test_several_bad_options_are_named_together_with_their_rules(tmp_path: Path) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        resolve_defaults(Options(read_timeout=float("nan"), max_attempts="3", region=7),
                         {"AWS_CONFIG_FILE": str(tmp_path / "x")})
    assert [(problem.field, problem.rule) for problem in caught.value.problems] == [
        ("region", "type"), ("max_attempts", "type"), ("read_timeout", "range"),
    ]
    assert "got nan" in str(caught.value)


@pytest.mark.parametrize(("raw", "rule"), [("three", "type"), ("0", "range")])
@pytest.mark.parametrize(("variable", "where"), [("AWS_MAX_ATTEMPTS", "AWS_MAX_ATTEMPTS"),
                                                  (None, "the config file's max_attempts")])
def test_a_bad_max_attempts_names_where_it_was_set(
        tmp_path: Path, raw: str, rule: str, variable: str | None, where: str) -> None:
    config = tmp_path / "config"
    config.write_text(f"[default]\nmax_attempts = {raw}\n")
    environment = {"AWS_CONFIG_FILE": str(config), **({variable: raw} if variable else {})}
    with pytest.raises(InvalidParamsError) as caught:
        resolve_defaults(Options(), environment)
    (problem,) = caught.value.problems
    assert (problem.field, problem.rule) == ("max_attempts", rule)
    assert problem.detail.startswith(f"{where} must be ")
    assert problem.detail.endswith(f"got {raw!r}")


def test_client_accepts_keywords_or_options_not_both() -> None:
    assert Client(region="us-east-1", credentials=("a", "b")).options.region == "us-east-1"
    assert Client(options=Options(region="eu-west-1", credentials=("a", "b"))).options.region == "eu-west-1"
    with pytest.raises(TypeError):
        Client(options=Options(), region="us-east-1")


def test_options_repr_hides_credentials() -> None:
    options = Options(region="us-east-1", credentials=("AKID", "very-secret"))
    assert "very-secret" not in repr(options)
    assert "very-secret" not in repr(Client(options=options))


def test_closing_a_client_twice_is_fine_and_a_closed_client_refuses_calls() -> None:
    from smruntime.errors import ClientClosedError

    client = Client(region="us-east-1", credentials=("a", "b"))
    client.close()
    client.close()
    with pytest.raises(ClientClosedError, match="the client is closed") as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert not caught.value.request_sent and not caught.value.retryable


def test_per_call_changes_to_the_http_client_settings_are_refused_not_ignored() -> None:
    from smruntime.transport import MockHTTPClient

    answered = MockHTTPClient(lambda request: (200, {}, b"ok"))
    client = Client(region="us-east-1", credentials=("a", "b"), http_client=answered)
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[lambda o: setattr(o, "read_timeout", 1.0)])
    assert caught.value.fields == ("read_timeout",)
    assert answered.requests == []
    other = MockHTTPClient(lambda request: (200, {}, b"other"))

    def use_other(options: Options) -> None:
        options.http_client = other
        options.read_timeout = 1.0

    assert client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[use_other]).body == b"other"


def test_a_per_call_retry_mode_needs_its_own_retryer() -> None:
    from smruntime.retry import NoRetryer
    from smruntime.transport import MockHTTPClient

    client = Client(region="us-east-1", credentials=("a", "b"), http_client=MockHTTPClient(lambda r: (200, {}, b"ok")))
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[lambda o: setattr(o, "retry_mode", "none")])
    assert caught.value.fields == ("retry_mode",)

    def no_retries(options: Options) -> None:
        options.retry_mode = "none"
        options.retryer = NoRetryer()

    assert client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[no_retries]).body == b"ok"


def test_max_response_body_size_configures_the_built_http_client_and_cannot_change_per_call() -> None:
    client = Client(region="us-east-1", credentials=("a", "b"), max_response_body_size=1234)
    assert client.options.http_client.max_response_body_size == 1234  # type: ignore[union-attr]
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(
            endpoint_name="ep", body=b"x", options=[lambda o: setattr(o, "max_response_body_size", 1)]
        )
    assert caught.value.fields == ("max_response_body_size",)
    client.close()


def test_settings_a_given_component_does_not_take_are_warned_about() -> None:
    from smruntime import AsyncClient
    from smruntime.transport import AsyncFastHTTPClient, MockHTTPClient

    with pytest.warns(UserWarning) as caught:
        Client(region="us-east-1", credentials=("a", "b"), http_client=MockHTTPClient(lambda r: None), read_timeout=5)
        Client(region="us-east-1", credentials=("a", "b"), retryer=StandardRetryer(), retry_mode="adaptive")
        AsyncClient(region="us-east-1", credentials=("a", "b"), http_client=AsyncFastHTTPClient(),
                    connect_timeout=1, max_pool_connections=50)
    assert [str(warning.message) for warning in caught] == [
        "read_timeout=5 is not applied to the http_client you gave, which keeps its own settings: pass it to its "
        "constructor (MockHTTPClient(read_timeout=...)); it still configures the HTTP/2 client the client builds "
        "for bidirectional streams",
        "retry_mode='adaptive' is not applied to the retryer you gave, which keeps its own settings",
        "connect_timeout=1, max_pool_connections=50 are not applied to the http_client you gave, which keeps its own "
        "settings: pass them to its constructor (AsyncFastHTTPClient(connect_timeout=...)); they still configure the "
        "HTTP/2 client the client builds for bidirectional streams",
    ]
    assert all(warning.filename == __file__ for warning in caught)  # they point at the caller's line


def test_settings_a_given_component_already_has_are_not_warned_about() -> None:
    from smruntime.transport import FastHTTPClient

    # pytest turns warnings into errors here: none may be raised
    Client(region="us-east-1", credentials=("a", "b"), http_client=FastHTTPClient(read_timeout=5), read_timeout=5)
    Client(region="us-east-1", credentials=("a", "b"), retryer=StandardRetryer(), retry_mode="standard")
    Client(region="us-east-1", credentials=("a", "b"), http_client=FastHTTPClient())


@pytest.mark.parametrize("which", ["missing", "empty", "devnull"])
def test_no_config_file_gives_the_defaults_without_importing_configparser(tmp_path: Path, which: str) -> None:
    import os
    import subprocess
    import sys

    path = {"missing": str(tmp_path / "absent"), "empty": str(tmp_path / "empty"), "devnull": os.devnull}[which]
    (tmp_path / "empty").write_text("")
    code = (
        "import sys\nfrom smruntime.options import Options, resolve_defaults\n"
        f"o = resolve_defaults(Options(region='us-east-1'), {{'AWS_CONFIG_FILE': {path!r}}})\n"
        "print(o.retry_mode, o.max_attempts, o.use_fips_endpoint, 'configparser' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["standard", "3", "False", "False"]


def test_a_config_file_that_is_a_pipe_is_still_read(tmp_path: Path) -> None:
    import os
    import threading

    pipe = tmp_path / "config"
    os.mkfifo(pipe)

    def feed() -> None:
        pipe.write_text("[default]\nregion = eu-west-2\n")

    writer = threading.Thread(target=feed)
    writer.start()
    options = resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(pipe)})
    writer.join(5)
    assert options.region == "eu-west-2"


def test_a_legacy_retry_mode_set_for_boto3_is_read_as_standard(config_file: Path, tmp_path: Path) -> None:
    assert resolve_defaults(Options(), env(config_file, AWS_RETRY_MODE="legacy")).retry_mode == "standard"
    legacy_profile = tmp_path / "legacy"
    legacy_profile.write_text("[default]\nretry_mode = legacy\n")
    assert resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(legacy_profile)}).retry_mode == "standard"
    with pytest.raises(InvalidParamsError, match="retry_mode"):
        resolve_defaults(Options(retry_mode="legacy"), env(config_file))  # in code, say what you mean


@pytest.mark.parametrize(("variable", "where"), [("AWS_RETRY_MODE", "AWS_RETRY_MODE"),
                                                  (None, "the config file's retry_mode")])
def test_a_bad_retry_mode_names_where_it_was_set(tmp_path: Path, variable: str | None, where: str) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nretry_mode = sometimes\n")
    environment = {"AWS_CONFIG_FILE": str(config), **({variable: "sometimes"} if variable else {})}
    with pytest.raises(InvalidParamsError, match=f"{where} must be one of standard, adaptive, none"):
        resolve_defaults(Options(), environment)


def test_verify_comes_from_the_argument_then_aws_ca_bundle_then_the_profile(tmp_path: Path) -> None:
    bundles = {name: tmp_path / f"{name}.pem" for name in ("argument", "environment", "profile")}
    for path in bundles.values():
        path.write_text("")
    config = tmp_path / "config"
    config.write_text(f"[default]\nca_bundle = {bundles['profile']}\n")
    base = {"AWS_CONFIG_FILE": str(config), "REQUESTS_CA_BUNDLE": "/read/by/the/http/client/only"}
    with_env = {**base, "AWS_CA_BUNDLE": str(bundles["environment"])}
    assert resolve_defaults(Options(verify=str(bundles["argument"])), with_env).verify == str(bundles["argument"])
    assert resolve_defaults(Options(verify=False), with_env).verify is False
    assert resolve_defaults(Options(), with_env).verify == str(bundles["environment"])
    assert resolve_defaults(Options(), base).verify == str(bundles["profile"])
    # Neither: the HTTP client applies requests' variables itself; and one given keeps its own rule.
    assert resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(tmp_path / "none")}).verify is None
    from smruntime.transport import MockHTTPClient

    assert resolve_defaults(Options(http_client=MockHTTPClient(lambda request: None)), with_env).verify is None


@pytest.mark.parametrize("where", ["AWS_CA_BUNDLE", "the config file's ca_bundle"])
def test_a_ca_bundle_that_does_not_exist_names_where_it_was_set(tmp_path: Path, where: str) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nca_bundle = /no/such/bundle.pem\n")
    environ = {"AWS_CONFIG_FILE": str(config)}
    if where == "AWS_CA_BUNDLE":
        environ["AWS_CA_BUNDLE"] = "/no/such/bundle.pem"
    with pytest.raises(InvalidParamsError) as caught:
        resolve_defaults(Options(), environ)
    assert caught.value.fields == ("verify",)
    assert f"{where} names '/no/such/bundle.pem', which does not exist" in str(caught.value)


def test_verify_configures_the_built_http_clients_and_cannot_change_per_call(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    client = Client(region="us-east-1", credentials=("a", "b"), verify=str(bundle))
    assert client.options.http_client.verify == str(bundle)  # type: ignore[union-attr]
    with pytest.raises(InvalidParamsError) as caught:
        client.invoke_endpoint(endpoint_name="ep", body=b"x", options=[lambda o: setattr(o, "verify", False)])
    assert caught.value.fields == ("verify",)
    client.close()


def test_app_id_comes_from_the_argument_then_aws_sdk_ua_app_id_then_the_profile(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nsdk_ua_app_id = from-profile\n")
    base = {"AWS_CONFIG_FILE": str(config)}
    assert resolve_defaults(Options(app_id="mine"), {**base, "AWS_SDK_UA_APP_ID": "from-env"}).app_id == "mine"
    assert resolve_defaults(Options(), {**base, "AWS_SDK_UA_APP_ID": "from-env"}).app_id == "from-env"
    assert resolve_defaults(Options(), base).app_id == "from-profile"
    with pytest.raises(InvalidParamsError) as caught:
        resolve_defaults(Options(app_id=7), base)  # type: ignore[arg-type]
    assert caught.value.fields == ("app_id",)


def test_app_id_is_in_the_user_agent_with_what_a_token_cannot_hold_replaced() -> None:
    from smruntime.transport import MockHTTPClient

    mock = MockHTTPClient(lambda request: (200, {}, b"{}"))
    with Client(region="us-east-1", credentials=("a", "b"), http_client=mock, app_id="billing svc#2") as client:
        client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    agent = mock.requests[0].headers["User-Agent"]
    assert " app/billing-svc#2" in agent and agent.index("cfg/retry-mode#") < agent.index("app/")


@pytest.mark.parametrize("where", ["AWS_CA_BUNDLE", "profile", "argument"])
def test_a_ca_bundle_under_the_home_directory_may_be_named_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # botocore hands the path to urllib3, which expands "~": a config file boto3 reads must work here.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ca.pem").write_text("")
    config = tmp_path / "config"
    config.write_text("[default]\nca_bundle = ~/ca.pem\n" if where == "profile" else "")
    environ = {"AWS_CONFIG_FILE": str(config), **({"AWS_CA_BUNDLE": "~/ca.pem"} if where == "AWS_CA_BUNDLE" else {})}
    options = Options(verify="~/ca.pem") if where == "argument" else Options()
    assert resolve_defaults(options, environ).verify == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(("name", "section"), [("local", ""), ("local", "[services local]\n"), ("", "")])
def test_a_services_section_that_is_missing_is_an_error_as_in_botocore(tmp_path: Path, name: str, section: str) -> None:
    # botocore refuses it rather than fall back to the profile's endpoint_url or the public endpoint.
    config = tmp_path / "config"
    config.write_text(f"[default]\nservices = {name}\nendpoint_url = http://profile-global\n{section}")
    with pytest.raises(InvalidParamsError, match=rf"\[services {name}\]") as caught:
        resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config)})
    assert caught.value.fields == ("endpoint_url",)
    # Not looked up when the endpoint is set otherwise, nor when configured endpoints are ignored.
    for environ in ({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://variable"}, {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}):
        resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config), **environ})
    resolve_defaults(Options(endpoint_url="http://argument"), {"AWS_CONFIG_FILE": str(config)})


# What botocore, the reference in the tests below, reads from the process environment.
_BOTOCORE_INPUTS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONFIG_FILE",
                    "AWS_SHARED_CREDENTIALS_FILE")


def botocore_sees(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **environ: str) -> dict[str, str]:
    """Give botocore these variables and none of the others it reads (no credentials file unless
    one is named); the same variables, for ``resolve_defaults``."""
    for name in _BOTOCORE_INPUTS:
        monkeypatch.delenv(name, raising=False)
    environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


# Config files as botocore names their sections; botocore itself is the reference.
SECTION_NAMING = {
    "profile default": ("[profile default]\nregion = eu-north-1\n", None),
    "default, then profile default": ("[default]\nregion = eu-west-3\n[profile default]\nregion = eu-north-1\n", None),
    "profile default, then default": ("[profile default]\nregion = eu-north-1\n[default]\nregion = eu-west-3\n", None),
    "quoted name": ('[profile "my team"]\nregion = sa-east-1\n', "my team"),
    "extra spaces": ("[profile   dev]\nregion = me-south-1\n", "dev"),
    "unbalanced quote": ('[profile "dev]\nregion = me-south-1\n[default]\nregion = eu-west-3\n', None),
    "not a profile": ("[dev]\nregion = me-south-1\n[default]\nregion = eu-west-3\n", "dev"),
}


@pytest.mark.parametrize("case", SECTION_NAMING)
def test_profile_sections_are_found_as_botocore_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    import botocore.session

    text, profile = SECTION_NAMING[case]
    config = tmp_path / "config"
    config.write_text(text)
    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config))
    try:
        expected = botocore.session.Session(profile=profile).get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        assert case == "not a profile"
        with pytest.raises(InvalidParamsError, match="the profile 'dev' is in neither"):
            resolve_defaults(Options(profile=profile), environ)
        return
    assert resolve_defaults(Options(profile=profile), environ).region == expected


def test_a_quoted_services_section_is_found(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        '[default]\nservices = "my services"\n[services "my services"]\n'
        "sagemaker_runtime =\n  endpoint_url = http://quoted\n"
    )
    # A value is not unquoted (botocore neither), so the section name must match it as written.
    with pytest.raises(InvalidParamsError, match="services"):
        resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config)})
    config.write_text('[default]\nservices = local\n[services "local"]\nsagemaker_runtime =\n  endpoint_url = http://quoted\n')
    assert resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config)}).endpoint_url == "http://quoted"


def test_the_config_file_path_may_use_a_tilde_and_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore expands both before opening it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SMRUNTIME_TEST_CONFIG_DIR", str(tmp_path / "conf"))
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "aws").write_text("[default]\nregion = af-south-1\n")
    for path in ("~/conf/aws", "$SMRUNTIME_TEST_CONFIG_DIR/aws"):
        assert resolve_defaults(Options(), {"AWS_CONFIG_FILE": path}).region == "af-south-1"


def test_a_config_file_that_cannot_be_parsed_is_an_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")  # no section header
    with pytest.raises(InvalidParamsError, match="line 1 comes before any") as caught:
        resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config)})
    assert caught.value.fields == ("profile",) and str(config) in str(caught.value)
    assert "wJalr" not in str(caught.value)  # configparser quotes the line; a config file may hold keys
    for text, problem in (("[default]\nregion = a\nwJalrXUtnFEMI\n", "cannot read line 3"),
                          ("[default]\n[default]\n", "section 'default' already exists"),
                          ("[default]\nwJalrXUtnFEMI==\nregion = a\nwJalrXUtnFEMI==\n", r"line 4 sets again a setting of \[default\]"),
                          (b"[default]\nregion = \xff\n", "not UTF-8"),
                          ("[default wJalrXUtnFEMI\nregion = a\n", r"line 1 opens a \[section\] header without closing it")):
        config.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(InvalidParamsError, match=problem) as caught:
            resolve_defaults(Options(), {"AWS_CONFIG_FILE": str(config)})
        assert "wJalr" not in str(caught.value)
    # Even when every value it could give is set in code: boto3's client fails on it too.
    given = Options(region="us-east-1", endpoint_url="http://x", retry_mode="standard", max_attempts=3,
                    use_fips_endpoint=True, use_dualstack_endpoint=True, verify=True, app_id="a")
    with pytest.raises(InvalidParamsError, match="cannot be parsed"):
        resolve_defaults(given, {"AWS_CONFIG_FILE": str(config)})


def test_a_services_key_given_twice_is_read_as_botocore_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.session

    config = tmp_path / "config"
    config.write_text("[default]\nservices = local\n[services local]\n"
                      "sagemaker_runtime =\n  endpoint_url = http://first\n  endpoint_url = http://second\n")
    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config))
    expected = botocore.session.Session().create_client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    ).meta.endpoint_url
    assert expected == "http://second"
    assert resolve_defaults(Options(), environ).endpoint_url == expected


def test_aws_default_profile_wins_over_aws_profile_as_in_botocore(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config_file), AWS_DEFAULT_PROFILE="other",
                            AWS_PROFILE="default")
    assert botocore.session.Session().profile == "other"
    assert resolve_defaults(Options(), environ).profile == "other"


def test_a_nested_line_without_an_equals_sign_is_refused_as_botocore_refuses_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.exceptions
    import botocore.session

    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n[profile other]\ns3 =\n  addressing_style\n")
    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config))
    with pytest.raises(botocore.exceptions.ConfigParseError):
        botocore.session.Session().get_config_variable("region")
    with pytest.raises(InvalidParamsError, match=r"\[profile other\], a line of s3's nested settings has no '='"):
        resolve_defaults(Options(), environ)


@pytest.mark.parametrize("where", ["config", "credentials", "neither"])
def test_a_named_profile_must_exist_in_the_config_or_the_credentials_file_as_for_boto3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import botocore.exceptions
    import botocore.session

    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("[default]\nregion = eu-west-1\n" + ("[profile team]\nregion = eu-west-2\n" if where == "config" else ""))
    credentials.write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n"
                           + ("[team]\naws_access_key_id = A\naws_secret_access_key = B\n" if where == "credentials" else ""))
    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    boto3_refuses = False
    try:
        botocore.session.Session(profile="team").get_scoped_config()
    except botocore.exceptions.ProfileNotFound:
        boto3_refuses = True
    assert boto3_refuses == (where == "neither")
    for how in ({"profile": "team"}, {"env": "AWS_PROFILE"}, {"env": "AWS_DEFAULT_PROFILE"}):
        given = Options(profile="team") if "profile" in how else Options()
        named = environ if "profile" in how else {**environ, how["env"]: "team"}
        if where == "neither":
            with pytest.raises(InvalidParamsError, match=r"the profile 'team' is in neither the config file .* nor the credentials file") as caught:
                resolve_defaults(given, named)
            assert caught.value.fields == ("profile",)
        else:
            assert resolve_defaults(given, named).profile == "team"
    # The default profile is not named, and need not exist.
    config.write_text("")
    assert resolve_defaults(Options(), {**environ, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}).profile is None


# A profile's settings in the credentials file, as botocore merges that file into its profiles.
CREDENTIALS_MERGE = {
    "region only there": ("[default]\n", "[team]\naws_access_key_id = A\nregion = ap-south-1\n"),
    "over the config file's": ("[profile team]\nregion = eu-west-2\n", "[team]\nregion = ap-south-1\n"),
    "its services": (
        "[profile team]\n[services local]\nsagemaker_runtime =\n  endpoint_url = http://local\n",
        "[team]\nservices = local\n",
    ),
    "unparsable": ("[profile team]\nregion = eu-west-2\n", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n"),
    "a bad nested line": ("[profile team]\nregion = eu-west-2\n", "[other]\ns3 =\n  wJalrXUtnFEMI/K7MDENG\n"),
}


@pytest.mark.parametrize("case", CREDENTIALS_MERGE)
def test_a_profile_takes_its_settings_in_the_credentials_file_as_botocore_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    import botocore.exceptions
    import botocore.session

    config_text, credentials_text = CREDENTIALS_MERGE[case]
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(config_text)
    credentials.write_text(credentials_text)
    environ = botocore_sees(monkeypatch, tmp_path, AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    try:
        client = botocore.session.Session(profile="team").create_client(
            "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        configured = None if client.meta.endpoint_url.endswith(".amazonaws.com") else client.meta.endpoint_url
        expected = (botocore.session.Session(profile="team").get_config_variable("region"), configured)
    except botocore.exceptions.ConfigParseError:
        with pytest.raises(InvalidParamsError, match=r"the credentials file .* cannot be parsed") as caught:
            resolve_defaults(Options(profile="team"), environ)
        assert "wJalr" not in str(caught.value)
        return
    options = resolve_defaults(Options(profile="team"), environ)
    assert (options.region, options.endpoint_url) == expected
    assert expected[0] == "ap-south-1" or expected[1] == "http://local"
    # The default profile too, named by no one.
    credentials.write_text(credentials_text.replace("[team]", "[default]"))
    config.write_text(config_text.replace("[profile team]", "[default]"))
    assert resolve_defaults(Options(), environ).region == botocore.session.Session().get_config_variable("region")
