"""The generic middleware framework (DESIGN §3): step rules, stack layout, call order, context.

Nothing here opens a socket: the terminal handler is a plain function that records what
reached it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smruntime import errors
from smruntime.http import HTTPRequest
from smruntime.middleware import (
    BuildInput,
    BuildOutput,
    BuildStep,
    Context,
    DeserializeInput,
    DeserializeOutput,
    DeserializeStep,
    FinalizeInput,
    FinalizeOutput,
    FinalizeStep,
    InitializeInput,
    InitializeOutput,
    InitializeStep,
    Metadata,
    MetadataKey,
    MiddlewareFunc,
    Next,
    Position,
    SerializeInput,
    SerializeOutput,
    SerializeStep,
    Stack,
    StackError,
    StackKey,
    Step,
    build_middleware,
    deserialize_middleware,
    finalize_middleware,
    initialize_middleware,
    serialize_middleware,
)

STEP_ATTRS = ("initialize", "serialize", "build", "finalize", "deserialize")
STEP_TYPES: tuple[type[Step[Any, Any]], ...] = (InitializeStep, SerializeStep, BuildStep, FinalizeStep, DeserializeStep)
STEP_NAMES = (
    "Initialize stack step",
    "Serialize stack step",
    "Build stack step",
    "Finalize stack step",
    "Deserialize stack step",
)


# --- helpers -------------------------------------------------------------------------------


@attrs.define(eq=False)
class Named:
    """A pass-through middleware that only has an ID (eq=False: tests compare by identity)."""

    id: str

    def handle(self, ctx: Context, in_: Any, next: Next[Any, Any]) -> Any:
        return next(ctx, in_)


@attrs.define(eq=False)
class Recorder:
    """Records ``>id`` on the way in and ``<id`` on the way out."""

    id: str
    trace: list[str]

    def handle(self, ctx: Context, in_: Any, next: Next[Any, Any]) -> Any:
        self.trace.append(f">{self.id}")
        out = next(ctx, in_)
        self.trace.append(f"<{self.id}")
        return out


@attrs.define
class Terminal:
    """A fake HTTP client: records every request and answers with a fixed raw response."""

    response: Any = "raw-response"
    requests: list[Any] = attrs.field(factory=list)
    trace: list[str] | None = None

    def __call__(self, ctx: Context, request: Any) -> Any:
        self.requests.append(request)
        if self.trace is not None:
            self.trace.append("terminal")
        return self.response


def new_ctx() -> Context:
    return Context("TestOperation", "Test Service")


def step_with(step_type: type[Step[Any, Any]], *ids: str) -> Step[Any, Any]:
    step = step_type()
    for mw_id in ids:
        step.add(Named(mw_id))
    return step


@pytest.fixture(params=STEP_TYPES, ids=lambda t: t.__name__)
def step_type(request: pytest.FixtureRequest) -> type[Step[Any, Any]]:
    step_type: type[Step[Any, Any]] = request.param
    return step_type


# --- Position --------------------------------------------------------------------------------


@pytest.mark.parametrize(("member", "value"), [(Position.AFTER, 0), (Position.BEFORE, 1)])
def test_position_values_match_go_after_is_the_zero_value(member: Position, value: int) -> None:
    assert member == value
    assert Position(value) is member


def test_position_members() -> None:
    assert [p.name for p in Position] == ["AFTER", "BEFORE"]


# --- step mutations: the happy paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("adds", "expected"),
    [
        ([("A", None), ("B", None), ("C", None)], ["A", "B", "C"]),
        ([("A", Position.AFTER), ("B", Position.AFTER)], ["A", "B"]),
        ([("A", Position.BEFORE), ("B", Position.BEFORE)], ["B", "A"]),
        ([("A", None), ("B", Position.BEFORE), ("C", Position.AFTER)], ["B", "A", "C"]),
    ],
    ids=["default-is-after", "after-appends", "before-prepends", "mixed"],
)
def test_add_appends_after_and_prepends_before(
    step_type: type[Step[Any, Any]], adds: list[tuple[str, Position | None]], expected: list[str]
) -> None:
    step = step_type()
    for mw_id, position in adds:
        if position is None:
            step.add(Named(mw_id))
        else:
            step.add(Named(mw_id), position)
    assert step.list() == expected


@pytest.mark.parametrize(
    ("relative_to", "position", "expected"),
    [
        ("A", Position.BEFORE, ["X", "A", "B", "C"]),
        ("A", Position.AFTER, ["A", "X", "B", "C"]),
        ("B", Position.BEFORE, ["A", "X", "B", "C"]),
        ("B", Position.AFTER, ["A", "B", "X", "C"]),
        ("C", Position.BEFORE, ["A", "B", "X", "C"]),
        ("C", Position.AFTER, ["A", "B", "C", "X"]),
    ],
)
def test_insert_places_next_to_relative_to(
    step_type: type[Step[Any, Any]], relative_to: str, position: Position, expected: list[str]
) -> None:
    step = step_with(step_type, "A", "B", "C")
    step.insert(Named("X"), relative_to, position)
    assert step.list() == expected


def test_insert_default_position_is_after() -> None:
    step = step_with(BuildStep, "A", "B")
    step.insert(Named("X"), "A")
    assert step.list() == ["A", "X", "B"]


def test_swap_same_id_keeps_position_and_returns_old(step_type: type[Step[Any, Any]]) -> None:
    step = step_with(step_type, "A", "B", "C")
    old = step.get("B")
    new = Named("B")
    assert step.swap("B", new) is old
    assert step.list() == ["A", "B", "C"]
    assert step.get("B") is new


def test_swap_to_a_new_id_keeps_position_and_returns_old(step_type: type[Step[Any, Any]]) -> None:
    step = step_with(step_type, "A", "B", "C")
    old = step.get("B")
    assert step.swap("B", Named("Y")) is old
    assert step.list() == ["A", "Y", "C"]
    assert step.get("B") is None


def test_remove_returns_removed(step_type: type[Step[Any, Any]]) -> None:
    step = step_with(step_type, "A", "B", "C")
    b = step.get("B")
    assert step.remove("B") is b
    assert step.list() == ["A", "C"]
    # The ID is free again once removed.
    step.add(Named("B"), Position.BEFORE)
    assert step.list() == ["B", "A", "C"]


def test_get_returns_the_middleware_or_none(step_type: type[Step[Any, Any]]) -> None:
    step = step_type()
    a = Named("A")
    step.add(a)
    assert step.get("A") is a
    assert step.get("missing") is None
    assert step.get("") is None


def test_list_len_contains_and_iter(step_type: type[Step[Any, Any]]) -> None:
    step = step_type()
    assert step.list() == []
    assert len(step) == 0
    mws = [Named("A"), Named("B")]
    for mw in mws:
        step.add(mw)
    assert step.list() == ["A", "B"]
    assert len(step) == 2
    assert "A" in step
    assert "Z" not in step
    assert list(step) == mws


def test_iterating_a_step_is_a_snapshot() -> None:
    step = step_with(FinalizeStep, "A", "B")
    seen = []
    for mw in step:
        seen.append(mw.id)
        step.remove(mw.id)
    assert seen == ["A", "B"]
    assert step.list() == []


def test_clear_empties_the_step_and_frees_ids(step_type: type[Step[Any, Any]]) -> None:
    step = step_with(step_type, "A", "B")
    step.clear()
    assert step.list() == []
    assert step.get("A") is None
    step.add(Named("A"))
    assert step.list() == ["A"]


def test_list_returns_a_copy() -> None:
    step = step_with(InitializeStep, "A")
    step.list().append("B")
    assert step.list() == ["A"]


# --- step mutations: the strict rules --------------------------------------------------------

# (operation, message the StackError must contain). Every operation starts from ["A", "B"].
STRICT_RULES: list[tuple[str, Callable[[Step[Any, Any]], object], str]] = [
    ("add-empty-id", lambda s: s.add(Named("")), "ID must not be empty"),
    ("add-empty-id-before", lambda s: s.add(Named(""), Position.BEFORE), "ID must not be empty"),
    ("add-duplicate", lambda s: s.add(Named("A")), "already exists, A"),
    ("add-duplicate-before", lambda s: s.add(Named("B"), Position.BEFORE), "already exists, B"),
    ("insert-empty-id", lambda s: s.insert(Named(""), "A"), "insert ID must not be empty"),
    ("insert-empty-relative-to", lambda s: s.insert(Named("X"), ""), "relative to ID must not be empty"),
    ("insert-duplicate", lambda s: s.insert(Named("B"), "A"), "already exists, B"),
    ("insert-unknown-relative-to", lambda s: s.insert(Named("X"), "Nope"), "not found, Nope"),
    (
        "insert-unknown-relative-to-before",
        lambda s: s.insert(Named("X"), "Nope", Position.BEFORE),
        "not found, Nope",
    ),
    ("swap-empty-from", lambda s: s.swap("", Named("X")), "swap from ID must not be empty"),
    ("swap-empty-to", lambda s: s.swap("A", Named("")), "swap to ID must not be empty"),
    ("swap-unknown-id", lambda s: s.swap("Nope", Named("X")), "not found, Nope"),
    ("swap-to-existing-other-id", lambda s: s.swap("A", Named("B")), "already exists, B"),
    ("remove-empty-id", lambda s: s.remove(""), "remove ID must not be empty"),
    ("remove-unknown-id", lambda s: s.remove("Nope"), "not found, Nope"),
    ("add-invalid-position", lambda s: s.add(Named("X"), 7), "invalid position"),  # type: ignore[arg-type]
    ("insert-invalid-position", lambda s: s.insert(Named("X"), "A", 7), "invalid position"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("operation", "message"), [r[1:] for r in STRICT_RULES], ids=[r[0] for r in STRICT_RULES])
def test_strict_rules_raise_stack_error_and_leave_the_step_unchanged(
    step_type: type[Step[Any, Any]], operation: Callable[[Step[Any, Any]], object], message: str
) -> None:
    step = step_with(step_type, "A", "B")
    before = list(step)
    with pytest.raises(StackError, match=re.escape(message)):
        operation(step)
    assert list(step) == before


def test_a_duplicate_id_names_the_step_that_holds_it() -> None:
    step = step_with(BuildStep, "A", "B")
    with pytest.raises(StackError) as caught:
        step.add(Named("B"))
    assert str(caught.value) == "already exists, B: the Build stack step holds it (swap it, or remove it first)"


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.add(object()),
        lambda s: s.insert(object(), "A"),
        lambda s: s.swap("A", object()),
        lambda s: s.add(attrs.make_class("NumericId", {"id": attrs.field(default=3)})()),
    ],
    ids=["add", "insert", "swap", "non-string-id"],
)
def test_a_middleware_without_a_string_id_is_rejected(operation: Callable[[Step[Any, Any]], object]) -> None:
    step = step_with(SerializeStep, "A")
    with pytest.raises(StackError, match="has no string id"):
        operation(step)
    assert step.list() == ["A"]


def test_stack_error_is_a_library_error() -> None:
    # Callers catching the library's base error also catch stack rule violations, and the
    # framework's own StackError catches the client's.
    assert issubclass(errors.StackError, errors.SageMakerRuntimeError)
    assert issubclass(errors.StackError, StackError)


def test_a_clients_stack_raises_the_library_stack_error_naming_the_step_and_its_ids() -> None:
    from smruntime import Client

    with Client(region="us-east-1", credentials=("AKID", "secret")) as client:
        stack = client.stack("InvokeEndpoint")
    with pytest.raises(errors.SageMakerRuntimeError) as caught:
        stack.build.remove("NoSuch")
    assert isinstance(caught.value, errors.StackError)
    assert str(caught.value) == (
        "not found, NoSuch: the Build stack step holds "
        "ClientRequestID, ComputeContentLength, ComputePayloadHash, UserAgent"
    )


def test_an_empty_steps_not_found_message_says_it_is_empty() -> None:
    with pytest.raises(StackError, match="not found, X: the Finalize stack step holds no middleware"):
        FinalizeStep().remove("X")


# Differential check: any sequence of mutations matches a plain-list model of the strict rules.

_IDS = st.sampled_from(["A", "B", "C", "D"])
_POSITIONS = st.sampled_from([Position.AFTER, Position.BEFORE])
_OPS = st.one_of(
    st.tuples(st.just("add"), _IDS, _POSITIONS),
    st.tuples(st.just("insert"), _IDS, _IDS, _POSITIONS),
    st.tuples(st.just("swap"), _IDS, _IDS),
    st.tuples(st.just("remove"), _IDS),
    st.tuples(st.just("clear")),
)


def _model_apply(model: list[str], op: tuple[Any, ...]) -> bool:
    """Apply ``op`` to the list model; False when the strict rules reject it."""
    kind = op[0]
    if kind == "add":
        _, mw_id, pos = op
        if mw_id in model:
            return False
        model.insert(0 if pos is Position.BEFORE else len(model), mw_id)
    elif kind == "insert":
        _, mw_id, rel, pos = op
        if mw_id in model or rel not in model:
            return False
        model.insert(model.index(rel) + (pos is Position.AFTER), mw_id)
    elif kind == "swap":
        _, old_id, new_id = op
        if old_id not in model or (new_id != old_id and new_id in model):
            return False
        model[model.index(old_id)] = new_id
    elif kind == "remove":
        if op[1] not in model:
            return False
        model.remove(op[1])
    else:
        model.clear()
    return True


@given(st.lists(_OPS, max_size=25))
def test_mutations_match_a_list_model(ops: list[tuple[Any, ...]]) -> None:
    step: Step[Any, Any] = BuildStep()
    model: list[str] = []
    for op in ops:
        accepted = _model_apply(model, op)
        kind = op[0]
        try:
            if kind == "add":
                step.add(Named(op[1]), op[2])
            elif kind == "insert":
                step.insert(Named(op[1]), op[2], op[3])
            elif kind == "swap":
                step.swap(op[1], Named(op[2]))
            elif kind == "remove":
                step.remove(op[1])
            else:
                step.clear()
        except StackError:
            assert not accepted, op
        else:
            assert accepted, op
        assert step.list() == model


# --- the stack: layout -----------------------------------------------------------------------


def test_stack_has_five_named_steps_in_order() -> None:
    stack = Stack("Op")
    assert stack.id == "Op"
    steps = [getattr(stack, name) for name in STEP_ATTRS]
    assert [type(s) for s in steps] == list(STEP_TYPES)
    assert [s.name for s in steps] == list(STEP_NAMES)
    assert list(stack.steps) == steps


def test_stacks_do_not_share_steps() -> None:
    one, two = Stack("One"), Stack("Two")
    one.build.add(Named("A"))
    assert two.build.list() == []


def invoke_like_stack() -> Stack:
    stack = Stack("InvokeEndpoint")
    stack.initialize.add(Named("OperationInputValidation"))
    stack.initialize.add(Named("RegisterServiceMetadata"), Position.BEFORE)
    stack.serialize.add(Named("ResolveEndpoint"))
    stack.serialize.add(Named("OperationSerializer"))
    stack.finalize.add(Named("Retry"))
    stack.finalize.add(Named("Signing"))
    stack.deserialize.add(Named("OperationDeserializer"))
    return stack


def test_stack_list_layout() -> None:
    assert invoke_like_stack().list() == [
        "InvokeEndpoint",
        "Initialize stack step",
        "RegisterServiceMetadata",
        "OperationInputValidation",
        "Serialize stack step",
        "ResolveEndpoint",
        "OperationSerializer",
        "Build stack step",
        "Finalize stack step",
        "Retry",
        "Signing",
        "Deserialize stack step",
        "OperationDeserializer",
    ]


def test_empty_stack_list() -> None:
    assert Stack("Op").list() == ["Op", *STEP_NAMES]


def test_str_is_the_go_format_byte_for_byte() -> None:
    expected = (
        "InvokeEndpoint\n"
        "\tInitialize stack step\n"
        "\t\tRegisterServiceMetadata\n"
        "\t\tOperationInputValidation\n"
        "\tSerialize stack step\n"
        "\t\tResolveEndpoint\n"
        "\t\tOperationSerializer\n"
        "\tBuild stack step\n"
        "\tFinalize stack step\n"
        "\t\tRetry\n"
        "\t\tSigning\n"
        "\tDeserialize stack step\n"
        "\t\tOperationDeserializer\n"
    )
    assert str(invoke_like_stack()) == expected


def test_str_of_an_empty_stack() -> None:
    expected = (
        "Op\n"
        "\tInitialize stack step\n"
        "\tSerialize stack step\n"
        "\tBuild stack step\n"
        "\tFinalize stack step\n"
        "\tDeserialize stack step\n"
    )
    assert str(Stack("Op")) == expected


def test_str_escapes_newlines_and_carriage_returns_in_ids() -> None:
    stack = Stack("Op\nName")
    stack.build.add(Named("evil\nid\r"))
    expected = (
        "Op\\nName\n"
        "\tInitialize stack step\n"
        "\tSerialize stack step\n"
        "\tBuild stack step\n"
        "\t\tevil\\nid\\r\n"
        "\tFinalize stack step\n"
        "\tDeserialize stack step\n"
    )
    assert str(stack) == expected
    # list() reports IDs as they are; only the printed tree escapes them.
    assert "evil\nid\r" in stack.list()


def test_repr_names_the_stack_and_its_ids() -> None:
    stack = Stack("Op")
    stack.build.add(Named("A"))
    assert (
        repr(stack) == "Stack('Op', ['Initialize stack step', 'Serialize stack step', 'Build stack step', 'A', "
        "'Finalize stack step', 'Deserialize stack step'])"
    )
    assert repr(stack.build) == "BuildStep(['A'])"


@pytest.mark.parametrize(
    "cls",
    [
        InitializeInput,
        InitializeOutput,
        SerializeInput,
        SerializeOutput,
        BuildInput,
        BuildOutput,
        FinalizeInput,
        FinalizeOutput,
        DeserializeInput,
        DeserializeOutput,
        MiddlewareFunc,
    ],
)
def test_step_io_and_adapters_are_attrs_classes(cls: type) -> None:
    assert attrs.has(cls)


@pytest.mark.parametrize("cls", [Stack, *STEP_TYPES], ids=lambda c: c.__name__)
def test_stack_and_steps_are_attrs_classes(cls: type) -> None:
    assert attrs.has(cls)


def test_step_io_fields_and_defaults() -> None:
    assert attrs.asdict(SerializeInput("params", "req")) == {"parameters": "params", "request": "req"}
    assert attrs.asdict(DeserializeOutput("raw")) == {"raw_response": "raw", "result": None}
    assert [f.name for f in attrs.fields(InitializeInput)] == ["parameters"]
    for cls in (BuildInput, FinalizeInput, DeserializeInput):
        assert [f.name for f in attrs.fields(cls)] == ["request"]
    for out_cls in (InitializeOutput, SerializeOutput, BuildOutput, FinalizeOutput):
        assert [f.name for f in attrs.fields(out_cls)] == ["result"]


# --- the stack: call order and data flow -----------------------------------------------------


def test_call_order_through_all_steps() -> None:
    trace: list[str] = []
    stack = Stack("Op")
    for name in STEP_ATTRS:
        step = getattr(stack, name)
        step.add(Recorder(f"{name}2", trace))
        step.add(Recorder(f"{name}1", trace), Position.BEFORE)
    terminal = Terminal(trace=trace)

    stack.handler(terminal)(new_ctx(), "params")

    inward = [f">{name}{n}" for name in STEP_ATTRS for n in (1, 2)]
    outward = [f"<{name}{n}" for name in reversed(STEP_ATTRS) for n in (2, 1)]
    assert trace == [*inward, "terminal", *outward]


@pytest.mark.parametrize(
    "counts",
    [(1, 0, 1, 0, 1), (0, 1, 0, 1, 0), (1, 1, 1, 1, 1), (3, 0, 2, 0, 1)],
    ids=lambda counts: "-".join(map(str, counts)),
)
def test_call_order_with_empty_and_single_middleware_steps(counts: tuple[int, ...]) -> None:
    # Each step's first middleware is called by the hand-off itself; the order is the same.
    trace: list[str] = []
    stack = Stack("Op")
    for name, count in zip(STEP_ATTRS, counts, strict=True):
        for n in range(count):
            getattr(stack, name).add(Recorder(f"{name}{n}", trace))
    stack.handler(Terminal(trace=trace))(new_ctx(), "params")
    inward = [f">{name}{n}" for name, count in zip(STEP_ATTRS, counts, strict=True) for n in range(count)]
    outward = [f"<{name}{n}" for name, count in reversed(list(zip(STEP_ATTRS, counts, strict=True))) for n in reversed(range(count))]
    assert trace == [*inward, "terminal", *outward]


def test_every_middleware_sees_the_right_input_type_and_the_same_ctx() -> None:
    seen: list[tuple[str, type, Context]] = []
    stack = Stack("Op", new_request=lambda: "request")

    def spy(name: str) -> Callable[[Context, Any, Next[Any, Any]], Any]:
        def handle(ctx: Context, in_: Any, next: Next[Any, Any]) -> Any:
            seen.append((name, type(in_), ctx))
            return next(ctx, in_)

        return handle

    stack.initialize.add(initialize_middleware("I", spy("I")))
    stack.serialize.add(serialize_middleware("S", spy("S")))
    stack.build.add(build_middleware("B", spy("B")))
    stack.finalize.add(finalize_middleware("F", spy("F")))
    stack.deserialize.add(deserialize_middleware("D", spy("D")))
    ctx = new_ctx()

    stack.handler(Terminal())(ctx, "params")

    assert [(n, t) for n, t, _ in seen] == [
        ("I", InitializeInput),
        ("S", SerializeInput),
        ("B", BuildInput),
        ("F", FinalizeInput),
        ("D", DeserializeInput),
    ]
    assert all(c is ctx for _, _, c in seen)


def test_serialize_receives_the_parameters_and_a_fresh_request_per_call() -> None:
    made: list[HTTPRequest] = []

    def new_request() -> HTTPRequest:
        made.append(HTTPRequest())
        return made[-1]

    got: list[SerializeInput] = []

    def capture(ctx: Context, in_: SerializeInput, next: Next[SerializeInput, SerializeOutput]) -> SerializeOutput:
        got.append(in_)
        return next(ctx, in_)

    stack = Stack("Op", new_request=new_request)
    stack.serialize.add(serialize_middleware("Capture", capture))
    terminal = Terminal()
    chain = stack.handler(terminal)
    params = {"EndpointName": "e"}

    chain(new_ctx(), params)
    chain(new_ctx(), params)

    assert len(made) == 2
    assert made[0] is not made[1]
    assert [g.request for g in got] == made
    assert all(g.parameters is params for g in got)
    # The request Serialize got is the one that reaches the terminal.
    assert terminal.requests == made


def test_default_new_request_is_none() -> None:
    terminal = Terminal()
    Stack("Op").handler(terminal)(new_ctx(), "params")
    assert terminal.requests == [None]


def test_deserialize_output_carries_raw_response_and_result_until_set() -> None:
    seen: list[tuple[Any, Any]] = []

    def parse(
        ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]
    ) -> DeserializeOutput:
        out = next(ctx, in_)
        seen.append((out.raw_response, out.result))
        out.result = {"parsed": out.raw_response}
        return out

    def outer(
        ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]
    ) -> DeserializeOutput:
        out = next(ctx, in_)
        seen.append((out.raw_response, out.result))
        return out

    stack = Stack("Op")
    stack.deserialize.add(deserialize_middleware("Outer", outer))
    stack.deserialize.add(deserialize_middleware("Parse", parse))

    result = stack.handler(Terminal(response="raw"))(new_ctx(), "params")

    # The innermost (last listed) sees the raw response first, with no result yet.
    assert seen == [("raw", None), ("raw", {"parsed": "raw"})]
    assert result == {"parsed": "raw"}


def test_without_a_deserializer_the_stack_returns_none() -> None:
    assert Stack("Op").handler(Terminal(response="raw"))(new_ctx(), "params") is None


@pytest.mark.parametrize("step_name", ["initialize", "serialize", "build", "finalize"])
def test_results_flow_up_through_every_step(step_name: str) -> None:
    # Any step's middleware may replace the result on the way out; the caller sees it.
    def wrap(ctx: Context, in_: Any, next: Next[Any, Any]) -> Any:
        out = next(ctx, in_)
        out.result = ("wrapped", out.result)
        return out

    stack = Stack("Op")
    stack.deserialize.add(deserialize_middleware("Parse", _set_result("parsed")))
    getattr(stack, step_name).add(MiddlewareFunc("Wrap", wrap))

    assert stack.handler(Terminal())(new_ctx(), "params") == ("wrapped", "parsed")


def _set_result(value: Any) -> Callable[[Context, DeserializeInput, Next[DeserializeInput, DeserializeOutput]], Any]:
    def handle(ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]) -> Any:
        out = next(ctx, in_)
        out.result = value
        return out

    return handle


def test_a_middleware_may_pass_a_different_input_to_next() -> None:
    replacement = HTTPRequest(url="https://replaced.example")

    def replace(ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        return next(ctx, FinalizeInput(replacement))

    stack = Stack("Op", new_request=HTTPRequest)
    stack.finalize.add(finalize_middleware("Replace", replace))
    terminal = Terminal()

    stack.handler(terminal)(new_ctx(), "params")

    assert terminal.requests == [replacement]


SHORT_CIRCUITS: dict[str, Callable[[], Any]] = {
    "initialize": lambda: InitializeOutput("cached"),
    "serialize": lambda: SerializeOutput("cached"),
    "build": lambda: BuildOutput("cached"),
    "finalize": lambda: FinalizeOutput("cached"),
    "deserialize": lambda: DeserializeOutput(raw_response=None, result="cached"),
}


@pytest.mark.parametrize("step_name", STEP_ATTRS)
def test_a_middleware_may_answer_without_calling_next(step_name: str) -> None:
    trace: list[str] = []
    stack = Stack("Op")
    for name in STEP_ATTRS:
        getattr(stack, name).add(Recorder(f"{name}-before", trace))
    answer = SHORT_CIRCUITS[step_name]
    getattr(stack, step_name).add(MiddlewareFunc("Cache", lambda ctx, in_, next: answer()))
    for name in STEP_ATTRS:
        getattr(stack, name).add(Recorder(f"{name}-after", trace))
    terminal = Terminal(trace=trace)

    result = stack.handler(terminal)(new_ctx(), "params")

    assert result == "cached"
    assert terminal.requests == []
    # Earlier steps ran in full; in this step only what was listed before "Cache" ran.
    earlier = STEP_ATTRS[: STEP_ATTRS.index(step_name)]
    ran = [f"{n}-{when}" for n in earlier for when in ("before", "after")] + [f"{step_name}-before"]
    assert trace == [f">{i}" for i in ran] + [f"<{i}" for i in reversed(ran)]


# (mutation, the IDs the re-composed chain must run). The stack starts with A, B in Build.
MUTATIONS: list[tuple[str, Callable[[Stack, list[str]], object], list[str]]] = [
    ("add", lambda s, t: s.build.add(Recorder("C", t)), ["A", "B", "C"]),
    ("insert", lambda s, t: s.build.insert(Recorder("C", t), "A", Position.BEFORE), ["C", "A", "B"]),
    ("swap", lambda s, t: s.build.swap("A", Recorder("C", t)), ["C", "B"]),
    ("remove", lambda s, t: s.build.remove("A"), ["B"]),
    ("clear", lambda s, t: s.build.clear(), []),
    ("other-step", lambda s, t: s.finalize.add(Recorder("C", t)), ["A", "B", "C"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_a_composed_chain_is_a_snapshot(mutate: Callable[[Stack, list[str]], object], expected: list[str]) -> None:
    trace: list[str] = []
    stack = Stack("Op")
    stack.build.add(Recorder("A", trace))
    stack.build.add(Recorder("B", trace))
    before = stack.handler(Terminal())

    mutate(stack, trace)

    before(new_ctx(), "params")
    assert [t for t in trace if t.startswith(">")] == [">A", ">B"]
    trace.clear()
    stack.handler(Terminal())(new_ctx(), "params")
    assert [t for t in trace if t.startswith(">")] == [f">{i}" for i in expected]


def test_a_composed_chain_keeps_its_new_request_function() -> None:
    stack = Stack("Op", new_request=lambda: "first")
    chain = stack.handler(terminal := Terminal())
    stack.new_request = lambda: "second"
    chain(new_ctx(), "params")
    stack.handler(terminal)(new_ctx(), "params")
    assert terminal.requests == ["first", "second"]


def test_a_composed_chain_can_be_called_many_times() -> None:
    trace: list[str] = []
    stack = Stack("Op")
    stack.build.add(Recorder("A", trace))
    stack.deserialize.add(deserialize_middleware("Parse", _set_result("ok")))
    chain = stack.handler(Terminal())
    assert [chain(new_ctx(), "params") for _ in range(3)] == ["ok"] * 3
    assert trace == [">A", "<A"] * 3


class Boom(Exception):
    pass


@pytest.mark.parametrize("where", [*STEP_ATTRS, "terminal"])
def test_exceptions_propagate_unchanged(where: str) -> None:
    error = Boom("boom")
    trace: list[str] = []

    def fail(*args: Any) -> Any:
        raise error

    stack = Stack("Op")
    for name in STEP_ATTRS:
        getattr(stack, name).add(Recorder(name, trace))
        if name == where:
            getattr(stack, name).add(MiddlewareFunc("Fail", fail))
    terminal: Callable[[Context, Any], Any] = fail if where == "terminal" else Terminal()

    with pytest.raises(Boom) as excinfo:
        stack.handler(terminal)(new_ctx(), "params")

    assert excinfo.value is error
    # Nothing after the failure ran, and nobody saw a result on the way out.
    assert all(t.startswith(">") for t in trace)
    assert len(trace) == (len(STEP_ATTRS) if where == "terminal" else STEP_ATTRS.index(where) + 1)


def test_a_middleware_can_catch_what_the_rest_of_the_chain_raises() -> None:
    def fail(ctx: Context, request: Any) -> Any:
        raise Boom("transport down")

    def recover(ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        try:
            return next(ctx, in_)
        except Boom as exc:
            return FinalizeOutput(f"recovered from {exc}")

    stack = Stack("Op")
    stack.finalize.add(finalize_middleware("Recover", recover))
    assert stack.handler(fail)(new_ctx(), "params") == "recovered from transport down"


def test_values_flow_down_and_metadata_flows_up() -> None:
    region: StackKey[str] = StackKey("region")
    status: MetadataKey[int] = MetadataKey("status")
    seen: list[str | None] = []

    def set_region(
        ctx: Context, in_: InitializeInput, next: Next[InitializeInput, InitializeOutput]
    ) -> InitializeOutput:
        ctx.set(region, "us-east-1")
        return next(ctx, in_)

    def read_region(ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        seen.append(ctx.get(region))
        return next(ctx, in_)

    def record_status(
        ctx: Context, in_: DeserializeInput, next: Next[DeserializeInput, DeserializeOutput]
    ) -> DeserializeOutput:
        out = next(ctx, in_)
        ctx.metadata.set(status, out.raw_response)
        return out

    stack = Stack("Op")
    stack.initialize.add(initialize_middleware("SetRegion", set_region))
    stack.finalize.add(finalize_middleware("ReadRegion", read_region))
    stack.deserialize.add(deserialize_middleware("RecordStatus", record_status))
    ctx = new_ctx()

    stack.handler(Terminal(response=200))(ctx, "params")

    assert seen == ["us-east-1"]
    assert ctx.metadata.get(status) == 200


# --- function adapters -----------------------------------------------------------------------

ADAPTERS = [
    (initialize_middleware, "initialize", InitializeInput("p")),
    (serialize_middleware, "serialize", SerializeInput("p", "r")),
    (build_middleware, "build", BuildInput("r")),
    (finalize_middleware, "finalize", FinalizeInput("r")),
    (deserialize_middleware, "deserialize", DeserializeInput("r")),
]


@pytest.mark.parametrize(("adapter", "step_name", "in_"), ADAPTERS, ids=[a[1] for a in ADAPTERS])
def test_function_adapters_call_fn_with_ctx_input_and_next(adapter: Any, step_name: str, in_: Any) -> None:
    calls: list[tuple[Context, Any, Any]] = []

    def fn(ctx: Context, got: Any, next: Next[Any, Any]) -> Any:
        calls.append((ctx, got, next))
        return next(ctx, got)

    mw = adapter(f"{step_name}-mw", fn)
    assert mw.id == f"{step_name}-mw"
    assert isinstance(mw, MiddlewareFunc)

    ctx = new_ctx()
    fake_next_calls: list[Any] = []

    def fake_next(ctx: Context, got: Any) -> str:
        fake_next_calls.append(got)
        return "out"

    assert mw.handle(ctx, in_, fake_next) == "out"
    assert calls == [(ctx, in_, fake_next)]
    assert fake_next_calls == [in_]

    # And it goes in its own step like any other middleware.
    stack = Stack("Op")
    getattr(stack, step_name).add(mw)
    assert getattr(stack, step_name).list() == [f"{step_name}-mw"]


def test_adapter_middleware_is_frozen() -> None:
    mw = build_middleware("A", lambda ctx, in_, next: next(ctx, in_))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        mw.id = "B"  # type: ignore[misc]


# --- Context, Metadata, keys -----------------------------------------------------------------


def test_context_fields() -> None:
    options = object()
    ctx = Context("InvokeEndpoint", "SageMaker Runtime", options)
    assert (ctx.operation_name, ctx.service_id, ctx.options) == ("InvokeEndpoint", "SageMaker Runtime", options)
    bare = Context("Op")
    assert (bare.service_id, bare.options) == ("", None)
    assert isinstance(bare.metadata, Metadata)
    # Each context has its own metadata and values.
    other = Context("Op")
    assert other.metadata is not bare.metadata
    key: StackKey[int] = StackKey("k")
    bare.set(key, 1)
    assert not other.has(key)


def test_context_get_set_has_with_defaults() -> None:
    attempt: StackKey[int] = StackKey("attempt")
    ctx = new_ctx()
    assert not ctx.has(attempt)
    assert ctx.get(attempt) is None
    assert ctx.get(attempt, 1) == 1
    ctx.set(attempt, 3)
    assert ctx.has(attempt)
    assert ctx.get(attempt) == 3
    assert ctx.get(attempt, 1) == 3
    ctx.set(attempt, 4)
    assert ctx.get(attempt) == 4


def test_context_stores_falsy_values() -> None:
    flag: StackKey[bool] = StackKey("flag")
    ctx = new_ctx()
    ctx.set(flag, False)
    assert ctx.has(flag)
    assert ctx.get(flag, True) is False


def test_context_can_be_built_with_values() -> None:
    key: StackKey[str] = StackKey("k")
    ctx = Context("Op", values={key: "v"})
    assert ctx.get(key) == "v"


def test_context_repr_names_keys_but_never_values() -> None:
    secret: StackKey[str] = StackKey("session_token")
    ctx = new_ctx()
    ctx.set(secret, "super-secret-value")
    text = repr(ctx)
    assert "session_token" in text
    assert "super-secret-value" not in text


def test_metadata_get_set_has_as_dict() -> None:
    request_id: MetadataKey[str] = MetadataKey("request_id")
    attempts: MetadataKey[int] = MetadataKey("attempts")
    md = Metadata()
    assert not md.has(request_id)
    assert md.get(request_id) is None
    assert md.get(attempts, 0) == 0
    md.set(request_id, "abc")
    md.set(attempts, 2)
    assert md.has(request_id)
    assert md.get(request_id) == "abc"
    assert md.get(attempts, 0) == 2
    assert md.as_dict() == {"request_id": "abc", "attempts": 2}
    assert repr(md) == "Metadata({'request_id': 'abc', 'attempts': 2})"


def test_metadata_clone_is_independent() -> None:
    key: MetadataKey[str] = MetadataKey("k")
    other: MetadataKey[str] = MetadataKey("other")
    md = Metadata()
    md.set(key, "v")
    copy = md.clone()
    assert copy is not md
    assert copy.get(key) == "v"
    copy.set(key, "changed")
    copy.set(other, "new")
    md.set(key, "original")
    assert md.get(key) == "original"
    assert not md.has(other)
    assert copy.as_dict() == {"k": "changed", "other": "new"}


@pytest.mark.parametrize("key_type", [StackKey, MetadataKey])
def test_keys_compare_by_identity(key_type: type) -> None:
    one, two = key_type("same"), key_type("same")
    assert one != two
    assert one == one  # identity is the point
    assert len({one, two}) == 2
    assert repr(one) == f"{key_type.__name__}('same')"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.name = "other"


def test_two_stack_keys_with_the_same_name_are_different_keys() -> None:
    mine: StackKey[str] = StackKey("region")
    theirs: StackKey[str] = StackKey("region")
    ctx = new_ctx()
    ctx.set(mine, "mine")
    assert not ctx.has(theirs)
    assert ctx.get(theirs) is None
    ctx.set(theirs, "theirs")
    assert (ctx.get(mine), ctx.get(theirs)) == ("mine", "theirs")


def test_two_metadata_keys_with_the_same_name_are_different_keys() -> None:
    mine: MetadataKey[str] = MetadataKey("request_id")
    theirs: MetadataKey[str] = MetadataKey("request_id")
    md = Metadata()
    md.set(mine, "mine")
    assert not md.has(theirs)
    assert md.get(theirs) is None


# --- the DESIGN §3 example -------------------------------------------------------------------


def add_trace(stack: Stack) -> None:
    def handle(ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
        in_.request.headers["X-Amzn-SageMaker-Custom-Attributes"] = "trace_id=abc"
        return next(ctx, in_)

    stack.build.add(build_middleware("AddTrace", handle), Position.AFTER)


def test_design_example_add_trace() -> None:
    stack = Stack("InvokeEndpoint", new_request=HTTPRequest)
    stack.build.add(Named("ComputeContentLength"))
    add_trace(stack)
    terminal = Terminal()

    stack.handler(terminal)(new_ctx(), {"EndpointName": "e"})

    assert stack.build.list() == ["ComputeContentLength", "AddTrace"]
    assert "\t\tAddTrace\n\tFinalize stack step\n" in str(stack)
    [request] = terminal.requests
    assert isinstance(request, HTTPRequest)
    assert request.headers["x-amzn-sagemaker-custom-attributes"] == "trace_id=abc"
    assert dict(request.headers) == {"X-Amzn-SageMaker-Custom-Attributes": "trace_id=abc"}


def test_a_transform_may_override_ahandle_alone_and_keep_its_hooks_on_the_sync_chain() -> None:
    import asyncio

    from smruntime.middleware import Transform, compose, compose_async

    seen: list[str] = []

    class WaitsOnAsyncio(Transform[BuildInput, BuildOutput]):
        id = "WaitsOnAsyncio"

        def before(self, ctx: Context[Any], in_: BuildInput[Any]) -> BuildInput[Any]:
            seen.append("before")
            return in_

        async def ahandle(self, ctx: Context[Any], in_: BuildInput[Any], next: Any) -> BuildOutput[Any]:
            await asyncio.sleep(0)
            seen.append("ahandle")
            return await next(ctx, in_)  # type: ignore[no-any-return]

    stack = Stack("Op", HTTPRequest)
    stack.build.add(WaitsOnAsyncio())

    def terminal(ctx: Context[Any], request: HTTPRequest) -> None:
        seen.append("sent")

    async def aterminal(ctx: Context[Any], request: HTTPRequest) -> None:
        seen.append("sent")

    compose(stack, terminal)(Context("Op", "svc", None), None)
    assert seen == ["before", "sent"]
    seen.clear()
    asyncio.run(compose_async(stack, aterminal)(Context("Op", "svc", None), None))
    assert seen == ["ahandle", "sent"]
