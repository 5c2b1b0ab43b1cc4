"""Shared by the async inference tests: moto's server on a loopback port, and a clean AWS environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import botocore.session
from moto.server import ThreadedMotoServer

from tests.integration.aws_env import REGION, S3_KEYS, isolate_aws_env

__all__ = ["REGION", "S3_KEYS", "isolate_aws_env", "running_moto", "s3_client"]


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """moto's server on a free loopback port; yields its URL and stops it afterwards."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(url: str) -> Any:
    """A botocore S3 client for moto's server (closed by the caller)."""
    return botocore.session.Session().create_client(
        "s3", region_name=REGION, endpoint_url=url, aws_access_key_id=S3_KEYS[0], aws_secret_access_key=S3_KEYS[1]
    )
