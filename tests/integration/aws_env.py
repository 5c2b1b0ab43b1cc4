"""An AWS environment for tests: explicit keys and region, nothing read from the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

REGION = "us-east-1"
S3_KEYS = ("AKIDS3TEST", "s3-test-secret")
"""What the local endpoint's S3 client finds in the environment (moto accepts any key)."""


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
