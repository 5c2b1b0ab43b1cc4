"""Serializers and deserializers give what the sagemaker SDK's give on the same inputs.

The golden file holds the outputs of sagemaker-core 2.27.0's serializer and deserializer
modules (``sagemaker/core/serializers/base.py``, ``deserializers/base.py``) for the inputs
below, made once in a separate environment: the SDK itself is far too heavy to install here.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smruntime import deserializers as d
from smruntime import serializers as s

GOLDEN = json.loads((Path(__file__).parent / "sagemaker_serializer_golden.json").read_text("utf-8"))

SERIALIZERS: dict[str, Any] = {
    "json": s.JSONSerializer(), "csv": s.CSVSerializer(), "npy": s.NumpySerializer(),
    "npy-float32": s.NumpySerializer(dtype="float32"), "jsonlines": s.JSONLinesSerializer(),
    "identity": s.IdentitySerializer(), "string": s.StringSerializer(),
}
DESERIALIZERS: dict[str, Any] = {
    "json": d.JSONDeserializer(), "csv": d.CSVDeserializer(), "jsonlines": d.JSONLinesDeserializer(),
    "string": d.StringDeserializer(), "bytes": d.BytesDeserializer(), "numpy": d.NumpyDeserializer(),
}


def serialize_cases() -> dict[str, tuple[str, Any]]:
    return {
        "json/dict": ("json", {"a": 1, "b": [1, 2.5], "c": None, "d": "é"}),
        "json/list": ("json", [1, 2.5, "x", True]),
        "json/str": ("json", "hello"),
        "json/ndarray": ("json", np.array([[1, 2], [3, 4]])),
        "json/dict-of-ndarray": ("json", {"inputs": np.array([0.5, 1.5]), "k": 3}),
        "csv/row": ("csv", [1, 2, 3]),
        "csv/rows": ("csv", [[1, 2], [3, 4.5]]),
        "csv/str": ("csv", "a,b\nc,d"),
        "csv/quoted": ("csv", ["a,b", 'say "hi"', "plain"]),
        "csv/floats": ("csv", [0.1, 1e-07, 123456789.0, -0.0]),
        "csv/ndarray-2d": ("csv", np.array([[1.5, 2.0], [3.0, 4.0]])),
        "csv/ndarray-1d": ("csv", np.array([1, 2, 3])),
        "csv/tuple": ("csv", (1, 2, 3)),
        "npy/list": ("npy", [1, 2, 3]),
        "npy/list-float32": ("npy-float32", [1, 2, 3]),
        "npy/ndarray": ("npy", np.array([[1.0, 2.0], [3.0, 4.0]])),
        "npy/scalar": ("npy", 5),
        "jsonlines/records": ("jsonlines", [{"a": 1}, {"b": [2, 3]}, "s"]),
        "jsonlines/str": ("jsonlines", '{"a": 1}\n{"b": 2}'),
        "identity/bytes": ("identity", b"\x00\x01raw"),
        "string/str": ("string", "héllo"),
    }


def npy_body() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2], [3, 4]], dtype=np.int32))
    return buffer.getvalue()


def deserialize_cases() -> dict[str, tuple[str, bytes, str]]:
    return {
        "json/object": ("json", b'{"a": [1, 2], "b": "\\u00e9"}', "application/json"),
        "csv/rows": ("csv", b"1,2\n3,4\n", "text/csv"),
        "csv/quoted": ("csv", b'"a,b",c\r\nd,"e ""f"""\r\n', "text/csv"),
        "jsonlines/records": ("jsonlines", b'{"a": 1}\n{"b": 2}\n\n', "application/jsonlines"),
        "string/utf8": ("string", "h\u00e9llo".encode(), "application/json"),
        "bytes/raw": ("bytes", b"\x00\xff", "application/octet-stream"),
        "numpy/npy": ("numpy", npy_body(), "application/x-npy"),
        "numpy/csv": ("numpy", b"1,2\n3,4", "text/csv"),
        "numpy/csv-float": ("numpy", b"1.5,2\n3,4.25\n", "text/csv"),
        "numpy/json": ("numpy", b"[[1, 2], [3, 4]]", "application/json"),
    }


def test_every_golden_case_is_tested() -> None:
    assert set(GOLDEN["serialize"]) == set(serialize_cases())
    assert set(GOLDEN["deserialize"]) == set(deserialize_cases())


@pytest.mark.parametrize("name", sorted(serialize_cases()))
def test_serializers_send_the_sagemaker_sdks_bytes_and_content_type(name: str) -> None:
    kind, data = serialize_cases()[name]
    serializer = SERIALIZERS[kind]
    body = serializer.serialize(data)
    sent = body.encode("utf-8") if isinstance(body, str) else body  # the client sends str as UTF-8
    assert sent == base64.b64decode(GOLDEN["serialize"][name]["body"])
    assert serializer.content_type == GOLDEN["serialize"][name]["content_type"]


def plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"ndarray": {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.tolist()}}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    return value


@pytest.mark.parametrize("name", sorted(deserialize_cases()))
def test_deserializers_give_the_sagemaker_sdks_values_and_accept(name: str) -> None:
    kind, body, content_type = deserialize_cases()[name]
    deserializer = DESERIALIZERS[kind]
    assert plain(deserializer.deserialize(body, content_type)) == GOLDEN["deserialize"][name]["value"]
    accept = deserializer.accept
    assert [accept] if isinstance(accept, str) else list(accept) == GOLDEN["deserialize"][name]["accept"]


def test_a_file_is_sent_as_read() -> None:
    assert s.JSONSerializer().serialize(io.StringIO('{"a": 1}')) == '{"a": 1}'
    assert s.CSVSerializer().serialize(io.BytesIO(b"1,2")) == b"1,2"


def test_bad_input_is_refused_with_the_serializer_and_the_rule() -> None:
    with pytest.raises(ValueError, match="CSVSerializer: cannot write an empty row"):
        s.CSVSerializer().serialize([])
    with pytest.raises(ValueError, match="CSVSerializer: cannot write a int as a CSV row"):
        s.CSVSerializer().serialize(5)
    with pytest.raises(ValueError, match="NumpySerializer: cannot write an empty list"):
        s.NumpySerializer().serialize([])
    with pytest.raises(ValueError, match="StringSerializer: expected a str, got a bytes"):
        s.StringSerializer().serialize(b"x")
    with pytest.raises(ValueError, match="JSONLinesSerializer: a int is not an iterable"):
        s.JSONLinesSerializer().serialize(3)
    with pytest.raises(ValueError, match="NumpyDeserializer: cannot read content type 'text/plain'"):
        d.NumpyDeserializer().deserialize(b"1", "text/plain")


def test_pickled_arrays_load_only_when_allowed() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        d.NumpyDeserializer().deserialize(buffer.getvalue(), "application/x-npy")
    loaded = d.NumpyDeserializer(allow_pickle=True).deserialize(buffer.getvalue(), "application/x-npy")
    assert loaded.tolist() == [{"a": 1}]


def test_accept_header_joins_several_media_types() -> None:
    assert d.accept_header(("text/csv", "application/json")) == "text/csv, application/json"


def test_serializers_never_import_numpy_themselves() -> None:
    program = (
        "import sys, smruntime.serializers as s, smruntime.deserializers as d, smruntime.predictor\n"
        "assert s.JSONSerializer().serialize({'a': [1]}) == '{\"a\": [1]}'\n"
        "assert s.CSVSerializer().serialize([[1, 2], [3, 4]]) == '1,2\\n3,4'\n"
        "assert d.JSONDeserializer().deserialize(b'[1]', 'application/json') == [1]\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
