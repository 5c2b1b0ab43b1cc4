"""A small evaluator for the endpoint rules language, for this service's rule set.

Importing botocore's evaluator pulls in most of botocore (~25 ms of a cold start); this one
knows only the functions the SageMaker Runtime rule set uses and gives up (``Unsupported``)
on anything else, so the caller can fall back to botocore. Sans-IO: it takes the rule set and
partitions documents as parsed JSON; :func:`load_bundled` reads them from botocore's data
directory without importing botocore.
"""

from __future__ import annotations

import json
import os
import re
from importlib.util import find_spec
from typing import Any, Callable, Mapping

import attrs

from smruntime.middleware.reprs import fields_repr

SERVICE_NAME = "sagemaker-runtime"
_TEMPLATE = re.compile(r"\{[a-zA-Z#]+\}")  # what the rules language counts as a template
_INDEXED = re.compile(r"(\w*)\[(\d+)\]")
_REFERENCE = re.compile(r"\{([^{}]*)\}")


class Unsupported(Exception):
    """The rule set uses something this evaluator does not know: use botocore's."""


class RuleError(Exception):
    """An ``error`` rule matched; the message is the rule's own."""


@attrs.frozen
class ResolvedEndpoint:
    __repr__ = fields_repr

    url: str
    properties: dict[str, Any]
    headers: dict[str, list[Any]]


class RuleSetEvaluator:
    """Evaluates one rule set against the partitions document."""

    __slots__ = ("_parameters", "_partitions", "_rules")

    def __init__(self, ruleset: Mapping[str, Any], partitions: Mapping[str, Any]) -> None:
        self._parameters: dict[str, Any] = dict(ruleset["parameters"])
        self._rules: list[Any] = list(ruleset["rules"])
        self._partitions: list[Any] = list(partitions["partitions"])

    def resolve_endpoint(self, **params: Any) -> ResolvedEndpoint:
        scope: dict[str, Any] = {}
        for name, spec in self._parameters.items():
            value = params.get(name)
            if value is None:
                value = spec.get("default")
                if value is None and spec.get("required"):
                    raise RuleError(f"Cannot find value for required parameter {name}")
            if value is not None:
                scope[name] = value
        for rule in self._rules:
            found = self._rule(rule, dict(scope))
            if found is not None:
                return found
        raise RuleError("No endpoint found for parameters")

    def partition(self, region: str | None) -> dict[str, Any]:
        """``aws.partition``: the partition listing the region or matching its pattern, else the first."""
        chosen = self._partitions[0]
        if region is not None:
            for partition in self._partitions:
                if region in partition["regions"] or re.match(partition["regionRegex"], region):
                    chosen = partition
                    break
        return {**chosen["outputs"], "name": chosen["id"]}

    def _rule(self, rule: Mapping[str, Any], scope: dict[str, Any]) -> ResolvedEndpoint | None:
        for condition in rule.get("conditions", ()):
            result = self._call(condition, scope)
            if result is None or result is False:
                return None
        kind = rule.get("type")
        if kind == "tree":
            for child in rule["rules"]:
                found = self._rule(child, dict(scope))  # siblings do not share assignments
                if found is not None:
                    return found
            return None
        if kind == "endpoint":
            endpoint = rule["endpoint"]
            return ResolvedEndpoint(
                url=self._value(endpoint["url"], scope),
                properties=self._properties(endpoint.get("properties", {}), scope),
                headers={name: [self._value(item, scope) for item in values]
                         for name, values in endpoint.get("headers", {}).items()},
            )
        if kind == "error":
            raise RuleError(self._value(rule["error"], scope))
        raise Unsupported(f"rule type {kind!r}")

    def _call(self, call: Mapping[str, Any], scope: dict[str, Any]) -> Any:
        args = [self._value(arg, scope) for arg in call["argv"]]
        name = call["fn"]
        if name == "isSet":
            result: Any = args[0] is not None
        elif name == "not":
            result = not args[0]
        elif name in ("booleanEquals", "stringEquals"):
            wanted = bool if name == "booleanEquals" else str
            if not all(isinstance(arg, wanted) for arg in args):
                raise Unsupported(f"{name} of {[type(arg).__name__ for arg in args]}")
            result = args[0] == args[1]
        elif name == "getAttr":
            result = _get_attr(args[0], args[1])
        elif name == "aws.partition":
            result = self.partition(args[0])
        else:
            raise Unsupported(f"function {name!r}")
        if "assign" in call:
            if call["assign"] in scope:
                raise Unsupported(f"reassignment of {call['assign']!r}")
            scope[call["assign"]] = result
        return result

    def _value(self, value: Any, scope: Mapping[str, Any]) -> Any:
        if isinstance(value, dict):
            if "fn" in value:
                return self._call(value, dict(scope))
            if "ref" in value:
                return scope.get(value["ref"])
            return value
        if isinstance(value, str) and _TEMPLATE.search(value):
            if "{{" in value or "}}" in value:
                raise Unsupported("escaped braces in a template")

            def substitute(match: re.Match[str]) -> str:
                found: Any = scope
                for name in match.group(1).split("#"):
                    found = found[name]
                return str(found)

            return _REFERENCE.sub(substitute, value)
        return value

    def _properties(self, value: Any, scope: Mapping[str, Any]) -> Any:
        if isinstance(value, list):
            return [self._properties(item, scope) for item in value]
        if isinstance(value, dict):
            return {key: self._properties(item, scope) for key, item in value.items()}
        return self._value(value, scope)


class WithFallback:
    """The small evaluator, and botocore's (loaded on first need) for what it does not know."""

    __slots__ = ("_evaluator", "_fallback", "_load_fallback")

    def __init__(self, evaluator: RuleSetEvaluator, load_fallback: Callable[[], Any]) -> None:
        self._evaluator = evaluator
        self._load_fallback = load_fallback
        self._fallback: Any = None

    def resolve_endpoint(self, **params: Any) -> Any:
        try:
            return self._evaluator.resolve_endpoint(**params)
        except RuleError:
            raise
        except (Unsupported, LookupError, TypeError, AttributeError):
            # Something the small evaluator does not know: botocore's answer, whatever it is.
            if self._fallback is None:
                self._fallback = self._load_fallback()
            return self._fallback.resolve_endpoint(**params)


def _get_attr(value: Any, path: str) -> Any:
    for part in path.split("."):
        match = _INDEXED.search(part)
        if match is None:
            value = value[part]
            continue
        name, index = match.group(1), int(match.group(2))
        if name:
            value = value.get(name)
        return None if value is None or index >= len(value) else value[index]
    return value


def load_bundled() -> RuleSetEvaluator | None:
    """The rules and partitions botocore ships, read without importing botocore.

    ``None`` (use botocore's loader) when botocore is missing or a customer models folder
    (``~/.aws/models``) could override either document, so the result is always botocore's.
    """
    customer = os.path.join(os.path.expanduser("~"), ".aws", "models")
    if os.path.exists(os.path.join(customer, SERVICE_NAME)) or os.path.exists(os.path.join(customer, "partitions.json")):
        return None
    spec = find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = os.path.join(next(iter(spec.submodule_search_locations)), "data")
    service = os.path.join(data, SERVICE_NAME)
    try:
        versions = [v for v in os.listdir(service) if _rules_file(os.path.join(service, v))]
        partitions_path = os.path.join(data, "partitions.json")
        if not versions or not os.path.isfile(partitions_path):
            return None
        ruleset = _read_json(_rules_file(os.path.join(service, max(versions))))
        with open(partitions_path, encoding="utf-8") as file:
            partitions = json.load(file)
    except (OSError, ValueError):
        return None
    return RuleSetEvaluator(ruleset, partitions)


def _rules_file(folder: str) -> str:
    for name in ("endpoint-rule-set-1.json", "endpoint-rule-set-1.json.gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return ""


def _read_json(path: str) -> Any:
    if path.endswith(".gz"):
        import gzip  # only for compressed data files

        with gzip.open(path, "rt", encoding="utf-8") as packed:
            return json.load(packed)
    with open(path, encoding="utf-8") as file:
        return json.load(file)
