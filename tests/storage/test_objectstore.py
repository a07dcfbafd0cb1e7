"""clearml_core.storage.objectstore's pieces for cloud drivers: SDKReader and ObjectTarget."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from clearml_core.storage.errors import StorageError, TransientStorageError
from clearml_core.storage.objectstore import ObjectTarget, SDKReader
from clearml_core.storage.url import parse_url


def _translate(error: BaseException, doing: str, *, endpoint: str) -> Exception:
    return TransientStorageError(f"cannot {doing} at {endpoint}: {error}")


@dataclass(frozen=True)
class _Location:
    url: Any


@dataclass(frozen=True)
class _Target(ObjectTarget):
    location: _Location
    endpoint: str

    translate_error = staticmethod(_translate)

    def error_context(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint}


def test_a_target_names_what_failed_on_which_url() -> None:
    target = _Target(_Location(parse_url("s3://bucket/key")), "http://127.0.0.1:9000")
    error = target.fail(ConnectionError("reset"), "read")
    assert isinstance(error, TransientStorageError)
    assert str(error) == "cannot read s3://bucket/key at http://127.0.0.1:9000: reset"


def test_chunks_of_any_size_read_as_one_stream() -> None:
    closed: list[bool] = []
    chunks = iter([b"ab", b"", b"cdefg", b"h"])
    reader = io.BufferedReader(SDKReader.from_chunks(chunks, StorageError, lambda: closed.append(True)), 3)
    assert reader.read(4) == b"abcd"
    assert reader.read() == b"efgh"
    reader.close()
    assert closed == [True]


def test_a_read_error_is_the_targets_storage_error() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise ConnectionError("reset by peer")

    target = _Target(_Location(parse_url("s3://bucket/key")), "http://127.0.0.1:9000")
    reader = io.BufferedReader(SDKReader.from_chunks(chunks(), lambda error: target.fail(error, "read")))
    with pytest.raises(TransientStorageError, match="cannot read s3://bucket/key .*reset by peer"):
        reader.read()


def test_a_body_with_read_ends_with_its_bytes() -> None:
    body = io.BytesIO(b"x" * 10)
    reader = SDKReader(body.read, StorageError, body.close)
    assert reader.readall() == b"x" * 10
    reader.close()
    assert body.closed
