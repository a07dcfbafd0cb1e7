"""Stream pieces that storage drivers share: probing the head of a stream, then sending the rest.

An upload of unknown size is probed first: :func:`read_upto` reads one byte more than the
backend sends in a single request. A short stream goes in one request; a longer one is sent as
a multi-part / resumable upload that reads the probed head again through :class:`PrefixedReader`
before the rest of the stream. Nothing is read whole into memory but the probe.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from clearml_core.storage.driver import COPY_CHUNK

__all__ = ["PrefixedReader", "read_upto"]


def read_upto(stream: BinaryIO, limit: int, *, chunk_size: int = COPY_CHUNK) -> bytes:
    """At most ``limit`` bytes of ``stream``: fewer only when the stream ends first."""
    chunks = []
    left = limit
    while left > 0:
        chunk = stream.read(min(left, chunk_size))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class PrefixedReader(io.RawIOBase):
    """``head`` bytes, then the rest of ``stream``: an upload of unknown size after its probe.

    It knows its position (a resumable upload asks for it) but cannot go back: ``seek`` succeeds
    only to where it already is. It does not close ``stream``; wrap it in an
    :class:`io.BufferedReader` to read it in large blocks.
    """

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream
        self._position = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        else:
            target = -1
        if target != self._position:
            raise io.UnsupportedOperation("a stream of unknown size cannot go back")
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
        else:
            data = self._stream.read(len(view))
            count = len(data)
            view[:count] = data
        self._position += count
        return count
