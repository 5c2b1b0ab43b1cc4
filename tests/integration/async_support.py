"""Shared by the async inference tests: moto's server on a loopback port, and a clean AWS environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
S3_KEYS = ("AKIDS3TEST", "s3-test-secret")
"""What the local endpoint's S3 client finds in the environment (moto accepts any key)."""


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


def isolate_aws_env(patch: pytest.MonkeyPatch, scratch: Path, keys: tuple[str, str] = S3_KEYS) -> None:
    """Environment credentials and region only: no profile, config file, IMDS or endpoint override."""
    patch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    patch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    patch.setenv("AWS_REGION", REGION)
    patch.setenv("AWS_CONFIG_FILE", str(scratch / "aws-config"))
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "aws-credentials"))
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"):
        patch.delenv(name, raising=False)


def s3_client(url: str) -> Any:
    """A botocore S3 client for moto's server (closed by the caller)."""
    return botocore.session.Session().create_client(
        "s3", region_name=REGION, endpoint_url=url, aws_access_key_id=S3_KEYS[0], aws_secret_access_key=S3_KEYS[1]
    )
