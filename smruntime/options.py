"""Client options and where their defaults come from.

Precedence, as in boto3: explicit arguments, then the standard AWS environment
variables, then the shared config file's profile, then the built-in defaults.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import attrs

from smruntime.errors import FieldProblem, InvalidParamsError
from smruntime.http import DEFAULT_MAX_RESPONSE_BODY_SIZE
from smruntime.logs import LogMode as LogMode  # re-exported: its first home

if TYPE_CHECKING:
    import logging

    from smruntime.auth.sigv4 import HTTPSigner
    from smruntime.endpoints import EndpointResolver
    from smruntime.middleware import Stack
    from smruntime.retry.policy import Retryer
    from smruntime.transport import HTTPClient
    from smruntime.transport.async_protocol import AsyncHTTPClient
    from smruntime.transport.http2_protocol import AsyncHTTP2Client

RETRY_MODES = ("standard", "adaptive", "none")
SERVICE_KEY = "sagemaker_runtime"
"""The service's key in a config file's ``services`` section (its service id, snake case)."""
HTTP2_SERVICE_KEY = "sagemaker_runtime_http2"
"""The HTTP/2 service's key in a config file's ``services`` section (its service id, snake case)."""
_REGION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_VISIBLE_ASCII = re.compile(r"[\x20-\x7e]*")


APIOption = Callable[["Stack"], None]
"""A function that mutates each call's stack after the SDK registered its middleware."""

OptionFunc = Callable[["Options"], None]
"""A per-call function that mutates that call's copy of the options."""


def _own_list(api_options: Iterable[APIOption]) -> list[APIOption]:
    # The api_options converter. A function of ours rather than ``list``: attrs reads each
    # converter's signature, and a builtin's is parsed from its text, which made up two thirds
    # of this module's import.
    return list(api_options)


@attrs.define(slots=True, eq=False)
class Options:
    """Everything a client needs; each call works on its own copy.

    ``credentials`` accepts a ``(access_key, secret_key[, session_token])`` tuple, a
    :class:`~smruntime.auth.Credentials`, a credentials provider (anything with
    ``retrieve()``), or :data:`~smruntime.auth.ANONYMOUS` (requests are not signed);
    ``None`` means botocore's default chain, resolved on first use.

    ``http2_endpoint_url`` is where the bidirectional stream goes (the HTTP/2 service; env
    ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2``, or ``endpoint_url`` under
    ``sagemaker_runtime_http2`` in the profile's ``services`` section); without it the stream
    uses ``endpoint_url``, else the service's endpoint rules (port 8443).

    ``max_response_body_size`` bounds a response body read whole (64 MiB by default, far
    above SageMaker's 6 MB payloads); a longer one raises ``ResponseTooLargeError``. Streams
    are not bounded: each event is, by the event-stream limits.

    ``app_id`` names your application in the User-Agent (``app/<id>``; the AWS SDKs' guide
    allows 50 characters), as boto3's ``user_agent_appid``: env ``AWS_SDK_UA_APP_ID``, or the
    profile's ``sdk_ua_app_id``.

    ``verify`` is how the HTTP clients the client builds check the server's certificate, as
    boto3's ``verify``: a CA bundle's path (a file or a directory), False for no check, or
    True for certifi's bundle. Unset: ``AWS_CA_BUNDLE``, then the profile's ``ca_bundle``,
    then ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, then True (an ``http_client`` you give
    keeps its own: ours read the environment's variables in that order, without the profile).
    """

    region: str | None = None
    credentials: Any = None
    profile: str | None = None
    endpoint_url: str | None = None
    http2_endpoint_url: str | None = None
    endpoint_resolver: EndpointResolver | None = None
    use_fips_endpoint: bool = False
    use_dualstack_endpoint: bool = False
    signer: HTTPSigner | None = None
    http_client: HTTPClient | AsyncHTTPClient | None = None  # an AsyncHTTPClient for AsyncClient
    http2_client: AsyncHTTP2Client | None = None  # the bidirectional stream's (made on first use)
    retryer: Retryer | None = None
    retry_mode: str | None = None
    max_attempts: int | None = None
    retry_read_timeouts: bool = False
    connect_timeout: float = 60.0
    read_timeout: float = 70.0
    max_pool_connections: int = 10
    max_response_body_size: int = DEFAULT_MAX_RESPONSE_BODY_SIZE
    api_options: list[APIOption] = attrs.field(factory=list, converter=_own_list)
    log_mode: LogMode = LogMode.NONE
    logger: logging.Logger | None = None
    user_agent_extra: str | None = None
    verify: bool | str | None = None
    app_id: str | None = None

    def copy(self) -> Options:
        """A shallow copy whose ``api_options`` list is its own (Go's ``Options.Copy``)."""
        clone = copy.copy(self)
        clone.api_options = list(self.api_options)
        return clone

    def __repr__(self) -> str:
        shown = ("region", "profile", "endpoint_url", "http2_endpoint_url", "retry_mode", "max_attempts", "log_mode")
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        creds = "None" if self.credentials is None else "<set>"
        return f"Options({fields}, credentials={creds})"


def resolve_defaults(options: Options, environ: Mapping[str, str] | None = None) -> Options:
    """Fill unset fields from the environment and the shared config file; validate."""
    env = os.environ if environ is None else environ
    resolved = options.copy()
    # botocore's order (the AWS CLI v2 and the other SDKs read AWS_PROFILE only).
    profile_name = resolved.profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
    profile = _LazyProfile(profile_name, env)
    if profile_name is not None:
        profile.require()
    if resolved.region is None:
        resolved.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region")
    # Configured endpoint URLs, in botocore's order, unless told to ignore them as boto3 is.
    configured = not _truthy(
        env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or profile.get("ignore_configured_endpoint_urls")
    )
    if resolved.endpoint_url is None and resolved.endpoint_resolver is None and configured:
        resolved.endpoint_url = (
            env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
            or env.get("AWS_ENDPOINT_URL")
            or profile.service_setting(SERVICE_KEY, "endpoint_url", field="endpoint_url")
            or profile.get("endpoint_url")
            or None
        )
    if resolved.http2_endpoint_url is None and configured:
        resolved.http2_endpoint_url = (
            env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2")
            or profile.service_setting(HTTP2_SERVICE_KEY, "endpoint_url")
            or None
        )
    if resolved.retry_mode is None:
        resolved.retry_mode = _configured_retry_mode(env.get("AWS_RETRY_MODE"), profile.get("retry_mode"))
    if resolved.max_attempts is None:
        attempts = _configured_max_attempts(env.get("AWS_MAX_ATTEMPTS"), profile.get("max_attempts"))
        if attempts is not None:
            resolved.max_attempts = attempts
        elif resolved.retryer is not None:
            # A retryer the user built carries its own limit; don't override it with ours.
            resolved.max_attempts = int(getattr(resolved.retryer, "max_attempts", 3))
        else:
            resolved.max_attempts = 3
    if not resolved.use_fips_endpoint:
        resolved.use_fips_endpoint = _truthy(env.get("AWS_USE_FIPS_ENDPOINT") or profile.get("use_fips_endpoint"))
    if not resolved.use_dualstack_endpoint:
        resolved.use_dualstack_endpoint = _truthy(
            env.get("AWS_USE_DUALSTACK_ENDPOINT") or profile.get("use_dualstack_endpoint")
        )
    if resolved.verify is None and resolved.http_client is None:
        # For the HTTP clients the client builds, in botocore's order; a given HTTP client (and
        # one built with no bundle named here) applies its own rule, requests' variables.
        resolved.verify = _configured_ca_bundle(env.get("AWS_CA_BUNDLE"), profile)
    elif isinstance(resolved.verify, str):
        resolved.verify = os.path.expanduser(resolved.verify)  # as urllib3 reads botocore's verify
    if resolved.app_id is None:
        resolved.app_id = env.get("AWS_SDK_UA_APP_ID") or profile.get("sdk_ua_app_id")
    if resolved.profile is None and profile_name:
        resolved.profile = profile_name
    validate_options(resolved)
    return resolved


def _configured_retry_mode(from_env: str | None, from_profile: str | None) -> str:
    """The retry mode the environment or the config file sets, naming where a bad one came from.

    ``legacy``, boto3's older mode, is read as ``standard``: it is there for boto3 and the AWS
    CLI, and refusing it would break every call in an environment shared with them.
    """
    source, raw = ("AWS_RETRY_MODE", from_env) if from_env else ("the config file's retry_mode", from_profile)
    mode = (raw or "standard").lower()
    if mode == "legacy":
        return "standard"
    if mode not in RETRY_MODES:
        raise InvalidParamsError([FieldProblem(
            "retry_mode", "enum", f"{source} must be one of {', '.join(RETRY_MODES)} (or legacy), got {raw!r}"
        )])
    return mode


def _configured_ca_bundle(from_env: str | None, profile: _LazyProfile) -> str | None:
    """The CA bundle ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle`` names, naming where a
    missing one came from."""
    source, path = ("AWS_CA_BUNDLE", from_env) if from_env else ("the config file's ca_bundle", profile.get("ca_bundle"))
    if not path:
        return None
    if not os.path.exists(expanded := os.path.expanduser(path)):  # "~" as urllib3 reads botocore's bundle
        raise InvalidParamsError([FieldProblem("verify", "path", f"{source} names {path!r}, which does not exist")])
    return expanded


_TEXT_OPTIONS = ("region", "profile", "endpoint_url", "http2_endpoint_url", "retry_mode", "user_agent_extra", "app_id")
_COUNT_OPTIONS = ("max_attempts", "max_pool_connections", "max_response_body_size")  # at least 1
_SECONDS_OPTIONS = ("connect_timeout", "read_timeout")


def validate_options(options: Options) -> None:
    """Raise :class:`InvalidParamsError` naming every bad option."""
    problems: list[FieldProblem] = []
    mistyped: set[str] = set()
    for name in _TEXT_OPTIONS:
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            mistyped.add(name)
            problems.append(FieldProblem(name, "type", f"must be a str, got {type(value).__name__}"))
    for name in _COUNT_OPTIONS:
        value = getattr(options, name)
        if value is None and name == "max_attempts":  # unset: the retry mode's own
            continue
        if not _is_integer(value):
            problems.append(FieldProblem(name, "type", f"must be an int, got {type(value).__name__}"))
        elif value < 1:
            problems.append(FieldProblem(name, "range", f"must be at least 1, got {_shown_number(value)}"))
    for name in _SECONDS_OPTIONS:
        value = getattr(options, name)
        if not (_is_integer(value) or isinstance(value, float)):
            problems.append(FieldProblem(name, "type", f"must be a number of seconds, got {type(value).__name__}"))
        elif not 0 < value <= threading.TIMEOUT_MAX:  # NaN fails both; past the maximum, sockets refuse it
            problems.append(FieldProblem(name, "range", f"must be more than 0 and at most "
                                                        f"{threading.TIMEOUT_MAX:.0f} seconds, got {_shown_number(value)}"))
    if "retry_mode" not in mistyped and options.retry_mode not in RETRY_MODES:
        problems.append(FieldProblem("retry_mode", "enum", f"must be one of {', '.join(RETRY_MODES)}, got {options.retry_mode!r}"))
    if "region" not in mistyped and options.region is not None and not _REGION.fullmatch(options.region):
        problems.append(FieldProblem("region", "pattern", f"must be a region name like us-east-1, got {options.region!r}"))
    if (
        "user_agent_extra" not in mistyped
        and options.user_agent_extra is not None
        and not _VISIBLE_ASCII.fullmatch(options.user_agent_extra)
    ):
        problems.append(FieldProblem("user_agent_extra", "pattern", "must be printable US-ASCII (no line breaks)"))
    verify = options.verify
    if not (verify is None or isinstance(verify, bool | str)):
        problems.append(FieldProblem(
            "verify", "type", f"must be True, False or the path of a CA bundle (a file or a directory), got "
            f"{type(verify).__name__}"
        ))
    elif isinstance(verify, str) and not os.path.exists(verify):
        problems.append(FieldProblem("verify", "path", f"{verify!r} does not exist (a CA bundle's file or directory)"))
    if problems:
        raise InvalidParamsError(problems)


def _is_integer(value: object) -> bool:
    """An int, or an integer type of another library (numpy's), but not a bool."""
    return not isinstance(value, bool) and hasattr(type(value), "__index__")


def _shown_number(value: Any) -> str:
    # An int past Python's 4300-digit conversion limit cannot be written out: its size instead.
    if _is_integer(value) and abs(int(value)).bit_length() > 256:
        return f"an integer of {abs(int(value)).bit_length()} bits"
    return str(value)


def _configured_max_attempts(from_env: str | None, from_profile: str | None) -> int | None:
    """The attempts the environment or the config file sets, naming where a bad value came from."""
    source, raw = ("AWS_MAX_ATTEMPTS", from_env) if from_env else ("the config file's max_attempts", from_profile)
    if not raw:
        return None
    try:
        attempts = int(raw)
    except ValueError:
        raise InvalidParamsError([FieldProblem("max_attempts", "type", f"{source} must be an integer, got {raw!r}")]) from None
    if attempts < 1:
        raise InvalidParamsError([FieldProblem("max_attempts", "range", f"{source} must be at least 1, got {raw!r}")])
    return attempts


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() == "true"


class _LazyProfile:
    """The shared config file's profile, read only if a value is needed.

    Sections are named as botocore names them: ``[default]`` or ``[profile default]`` for the
    default profile, ``[profile NAME]`` for the others and ``[services NAME]``, where NAME may be
    quoted (``[profile "my profile"]``) and, of sections naming the same profile, the last wins.
    A profile also takes the settings of its section in the credentials file (``[NAME]``),
    over the config file's, as botocore merges them.
    """

    def __init__(self, name: str | None, env: Mapping[str, str]) -> None:
        self._name = name or "default"
        self._env = env
        self._sections: dict[tuple[str, str], dict[str, str]] | None = None

    def get(self, key: str) -> str | None:
        return self._section("profile", self._name).get(key) or None

    def service_setting(self, service: str, key: str, *, field: str | None = None) -> str | None:
        """``key`` of ``service`` in the ``services`` section the profile names, as boto3 reads::

            [profile dev]
            services = local
            [services local]
            sagemaker_runtime_http2 =
              endpoint_url = http://127.0.0.1:8443

        With ``field``, a ``services`` naming no section (or an empty one) is an error about
        that field, as botocore raises rather than fall back to another endpoint.
        """
        name = self._section("profile", self._name).get("services")  # an empty name is botocore's error too
        section = self._section("services", name) if name is not None else {}
        if name is not None and not section and field:
            raise InvalidParamsError([FieldProblem(field, "config", (
                f"the profile {self._name!r} sets services = {name}, but the config file has no [services {name}] "
                "section, or an empty one (botocore refuses it too)"
            ))])
        block = section.get(service)
        setting = None
        for line in (block or "").splitlines():  # the last of a key given twice, as botocore's dict
            found, sep, value = line.partition("=")
            if sep and found.strip() == key:
                setting = value.strip() or None
        return setting

    def require(self) -> None:
        """A profile the caller named must be in the config file or the credentials file, as
        boto3 requires (its ``ProfileNotFound``)."""
        if ("profile", self._name) in self._loaded():
            return
        raise InvalidParamsError([FieldProblem("profile", "not found", (
            f"the profile {self._name!r} is in neither the config file {self._config_path} nor the credentials file "
            f"{self._credentials_path} (boto3 refuses it too)"
        ))])

    def _section(self, kind: str, name: str) -> dict[str, str]:
        return self._loaded().get((kind, name), {})

    def _loaded(self) -> dict[tuple[str, str], dict[str, str]]:
        if self._sections is None:
            self._sections = self._load()
        return self._sections

    @property
    def _config_path(self) -> str:
        return _path(self._env, "AWS_CONFIG_FILE", "config")

    @property
    def _credentials_path(self) -> str:
        return _path(self._env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")

    def _load(self) -> dict[tuple[str, str], dict[str, str]]:
        """The profiles and services sections by (kind, name)."""
        sections = {}
        for section, values in _read_checked(self._config_path, "config").items():
            kind_and_name = _section_kind_and_name(section)
            if kind_and_name is not None:
                sections[kind_and_name] = values
        # Every section is a profile, named as written; its settings win, as botocore merges them.
        for section, values in _read_checked(self._credentials_path, "credentials").items():
            sections[("profile", section)] = {**sections.get(("profile", section), {}), **values}
        return sections


def _read_checked(path: str, what: str) -> dict[str, dict[str, str]]:
    """:func:`_read_ini`, refusing a nested block with a line without ``=``: botocore parses
    every nested block of both files, and refuses the file for one."""
    sections = _read_ini(path, what)
    for section, values in sections.items():
        for key, value in values.items():
            if _has_bad_nested_line(value):
                raise InvalidParamsError([FieldProblem("profile", "config", (
                    f"the {what} file {path} cannot be parsed (botocore refuses it too): in [{section}], "
                    f"a line of {key}'s nested settings has no '='"
                ))])
    return sections


def _path(env: Mapping[str, str], variable: str, name: str) -> str:
    """The shared ``name`` file (``config``, ``credentials``) as botocore opens it."""
    return os.path.expanduser(os.path.expandvars(env.get(variable) or os.path.join("~", ".aws", name)))


def _read_ini(path: str, what: str) -> dict[str, dict[str, str]]:
    """The sections of the INI file at ``path`` by name; none for a missing or empty file."""
    if path == os.devnull or not _may_have_content(path):
        return {}  # as configparser would find, without importing it (the usual AWS Lambda case)
    import configparser  # only when a file is read: kept off start-up

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")  # a file it cannot open is skipped, as in botocore
    except (configparser.Error, UnicodeDecodeError) as error:
        raise InvalidParamsError([FieldProblem("profile", "config", (
            f"the {what} file {path} cannot be parsed (botocore refuses it too): {_parse_problem(error)}"
        ))]) from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def _has_bad_nested_line(value: str) -> bool:
    """Whether ``value`` is a nested block (it starts on the next line) with a line without ``=``."""
    return value.startswith("\n") and any(line.strip() and "=" not in line for line in value.splitlines())


def _parse_problem(error: Exception) -> str:
    """What is wrong with the file, by line number: configparser's own messages quote the lines,
    and a config file may hold keys."""
    import configparser

    if isinstance(error, configparser.MissingSectionHeaderError):
        if error.line.lstrip().startswith("[") and "]" not in error.line:
            return f"line {error.lineno} opens a [section] header without closing it (no ])"
        return f"line {error.lineno} comes before any [section] header"
    if isinstance(error, configparser.ParsingError):
        return "it cannot read line " + ", ".join(str(number) for number, _ in error.errors)
    if isinstance(error, UnicodeDecodeError):
        return f"it is not UTF-8 (byte {error.start})"
    if isinstance(error, configparser.DuplicateOptionError):
        # Not the setting's name: a line of a wrapped token that ends in '=' is read as one.
        return f"line {error.lineno} sets again a setting of [{error.section}]"
    return " ".join(str(error).split())  # a section or option given twice: names and line numbers only


def _section_kind_and_name(section: str) -> tuple[str, str] | None:
    """``("profile", NAME)`` or ``("services", NAME)`` for a section botocore reads as one."""
    if section == "default":
        return ("profile", "default")
    if not section.startswith(("profile", "services")):
        return None
    import shlex

    try:
        parts = shlex.split(section)
    except ValueError:  # an unbalanced quote: botocore skips the section
        return None
    if len(parts) != 2:
        return None
    return ("profile" if section.startswith("profile") else "services", parts[1])


def _may_have_content(path: str) -> bool:
    """False for a missing file or an empty regular one; anything else (a pipe, say) is read."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    return not (stat.S_ISREG(found.st_mode) and found.st_size == 0)
