"""MockHTTPClient: an HTTP client that answers from a function, for users' unit tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from smruntime.http import BytesBody, Headers, HTTPRequest, HTTPResponse

__all__ = ["MockHTTPClient", "MockResult"]


MockResult = HTTPResponse | tuple[int, Mapping[str, str], bytes | str]


class MockHTTPClient:
    """An :class:`HTTPClient` that answers from a function, for unit tests of your own code.

    ``handler`` gets a copy of each request, with its body read into bytes. It returns an
    :class:`HTTPResponse` or a ``(status, headers, body)`` tuple. Every request sent is kept
    in ``requests``. An exception from the handler propagates out of ``send`` unchanged.

    Example::

        from smruntime import Client
        from smruntime.transport import MockHTTPClient

        def answer(request):
            return 200, {"Content-Type": "application/json"}, b'{"sum": 3}'

        mock = MockHTTPClient(answer)
        client = Client(region="us-east-1", http_client=mock, credentials=("AKID", "SECRET"))
        out = client.invoke_endpoint(endpoint_name="ep", body=b'{"numbers": [1, 2]}')
        assert out.body == b'{"sum": 3}'
        assert mock.requests[0].url.endswith("/endpoints/ep/invocations")
    """

    def __init__(self, handler: Callable[[HTTPRequest], MockResult]) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        body = request.body
        data = body if body is None or isinstance(body, bytes) else bytes(body.read())
        sent = HTTPRequest(request.method, request.url, request.headers.copy(), data)
        self.requests.append(sent)
        result = self.handler(sent.copy())
        if isinstance(result, HTTPResponse):
            return result
        status, headers, payload = result
        content = payload.encode("utf-8") if isinstance(payload, str) else payload
        return HTTPResponse(status, Headers(headers), BytesBody(content))

    def close(self) -> None:
        """Nothing to release."""
