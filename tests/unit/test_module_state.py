"""No module-level mutable state: what a call memoizes belongs to the client that made it.

Read with ``ast``: a module-level container (dict, list, set, ...) that any function writes to,
a ``global`` statement, or a memo decorator (``functools.cache``/``lru_cache``) on a module-level
function fails the scan, but for the few listed below with their reasons. Then, on real clients,
the objects that hold a client's memos (signer, endpoint resolution, serializer, User-Agent and
retry-header values) are each client's own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smruntime
from smruntime import AsyncClient, Client

ROOT = Path(smruntime.__file__).parent

ALLOWED = {
    ("operations/__init__.py", "get"): "the operation registry: four names, each its module's one operation",
    ("operations/fields.py", "_name_check"): "keyed by field names written in the code, a handful",
    ("payload_parts.py", "_header_block"): "keyed by a part's DataType and CompletionState headers, a few values",
    ("regions.py", "known_regions"): "data loaded once (botocore's list of regions), no input",
    ("endpoints.py", "loaded_rules"): "data loaded once (botocore's endpoint rules), no input",
    ("http2_endpoints.py", "_botocore_partitions"): "data loaded once (botocore's partitions), no input",
}
"""Memoized module-level functions whose keys are few and fixed by the code, not by callers."""

ALLOWED_STATE = {
    ("blocking_loop.py", "_INHERITED"): "a forked child's inherited event loops, kept so that they are never "
                                        "finalized (closing one unregisters the parent's sockets): written only after a fork",
}
"""Module-level containers a function may write, with why: process state, not a call's."""

_CONTAINERS = {"dict", "list", "set", "deque", "defaultdict", "OrderedDict", "WeakKeyDictionary", "WeakValueDictionary"}
_WRITES = {"append", "extend", "update", "setdefault", "pop", "popitem", "clear", "add", "discard", "remove", "insert"}


def _module_containers(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = node.value
            literal = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp))
            built = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in _CONTAINERS
            if literal or built:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = path.relative_to(ROOT).as_posix()
    containers = _module_containers(tree)
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            memoized = any("cache" in ast.unparse(decorator) for decorator in node.decorator_list)
            if memoized and (relative, node.name) not in ALLOWED:
                found.append(f"{relative}:{node.lineno}: {node.name} is memoized process-wide")
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Global):
                found.append(f"{relative}:{node.lineno}: global {', '.join(node.names)}")
            targets: list[ast.expr] = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id in containers:
                    found.append(f"{relative}:{node.lineno}: writes the module's {target.value.id}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _WRITES
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in containers
                and (relative, node.func.value.id) not in ALLOWED_STATE
            ):
                found.append(f"{relative}:{node.lineno}: changes the module's {node.func.value.id}")
    return found


def test_no_module_keeps_state_a_call_writes() -> None:
    found = [finding for path in sorted(ROOT.rglob("*.py")) for finding in _findings(path)]
    assert found == []


def test_the_allowed_memos_exist() -> None:
    # An entry whose function went away is removed from the list, not left to excuse another.
    for relative, name in ALLOWED:
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        assert any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body), (relative, name)


MEMO_HOLDERS = ("ResolveEndpoint", "OperationSerializer", "UserAgent", "RetryMetricsHeader")


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
def test_each_client_owns_its_memos(client_type: type[Client] | type[AsyncClient]) -> None:
    settings = {"region": "us-east-1", "credentials": ("AKID", "secret"), "endpoint_url": "http://127.0.0.1:9"}
    first, second = client_type(**settings), client_type(**settings)
    try:
        assert first.options.signer is not second.options.signer
        for operation in ("InvokeEndpoint", "InvokeEndpointWithResponseStream", "InvokeEndpointAsync"):
            ours, theirs = first.stack(operation), second.stack(operation)
            for holder in MEMO_HOLDERS:
                step = "serialize" if holder in ("ResolveEndpoint", "OperationSerializer") else None
                mine = _find(ours, holder, step)
                assert mine is not None and mine is not _find(theirs, holder, step), (operation, holder)
    finally:
        for client in (first, second):
            if isinstance(client, Client):
                client.close()


def _find(stack: object, holder: str, step: str | None) -> object:
    for name in ([step] if step else ["initialize", "serialize", "build", "finalize", "deserialize"]):
        found = getattr(stack, name).get(holder)
        if found is not None:
            return found
    return None
