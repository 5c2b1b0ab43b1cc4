"""InvokeEndpointWithBidirectionalStream's input rules, checked before any I/O."""

from __future__ import annotations

import pytest

from smruntime.errors import InvalidParamsError
from smruntime.operations.bidirectional_stream_input import BidirectionalStreamInput, request_headers, validate


def test_a_full_valid_input_passes_and_binds_its_headers() -> None:
    params = BidirectionalStreamInput("my-endpoint", "variant-1", "v1/listen", "model=nova-3&lang=en%2DUS")
    validate(params)
    assert request_headers(params) == {
        "content-type": "application/vnd.amazon.eventstream",
        "x-amzn-sagemaker-target-variant": "variant-1",
        "x-amzn-sagemaker-model-invocation-path": "v1/listen",
        "x-amzn-sagemaker-model-query-string": "model=nova-3&lang=en%2DUS",
    }


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        (BidirectionalStreamInput(""), "endpoint_name", "length"),
        (BidirectionalStreamInput("bad_name"), "endpoint_name", "pattern"),
        (BidirectionalStreamInput("e" * 64), "endpoint_name", "length"),
        (BidirectionalStreamInput("e", target_variant="-x"), "target_variant", "pattern"),
        (BidirectionalStreamInput("e", model_invocation_path="/v1"), "model_invocation_path", "pattern"),
        (BidirectionalStreamInput("e", model_invocation_path="a" * 101), "model_invocation_path", "length"),
        (BidirectionalStreamInput("e", model_query_string="a=b c"), "model_query_string", "pattern"),
        (BidirectionalStreamInput("e", model_query_string="=b"), "model_query_string", "pattern"),
        (BidirectionalStreamInput("e", model_query_string="a=%zz"), "model_query_string", "pattern"),
    ],
)
def test_each_broken_rule_names_its_field(params: BidirectionalStreamInput, field: str, rule: str) -> None:
    with pytest.raises(InvalidParamsError) as raised:
        validate(params)
    assert [(p.field, p.rule) for p in raised.value.problems] == [(field, rule)]


def test_every_problem_is_reported_at_once_in_member_order() -> None:
    with pytest.raises(InvalidParamsError) as raised:
        validate(BidirectionalStreamInput("bad_name", model_query_string="?", model_invocation_path="/"))
    assert [p.field for p in raised.value.problems] == ["endpoint_name", "model_invocation_path", "model_query_string"]
