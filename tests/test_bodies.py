"""Request-body decoding (`course.embedded_clickhouse.bodies.decoded`), without a server."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib
from collections.abc import AsyncIterator, Iterable

import lz4.frame
import pytest
import zstandard

from course.embedded_clickhouse.bodies import BodyError, decoded

# Compressible but not trivial: decoding mistakes show up as wrong bytes, not just lengths.
PAYLOADS = [b"".join(b"%d,row %d\n" % (i, i * 7) for i in range(n)) for n in (1, 5000, 20000)]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def decode(data: bytes, encoding: str | None, chunk_size: int = 997) -> bytes:
    """Feed `data` in odd-sized chunks, as a socket would, and collect the decoded body."""

    async def run() -> bytes:
        return b"".join([part async for part in decoded(_chunks(data, chunk_size), encoding)])

    return asyncio.run(run())


def _concat(frames: Iterable[bytes]) -> bytes:
    return b"".join(frames)


def test_identity_passes_bytes_through():
    """No Content-Encoding (or identity) yields the body as is."""
    body = os.urandom(10_000)
    for encoding in (None, "", "identity"):
        assert decode(body, encoding) == body


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
def test_lz4_several_frames_all_decoded(chunk_size):
    """Concatenated lz4 frames (one per block, as clickhouse-connect sends) all arrive."""
    body = _concat(lz4.frame.compress(p) for p in PAYLOADS)
    assert decode(body, "lz4", chunk_size) == b"".join(PAYLOADS)


def test_zstd_several_frames_all_decoded():
    """Concatenated zstd frames all decode, whatever the chunking."""
    cctx = zstandard.ZstdCompressor()
    body = _concat(cctx.compress(p) for p in PAYLOADS)
    for chunk_size in (3, 1000, 1 << 20):
        assert decode(body, "zstd", chunk_size) == b"".join(PAYLOADS)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP"])
def test_gzip_several_members_all_decoded(encoding):
    """A gzip body made of several members (as `cat a.gz b.gz` makes) decodes to all of them."""
    body = _concat(gzip.compress(p) for p in PAYLOADS)
    assert decode(body, encoding, 501) == b"".join(PAYLOADS)


def test_deflate_decoded():
    """deflate means a zlib stream, as in HTTP."""
    body = zlib.compress(b"".join(PAYLOADS))
    assert decode(body, "deflate", 333) == b"".join(PAYLOADS)


@pytest.mark.parametrize(("encoding", "compress", "error_name"), [
    ("lz4", lz4.frame.compress, "LZ4_DECODER_FAILED"),
    ("zstd", zstandard.ZstdCompressor().compress, "ZSTD_DECODER_FAILED"),
    ("gzip", gzip.compress, "ZLIB_INFLATE_FAILED"),
    ("deflate", zlib.compress, "ZLIB_INFLATE_FAILED"),
])
def test_truncated_frame_is_an_error(encoding, compress, error_name):
    """A body that ends inside a frame raises BodyError instead of yielding a short body."""
    whole = _concat(compress(p) for p in PAYLOADS)
    truncated = whole[: len(whole) - 10]
    with pytest.raises(BodyError) as info:
        decode(truncated, encoding)
    assert info.value.error_name == error_name


@pytest.mark.parametrize("encoding", ["lz4", "zstd", "gzip", "deflate"])
def test_garbage_is_an_error(encoding):
    """Bytes that are not in the named encoding raise BodyError."""
    with pytest.raises(BodyError):
        decode(b"this is not compressed at all" * 10, encoding)


def test_unknown_encoding_is_an_error_naming_the_supported_ones():
    """An unknown Content-Encoding is NOT_IMPLEMENTED, as in ClickHouse, and lists what works."""
    with pytest.raises(BodyError) as info:
        decode(b"data", "x-made-up")
    assert info.value.error_name == "NOT_IMPLEMENTED"
    assert "'x-made-up'" in str(info.value)
    assert "lz4" in str(info.value) and "zstd" in str(info.value)


def test_empty_compressed_body_is_empty():
    """An empty body with an encoding decodes to nothing, without an error."""
    assert decode(b"", "lz4") == b""
    assert decode(b"", "gzip") == b""
