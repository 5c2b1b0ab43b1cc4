"""The package's import graph: no cycles, and a middleware framework that knows nothing of AWS.

Read with ``ast``, three ways: the module-level imports (what runs at import time: an import in
a function runs when it is called, one under ``if TYPE_CHECKING:`` never), then with the
deferred imports too, then with the type-only ones too; none may have a cycle (but for the few
deliberate edges listed below).
"""

from __future__ import annotations

import ast

from tests.package_modules import MODULES

PACKAGE = "smruntime"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


Import = tuple[ast.Import | ast.ImportFrom, bool]
"""An import statement, and whether it is only for the type checker."""


def _imports(tree: ast.Module, *, deferred: bool = False, typing: bool = False) -> list[Import]:
    """Imports that run when the module is imported; with ``deferred``, also those that run
    later, inside functions; with ``typing``, also those under ``if TYPE_CHECKING:``."""
    found: list[Import] = []

    def visit(body: list[ast.stmt], type_only: bool = False) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append((node, type_only))
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body, type_only)
                elif typing:
                    visit(node.body, True)
                visit(node.orelse, type_only)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if deferred:
                    visit(node.body, type_only)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []), type_only)
                for case in getattr(node, "cases", []):
                    visit(case.body, type_only)

    visit(tree.body)
    return found


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _ancestors(module: str) -> set[str]:
    """A module's enclosing packages: importing it runs their ``__init__`` first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _targets(module: str, node: ast.Import | ast.ImportFrom, type_only: bool = False) -> set[str]:
    """The package's modules that ``node`` runs when ``module`` is imported.

    Importing ``a.b.c`` runs the packages ``a.b`` and ``a.b.c``; the top package and the
    importer's own enclosing packages are left out (they are already being imported, as for any
    submodule of a package), so an edge is a real import-time dependency. An import only for the
    type checker runs nothing: its edge goes to the module that defines the names alone.
    """
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = _package_of(module).split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # ``from pkg import name`` imports the submodule ``pkg.name`` when there is one.
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    skip = {PACKAGE, module, *_ancestors(module)}
    targets: set[str] = set()
    for name in names:
        parts = name.split(".")
        found = [".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in MODULES]
        targets.update(t for t in (found[-1:] if type_only else found) if t not in skip)
    return targets


def _graph(*, deferred: bool = False, typing: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: set[str] = set()
        for node, type_only in _imports(tree, deferred=deferred, typing=typing):
            edges |= _targets(module, node, type_only)
        graph[module] = edges
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        path.append(node)
        for target in sorted(graph[node]):
            if colour[target] == GREY:
                return [*path[path.index(target) :], target]
            if colour[target] == WHITE:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# Edges that may close a cycle because the import is deferred to first use on purpose.
DEFERRED_BY_DESIGN = {
    # invoke_many and the bulk helpers are built on the clients: loaded when first used.
    ("smruntime.client", "smruntime.bulk"),
    ("smruntime.client", "smruntime.bulk.threaded"),
    ("smruntime.async_client", "smruntime.bulk.tasks"),
    ("smruntime.client_methods", "smruntime.bulk"),
    ("smruntime.client_methods", "smruntime.bulk.scheduler"),
    # The batch command is loaded when it runs; it reuses the CLI's client options.
    ("smruntime.cli", "smruntime.batch_cli"),
    # Adaptive mode's retryer extends the standard one; new_retryer loads it when first asked for.
    ("smruntime.retry.policy", "smruntime.retry.adaptive"),
}


def test_no_cycle_is_hidden_by_deferring_an_import() -> None:
    """An import moved into a function to dodge a cycle still makes one: count those too."""
    graph = _graph(deferred=True)
    for source, target in DEFERRED_BY_DESIGN:
        graph[source].discard(target)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle through a deferred import: " + " -> ".join(cycle or [])


# Type-only references both ways, by design (neither is imported at run time).
TYPED_BOTH_WAYS = {
    # The tracing middleware is configured by the Telemetry that installs it.
    ("smruntime.otel.middleware", "smruntime.otel.instrument"),
    # The typed stack names Options for every middleware's ctx; Options in turn names the
    # signer, retryer, resolver and log-mode types whose modules hold middleware.
    ("smruntime.stack_types", "smruntime.options"),
}


def test_no_cycle_even_in_type_only_imports() -> None:
    """A module that only names another's types still depends on it: no cycle there either
    (options names the retryer and signer protocols, and the middleware that read options must
    not be where those protocols live)."""
    graph = _graph(deferred=True, typing=True)
    for source, target in DEFERRED_BY_DESIGN | TYPED_BOTH_WAYS:
        graph[source].discard(target)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle counting type-only imports: " + " -> ".join(cycle or [])


def test_the_graph_sees_real_imports() -> None:
    graph = _graph()
    assert "smruntime.middleware" in graph["smruntime.client"]
    assert "smruntime.errors" in graph["smruntime.client"]
    deferred = _graph(deferred=True)
    assert "smruntime.local.container" not in graph["smruntime.local.model_refs"]
    assert "smruntime.local.container" in deferred["smruntime.local.model_refs"]


def test_the_middleware_framework_imports_nothing_outside_itself() -> None:
    graph = _graph()
    framework = {m for m in graph if m == "smruntime.middleware" or m.startswith("smruntime.middleware.")}
    outside = {m: sorted(graph[m] - framework) for m in sorted(framework)}
    assert {m: found for m, found in outside.items() if found} == {}
    for module in sorted(framework):
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        said = [text for text in _strings_said(tree) if "SageMaker" in text or "AWS" in text]
        assert said == [], f"{module} speaks of AWS in its messages: {said}"


def _strings_said(tree: ast.Module) -> list[str]:
    """The string literals a module may show at run time: every one but its docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


# Every public name of a module that was split or moved, still importable from where it was.
KEPT_NAMES = {
    "smruntime.auth": [
        "ALGORITHM", "ANONYMOUS", "DEFAULT_SIGNING_NAME", "EMPTY_SHA256", "TERMINATOR", "UNSIGNED_HEADERS",
        "UNSIGNED_PAYLOAD", "AnonymousCredentials", "Authorization", "BotocoreCredentialsProvider",
        "ComputePayloadHash", "Credentials", "CredentialsProvider", "DefaultCredentialsProvider", "HTTPSigner",
        "SigV4Signer", "Signing", "SigningKey", "SigningKeyCache", "SigningTrace", "StaticCredentialsProvider",
        "canonical_query", "canonical_request", "canonical_uri", "compute_signature", "credential_scope",
        "credentials_provider", "format_amz_date", "format_authorization", "parse_authorization",
        "payload_sha256", "signing_key", "string_to_sign",
    ],
    "smruntime.retry": [
        "CLOCK_SKEW_CODES", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_MAX_BACKOFF", "DEFAULT_RETRY_TOKENS",
        "INVOCATION_ID_HEADER", "NO_RETRY_INCREMENT", "RETRY_COST", "RETRY_METRICS_HEADER", "SIGNATURE_CODES",
        "SKEW_THRESHOLD", "THROTTLING_CODES", "TIMEOUT_RETRY_COST", "TRANSIENT_CODES", "AdaptiveRetryer",
        "AsyncSleep", "ClientRateLimiter", "ClientRequestID", "ClockOffset", "NoRetryer", "ReleaseToken", "Retry",
        "RetryMetricsHeader", "RetryQuota", "Retryer", "StandardRetryer", "async_sleep_of", "new_retryer",
        "reserve_attempt",
    ],
    "smruntime.options": ["LogMode", "Options"],
    "smruntime.endpoints": ["DEFAULT_SIGNING_NAME", "Endpoint", "ResolveEndpoint", "StaticEndpointResolver"],
    "smruntime.local.app": ["Accepted", "LocalApp", "accept_call", "busy_app", "create_app", "error_response",
                            "wire_response"],
}


def test_split_modules_keep_their_public_names() -> None:
    import importlib

    missing = [
        f"{module}.{name}"
        for module, names in KEPT_NAMES.items()
        for name in names
        if not hasattr(importlib.import_module(module), name)
    ]
    assert missing == []
    for module in ("smruntime.auth", "smruntime.retry"):
        exported = importlib.import_module(module).__all__
        assert set(exported) <= set(KEPT_NAMES[module]), module
