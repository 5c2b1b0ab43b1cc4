"""The published event-signing vectors in ``vectors/event-signing/``.

The Go vectors feed raw header and payload bytes (not encoded frames) through the chain, the
empty end frame included; the smithy-rs vector checks the string to sign of one encoded event.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smruntime.auth import credential_scope, format_amz_date, signing_key
from smruntime.event_signing import event_signature, event_string_to_sign
from smruntime.eventstream import Timestamp, encode_message

VECTORS = Path(__file__).parent / "vectors" / "event-signing" / "event_signing_vectors.json"


def _load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text())
    return loaded


def test_go_stream_signer_chain() -> None:
    case = _load()["aws-sdk-go-v2 TestStreamSigner_GetSignature"]
    prior = case["seed_signature_hex"]
    for event in case["events"]:
        amz_date = format_amz_date(datetime.fromtimestamp(event["time"], UTC))
        key = signing_key(case["secret_access_key"], amz_date[:8], case["region"], case["service"])
        signature = event_signature(
            key=key,
            amz_date=amz_date,
            scope=credential_scope(amz_date[:8], case["region"], case["service"]),
            prior_signature=prior,
            date_header=event["headers"].encode(),
            payload=event["payload"].encode(),
        )
        assert signature.hex() == event["signature"]
        prior = signature.hex()


def test_smithy_rs_string_to_sign() -> None:
    case = _load()["smithy-rs event_stream string_to_sign"]
    when = datetime.fromtimestamp(case["time"], UTC)
    amz_date = format_amz_date(when)
    date_frame = encode_message({":date": Timestamp.from_datetime(when)})
    sts = event_string_to_sign(
        amz_date=amz_date,
        scope=credential_scope(amz_date[:8], case["region"], case["service"]),
        prior_signature=hashlib.sha256(case["prior_signature_of"].encode()).hexdigest(),
        date_header=date_frame[12:-4],
        payload=bytes.fromhex(case["message_hex"]),
    )
    assert sts == case["string_to_sign"]
