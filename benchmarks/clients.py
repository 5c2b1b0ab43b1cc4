"""The contenders, configured the same way wherever they appear.

- boto3: standard retry mode, credentials given, ``endpoint_url`` to the server;
- raw ``http.client``: one keep-alive connection, a POST with no signing at all (the floor);
- smruntime default: ``Client(region=…, credentials=…, endpoint_url=…)``, nothing else;
- smruntime fastest: the same with :class:`smruntime.transport.FastHTTPClient`.
"""

from __future__ import annotations

import http.client
import logging
from typing import Any, Callable
from urllib.parse import urlsplit

from benchmarks.common import ACCESS_KEY, REGION, SECRET_KEY

ENDPOINT_NAME = "bench"
BODY = b'{"inputs": [1, 2, 3]}'
CONTENT_TYPE = "application/json"

Call = Callable[[], bytes]


def boto3_client(url: str, *, max_pool_connections: int = 10) -> Any:
    import boto3
    import botocore.config

    # boto3 logs a warning for every connection its pool discards under many threads.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )
    config = botocore.config.Config(retries={"mode": "standard"}, max_pool_connections=max_pool_connections)
    return session.client("sagemaker-runtime", endpoint_url=url, config=config)


def boto3_call(client: Any) -> Call:
    def call() -> bytes:
        response = client.invoke_endpoint(EndpointName=ENDPOINT_NAME, Body=BODY, ContentType=CONTENT_TYPE)
        data: bytes = response["Body"].read()
        return data

    return call


def smruntime_client(url: str | None, *, fast: bool = False, **fields: Any) -> Any:
    from smruntime import Client

    if fast:
        from smruntime.transport import FastHTTPClient

        fields["http_client"] = FastHTTPClient(max_pool_connections=fields.get("max_pool_connections", 10))
    return Client(region=REGION, credentials=(ACCESS_KEY, SECRET_KEY), endpoint_url=url, **fields)


def smruntime_call(client: Any) -> Call:
    def call() -> bytes:
        data: bytes = client.invoke_endpoint(endpoint_name=ENDPOINT_NAME, body=BODY, content_type=CONTENT_TYPE).body
        return data

    return call


class RawHTTP:
    """One keep-alive ``http.client`` connection: a POST and its whole body per call."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.path = f"/endpoints/{ENDPOINT_NAME}/invocations"
        self.headers = {"Content-Type": CONTENT_TYPE}

    def __call__(self) -> bytes:
        self.connection.request("POST", self.path, body=BODY, headers=self.headers)
        return self.connection.getresponse().read()

    def close(self) -> None:
        self.connection.close()
