"""A Predictor: one endpoint, a serializer and a deserializer, bound to a client.

The sagemaker SDK's ``Predictor`` habits (``predict(data)`` in, Python data out) on
smruntime's client, without the SDK::

    predictor = Predictor(client, "my-endpoint", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    answer = predictor.predict({"inputs": "hello"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncGenerator, Generator, Literal

import attrs

from smruntime.deserializers import BytesDeserializer, Deserializer, accept_header
from smruntime.middleware.reprs import fields_repr
from smruntime.serializers import IdentitySerializer, Serializer

if TYPE_CHECKING:
    from smruntime.client import Client

StreamSplit = Literal["lines", "parts"]


@attrs.define(eq=False)
class Predictor:
    """Calls ``endpoint_name`` through ``client``: serializes the data, sets ``content_type``
    and ``accept`` from the serializer and deserializer, and deserializes the answer.

    ``stream_deserializer`` decodes each line (or part) of :meth:`predict_stream`; by default
    each comes as bytes. Keyword arguments of :meth:`predict` (``target_model``,
    ``target_variant``, ``inference_component_name``, ``custom_attributes``…) go to the
    call as the client's own keywords.
    """

    __repr__ = fields_repr

    client: Client
    endpoint_name: str
    serializer: Serializer = attrs.field(factory=IdentitySerializer)
    deserializer: Deserializer = attrs.field(factory=BytesDeserializer)
    stream_deserializer: Deserializer = attrs.field(factory=BytesDeserializer)

    def predict(self, data: Any, **call: Any) -> Any:
        """InvokeEndpoint with the serialized ``data``; the deserialized answer."""
        out = self.client.invoke_endpoint(
            endpoint_name=self.endpoint_name,
            body=self.serializer.serialize(data),
            **self._media(call, self.deserializer),
            **call,
        )
        return self.deserializer.deserialize(out.body, out.content_type)

    def predict_stream(self, data: Any, *, split: StreamSplit = "lines", **call: Any) -> Generator[Any, None, None]:
        """InvokeEndpointWithResponseStream with the serialized ``data``: each non-blank line
        (``split="lines"``, re-joined across parts) or each part (``"parts"``), deserialized by ``stream_deserializer``.

        The call is made at once (errors before the first event raise here); the stream is
        closed when the iterator is exhausted, fails or is closed.
        """
        _check_split(split)
        stream = self.client.invoke_endpoint_with_response_stream(
            endpoint_name=self.endpoint_name,
            body=self.serializer.serialize(data),
            **self._media(call, self.stream_deserializer),
            **call,
        )
        return _decoded(stream, split, self.stream_deserializer)

    def _media(self, call: dict[str, Any], deserializer: Deserializer) -> dict[str, Any]:
        return _media(self.serializer, call, deserializer)


@attrs.define(eq=False)
class AsyncPredictor:
    """:class:`Predictor` for an ``AsyncClient``: ``await predict(data)``, and
    ``async for item in await predict_stream(data)``."""

    __repr__ = fields_repr

    client: Any
    endpoint_name: str
    serializer: Serializer = attrs.field(factory=IdentitySerializer)
    deserializer: Deserializer = attrs.field(factory=BytesDeserializer)
    stream_deserializer: Deserializer = attrs.field(factory=BytesDeserializer)

    async def predict(self, data: Any, **call: Any) -> Any:
        """As :meth:`Predictor.predict`."""
        out = await self.client.invoke_endpoint(
            endpoint_name=self.endpoint_name,
            body=self.serializer.serialize(data),
            **_media(self.serializer, call, self.deserializer),
            **call,
        )
        return self.deserializer.deserialize(out.body, out.content_type)

    async def predict_stream(
        self, data: Any, *, split: StreamSplit = "lines", **call: Any
    ) -> AsyncGenerator[Any, None]:
        """As :meth:`Predictor.predict_stream`: the call is made when this is awaited; close the
        iterator (``aclose``) to drop a stream you stop reading."""
        _check_split(split)
        stream = await self.client.invoke_endpoint_with_response_stream(
            endpoint_name=self.endpoint_name,
            body=self.serializer.serialize(data),
            **_media(self.serializer, call, self.stream_deserializer),
            **call,
        )
        return _adecoded(stream, split, self.stream_deserializer)


def _check_split(split: str) -> None:
    if split not in ("lines", "parts"):
        raise ValueError(f"split must be 'lines' or 'parts', got {split!r}")


def _media(serializer: Serializer, call: dict[str, Any], deserializer: Deserializer) -> dict[str, Any]:
    """content_type and accept from the serializer and deserializer, unless the call names them."""
    media = {}
    if "content_type" not in call:
        media["content_type"] = serializer.content_type
    if "accept" not in call:
        media["accept"] = accept_header(deserializer.accept)
    return media


def _decoded(stream: Any, split: StreamSplit, deserializer: Deserializer) -> Generator[Any, None, None]:
    with stream:
        items = stream.lines() if split == "lines" else stream.payloads()
        content_type = stream.content_type
        for item in items:
            if item or split == "parts":  # blank lines separate records (as in server-sent events)
                yield deserializer.deserialize(item, content_type)


async def _adecoded(stream: Any, split: StreamSplit, deserializer: Deserializer) -> AsyncGenerator[Any, None]:
    async with stream:
        items = stream.lines() if split == "lines" else stream.payloads()
        content_type = stream.content_type
        async for item in items:
            if item or split == "parts":
                yield deserializer.deserialize(item, content_type)
